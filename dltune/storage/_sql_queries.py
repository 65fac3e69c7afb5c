"""Prepared SQLAlchemy Core statements, and the steps of transactions that use several.

Statements are built once per storage (per dialect) with bound parameters, so the hot paths pay
neither for building them nor, thanks to SQLAlchemy's compiled cache, for compiling them.
Loading trials is in ``_sql_load``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from typing import NoReturn

from sqlalchemy import BigInteger
from sqlalchemy import BindParameter
from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Float
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from dltune.exceptions import DuplicatedStudyError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialNotFoundError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import BaseDistribution
from dltune.space import check_compatible
from dltune.space import distribution_to_json
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._base import FrozenStudy
from dltune.storage._memory import check_json
from dltune.storage._memory import check_template
from dltune.storage._sql_schema import KIND_NAN
from dltune.storage._sql_schema import encode_float
from dltune.storage._sql_schema import now_sql
from dltune.storage._sql_schema import studies
from dltune.storage._sql_schema import study_attrs
from dltune.storage._sql_schema import study_params
from dltune.storage._sql_schema import trial_attrs
from dltune.storage._sql_schema import trial_intermediate_values
from dltune.storage._sql_schema import trial_params
from dltune.storage._sql_schema import trial_snapshots
from dltune.storage._sql_schema import trial_values
from dltune.storage._sql_schema import trials
from dltune.storage._sql_schema import value_rank
from dltune.storage._sql_snapshots import SNAPSHOT_COLUMNS
from dltune.storage._sql_snapshots import parse_distribution
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import datetime_from_epoch

__all__ = [
    "ROW_COLUMNS",
    "Statements",
    "insert_trial",
    "parse_distribution",
    "template_rows",
    "value_row",
]

_RUNNING = TrialState.RUNNING.value
_WAITING = TrialState.WAITING.value
_UNFINISHED = (_WAITING, _RUNNING)
_STALE_JSON = json.dumps("stale")
#: The columns of ``trials`` a :class:`FrozenTrial` is built from, in this order.
TRIAL_COLUMNS = (
    trials.c.trial_id,
    trials.c.number,
    trials.c.state,
    trials.c.datetime_start,
    trials.c.datetime_complete,
    trials.c.retry_of,
)
#: What trials are read as: :data:`TRIAL_COLUMNS`, then the snapshot (NULLs without one).
ROW_COLUMNS = (*TRIAL_COLUMNS, *(trial_snapshots.c[name] for name in SNAPSHOT_COLUMNS))
_WITH_SNAPSHOTS = trials.outerjoin(
    trial_snapshots, trial_snapshots.c.trial_id == trials.c.trial_id
)


class Statements:
    """The statements one storage runs, built for its dialect."""

    def __init__(self, dialect_name: str) -> None:
        is_pg = dialect_name == "postgresql"
        sid: BindParameter[int] = bindparam("sid")
        tid: BindParameter[int] = bindparam("tid")
        self.now: ColumnElement[float] = literal_column(now_sql(dialect_name), type_=Float)
        t = trials.c

        lock_study = select(studies.c.study_id).where(studies.c.study_id == sid)
        self.study_exists = lock_study
        # FOR NO KEY UPDATE serializes claims on a study without blocking inserts that merely
        # reference it (foreign keys take KEY SHARE locks). SQLite ignores it: BEGIN IMMEDIATE
        # already serializes every writer.
        self.lock_study = lock_study.with_for_update(key_share=True) if is_pg else lock_study
        name: BindParameter[str] = bindparam("name")
        by_name = studies.c.study_name == name
        if is_pg:  # lets PostgreSQL use the unique index on md5(study_name)
            by_name = and_(func.md5(studies.c.study_name) == func.md5(name), by_name)
        self.study_by_name = select(studies.c.study_id).where(by_name)
        self.study_directions = select(studies.c.directions).where(studies.c.study_id == sid)
        self.study_name = select(studies.c.study_name).where(studies.c.study_id == sid)

        # A trial that may still change, locked against a concurrent finish (FOR SHARE).
        trial_state = select(t.state, t.study_id, t.number).where(t.trial_id == tid)
        self.trial_state = trial_state.with_for_update(read=True) if is_pg else trial_state
        # Ends with the study id (after the snapshot's columns).
        self.trial_row = (
            select(*ROW_COLUMNS, t.study_id).select_from(_WITH_SNAPSHOTS).where(t.trial_id == tid)
        )
        # Retries first, then the oldest WAITING trial.
        self.next_waiting = (
            select(t.trial_id, t.number, t.retry_of)
            .where(t.study_id == sid, t.state == _WAITING)
            .order_by(t.retry_of.is_(None), t.number)
            .limit(1)
        )
        self.next_number = select(func.coalesce(func.max(t.number), -1) + 1).where(
            t.study_id == sid
        )
        self.n_budget_used = _budget_used(self.next_number)
        # The next number is computed in the INSERT itself: one statement, under the study lock.
        grace = bindparam("grace", type_=Float)
        self.stale_after = self.now + grace
        next_row = select(
            bindparam("sid", type_=Integer),
            func.coalesce(func.max(t.number), -1) + 1,
            literal(_RUNNING),
            self.now,
            self.stale_after,
            bindparam("retries", type_=Integer),
        ).where(t.study_id == sid)
        columns = [
            "study_id",
            "number",
            "state",
            "datetime_start",
            "stale_after",
            "retries_left",
        ]
        self.insert_running = (
            trials.insert()
            .from_select(columns, next_row)
            .returning(t.trial_id, t.number, t.datetime_start)
        )
        counts = (
            select(t.study_id, func.count().label("n"), func.min(t.datetime_start).label("start"))
            .group_by(t.study_id)
            .subquery()
        )
        self.all_studies = (
            select(studies.c.study_id, studies.c.study_name, studies.c.directions)
            .add_columns(counts.c.n, counts.c.start)
            .outerjoin(counts, counts.c.study_id == studies.c.study_id)
            .order_by(studies.c.study_id)
        )
        self.study_names = select(studies.c.study_name).order_by(studies.c.study_id).limit(10)
        self.study_attrs = select(study_attrs.c.key, study_attrs.c.value_json).where(
            study_attrs.c.study_id == sid, study_attrs.c.is_system == bindparam("system")
        )
        self.delete_study = studies.delete().where(studies.c.study_id == sid)
        # State changes return the trial's study: no row means it was finished (or missing).
        self.start_trial = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(
                state=_RUNNING,
                datetime_start=self.now,
                stale_after=self.stale_after,
                retries_left=func.coalesce(t.retries_left, bindparam("retries", type_=Integer)),
            )
            .returning(t.study_id)
        )
        # The finished trial's columns too, for its snapshot (after them, its study).
        self.finish_trial = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(state=bindparam("state"), datetime_complete=self.now)
            .returning(*TRIAL_COLUMNS, t.study_id)
        )
        self.set_state = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(state=bindparam("state"))
            .returning(t.study_id)
        )
        self.heartbeat = (
            update(trials)
            .where(t.trial_id == tid, t.state == _RUNNING)
            .values(stale_after=self.stale_after)
        )
        self.set_retry_of = update(trials).where(t.trial_id == tid).values(retry_of=bindparam("r"))
        stale = and_(
            t.study_id == sid,
            t.state == _RUNNING,
            t.stale_after < self.now,
        )
        self.any_stale = select(t.trial_id).where(stale).limit(1)
        self.fail_stale = (
            update(trials)
            .where(stale)
            .values(state=TrialState.FAIL.value, datetime_complete=self.now)
            .returning(*TRIAL_COLUMNS, t.retries_left)
        )

        wm = t.number >= bindparam("wm")
        rows = select(*ROW_COLUMNS).select_from(_WITH_SNAPSHOTS)
        self.trials_since = rows.where(t.study_id == sid, wm).order_by(t.number)
        recheck: BindParameter[list[int]] = bindparam("recheck", expanding=True)
        # Finished trials below ``next`` are cached; only new and then-unfinished ones change.
        self.trials_changed = rows.where(
            t.study_id == sid,
            wm,
            or_(t.number >= bindparam("next"), _is_unfinished(t.state), t.number.in_(recheck)),
        ).order_by(t.number)
        self.count_all = self.next_number  # numbers are 0 .. n - 1: one index lookup
        self.count_states = select(func.count()).where(
            t.study_id == sid, t.state.in_(bindparam("states", expanding=True))
        )

        insert = postgresql.insert if is_pg else sqlite.insert

        def upsert(table: Table, *keys: str) -> Insert:
            stmt = insert(table)
            others = {c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys}
            return stmt.on_conflict_do_update(index_elements=list(keys), set_=others)

        self.upsert_trial_attr = upsert(trial_attrs, "trial_id", "is_system", "key")
        self.upsert_study_attr = upsert(study_attrs, "study_id", "is_system", "key")
        self.upsert_param = upsert(trial_params, "trial_id", "name")
        self.upsert_value = upsert(trial_values, "trial_id", "objective")
        # Hot paths (report, suggest): one statement that writes only while the trial is
        # unfinished (no row returned otherwise), instead of a state check and then a write.
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... SELECT upsert.
        still_open = select(literal(1)).where(t.trial_id == tid, _is_unfinished(t.state)).exists()

        def guarded_upsert(table: Table, keys: list[str], types: dict[str, Any]) -> Insert:
            values = [bindparam("tid", type_=Integer)]
            values += [bindparam(name, type_=type_) for name, type_ in types.items()]
            stmt = insert(table).from_select(
                ["trial_id", *types], select(*values).where(still_open)
            )
            updated = {name: stmt.excluded[name] for name in types if name not in keys}
            return stmt.on_conflict_do_update(
                index_elements=["trial_id", *keys], set_=updated
            ).returning(table.c.trial_id)

        self.report = guarded_upsert(
            trial_intermediate_values,
            ["step"],
            {"step": BigInteger, "value": Float, "kind": Integer},
        )
        self.guarded_param = guarded_upsert(
            trial_params, ["name"], {"name": Text, "value": Float, "distribution_json": Text}
        )
        self.insert_study_param = insert(study_params).on_conflict_do_nothing()
        self.study_param = select(study_params.c.distribution_json).where(
            study_params.c.study_id == sid, study_params.c.name == name
        )
        self.trial_system_attr = select(trial_attrs.c.value_json).where(
            trial_attrs.c.trial_id == tid,
            trial_attrs.c.is_system.is_(True),
            trial_attrs.c.key == bindparam("key"),
        )

        self.best_trial = {False: _best_trial(maximize=False), True: _best_trial(maximize=True)}
        sp = study_params.c
        self.study_dist_texts = select(sp.name, sp.distribution_json).where(sp.study_id == sid)

    # -- transaction steps -------------------------------------------------------------------

    def require_study(self, conn: Connection, study_id: int, *, lock: bool = False) -> None:
        """Raise ``StudyNotFoundError`` unless the study exists; ``lock`` serializes claims."""
        stmt = self.lock_study if lock else self.study_exists
        if conn.execute(stmt, {"sid": study_id}).first() is None:
            raise StudyNotFoundError(f"no study with id {study_id!r}")

    def insert_study(self, conn: Connection, study_name: str, directions: list[str]) -> int:
        """Add a study; its id.

        Raises:
            DuplicatedStudyError: If the name is taken (also by a concurrent create).
        """
        duplicate = DuplicatedStudyError(
            f"a study named {study_name!r} already exists; pass load_if_exists=True "
            "to continue it or choose another name"
        )
        if conn.execute(self.study_by_name, {"name": study_name}).first() is not None:
            raise duplicate
        row: dict[str, Any] = {"study_name": study_name, "directions": json.dumps(directions)}
        row["created_at"] = self.now
        try:
            stmt = studies.insert().values(row).returning(studies.c.study_id)
            return int(conn.execute(stmt).scalar_one())
        except IntegrityError as exc:  # a concurrent create won the race
            raise duplicate from exc

    def all_studies_of(self, conn: Connection) -> list[FrozenStudy]:
        """Every study of the database, with its attributes, oldest first."""
        out = {}
        for study_id, name, directions, n, start in conn.execute(self.all_studies):
            out[study_id] = FrozenStudy(
                study_id,
                name,
                [StudyDirection(d) for d in json.loads(directions)],
                n_trials=n or 0,
                datetime_start=datetime_from_epoch(start),
            )
        for study_id, is_system, key, text in conn.execute(study_attrs.select()):
            if study_id in out:
                attrs = out[study_id].system_attrs if is_system else out[study_id].user_attrs
                attrs[key] = json.loads(text)
        return list(out.values())

    def updatable_trial(self, conn: Connection, trial_id: int) -> int:
        """The study of a WAITING or RUNNING trial; raises if it is missing or finished."""
        row = conn.execute(self.trial_state, {"tid": trial_id}).first()
        if row is None or TrialState(row.state).is_finished():
            self.raise_not_updatable(conn, trial_id)
        return int(row.study_id)

    def raise_not_updatable(self, conn: Connection, trial_id: int) -> NoReturn:
        """Raise ``TrialNotFoundError`` or ``UpdateFinishedTrialError``, saying why."""
        row = conn.execute(self.trial_state, {"tid": trial_id}).first()
        if row is None:
            raise TrialNotFoundError(f"no trial with id {trial_id!r}")
        message = f"trial {row.number} is already {row.state} and cannot be changed"
        reason = conn.execute(self.trial_system_attr, {"tid": trial_id, "key": REASON_KEY})
        if reason.scalar_one_or_none() == _STALE_JSON:
            message += (
                "; it was failed as stale because its worker sent no heartbeat within its "
                "grace period (the earlier outcome stands)"
            )
        raise UpdateFinishedTrialError(message)

    def upsert_attr(
        self, conn: Connection, trial_id: int, key: str, text: str, *, system: bool
    ) -> None:
        """Set a trial attribute from its JSON text."""
        row = {"trial_id": trial_id, "is_system": system, "key": key, "value_json": text}
        conn.execute(self.upsert_trial_attr, row)

    def register_dists(
        self,
        conn: Connection,
        study_id: int,
        dists: dict[str, BaseDistribution],
        known: dict[str, BaseDistribution],
    ) -> dict[str, BaseDistribution]:
        """Check ``dists`` against the study's first distribution of each name, adding new ones.

        ``known`` is the process's cache. Returns what the database holds for these names, to
        be cached once the transaction commits.

        Raises:
            ValueError: From :func:`dltune.space.check_compatible`.
        """
        stored: dict[str, BaseDistribution] = {}
        for name, dist in dists.items():
            old = known.get(name)
            if old is None:
                params = {"sid": study_id, "name": name}
                text = conn.execute(self.study_param, params).scalar_one_or_none()
                if text is None:
                    row = {"study_id": study_id, "name": name}
                    row["distribution_json"] = distribution_to_json(dist)
                    # rowcount may be -1 (unknown) on some drivers: re-read unless surely 1.
                    if conn.execute(self.insert_study_param, row).rowcount != 1:
                        text = conn.execute(self.study_param, params).scalar_one()  # a race
                old = dist if text is None else parse_distribution(text)
            check_compatible(name, old, dist)
            stored[name] = old
        return stored

    def fail_stale_trials(
        self, conn: Connection, study_id: int, finished: Callable[[Connection, Any], FrozenTrial]
    ) -> list[FrozenTrial]:
        """Fail the study's stale trials and enqueue their retries; the trials failed.

        ``finished(conn, row)`` records each failed trial's final state (its snapshot) from its
        row of :data:`TRIAL_COLUMNS`.
        """
        self.require_study(conn, study_id, lock=True)
        failed = conn.execute(self.fail_stale, {"sid": study_id}).all()
        out = []
        for row in sorted(failed, key=lambda row: row.number):
            self.upsert_attr(conn, row.trial_id, REASON_KEY, _STALE_JSON, system=True)
            out.append(finished(conn, row))
            if row.retries_left:
                self._enqueue_retry(conn, study_id, out[-1], row.number, row.retries_left - 1)
        return out

    def _enqueue_retry(
        self, conn: Connection, study_id: int, failed: FrozenTrial, number: int, retries_left: int
    ) -> None:
        """A WAITING trial with the failed one's params (also if it had none) as fixed params."""
        fixed = dict(failed.system_attrs.get(FIXED_PARAMS_KEY) or {})
        fixed.update(failed.params)
        new_number = conn.execute(self.next_number, {"sid": study_id}).scalar_one()
        row = {
            "study_id": study_id,
            "number": new_number,
            "state": "WAITING",
            "retry_of": number,
            "retries_left": retries_left,
        }
        new_id = insert_trial(conn, row)
        self.upsert_attr(conn, new_id, FIXED_PARAMS_KEY, json.dumps(fixed), system=True)


