"""What the dashboard reads from the storage, opened read-only; no web framework here.

Every read is one short transaction through :class:`~dltune.storage.SQLStorage`, whose
per-process cache of finished trials makes a poll cost only what changed. The JSON of a
finished trial's row and the plots of a study are cached too: finished trials never change.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dltune.analysis._table import param_names
from dltune.analysis._table import rows_to_csv
from dltune.analysis._table import trial_row
from dltune.dashboard._cursor import Cursor
from dltune.dashboard._cursor import changed_since
from dltune.dashboard._rows import check_state_filter
from dltune.dashboard._rows import dumps
from dltune.dashboard._rows import row_matches
from dltune.dashboard._rows import trial_detail
from dltune.exceptions import DLTuneError
from dltune.exceptions import StudyNotFoundError
from dltune.storage import FrozenStudy
from dltune.storage import SQLStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["NotFoundError", "Payload", "StudyReader", "gzip_bytes", "open_read_only"]

_logger = logging.getLogger(__name__)

#: How many study names a "no such study" answer lists.
MAX_LISTED_NAMES = 20
#: Plots are recomputed at most once per this many times their last computation took, so a
#: big study finishing trials quickly cannot keep a core busy drawing.
PLOT_COST_FACTOR = 4.0
_PG_CONNECT_TIMEOUT_SECONDS = 10


class NotFoundError(DLTuneError, LookupError):
    """No study (or trial) of that name (or number); the message lists the studies."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


def open_read_only(url: str) -> SQLStorage:
    """Open a storage for reading only; a SQLite file must exist (it is never created).

    On PostgreSQL the sessions themselves are read-only
    (``default_transaction_read_only``), so not even a bug could write.

    Raises:
        TypeError: If ``url`` is not a str.
        ValueError: If the URL is malformed or names a SQLite file that does not exist.
        StorageError: If the database cannot be read or holds no dltune schema.
    """
    if not isinstance(url, str):
        raise TypeError(f"storage={url!r} must be a URL such as 'sqlite:///dltune.db'")
    from dltune.storage._sql_engine import parse_url

    parsed = parse_url(url)
    options: dict[str, Any] = {}
    if parsed.drivername == "sqlite":
        path = os.path.abspath(parsed.database or "")
        if not os.path.isfile(path):
            raise ValueError(
                f"storage={url!r}: there is no database file {path!r}; check the path (three "
                "slashes for a relative one, four for an absolute one)"
            )
    else:
        connect_args = {
            "connect_timeout": _PG_CONNECT_TIMEOUT_SECONDS,
            "options": "-c default_transaction_read_only=on",
        }
        options["engine_kwargs"] = {"connect_args": connect_args, "pool_pre_ping": True}
    return SQLStorage(url, read_only=True, **options)


