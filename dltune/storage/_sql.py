"""A storage in an SQL database: a SQLite file by default, PostgreSQL for many machines.

Every method is one transaction (see ``_sql_engine``), so any number of processes can share a
study. Each process caches what never changes: study directions, the first distribution of
each parameter name, and finished trials, so that reading a study's history costs only the
trials that changed since the last read.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from sqlalchemy import Connection

from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialNotFoundError
from dltune.space import BaseDistribution
from dltune.space import check_compatible
from dltune.space import distribution_to_json
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._base import WORKER_KEY
from dltune.storage._base import BaseStorage
from dltune.storage._base import FrozenStudy
from dltune.storage._memory import check_json
from dltune.storage._memory import check_study_name
from dltune.storage._sql_cache import TrialCache
from dltune.storage._sql_engine import Database
from dltune.storage._sql_engine import newer_message
from dltune.storage._sql_engine import open_schema
from dltune.storage._sql_engine import parse_url
from dltune.storage._sql_load import TrialLoader
from dltune.storage._sql_load import paused_gc
from dltune.storage._sql_load import raw_rows
from dltune.storage._sql_queries import Statements
from dltune.storage._sql_queries import insert_trial
from dltune.storage._sql_queries import template_rows
from dltune.storage._sql_queries import value_row
from dltune.storage._sql_schema import encode_float
from dltune.storage._sql_schema import trial_attrs
from dltune.storage._sql_schema import trial_intermediate_values
from dltune.storage._sql_schema import trial_params
from dltune.storage._sql_schema import trial_values
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import datetime_from_epoch

__all__ = ["SQLStorage"]

_logger = logging.getLogger(__name__)
T = TypeVar("T")


def _check_seconds(name: str, value: float, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}={value!r} must be a number of seconds")
    if not (math.isfinite(value) and value > minimum):
        raise ValueError(f"{name}={value!r} must be a finite number of seconds > {minimum!r}")
    return float(value)


class SQLStorage(BaseStorage):
    """Studies in a SQLite file or a PostgreSQL database, shared by any number of workers.

    Args:
        url: ``'sqlite:///path/to/file.db'`` or ``'postgresql+psycopg://user:pw@host/db'``
            (``postgresql://`` means the same). An empty database gets the schema on open.
        heartbeat_seconds: How often workers record that a running trial is alive.
        grace_seconds: A RUNNING trial without a heartbeat for this long is failed as stale;
            must exceed ``heartbeat_seconds``.
        max_retries: How many times a stale trial's params are enqueued again (0: never).
        read_only: Open for reading only; every write raises ``ReadOnlyStorageError``.
        engine_kwargs: Extra arguments for ``sqlalchemy.create_engine`` (pool sizes, ...).

    Raises:
        ValueError: On a bad URL or out-of-range option.
        SchemaVersionError: If the database has an older schema (``dltune storage upgrade``).
        StorageError: If the database cannot be reached.

    Example:
        >>> import tempfile, os
        >>> storage = SQLStorage(f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'demo.db')}")
        >>> storage.create_new_study([StudyDirection.MINIMIZE], "demo")
        1
    """

    def __init__(
        self,
        url: str,
        *,
        heartbeat_seconds: float = 10.0,
        grace_seconds: float = 60.0,
        max_retries: int = 0,
        read_only: bool = False,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.heartbeat_seconds = _check_seconds("heartbeat_seconds", heartbeat_seconds)
        self.grace_seconds = _check_seconds("grace_seconds", grace_seconds)
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"grace_seconds={grace_seconds!r} must be greater than "
                f"heartbeat_seconds={heartbeat_seconds!r}, or live trials would be failed as "
                f"stale; use e.g. grace_seconds={6 * self.heartbeat_seconds!r}"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries={max_retries!r} must be an integer >= 0")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only={read_only!r} must be True or False")
        if engine_kwargs is not None and not isinstance(engine_kwargs, dict):
            raise TypeError(f"engine_kwargs={engine_kwargs!r} must be a dict or None")
        self.max_retries = max_retries
        self._url = url
        self._read_only = read_only
        self._engine_kwargs = dict(engine_kwargs or {})
        self._setup()

    def _setup(self) -> None:
        self._db = Database(
            parse_url(self._url), read_only=self._read_only, engine_kwargs=self._engine_kwargs
        )
        self._newer_revision = open_schema(self._db, read_only=self._read_only)
        self._q = Statements(self._db.dialect_name)
        self._lock = threading.RLock()
        self._directions: dict[int, list[StudyDirection]] = {}
        self._study_dists: dict[int, dict[str, BaseDistribution]] = {}
        self._trial_study: dict[int, int] = {}
        self._cache = TrialCache(self._q.trials_changed, self._q.trials_since)
        self._loader = TrialLoader(self._q)
        self._last_reap: dict[int, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Only the options travel: the receiving process opens its own engine.
        return {
            "url": self._url,
            "heartbeat_seconds": self.heartbeat_seconds,
            "grace_seconds": self.grace_seconds,
            "max_retries": self.max_retries,
            "read_only": self._read_only,
            "engine_kwargs": self._engine_kwargs,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = dict(state)
        SQLStorage.__init__(self, options.pop("url"), **options)

    def __repr__(self) -> str:
        return f"SQLStorage({self._db.masked_url!r})"

    def close(self) -> None:
        self._db.dispose()

    @property
    def url(self) -> str:
        """The database URL, with any password masked."""
        return self._db.masked_url

    # -- helpers -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyStorageError(
                f"the storage {self._db.masked_url} was opened with read_only=True; "
                "open it without read_only to write"
            )
        if self._newer_revision is not None:
            raise ReadOnlyStorageError(newer_message(self._db, self._newer_revision))

    def _write(self, fn: Callable[[Connection], T]) -> T:
        self._check_writable()
        return self._db.run(fn, write=True)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self._db.run(fn, write=False)

    def _register_dists(
        self, conn: Connection, study_id: int, dists: dict[str, BaseDistribution]
    ) -> dict[str, BaseDistribution]:
        with self._lock:
            known = dict(self._study_dists.get(study_id, {}))
        return self._q.register_dists(conn, study_id, dists, known)

    def _remember_dists(self, study_id: int, stored: dict[str, BaseDistribution]) -> None:
        with self._lock:
            self._study_dists.setdefault(study_id, {}).update(stored)

    # -- studies -----------------------------------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str) -> int:
        check_study_name(study_name)
        parsed = [StudyDirection.parse(d) for d in directions]
        if not parsed:
            raise ValueError("directions=[] is empty; give one direction per objective")

        def transaction(conn: Connection) -> int:
            return self._q.insert_study(conn, study_name, [d.value for d in parsed])

        study_id = self._write(transaction)
        with self._lock:
            self._directions[study_id] = parsed
        return study_id

    def delete_study(self, study_id: int) -> None:
        def transaction(conn: Connection) -> None:
            deleted = conn.execute(self._q.delete_study, {"sid": study_id})
            if deleted.rowcount == 0:
                raise StudyNotFoundError(f"no study with id {study_id!r}")

        self._write(transaction)
        with self._lock:
            self._directions.pop(study_id, None)
            self._study_dists.pop(study_id, None)
            self._cache.drop(study_id)
            self._last_reap.pop(study_id, None)

    def get_study_id_from_name(self, study_name: str) -> int:
        def transaction(conn: Connection) -> int | list[str]:
            found = conn.execute(self._q.study_by_name, {"name": study_name}).scalar_one_or_none()
            if found is not None:
                return int(found)
            return list(conn.execute(self._q.study_names).scalars())

        found = self._read(transaction)
        if isinstance(found, int):
            return found
        raise StudyNotFoundError(
            f"no study named {study_name!r}; the storage holds {found!r}"
            if found
            else f"no study named {study_name!r}; the storage holds no study"
        )

    def get_study_name_from_id(self, study_id: int) -> str:
        def transaction(conn: Connection) -> str | None:
            return conn.execute(self._q.study_name, {"sid": study_id}).scalar_one_or_none()

        name = self._read(transaction)
        if name is None:
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        return str(name)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._read(self._q.all_studies_of)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        with self._lock:
            cached = self._directions.get(study_id)
        if cached is None:

            def transaction(conn: Connection) -> str | None:
                return conn.execute(self._q.study_directions, {"sid": study_id}).scalar()

            text = self._read(transaction)
            if text is None:
                raise StudyNotFoundError(f"no study with id {study_id!r}")
            cached = [StudyDirection(d) for d in json.loads(text)]
            with self._lock:
                self._directions[study_id] = cached
        return list(cached)

    def set_study_attr(self, study_id: int, key: str, value: Any, *, system: bool) -> None:
        text = check_json(key, value)

        def transaction(conn: Connection) -> None:
            self._q.require_study(conn, study_id)
            row = {"study_id": study_id, "is_system": bool(system), "key": key}
            conn.execute(self._q.upsert_study_attr, {**row, "value_json": text})

        self._write(transaction)

    def get_study_attrs(self, study_id: int, *, system: bool) -> dict[str, Any]:
        params = {"sid": study_id, "system": bool(system)}

        def transaction(conn: Connection) -> dict[str, Any]:
            self._q.require_study(conn, study_id)
            rows = conn.execute(self._q.study_attrs, params)
            return {key: json.loads(text) for key, text in rows}

        return self._read(transaction)

    # -- trials: writing ---------------------------------------------------------------------

    def _liveness(self) -> dict[str, float | int]:
        """Bind values that make a trial this worker starts carry this worker's settings."""
        return {"grace": self.grace_seconds, "retries": self.max_retries}

    def claim_trial(
        self, study_id: int, *, max_trials: int | None = None, worker: str | None = None
    ) -> FrozenTrial | None:
        if max_trials is not None and (
            isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 0
        ):
            raise ValueError(f"max_trials={max_trials!r} must be an integer >= 0 or None")
        worker_json = None if worker is None else check_json(WORKER_KEY, worker)
        q = self._q

        liveness = {"sid": study_id, **self._liveness()}

        def transaction(conn: Connection) -> FrozenTrial | None:
            self._q.require_study(conn, study_id, lock=True)
            waiting = conn.execute(q.next_waiting, {"sid": study_id}).first()
            if max_trials is not None and (waiting is None or waiting.retry_of is None):
                if conn.execute(q.n_budget_used, {"sid": study_id}).scalar_one() >= max_trials:
                    return None
            if waiting is None:
                trial_id, number, start = conn.execute(q.insert_running, liveness).one()
                if worker_json is not None:
                    self._q.upsert_attr(conn, trial_id, WORKER_KEY, worker_json, system=True)
                trial = FrozenTrial(number, trial_id, TrialState.RUNNING)
                trial.datetime_start = datetime_from_epoch(start)
                if worker is not None:
                    trial.system_attrs[WORKER_KEY] = worker
                return trial
            conn.execute(q.start_trial, {"tid": waiting.trial_id, **liveness}).all()
            if worker_json is not None:
                self._q.upsert_attr(conn, waiting.trial_id, WORKER_KEY, worker_json, system=True)
            return self._loader.load_ids(conn, [waiting.trial_id])[0]

        claimed = self._write(transaction)
        if claimed is not None:
            with self._lock:
                self._trial_study[claimed.trial_id] = study_id
        return claimed

    def create_new_trial(self, study_id: int, template: FrozenTrial | None = None) -> FrozenTrial:
        rows = template_rows(template)  # checks everything before any write
        state = TrialState.RUNNING if template is None else template.state
        dists = {} if template is None else dict(template.distributions)
        q = self._q

        def transaction(conn: Connection) -> tuple[FrozenTrial, dict[str, BaseDistribution]]:
            self._q.require_study(conn, study_id, lock=True)
            stored = self._register_dists(conn, study_id, dists)
            number = conn.execute(q.next_number, {"sid": study_id}).scalar_one()
            row: dict[str, Any] = {"study_id": study_id, "number": number, "state": state.value}
            row.update(rows["trial"])
            if state == TrialState.RUNNING:
                row["stale_after"] = q.now + self.grace_seconds
                row["retries_left"] = self.max_retries
                row.setdefault("datetime_start", q.now)
            trial_id = insert_trial(conn, row)
            ids = {"trial_id": trial_id}
            for table in (trial_values, trial_params, trial_intermediate_values, trial_attrs):
                extra = {"study_id": study_id} if table is trial_values else {}
                children = [{**ids, **extra, **child} for child in rows[table.name]]
                if children:
                    conn.execute(table.insert(), children)
            if state.is_finished():
                return self._loader.finish(conn, trial_id), stored
            return self._loader.load_ids(conn, [trial_id])[0], stored

        trial, stored = self._write(transaction)
        self._remember_dists(study_id, stored)
        with self._lock:
            self._trial_study[trial.trial_id] = study_id
        self._cache.add(study_id, trial)
        return trial.copy()

    def set_trial_param(
        self, trial_id: int, name: str, internal: float, distribution: BaseDistribution
    ) -> None:
        with self._lock:
            study_id = self._trial_study.get(trial_id)
            old = None if study_id is None else self._study_dists.get(study_id, {}).get(name)
        if old is not None:
            check_compatible(name, old, distribution)  # fail fast, before any transaction
        row = {"trial_id": trial_id, "name": name, "value": float(internal)}
        row["distribution_json"] = distribution_to_json(distribution)
        if old is not None and study_id is not None:  # the common case: one statement
            guarded = {"tid": trial_id, "name": name, "value": row["value"]}
            guarded["distribution_json"] = row["distribution_json"]

            def known(conn: Connection) -> None:
                if conn.execute(self._q.guarded_param, guarded).first() is None:
                    self._q.raise_not_updatable(conn, trial_id)

            self._write(known)
            return

        def transaction(conn: Connection) -> tuple[int, dict[str, BaseDistribution]]:
            study_id = self._q.updatable_trial(conn, trial_id)
            stored = {}
            if old is None:
                stored = self._register_dists(conn, study_id, {name: distribution})
            conn.execute(self._q.upsert_param, row)
            return study_id, stored

        study_id, stored = self._write(transaction)
        self._remember_dists(study_id, stored)
        with self._lock:
            self._trial_study[trial_id] = study_id

    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        reason: str | None = None,
    ) -> None:
        if not isinstance(state, TrialState):
            raise TypeError(f"state={state!r} must be a TrialState")
        if values is not None:
            values = [float(v) for v in values]
            if any(math.isnan(v) for v in values):
                raise ValueError(f"values={values!r}: NaN cannot be stored; fail the trial")
        if state == TrialState.COMPLETE and values is None:
            raise ValueError("a COMPLETE trial needs its values")
        reason_json = None if reason is None else check_json(REASON_KEY, reason)
        q = self._q

        def transaction(conn: Connection) -> tuple[int, FrozenTrial | None]:
            if state == TrialState.RUNNING:
                result = conn.execute(q.start_trial, {"tid": trial_id, **self._liveness()})
            elif state.is_finished():
                result = conn.execute(q.finish_trial, {"tid": trial_id, "state": state.value})
            else:
                result = conn.execute(q.set_state, {"tid": trial_id, "state": state.value})
            row = result.first()  # ends with the study id; none if the trial is finished
            if row is None:
                self._q.raise_not_updatable(conn, trial_id)
            ids = {"trial_id": trial_id, "study_id": row[-1]}
            if values:
                rows = [{**ids, **value_row(i, v)} for i, v in enumerate(values)]
                conn.execute(q.upsert_value, rows)
            if reason_json is not None:
                self._q.upsert_attr(conn, trial_id, REASON_KEY, reason_json, system=True)
            finished = self._loader.finish(conn, row) if state.is_finished() else None
            return int(row[-1]), finished

        study_id, finished = self._write(transaction)
        if finished is not None:  # what get_trial, after a tell, will ask for
            self._cache.add(study_id, finished)

    def set_trial_intermediate_value(self, trial_id: int, step: int, value: float) -> None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step={step!r} must be an int")
        encoded, kind = encode_float(value)
        row = {"tid": trial_id, "step": step, "value": encoded, "kind": kind}

        def transaction(conn: Connection) -> None:
            if conn.execute(self._q.report, row).first() is None:
                self._q.raise_not_updatable(conn, trial_id)

        self._write(transaction)

    def set_trial_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        text = check_json(key, value)
        if system and key == RETRY_OF_KEY and not (value is None or type(value) is int):
            raise TypeError(f"system attribute {RETRY_OF_KEY!r}={value!r} must be an int or None")

        def transaction(conn: Connection) -> None:
            self._q.updatable_trial(conn, trial_id)
            if system and key == RETRY_OF_KEY:  # kept in the trials.retry_of column
                conn.execute(self._q.set_retry_of, {"tid": trial_id, "r": value})
            else:
                self._q.upsert_attr(conn, trial_id, key, text, system=bool(system))

        self._write(transaction)

    # -- trials: reading ---------------------------------------------------------------------

    def get_trial(self, trial_id: int) -> FrozenTrial:
        cached = self._cache.get(trial_id)
        if cached is not None:
            return cached.copy()

        def transaction(conn: Connection) -> tuple[FrozenTrial, int] | None:
            row = conn.execute(self._q.trial_row, {"tid": trial_id}).first()
            if row is None:
                return None
            return self._loader.load(conn, [row], [row[-1]])[0], int(row[-1])

        found = self._read(transaction)
        if found is None:
            raise TrialNotFoundError(f"no trial with id {trial_id!r}")
        trial, study_id = found
        with self._lock:
            self._trial_study[trial_id] = study_id
        self._cache.add(study_id, trial)
        return trial.copy()

    def _refresh(self, study_id: int) -> None:
        """Bring this process's view of the study up to date, reading only what changed."""
        stmt, params = self._cache.changed_query(study_id)

        def transaction(conn: Connection) -> tuple[int | None, list[FrozenTrial]]:
            rows = raw_rows(conn, stmt, params)
            if not rows:
                self._q.require_study(conn, study_id)
                return None, []
            last = rows[-1][1]  # rows come in number order
            if not self._cache.is_empty(study_id):
                rows = [row for row in rows if self._cache.get(row[0]) is None]
            return last, self._loader.load(conn, rows, [study_id])

        last_number, loaded = self._read(transaction)
        with self._lock:
            self._trial_study.update((trial.trial_id, study_id) for trial in loaded)
        self._cache.merge(study_id, last_number, loaded)

    def get_all_trials(
        self, study_id: int, states: Container[TrialState] | None = None, *, copy: bool = True
    ) -> list[FrozenTrial]:
        self._maybe_reap(study_id)
        self._refresh(study_id)
        trials = self._cache.trials(study_id, states)
        if not copy:
            return trials
        with paused_gc(len(trials)):
            return [t.copy() for t in trials]

    def get_n_trials(self, study_id: int, states: Container[TrialState] | None = None) -> int:
        self._maybe_reap(study_id)
        params: dict[str, Any] = {"sid": study_id}
        if states is None:
            stmt = self._q.count_all
        else:
            wanted = [s.value for s in TrialState if s in states]
            stmt, params["states"] = self._q.count_states, wanted

        def transaction(conn: Connection) -> int:
            n = int(conn.execute(stmt, params).scalar_one())
            if n == 0:
                self._q.require_study(conn, study_id)
            return n

        return self._read(transaction)

    def get_best_trial(self, study_id: int) -> FrozenTrial | None:
        directions = self.get_study_directions(study_id)
        if len(directions) != 1:
            raise ValueError(
                f"the study has {len(directions)} objectives, so no single best trial; "
                "use study.best_trials for the Pareto front"
            )
        stmt = self._q.best_trial[directions[0] == StudyDirection.MAXIMIZE]

        def transaction(conn: Connection) -> int | None:
            return conn.execute(stmt, {"sid": study_id}).scalar_one_or_none()

        trial_id = self._read(transaction)
        return None if trial_id is None else self.get_trial(trial_id)

    # -- liveness ----------------------------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:
        def transaction(conn: Connection) -> None:
            conn.execute(self._q.heartbeat, {"tid": trial_id, "grace": self.grace_seconds})

        self._write(transaction)

    def _maybe_reap(self, study_id: int) -> None:
        """Readers reap too, at most every ``grace_seconds / 4`` per process and study."""
        if self._read_only or self._newer_revision is not None:
            return
        now = time.monotonic()
        with self._lock:
            last = self._last_reap.get(study_id)
            if last is not None and now - last < self.grace_seconds / 4:
                return
            self._last_reap[study_id] = now
        try:
            self.fail_stale_trials(study_id)
        except ReadOnlyStorageError:  # a read-only file, mount or role: reading goes on
            _logger.debug("stale trials of study %d left as they are: read-only", study_id)

    def fail_stale_trials(self, study_id: int) -> list[int]:
        self._check_writable()
        params = {"sid": study_id}

        def any_stale(conn: Connection) -> bool:
            return conn.execute(self._q.any_stale, params).first() is not None

        if not self._read(any_stale):  # the common case costs a read, not the write lock
            return []

        def transaction(conn: Connection) -> list[FrozenTrial]:
            return self._q.fail_stale_trials(conn, study_id, self._loader.finish)

        failed = self._write(transaction)
        for trial in failed:
            self._cache.add(study_id, trial)
        numbers = [trial.number for trial in failed]
        for number in numbers:
            _logger.warning(
                "trial %d of study %d failed as stale: its worker sent no heartbeat within its "
                "grace period",
                number,
                study_id,
            )
        return numbers
