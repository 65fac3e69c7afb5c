"""Reading trials from a SQL storage, and writing the snapshot of a trial that finishes.

A finished trial with a snapshot (``_sql_snapshots``) is built from its one row; any other trial
(unfinished, or finished by a dltune older than snapshots) from its child rows, four queries
per 500 trials. Both ways give the same record: parameters sorted by name, reports by step,
attributes by key.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import logging
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import BindParameter
from sqlalchemy import Connection
from sqlalchemy import Float
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import Text
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import literal_column
from sqlalchemy import null
from sqlalchemy import select
from sqlalchemy import union_all

from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._sql_queries import ROW_COLUMNS
from dltune.storage._sql_queries import Statements
from dltune.storage._sql_schema import decode_float
from dltune.storage._sql_schema import study_params
from dltune.storage._sql_schema import trial_attrs
from dltune.storage._sql_schema import trial_intermediate_values
from dltune.storage._sql_schema import trial_params
from dltune.storage._sql_schema import trial_snapshots
from dltune.storage._sql_schema import trial_values
from dltune.storage._sql_schema import trials
from dltune.storage._sql_snapshots import FORMAT
from dltune.storage._sql_snapshots import Registered
from dltune.storage._sql_snapshots import Shapes
from dltune.storage._sql_snapshots import pack
from dltune.storage._sql_snapshots import parse_distribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.trial import datetime_from_epoch

__all__ = ["CHUNK", "TrialLoader", "paused_gc", "raw_rows"]

_logger = logging.getLogger(__name__)

#: Trials loaded per ``WHERE trial_id IN (...)``: well below every backend's parameter limit.
CHUNK = 500
#: Building more trials than this pauses the garbage collector (see :func:`paused_gc`).
_MANY = 1000
_FINISHED = frozenset(s.value for s in TrialState if s.is_finished())
_ROW = len(ROW_COLUMNS)


def _children_query(table: Any, *columns: Any) -> Select[Any]:
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    return select(table.c.trial_id, *columns).where(table.c.trial_id.in_(ids))


_V, _P, _S, _A = trial_values.c, trial_params.c, trial_intermediate_values.c, trial_attrs.c
_VALUES = _children_query(trial_values, _V.objective, _V.value, _V.kind)
# With the distribution the study registered for the name, which the snapshot refers to.
_PARAMS = (
    _children_query(trial_params, _P.name, _P.value, _P.distribution_json)
    .add_columns(study_params.c.distribution_json)
    .join(trials, trials.c.trial_id == _P.trial_id)
    .outerjoin(
        study_params,
        (study_params.c.study_id == trials.c.study_id) & (study_params.c.name == _P.name),
    )
)
_STEPS = _children_query(trial_intermediate_values, _S.step, _S.value, _S.kind)
_ATTRS = _children_query(trial_attrs, _A.is_system, _A.key, _A.value_json)


def _one_trial_children() -> Any:
    """Every child row of one trial in one statement (the finish of a trial runs it): rows of
    ``(table, number, text, float, number, text, text)``, unused places NULL."""
    tid: BindParameter[int] = bindparam("tid")

    def row(tag: int, *columns: Any) -> list[Any]:
        types = (BigInteger, Text, Float, Integer, Text, Text)
        cells = [null() if c is None else c for c in columns]
        return [literal_column(str(tag)).label("tag")] + [
            cast(cell, type_) for cell, type_ in zip(cells, types, strict=True)
        ]

    values = select(*row(0, _V.objective, None, _V.value, _V.kind, None, None))
    params = (
        select(
            *row(
                1,
                None,
                _P.name,
                _P.value,
                None,
                _P.distribution_json,
                study_params.c.distribution_json,
            )
        )  # fmt: skip
        .select_from(trial_params)
        .join(trials, trials.c.trial_id == _P.trial_id)
        .outerjoin(
            study_params,
            (study_params.c.study_id == trials.c.study_id) & (study_params.c.name == _P.name),
        )
    )
    steps = select(*row(2, _S.step, None, _S.value, _S.kind, None, None))
    attrs = select(*row(3, cast(_A.is_system, Integer), _A.key, None, None, _A.value_json, None))
    return union_all(
        values.where(_V.trial_id == tid),
        params.where(_P.trial_id == tid),
        steps.where(_S.trial_id == tid),
        attrs.where(_A.trial_id == tid),
    )


_ONE_TRIAL = _one_trial_children()


def raw_rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a statement as the driver's tuples: no per-row work by SQLAlchemy."""
    result = conn.execute(stmt, params)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return list(rows)