def gzip_bytes(body: bytes) -> bytes:
    """``body`` gzip-compressed at a fast level."""
    compressor = zlib.compressobj(5, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


class Payload:
    """A response body whose gzip is computed once, when a client first asks for it."""

    __slots__ = ("_gzipped", "_lock", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def gzipped(self) -> bytes:
        """The body gzip-compressed (computed on the first call)."""
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip_bytes(self.body)
            return self._gzipped


@dataclass(slots=True)
class _Plots:
    key: tuple[int, int]
    payload: Payload
    computed_at: float
    cost_seconds: float


def _best(trials: list[FrozenTrial], directions: list[StudyDirection]) -> list[float | None]:
    best: list[float | None] = [None] * len(directions)
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.values is None:
            continue
        for k, (value, direction) in enumerate(zip(trial.values, directions, strict=False)):
            if not math.isfinite(value):
                continue
            current = best[k]
            if current is None or (
                value > current if direction == StudyDirection.MAXIMIZE else value < current
            ):
                best[k] = value
    return best


class StudyReader:
    """The dashboard's read-only view of one storage.

    Args:
        storage: The storage URL.
        poll_seconds: How often pages ask for changes.
        clock: Monotonic seconds (injected by tests).

    Raises:
        TypeError: On a non-str URL or non-number ``poll_seconds``.
        ValueError: On a bad URL, a missing SQLite file or ``poll_seconds`` not in
            ``[0.1, 3600]``.
        StorageError: If the database cannot be read.
    """

    def __init__(
        self,
        storage: str,
        *,
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(poll_seconds, bool) or not isinstance(poll_seconds, int | float):
            raise TypeError(f"poll_seconds={poll_seconds!r} must be a number of seconds")
        if not (math.isfinite(poll_seconds) and 0.1 <= poll_seconds <= 3600):
            raise ValueError(f"poll_seconds={poll_seconds!r} must be between 0.1 and 3600")
        self.storage = open_read_only(storage)
        self.poll_seconds = float(poll_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._rows: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._plots: dict[int, _Plots] = {}
        self._plot_locks: dict[int, threading.Lock] = {}
        self._study_locks: dict[int, threading.Lock] = {}

    def close(self) -> None:
        """Close the storage's connections."""
        self.storage.close()

    def warm_up(self, stop: threading.Event) -> None:
        """Read every study and draw its plots once, so the first page a user opens is quick.

        Runs in a background thread at startup; stops between studies once ``stop`` is set.
        Failures are logged, never raised: the pages report them when they ask.
        """
        started = self._clock()
        try:
            names = [s.study_name for s in self.storage.get_all_studies()]
        except DLTuneError as exc:
            _logger.warning("could not list the studies: %s", exc)
            return
        for name in names:
            if stop.is_set():
                return
            try:
                self.trials(name, None)
                if not stop.is_set():
                    self.plots(name)
            except Exception:
                _logger.exception("reading study %r failed", name)
        _logger.info("read %d studies in %.1f s", len(names), self._clock() - started)

    def info(self) -> dict[str, Any]:
        """What every page needs: the storage (password masked) and the poll interval."""
        return {"storage": self.storage.url, "poll_seconds": self.poll_seconds}

    # -- studies -----------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return sorted(s.study_name for s in self.storage.get_all_studies())

    def _not_found(self, what: str) -> NotFoundError:
        names = self._names()
        shown = names[:MAX_LISTED_NAMES]
        more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        held = f"the storage holds {shown!r}{more}" if names else "the storage holds no study"
        return NotFoundError(f"{what}; {held}", shown)

    def study_id(self, name: str) -> int:
        """The id of the study ``name``.

        Raises:
            NotFoundError: Naming the study and listing (up to 20) study names.
        """
        with self._lock:
            found = self._ids.get(name)
        if found is not None:
            return found
        try:
            found = self.storage.get_study_id_from_name(name)
        except StudyNotFoundError:
            raise self._not_found(f"no study named {name!r}") from None
        with self._lock:
            self._ids[name] = found
        return found

    def _trials(self, name: str) -> tuple[int, list[FrozenTrial]]:
        """The study's id and trials; one thread reads a study at a time, so pages polling
        together (or with the warm-up) read its changes once, not once each."""
        study_id = self.study_id(name)
        try:
            return study_id, self._read_trials(study_id)
        except StudyNotFoundError:  # deleted since its id was cached
            with self._lock:
                self._ids.pop(name, None)
            raise self._not_found(f"no study named {name!r}") from None

    def _read_trials(self, study_id: int) -> list[FrozenTrial]:
        with self._lock:
            lock = self._study_locks.setdefault(study_id, threading.Lock())
        with lock:
            return self.storage.get_all_trials(study_id, copy=False)

    def studies(self) -> list[dict[str, Any]]:
        """One summary per study: name, directions, trial counts by outcome, best values."""
        out = []
        for study in self.storage.get_all_studies():
            try:
                trials = self._read_trials(study.study_id)
            except StudyNotFoundError:  # deleted meanwhile
                continue
            out.append(self._summary(study.study_name, study.directions, trials, study))
        return out

    def study(self, name: str) -> dict[str, Any]:
        """The summary of the study ``name`` (see :meth:`studies`)."""
        study_id, trials = self._trials(name)
        directions = self.storage.get_study_directions(study_id)
        return self._summary(name, directions, trials, None)

    def _summary(
        self,
        name: str,
        directions: list[StudyDirection],
        trials: list[FrozenTrial],
        study: FrozenStudy | None,
    ) -> dict[str, Any]:
        counts = Counter(t.outcome for t in trials)
        start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
        if study is not None and study.datetime_start is not None:
            start = study.datetime_start
        return {
            "name": name,
            "directions": [d.name.lower() for d in directions],
            "n_trials": len(trials),
            "counts": dict(sorted(counts.items())),
            "best_values": _best(trials, directions),
            "start": None if start is None else start.timestamp(),
        }

    # -- trials ------------------------------------------------------------------------------

    def _row(self, trial: FrozenTrial) -> tuple[dict[str, Any], bytes]:
        cached = self._rows.get(trial.trial_id)
        if cached is not None:
            return cached
        row = trial_row(trial)
        made = (row, dumps(row))
        if trial.state.is_finished():
            self._rows[trial.trial_id] = made
        return made

    def trials(self, name: str, after: str | None) -> bytes:
        """The JSON body of ``/trials?after=``: the trials changed since the cursor ``after``.

        Raises:
            ValueError: If ``after`` is not a cursor this dashboard sent.
            NotFoundError: If there is no study ``name``.
        """
        cursor = None if after is None else Cursor.decode(after)
        study_id, trials = self._trials(name)
        sent, new_cursor, reset = changed_since(study_id, trials, cursor)
        head = {
            "study": name,
            "cursor": new_cursor.encode(),
            "reset": reset,
            "n_trials": len(trials),
            "directions": [d.name.lower() for d in self.storage.get_study_directions(study_id)],
            "params": param_names(trials),
            "poll_seconds": self.poll_seconds,
        }
        rows = b",".join(self._row(t)[1] for t in sent)
        return dumps(head)[:-1] + b',"trials":[' + rows + b"]}"

    def csv(self, name: str, *, state: str | None = None, q: str | None = None) -> str:
        """The study's trials as CSV, filtered like the table (``state``, text ``q``).

        Raises:
            ValueError: If ``state`` is not a state or outcome.
            NotFoundError: If there is no study ``name``.
        """
        wanted = check_state_filter(state)
        terms = (q or "").lower().split()
        _, trials = self._trials(name)
        rows = [self._row(t)[0] for t in trials]
        kept = [row for row in rows if row_matches(row, wanted, terms)]
        return rows_to_csv(kept, params=param_names(trials))

    def trial(self, name: str, number: int) -> dict[str, Any]:
        """Everything about trial ``number`` of study ``name``.

        Raises:
            NotFoundError: If there is no such study or trial.
        """
        study_id, trials = self._trials(name)
        for trial in trials:
            if trial.number == number:
                detail = trial_detail(trial)
                detail["study"] = name
                directions = self.storage.get_study_directions(study_id)
                detail["directions"] = [d.name.lower() for d in directions]
                return detail
        last = f"0 to {len(trials) - 1}" if trials else "none yet"
        raise NotFoundError(
            f"study {name!r} has no trial number {number!r} (its trials are numbered {last})",
            self._names()[:MAX_LISTED_NAMES],
        )

    # -- plots -------------------------------------------------------------------------------

    def plots(self, name: str) -> tuple[Payload, int]:
        """The JSON body of ``/plots``, recomputed when trials finished (at most once per
        ``PLOT_COST_FACTOR`` times its last computation took), and how many finished trials
        they show.

        Raises:
            NotFoundError: If there is no study ``name``.
        """
        study_id, trials = self._trials(name)
        key = (study_id, sum(1 for t in trials if t.state.is_finished()))
        with self._lock:
            lock = self._plot_locks.setdefault(study_id, threading.Lock())
        with lock:
            cached = self._plots.get(study_id)
            if cached is not None and (
                cached.key == key
                or self._clock() - cached.computed_at < PLOT_COST_FACTOR * cached.cost_seconds
            ):
                return cached.payload, cached.key[1]
            started = self._clock()
            body = dumps(self._plot_payload(study_id, trials))
            now = self._clock()
            made = _Plots(key, Payload(body), now, now - started)
            self._plots[study_id] = made
            _logger.debug("plots of study %r took %.3f s", name, made.cost_seconds)
            return made.payload, key[1]

    def _plot_payload(self, study_id: int, trials: list[FrozenTrial]) -> list[dict[str, Any]]:
        from dltune.analysis._render import plot_records
        from dltune.analysis._render import to_plotly_dict

        directions = self.storage.get_study_directions(study_id)
        out = []
        for record in plot_records(trials, directions):
            out.append(
                {
                    "kind": record.kind,
                    "title": record.title,
                    "notes": list(record.notes),
                    "figure": to_plotly_dict(record),
                }
            )
        return out