def _is_unfinished(state: ColumnElement[str]) -> ColumnElement[bool]:
    """``state IN ('WAITING', 'RUNNING')`` without an expanding parameter, which SQLAlchemy
    would re-render on every execution of these hot statements."""
    return or_(state == literal_column(f"'{_WAITING}'"), state == literal_column(f"'{_RUNNING}'"))


def _best_trial(maximize: bool) -> Select[Any]:
    """The id of the best COMPLETE trial: infinities by ``kind``, ties to the earliest.

    ``ix_trial_values_best`` holds the first two sort keys in order (read backwards to
    maximize), so the database reads the index from the best end and stops at the first
    COMPLETE trial: O(log n), and a few more rows only on ties.
    """
    v = trial_values.c
    rank = value_rank(v.kind)
    order = (rank.desc(), v.value.desc()) if maximize else (rank.asc(), v.value.asc())
    return (
        select(v.trial_id)
        .join(trials, trials.c.trial_id == v.trial_id)
        .where(
            v.study_id == bindparam("sid"),
            v.objective == literal_column("0"),
            rank < literal_column(str(KIND_NAN + 1)),  # no NaN (refused anyway)
            trials.c.state == literal_column("'COMPLETE'"),
        )
        .order_by(*order, trials.c.number)
        .limit(1)
    )


