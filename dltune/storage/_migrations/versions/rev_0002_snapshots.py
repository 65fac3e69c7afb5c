"""Large studies: the best trial in one index lookup, and finished trials in one row each.

* ``trial_values`` gains its trial's ``study_id`` and the index ``ix_trial_values_best`` on
  (study, objective, where the value's kind sorts, value): the best trial of a study is read
  from one end of it instead of sorting every value of the study. On SQLite the table is
  rebuilt (a NOT NULL column cannot be added in place).
* ``trial_snapshots``: one row per finished trial with its values, parameters, reports and
  attributes packed (see ``dltune/storage/_sql_snapshots.py``, format 1); every trial finished
  before this revision gets its snapshot here.

Like every revision, this one is a frozen snapshot: it spells out its tables and packs the
snapshots with its own code, so that later changes to dltune cannot change what it does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: Where a value's kind sorts: -inf 0, finite (and -0.0) 1, +inf 2, NaN 3 (as in 0001's kinds).
_RANK = "(CASE WHEN (kind = -1) THEN 0 WHEN (kind = 1) THEN 2 WHEN (kind = 2) THEN 3 ELSE 1 END)"
_DECODE = {1: float("inf"), -1: float("-inf"), 2: float("nan"), 3: -0.0}
_CHUNK = 500


def upgrade() -> None:
    is_postgresql = op.get_bind().dialect.name == "postgresql"
    if is_postgresql:
        _values_study_postgresql()
    else:
        _values_study_sqlite()
    op.execute(
        f"CREATE INDEX ix_trial_values_best ON trial_values (study_id, objective, {_RANK}, value)"
    )
    op.create_table(
        "trial_snapshots",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("trials.trial_id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("format", sa.SmallInteger, nullable=False),
        sa.Column("objective_values", sa.LargeBinary),
        sa.Column("param_names", sa.Text),
        sa.Column("param_values", sa.LargeBinary),
        sa.Column("param_distributions", sa.Text),
        sa.Column("steps", sa.LargeBinary),
        sa.Column("step_values", sa.LargeBinary),
        sa.Column("user_attrs", sa.Text),
        sa.Column("system_attrs", sa.Text),
    )
    _snapshot_finished_trials(op.get_bind())


def _values_study_postgresql() -> None:
    op.add_column("trial_values", sa.Column("study_id", sa.Integer, nullable=True))
    op.execute(
        "UPDATE trial_values SET study_id = trials.study_id FROM trials "
        "WHERE trials.trial_id = trial_values.trial_id"
    )
    op.alter_column("trial_values", "study_id", nullable=False)
    op.create_foreign_key(
        "fk_trial_values_study",
        "trial_values",
        "studies",
        ["study_id"],
        ["study_id"],
        ondelete="CASCADE",
    )


def _values_study_sqlite() -> None:
    op.create_table(
        "trial_values_0002",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("trials.trial_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("studies.study_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("objective", sa.Integer, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "objective"),
    )
    op.execute(
        "INSERT INTO trial_values_0002 (trial_id, study_id, objective, value, kind) "
        "SELECT v.trial_id, t.study_id, v.objective, v.value, v.kind "
        "FROM trial_values v JOIN trials t ON t.trial_id = v.trial_id"
    )
    op.drop_table("trial_values")
    op.rename_table("trial_values_0002", "trial_values")


# -- snapshots of the trials finished before this revision ------------------------------------


def _floats(numbers: list[float]) -> bytes | None:
    return _array("d", numbers)


def _array(code: str, numbers: list[Any]) -> bytes | None:
    if not numbers:
        return None
    packed = array(code, numbers)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def _decode(value: float | None, kind: int) -> float:
    return float(value) if kind == 0 and value is not None else _DECODE[kind]


def _attrs(items: Iterable[tuple[str, str]]) -> str | None:
    pairs = sorted(items)
    if not pairs:
        return None
    return "{" + ",".join(f"{json.dumps(key)}:{text}" for key, text in pairs) + "}"


def _rows(bind: Any, sql: str, ids: list[int]) -> dict[int, list[tuple[Any, ...]]]:
    out: dict[int, list[tuple[Any, ...]]] = {}
    statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    for row in bind.execute(statement, {"ids": ids}):
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def _snapshot_finished_trials(bind: Any) -> None:
    finished = bind.execute(
        sa.text(
            "SELECT trial_id FROM trials WHERE state IN ('COMPLETE', 'PRUNED', 'FAIL') "
            "ORDER BY trial_id"
        )
    ).all()
    ids = [row[0] for row in finished]
    table = sa.table(
        "trial_snapshots",
        *(
            sa.column(name)
            for name in (
                "trial_id",
                "format",
                "objective_values",
                "param_names",
                "param_values",
                "param_distributions",
                "steps",
                "step_values",
                "user_attrs",
                "system_attrs",
            )
        ),
    )
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        rows = [_snapshot(trial_id, *children) for trial_id, children in _chunk(bind, chunk)]
        bind.execute(table.insert(), rows)


def _chunk(bind: Any, ids: list[int]) -> Iterable[tuple[int, tuple[Any, ...]]]:
    values = _rows(
        bind,
        "SELECT trial_id, objective, value, kind FROM trial_values WHERE trial_id IN :ids",
        ids,
    )
    params = _rows(
        bind,
        "SELECT p.trial_id, p.name, p.value, p.distribution_json, sp.distribution_json "
        "FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id "
        "LEFT JOIN study_params sp ON sp.study_id = t.study_id AND sp.name = p.name "
        "WHERE p.trial_id IN :ids",
        ids,
    )
    steps = _rows(
        bind,
        "SELECT trial_id, step, value, kind FROM trial_intermediate_values WHERE trial_id IN :ids",
        ids,
    )
    attrs = _rows(
        bind,
        "SELECT trial_id, is_system, key, value_json FROM trial_attrs WHERE trial_id IN :ids",
        ids,
    )
    for trial_id in ids:
        yield trial_id, tuple(found.get(trial_id, []) for found in (values, params, steps, attrs))


def _snapshot(
    trial_id: int,
    values: list[tuple[Any, ...]],
    params: list[tuple[Any, ...]],
    steps: list[tuple[Any, ...]],
    attrs: list[tuple[Any, ...]],
) -> dict[str, Any]:
    params = sorted(params)
    dists = [None if registered == text else text for _, _, text, registered in params]
    reports = sorted((step, _decode(value, kind)) for step, value, kind in steps)
    return {
        "trial_id": trial_id,
        "format": 1,
        "objective_values": _floats([_decode(v, k) for _, v, k in sorted(values)]),
        "param_names": json.dumps([name for name, *_ in params]) if params else None,
        "param_values": _floats([float(value) for _, value, _, _ in params]),
        "param_distributions": json.dumps(dists) if any(dists) else None,
        "steps": _array("q", [step for step, _ in reports]),
        "step_values": _floats([value for _, value in reports]),
        "user_attrs": _attrs((key, text) for system, key, text in attrs if not system),
        "system_attrs": _attrs((key, text) for system, key, text in attrs if system),
    }


def downgrade() -> None:
    op.drop_table("trial_snapshots")
    op.drop_index("ix_trial_values_best", table_name="trial_values")
    with op.batch_alter_table("trial_values") as batch:  # SQLite: rebuilds the table
        batch.drop_column("study_id")
