"""What the dashboard reads from the storage, opened read-only; no web framework here.

Every read is one short transaction through :class:`~dltune.storage.SQLStorage`, whose
per-process cache of finished trials makes a poll cost only what changed. The JSON of a
finished trial's row and the plots of a study are cached too: finished trials never change.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from dltune.analysis._table import outcome_counts
from dltune.analysis._table import param_names
from dltune.analysis._table import rows_to_csv
from dltune.analysis._table import trial_row
from dltune.dashboard._cursor import Cursor
from dltune.dashboard._cursor import changed_since
from dltune.dashboard._cursor import study_fingerprint
from dltune.dashboard._discovery import normalise_storage_url
from dltune.dashboard._open import NotFoundError
from dltune.dashboard._open import ReaderClosedError
from dltune.dashboard._open import open_read_only
from dltune.dashboard._open import public_storage_name
from dltune.dashboard._rows import check_state_filter
from dltune.dashboard._rows import dumps
from dltune.dashboard._rows import row_matches
from dltune.dashboard._rows import trial_detail
from dltune.dashboard._summary import Payload
from dltune.dashboard._summary import PlotKey
from dltune.dashboard._summary import best_values
from dltune.dashboard._summary import json_number
from dltune.exceptions import DLTuneError
from dltune.exceptions import StudyNotFoundError
from dltune.storage import FrozenStudy
from dltune.storage import SQLStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

__all__ = ["CLOSE_WAIT_SECONDS", "MAX_LISTED_NAMES", "PLOT_COST_FACTOR", "StudyReader"]

_T = TypeVar("_T")

_logger = logging.getLogger(__name__)

#: How many study names a "no such study" answer lists.
MAX_LISTED_NAMES = 20
#: Plots are recomputed at most once per this many times their last computation took, so a
#: big study finishing trials quickly cannot keep a core busy drawing.
PLOT_COST_FACTOR = 4.0
#: How long :meth:`StudyReader.close` waits for reads in progress before closing anyway.
CLOSE_WAIT_SECONDS = 5.0


@dataclass(slots=True)
class _Plots:
    key: PlotKey
    payload: Payload
    computed_at: float
    cost_seconds: float


class StudyReader:
    """The dashboard's read-only view of one storage.

    Every storage read goes through a guard: once :meth:`close` ran, reads raise
    :class:`ReaderClosedError` instead of opening new connections.

    Args:
        storage: The storage URL.
        poll_seconds: How often pages ask for changes.
        clock: Monotonic seconds (injected by tests).
        is_public: Whether other machines may see the answers: :meth:`info` then shows only
            the storage's scheme and file name (:func:`public_storage_name`).

    Raises:
        TypeError: On a non-str URL or non-number ``poll_seconds``.
        ValueError: On a bad URL, a missing SQLite file or ``poll_seconds`` not in
            ``[0.1, 3600]``.
        StorageError: If the database cannot be read.

    Example:
        >>> import os, tempfile, dltune
        >>> url = f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'demo.db')}"
        >>> _ = dltune.create_study("demo", url)
        >>> reader = StudyReader(url)
        >>> reader.study("demo")["n_trials"]
        0
        >>> reader.close()
    """

    def __init__(
        self,
        storage: str,
        *,
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        is_public: bool = False,
    ) -> None:
        if isinstance(poll_seconds, bool) or not isinstance(poll_seconds, int | float):
            raise TypeError(f"poll_seconds={poll_seconds!r} must be a number of seconds")
        if not (math.isfinite(poll_seconds) and 0.1 <= poll_seconds <= 3600):
            raise ValueError(f"poll_seconds={poll_seconds!r} must be between 0.1 and 3600")
        self.storage = open_read_only(storage)
        self.poll_seconds = float(poll_seconds)
        self.is_public = bool(is_public)
        self._url = normalise_storage_url(storage)
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._rows: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._plots: dict[int, _Plots] = {}
        self._plot_locks: dict[int, threading.Lock] = {}
        self._study_locks: dict[int, threading.Lock] = {}
        self._use = threading.Condition()
        self._n_using = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    def close(self, wait_seconds: float = CLOSE_WAIT_SECONDS) -> None:
        """Refuse new reads, wait (up to ``wait_seconds``) for those in progress, then close
        the storage's connections. Closing twice is fine.

        Args:
            wait_seconds: The longest wait for reads in progress.
        """
        deadline = time.monotonic() + wait_seconds
        with self._use:
            if self._closed:
                return
            self._closed = True
            while self._n_using and (left := deadline - time.monotonic()) > 0:
                self._use.wait(left)
            if self._n_using:
                _logger.warning("closing the storage with %d read(s) in progress", self._n_using)
        self.storage.close()

    @contextmanager
    def _using(self) -> Iterator[SQLStorage]:
        """The storage for one read; raises :class:`ReaderClosedError` once closed."""
        with self._use:
            if self._closed:
                raise ReaderClosedError()
            self._n_using += 1
        try:
            yield self.storage
        finally:
            with self._use:
                self._n_using -= 1
                self._use.notify_all()

    def _read(self, read: Callable[[SQLStorage], _T]) -> _T:
        with self._using() as storage:
            return read(storage)

    def warm_up(self, stop: threading.Event) -> None:
        """Read every study and draw its plots once, so the first page a user opens is quick.

        Runs in a background thread at startup; stops before the next storage read or plot
        once ``stop`` is set (or the reader is closed). Failures are logged, never raised:
        the pages report them when they ask.

        Args:
            stop: Set to stop early.
        """
        started = self._clock()
        try:
            names = [s.study_name for s in self._read(lambda st: st.get_all_studies())]
        except ReaderClosedError:
            return
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
            except ReaderClosedError:
                return
            except Exception:
                _logger.exception("reading study %r failed", name)
        _logger.info("read %d studies in %.1f s", len(names), self._clock() - started)

    def info(self) -> dict[str, Any]:
        """What every page needs: the storage and the poll interval.

        Returns:
            ``{"storage", "poll_seconds"}``; the storage's URL with any password masked, or
            for a public dashboard only :func:`public_storage_name`.
        """
        shown = public_storage_name(self._url) if self.is_public else self.storage.url
        return {"storage": shown, "poll_seconds": self.poll_seconds}

    # -- studies -----------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return sorted(s.study_name for s in self._read(lambda st: st.get_all_studies()))

    def _directions(self, study_id: int) -> list[StudyDirection]:
        return self._read(lambda st: st.get_study_directions(study_id))

    def _not_found(self, what: str) -> NotFoundError:
        names = self._names()
        shown = names[:MAX_LISTED_NAMES]
        more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        held = f"the storage holds {shown!r}{more}" if names else "the storage holds no study"
        return NotFoundError(f"{what}; {held}", shown)

    def study_id(self, name: str) -> int:
        """The id of the study ``name``.

        Args:
            name: The study's name.

        Returns:
            Its id in the storage.

        Raises:
            NotFoundError: Naming the study and listing (up to 20) study names.
            ReaderClosedError: If the reader is closed.
        """
        with self._lock:
            found = self._ids.get(name)
        if found is not None:
            return found
        try:
            found = self._read(lambda st: st.get_study_id_from_name(name))
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
            return self._read(lambda st: st.get_all_trials(study_id, copy=False))

    def studies(self) -> list[dict[str, Any]]:
        """One summary per study.

        Returns:
            Per study ``{"name", "directions", "n_trials", "counts", "best_values",
            "start"}``: ``counts`` by outcome (a paused trial that was continued counts as
            ``"paused"``), ``best_values`` per objective by ``Study.best_trial``'s rule
            (infinities as ``"inf"``/``"-inf"``, ``None`` before a trial completes),
            ``start`` in epoch seconds.

        Raises:
            StorageError: If the storage cannot be read.
            ReaderClosedError: If the reader is closed.
        """
        out = []
        for study in self._read(lambda st: st.get_all_studies()):
            try:
                trials = self._read_trials(study.study_id)
            except StudyNotFoundError:  # deleted meanwhile
                continue
            out.append(self._summary(study.study_name, study.directions, trials, study))
        return out

    def study(self, name: str) -> dict[str, Any]:
        """The summary of one study.

        Args:
            name: The study's name.

        Returns:
            Its summary, as :meth:`studies` gives it.

        Raises:
            NotFoundError: If there is no study ``name``.
            ReaderClosedError: If the reader is closed.
        """
        study_id, trials = self._trials(name)
        return self._summary(name, self._directions(study_id), trials, None)

    def _summary(
        self,
        name: str,
        directions: list[StudyDirection],
        trials: list[FrozenTrial],
        study: FrozenStudy | None,
    ) -> dict[str, Any]:
        start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
        if study is not None and study.datetime_start is not None:
            start = study.datetime_start
        return {
            "name": name,
            "directions": [d.name.lower() for d in directions],
            "n_trials": len(trials),
            "counts": dict(sorted(outcome_counts(trials).items())),
            "best_values": [json_number(v) for v in best_values(trials, directions)],
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

        Args:
            name: The study's name.
            after: The cursor of the client's previous answer, or ``None`` for every trial.

        Returns:
            ``{"study", "cursor", "reset", "n_trials", "directions", "params",
            "poll_seconds", "plots_key", "summary", "trials"}`` as JSON: ``reset`` tells the
            client to drop what it holds first, ``plots_key`` changes when the plots would,
            ``summary`` is the study's as :meth:`study` gives it.

        Raises:
            ValueError: If ``after`` is not a cursor this dashboard sent.
            NotFoundError: If there is no study ``name``.
            ReaderClosedError: If the reader is closed.
        """
        cursor = None if after is None else Cursor.decode(after)
        study_id, trials = self._trials(name)
        fingerprint = study_fingerprint(self._url, study_id, trials)
        sent, new_cursor, reset = changed_since(fingerprint, trials, cursor)
        directions = self._directions(study_id)
        head = {
            "study": name,
            "cursor": new_cursor.encode(),
            "reset": reset,
            "n_trials": len(trials),
            "directions": [d.name.lower() for d in directions],
            "params": param_names(trials),
            "poll_seconds": self.poll_seconds,
            "plots_key": PlotKey.of(trials).encode(),
            "summary": self._summary(name, directions, trials, None),
        }
        rows = b",".join(self._row(t)[1] for t in sent)
        return dumps(head)[:-1] + b',"trials":[' + rows + b"]}"

    def csv(self, name: str, *, state: str | None = None, q: str | None = None) -> str:
        """The study's trials as CSV, filtered like the table.

        Args:
            name: The study's name.
            state: Keep the trials in this state or with this outcome (``None``, ``""`` or
                ``"all"``: every trial).
            q: Words that must each occur in a row (see :func:`row_matches`).

        Returns:
            The CSV text, one row per trial kept.

        Raises:
            ValueError: If ``state`` is not a state or outcome.
            NotFoundError: If there is no study ``name``.
        """
        wanted = check_state_filter(state)
        terms = (q or "").lower().split()
        study_id, trials = self._trials(name)
        rows = [self._row(t)[0] for t in trials]
        kept = [row for row in rows if row_matches(row, wanted, terms)]
        n_values = len(self._directions(study_id))  # value_0.. columns of every objective
        return rows_to_csv(kept, params=param_names(trials), n_values=n_values)

    def trial(self, name: str, number: int) -> dict[str, Any]:
        """Everything about one trial.

        Args:
            name: The study's name.
            number: The trial's number.

        Returns:
            :func:`trial_detail` of the trial, with ``study`` and ``directions``.

        Raises:
            NotFoundError: If there is no such study or trial.
            ReaderClosedError: If the reader is closed.
        """
        study_id, trials = self._trials(name)
        for trial in trials:
            if trial.number == number:
                detail = trial_detail(trial)
                detail["study"] = name
                directions = self._directions(study_id)
                detail["directions"] = [d.name.lower() for d in directions]
                return detail
        last = f"0 to {len(trials) - 1}" if trials else "none yet"
        raise NotFoundError(
            f"study {name!r} has no trial number {number!r} (its trials are numbered {last})",
            self._names()[:MAX_LISTED_NAMES],
        )

    # -- plots -------------------------------------------------------------------------------

    def plots(self, name: str) -> tuple[Payload, PlotKey]:
        """The JSON body of ``/plots`` and the key of the trials it shows.

        The plots are recomputed when their :class:`PlotKey` changed (trials finished or
        started, running trials reported), at most once per ``PLOT_COST_FACTOR`` times their
        last computation took.

        Args:
            name: The study's name.

        Returns:
            ``(payload, key)``: the payload holds ``[{"kind", "title", "notes",
            "figure"}]``, ``key`` the trials they were drawn from.

        Raises:
            NotFoundError: If there is no study ``name``.
            ReaderClosedError: If the reader is closed.
        """
        study_id, trials = self._trials(name)
        key = PlotKey.of(trials)
        with self._lock:
            lock = self._plot_locks.setdefault(study_id, threading.Lock())
        with lock:
            cached = self._plots.get(study_id)
            if cached is not None and (
                cached.key == key
                or self._clock() - cached.computed_at < PLOT_COST_FACTOR * cached.cost_seconds
            ):
                return cached.payload, cached.key
            started = self._clock()
            body = dumps(self._plot_payload(study_id, trials))
            now = self._clock()
            made = _Plots(key, Payload(body), now, now - started)
            self._plots[study_id] = made
            _logger.debug("plots of study %r took %.3f s", name, made.cost_seconds)
            return made.payload, key

    def _plot_payload(self, study_id: int, trials: list[FrozenTrial]) -> list[dict[str, Any]]:
        from dltune.analysis._render import plot_records
        from dltune.analysis._render import to_plotly_dict

        directions = self._directions(study_id)
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