def _budget_used(n_trials: Select[Any]) -> Select[Any]:
    """How many trials count against a study's budget: all but WAITING ones and retries.

    Numbers run 0 .. n - 1 without gaps (each is the highest so far plus one, under the study's
    lock, and trials are never deleted alone), so this is n minus the few trials that do not
    count, each found through ``ix_trials_study_state``: no scan of the study.
    """
    t = trials.c
    sid: BindParameter[int] = bindparam("sid")
    every_state: list[ColumnElement[str]] = [
        literal_column(f"'{state.value}'") for state in TrialState
    ]
    retries = select(func.count()).where(
        t.study_id == sid, t.state.in_(every_state), t.retry_of.is_not(None)
    )
    waiting = select(func.count()).where(
        t.study_id == sid, t.state == literal_column(f"'{_WAITING}'"), t.retry_of.is_(None)
    )
    return select(
        n_trials.scalar_subquery() - retries.scalar_subquery() - waiting.scalar_subquery()
    )


def insert_trial(conn: Connection, row: dict[str, Any]) -> int:
    """Insert a row of ``trials`` (values may be SQL expressions) and return its id."""
    stmt = trials.insert().values(row).returning(trials.c.trial_id)
    return int(conn.execute(stmt).scalar_one())


def value_row(objective: int, value: float) -> dict[str, Any]:
    """A row of ``trial_values`` (without its trial id)."""
    encoded, kind = encode_float(value)
    return {"objective": objective, "value": encoded, "kind": kind}


