"""Prepared SQLAlchemy Core statements and the set-based loading of trials.

Statements are built once per storage (per dialect) with bound parameters, so the hot paths pay
neither for building them nor, thanks to SQLAlchemy's compiled cache, for compiling them.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

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
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Insert

from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialNotFoundError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import BaseDistribution
from dltune.space import check_compatible
from dltune.space import distribution_from_json
from dltune.space import distribution_to_json
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._memory import check_json
from dltune.storage._memory import check_template
from dltune.storage._sql_schema import KIND_FINITE
from dltune.storage._sql_schema import KIND_NEG_ZERO
from dltune.storage._sql_schema import decode_float
from dltune.storage._sql_schema import encode_float
from dltune.storage._sql_schema import now_sql
from dltune.storage._sql_schema import studies
from dltune.storage._sql_schema import study_attrs
from dltune.storage._sql_schema import study_params
from dltune.storage._sql_schema import trial_attrs
from dltune.storage._sql_schema import trial_intermediate_values
from dltune.storage._sql_schema import trial_params
from dltune.storage._sql_schema import trial_values
from dltune.storage._sql_schema import trials
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.trial import datetime_from_epoch

__all__ = [
    "Statements",
    "TrialCache",
    "insert_trial",
    "load_trials",
    "parse_distribution",
    "template_rows",
    "value_row",
]

_RUNNING = TrialState.RUNNING.value
_WAITING = TrialState.WAITING.value
_UNFINISHED = (_WAITING, _RUNNING)
_STALE_JSON = json.dumps("stale")
#: Trials loaded per ``WHERE trial_id IN (...)``: well below every backend's parameter limit.
CHUNK = 500
#: Above this many unfinished trials, a refresh re-reads every trial from the watermark on.
MAX_RECHECK = 500
#: The columns of ``trials`` a :class:`FrozenTrial` is built from, in this order.
TRIAL_COLUMNS = (
    trials.c.trial_id,
    trials.c.number,
    trials.c.state,
    trials.c.datetime_start,
    trials.c.datetime_complete,
    trials.c.retry_of,
)


@functools.lru_cache(maxsize=4096)
def parse_distribution(text: str) -> BaseDistribution:
    """Parse a stored distribution once per process (distributions are immutable)."""
    return distribution_from_json(text)


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
        self.trial_row = select(*TRIAL_COLUMNS).where(t.trial_id == tid)
        # Retries first, then the oldest WAITING trial.
        self.next_waiting = (
            select(t.trial_id, t.number, t.retry_of)
            .where(t.study_id == sid, t.state == _WAITING)
            .order_by(t.retry_of.is_(None), t.number)
            .limit(1)
        )
        self.n_budget_used = select(func.count()).where(
            t.study_id == sid, t.retry_of.is_(None), t.state != _WAITING
        )
        self.next_number = select(func.coalesce(func.max(t.number), -1) + 1).where(
            t.study_id == sid
        )
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
        self.trial_study = select(t.study_id).where(t.trial_id == tid)
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
        self.start_trial = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(
                state=_RUNNING,
                datetime_start=self.now,
                stale_after=self.stale_after,
                retries_left=func.coalesce(t.retries_left, bindparam("retries", type_=Integer)),
            )
        )
        self.finish_trial = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(state=bindparam("state"), datetime_complete=self.now)
        )
        self.set_state = (
            update(trials)
            .where(t.trial_id == tid, _is_unfinished(t.state))
            .values(state=bindparam("state"))
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
            .returning(t.trial_id, t.number, t.retries_left)
        )

        wm = t.number >= bindparam("wm")
        self.trials_since = select(*TRIAL_COLUMNS).where(t.study_id == sid, wm).order_by(t.number)
        recheck: BindParameter[list[int]] = bindparam("recheck", expanding=True)
        # Finished trials below ``next`` are cached; only new and then-unfinished ones change.
        self.trials_changed = (
            select(*TRIAL_COLUMNS)
            .where(
                t.study_id == sid,
                wm,
                or_(t.number >= bindparam("next"), _is_unfinished(t.state), t.number.in_(recheck)),
            )
            .order_by(t.number)
        )
        self.count_all = select(func.count()).where(t.study_id == sid)
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

    # -- transaction steps -------------------------------------------------------------------

    def require_study(self, conn: Connection, study_id: int, *, lock: bool = False) -> None:
        """Raise ``StudyNotFoundError`` unless the study exists; ``lock`` serializes claims."""
        stmt = self.lock_study if lock else self.study_exists
        if conn.execute(stmt, {"sid": study_id}).first() is None:
            raise StudyNotFoundError(f"no study with id {study_id!r}")

    def updatable_trial(self, conn: Connection, trial_id: int) -> int:
        """The study of a WAITING or RUNNING trial; raises if it is missing or finished."""
        row = conn.execute(self.trial_state, {"tid": trial_id}).first()
        if row is None or TrialState(row.state).is_finished():
            self.raise_not_updatable(conn, trial_id)
        assert row is not None
        return int(row.study_id)

    def raise_not_updatable(self, conn: Connection, trial_id: int) -> None:
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

    def load_ids(self, conn: Connection, trial_ids: list[int]) -> list[FrozenTrial]:
        """Load trials by id (they must exist)."""
        rows = [conn.execute(self.trial_row, {"tid": t}).one() for t in trial_ids]
        return load_trials(conn, rows)

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

    def fail_stale_trials(self, conn: Connection, study_id: int) -> list[int]:
        """Fail the study's stale trials and enqueue their retries; the numbers failed."""
        self.require_study(conn, study_id, lock=True)
        failed = conn.execute(self.fail_stale, {"sid": study_id}).all()
        for trial_id, _, _ in failed:
            self.upsert_attr(conn, trial_id, REASON_KEY, _STALE_JSON, system=True)
        for trial_id, number, retries_left in failed:
            if retries_left:
                self._enqueue_retry(conn, study_id, trial_id, number, retries_left - 1)
        return sorted(number for _, number, _ in failed)

    def _enqueue_retry(
        self, conn: Connection, study_id: int, trial_id: int, number: int, retries_left: int
    ) -> None:
        """A WAITING trial with the failed one's params (also if it had none) as fixed params."""
        failed = self.load_ids(conn, [trial_id])[0]
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
    """The id of the best COMPLETE trial: infinities by ``kind``, ties to the earliest."""
    v = trial_values.c
    best_kind, worst_kind = (1, -1) if maximize else (-1, 1)
    rank = case(
        (v.kind == best_kind, 0),
        (v.kind.in_((KIND_FINITE, KIND_NEG_ZERO)), 1),
        (v.kind == worst_kind, 2),
        else_=3,
    )
    return (
        select(trials.c.trial_id)
        .join(trial_values, and_(v.trial_id == trials.c.trial_id, v.objective == 0))
        .where(trials.c.study_id == bindparam("sid"), trials.c.state == "COMPLETE")
        .order_by(rank, v.value.desc() if maximize else v.value.asc(), trials.c.number)
        .limit(1)
    )


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