@contextlib.contextmanager
def paused_gc(n: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while building ``n`` records, if ``n`` is large.

    Building 100,000 trials makes millions of containers, none of them garbage; the collector
    would traverse them again and again (a third of the time). Reference counting still frees
    everything as usual; collections resume afterwards.

    Example:
        >>> with paused_gc(10_000):
        ...     gc.isenabled()
        False
        >>> gc.isenabled()
        True
    """
    if n < _MANY or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _grouped(rows: Iterable[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


class _Children:
    """The child rows of some trials, grouped by trial id."""

    def __init__(self, conn: Connection | None, ids: Sequence[int]) -> None:
        self.values: dict[int, list[tuple[Any, ...]]] = {}
        self.params: dict[int, list[tuple[Any, ...]]] = {}
        self.steps: dict[int, list[tuple[Any, ...]]] = {}
        self.attrs: dict[int, list[tuple[Any, ...]]] = {}
        if conn is None:
            return
        for i in range(0, len(ids), CHUNK):
            chunk = {"ids": list(ids[i : i + CHUNK])}
            for name, stmt in (
                ("values", _VALUES),
                ("params", _PARAMS),
                ("steps", _STEPS),
                ("attrs", _ATTRS),
            ):
                for trial_id, rows in _grouped(raw_rows(conn, stmt, chunk)).items():
                    getattr(self, name)[trial_id] = rows

    @classmethod
    def of_trial(cls, conn: Connection, trial_id: int) -> _Children:
        """One trial's child rows, read in one statement."""
        out = cls(None, [])
        for tag, number, text_, value, kind, json_, registered in raw_rows(
            conn, _ONE_TRIAL, {"tid": trial_id}
        ):
            if tag == 0:
                out.values.setdefault(trial_id, []).append((number, value, kind))
            elif tag == 1:
                out.params.setdefault(trial_id, []).append((text_, value, json_, registered))
            elif tag == 2:
                out.steps.setdefault(trial_id, []).append((number, value, kind))
            else:
                out.attrs.setdefault(trial_id, []).append((number, text_, json_))
        return out

    def trial(self, row: Sequence[Any]) -> FrozenTrial:
        """The trial of a row starting with :data:`TRIAL_COLUMNS`, from its child rows."""
        trial_id, number, state, start, complete, retry_of = row[:6]
        values = self.values.get(trial_id)
        params = sorted(self.params.get(trial_id, ()))
        dists = {name: parse_distribution(text) for name, _, text, _ in params}
        attrs = sorted((bool(s), k, t) for s, k, t in self.attrs.get(trial_id, ()))
        system: dict[str, Any] = {} if retry_of is None else {RETRY_OF_KEY: retry_of}
        system.update((k, json.loads(t)) for s, k, t in attrs if s)
        return FrozenTrial(
            number,
            trial_id,
            TrialState(state),
            values=[decode_float(v, k) for _, v, k in sorted(values)] if values else None,
            params={name: dists[name].to_external(x) for name, x, _, _ in params},
            distributions=dists,
            intermediate_values={
                s: decode_float(v, k) for s, v, k in sorted(self.steps.get(trial_id, ()))
            },
            user_attrs={k: json.loads(t) for s, k, t in attrs if not s},
            system_attrs=system,
            datetime_start=datetime_from_epoch(start),
            datetime_complete=datetime_from_epoch(complete),
        )

    def snapshot(self, trial_id: int) -> dict[str, Any]:
        """The snapshot columns of a finished trial loaded here."""
        params = self.params.get(trial_id, [])
        registered = {name: text for name, _, _, text in params if text is not None}
        return pack(
            self.values.get(trial_id, ()),
            [(name, value, text) for name, value, text, _ in params],
            self.steps.get(trial_id, ()),
            self.attrs.get(trial_id, ()),
            registered,
        )


class TrialLoader:
    """Builds the trials of rows of :data:`ROW_COLUMNS`; one per storage (it caches the
    parameter sets it has seen)."""

    def __init__(self, statements: Statements) -> None:
        self._q = statements
        self._shapes = Shapes()

    def load(
        self, conn: Connection, rows: Sequence[Sequence[Any]], study_ids: Sequence[int]
    ) -> list[FrozenTrial]:
        """The trials of ``rows`` (of :data:`ROW_COLUMNS`), in their order; ``study_ids[i]``
        is the study of ``rows[i]`` (a one-element sequence: all of them)."""
        registered: dict[int, Mapping[str, str]] = {}

        def read_registered(study_id: int) -> Mapping[str, str]:
            if study_id not in registered:
                found = conn.execute(self._q.study_dist_texts, {"sid": study_id}).all()
                registered[study_id] = {name: text for name, text in found}
            return registered[study_id]

        out: list[FrozenTrial | None] = []
        rest: list[int] = []
        readers: dict[int, Registered] = {}
        build = self._shapes.build
        if len(study_ids) == 1:
            study_ids = list(itertools.repeat(study_ids[0], len(rows)))
        with paused_gc(len(rows)):
            for i, (row, study_id) in enumerate(zip(rows, study_ids, strict=True)):
                trial = None
                if row[6] == FORMAT and row[2] in _FINISHED:
                    reader = readers.get(study_id)
                    if reader is None:
                        reader = readers[study_id] = functools.partial(read_registered, study_id)
                    try:
                        trial = build(study_id, row if len(row) == _ROW else row[:_ROW], reader)
                    except (KeyError, TypeError, ValueError) as exc:  # a damaged snapshot
                        _logger.warning("trial %s: unreadable snapshot (%r)", row[1], exc)
                out.append(trial)
                if trial is None:  # unfinished, or no (readable) snapshot: the child rows
                    rest.append(i)
            if rest:
                children = _Children(conn, [rows[i][0] for i in rest])
                for i in rest:
                    out[i] = children.trial(rows[i])
        return [trial for trial in out if trial is not None]

    def load_ids(self, conn: Connection, trial_ids: Sequence[int]) -> list[FrozenTrial]:
        """Load trials by id (they must exist)."""
        rows = [conn.execute(self._q.trial_row, {"tid": t}).one() for t in trial_ids]
        return self.load(conn, rows, [row[-1] for row in rows])

    def finish(self, conn: Connection, row: Sequence[Any] | int) -> FrozenTrial:
        """Write the snapshot of a trial just finished in this transaction; the trial.

        ``row`` starts with :data:`TRIAL_COLUMNS` (an UPDATE's RETURNING gives them), or is the
        trial's id (then read here).
        """
        if isinstance(row, int):
            row = conn.execute(self._q.trial_row, {"tid": row}).one()
        trial_id = row[0]
        children = _Children.of_trial(conn, trial_id)
        snapshot = children.snapshot(trial_id)
        conn.execute(trial_snapshots.insert(), {"trial_id": trial_id, **snapshot})
        return children.trial(row)