def template_rows(template: FrozenTrial | None) -> dict[str, Any]:
    """The rows a template becomes, checked (ValueError/TypeError) before anything is written."""
    rows: dict[str, Any] = {"trial": {}}
    for table in (trial_values, trial_params, trial_intermediate_values, trial_attrs):
        rows[table.name] = []
    if template is None:
        return rows
    check_template(template)
    if template.values is not None:
        rows["trial_values"] = [value_row(i, v) for i, v in enumerate(template.values)]
    for name, value in template.params.items():
        dist = template.distributions[name]
        row = {"name": name, "value": dist.to_internal(value)}
        rows["trial_params"].append({**row, "distribution_json": distribution_to_json(dist)})
    for step, value in template.intermediate_values.items():
        encoded, kind = encode_float(value)
        rows["trial_intermediate_values"].append({"step": step, "value": encoded, "kind": kind})
    for is_system, attrs in ((False, template.user_attrs), (True, template.system_attrs)):
        for key, value in attrs.items():
            if is_system and key == RETRY_OF_KEY:  # kept in the trials.retry_of column
                if not (value is None or type(value) is int):
                    raise TypeError(f"system attribute {key!r}={value!r} must be an int or None")
                rows["trial"]["retry_of"] = value
                continue
            text = check_json(key, value)
            rows["trial_attrs"].append({"is_system": is_system, "key": key, "value_json": text})
    for column, moment in (
        ("datetime_start", template.datetime_start),
        ("datetime_complete", template.datetime_complete),
    ):
        if moment is not None:
            rows["trial"][column] = moment.timestamp()
    return rows