_CHILD_QUERIES = {
    table.name: select(table).where(table.c.trial_id.in_(bindparam("ids", expanding=True)))
    for table in (trial_values, trial_params, trial_intermediate_values, trial_attrs)
}


def _children(connection: Connection, table: Table, ids: Sequence[int]) -> list[Any]:
    rows: list[Any] = []
    stmt = _CHILD_QUERIES[table.name]
    for chunk in _chunks(ids):
        rows.extend(connection.execute(stmt, {"ids": chunk}).all())
    return rows


def load_trials(connection: Connection, rows: Sequence[Any]) -> list[FrozenTrial]:
    """Build frozen trials from rows of :data:`TRIAL_COLUMNS`: four queries per 500 trials."""
    by_id: dict[int, FrozenTrial] = {}
    for trial_id, number, state, start, complete, retry_of in rows:
        trial = FrozenTrial(
            number=number,
            trial_id=trial_id,
            state=TrialState(state),
            datetime_start=datetime_from_epoch(start),
            datetime_complete=datetime_from_epoch(complete),
        )
        if retry_of is not None:
            trial.system_attrs[RETRY_OF_KEY] = retry_of
        by_id[trial_id] = trial
    if not by_id:
        return []
    ids = list(by_id)
    values: dict[int, list[tuple[int, float]]] = {}
    for trial_id, objective, value, kind in _children(connection, trial_values, ids):
        values.setdefault(trial_id, []).append((objective, decode_float(value, kind)))
    for trial_id, pairs in values.items():
        by_id[trial_id].values = [v for _, v in sorted(pairs)]
    for trial_id, name, internal, dist_json in _children(connection, trial_params, ids):
        dist = parse_distribution(dist_json)
        by_id[trial_id].params[name] = dist.to_external(internal)
        by_id[trial_id].distributions[name] = dist
    steps = _children(connection, trial_intermediate_values, ids)
    for trial_id, step, value, kind in sorted(steps, key=lambda r: (r[0], r[1])):
        by_id[trial_id].intermediate_values[step] = decode_float(value, kind)
    for trial_id, is_system, key, value_json in _children(connection, trial_attrs, ids):
        trial = by_id[trial_id]
        (trial.system_attrs if is_system else trial.user_attrs)[key] = json.loads(value_json)
    return list(by_id.values())


@dataclass
class _StudyTrials:
    finished: dict[int, FrozenTrial] = field(default_factory=dict)  # by number
    watermark: int = 0  # every trial numbered below is finished and cached
    next_number: int = 0  # one past the highest number seen
    unfinished: list[int] = field(default_factory=list)  # numbers unfinished at the last read


class TrialCache:
    """One process's cache of finished trials, which never change again; thread-safe.

    A refresh reads the trials numbered from the study's watermark (its lowest unfinished
    number) that are new or were unfinished at the previous read, and loads the children of
    those not cached: a long-running trial holding the watermark down costs little.
    """

    def __init__(self, statements: Statements) -> None:
        self._q = statements
        self._lock = threading.Lock()
        self._studies: dict[int, _StudyTrials] = {}
        self._by_id: dict[int, FrozenTrial] = {}

    def get(self, trial_id: int) -> FrozenTrial | None:
        """The cached finished trial (not a copy), or ``None``."""
        return self._by_id.get(trial_id)

    def add(self, study_id: int, trial: FrozenTrial) -> None:
        """Cache ``trial`` if it is finished."""
        if trial.state.is_finished():
            with self._lock:
                self._by_id[trial.trial_id] = trial
                self._studies.setdefault(study_id, _StudyTrials()).finished[trial.number] = trial

    def drop(self, study_id: int) -> None:
        """Forget a deleted study."""
        with self._lock:
            study = self._studies.pop(study_id, None)
            for trial in () if study is None else study.finished.values():
                self._by_id.pop(trial.trial_id, None)

    def changed_query(self, study_id: int) -> tuple[Select[Any], dict[str, Any]]:
        """The statement and parameters reading the trials that may have changed."""
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyTrials())
            params: dict[str, Any] = {"sid": study_id, "wm": study.watermark}
            if len(study.unfinished) > MAX_RECHECK:
                return self._q.trials_since, params
            params.update(next=study.next_number, recheck=list(study.unfinished))
            return self._q.trials_changed, params

    def merge(
        self, study_id: int, rows: Sequence[Any], loaded: list[FrozenTrial]
    ) -> list[FrozenTrial]:
        """Cache what finished and return every trial of the study in number order."""
        current = {trial.number: trial for trial in loaded}
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyTrials())
            for trial in loaded:
                if trial.state.is_finished():
                    study.finished[trial.number] = trial
                    self._by_id[trial.trial_id] = trial
            if rows:
                study.next_number = max(study.next_number, rows[-1].number + 1)
            study.unfinished = [n for n, t in current.items() if not t.state.is_finished()]
            while study.watermark in study.finished:
                study.watermark += 1
            merged = dict(study.finished)
        merged.update(current)
        return [merged[n] for n in sorted(merged)]


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
