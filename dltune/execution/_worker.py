"""The worker loop shared by every executor and by ``dltune worker``: claim, run, finish."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from types import FrameType
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any

from dltune._trial import Trial
from dltune.exceptions import TrialPruned
from dltune.exceptions import TrialStopped
from dltune.exceptions import UpdateFinishedTrialError
from dltune.storage._base import REASON_KEY
from dltune.storage._base import STOPPED_BY_KEY
from dltune.trial import INTERRUPTED
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.execution._job import OptimizeJob
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["DeferInterrupts", "run_trial", "run_worker", "worker_name"]

_logger = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid``, how trials record which worker ran them."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Beats for a running trial from a daemon thread, and reaps other workers' stale trials.

    Does nothing for storages that need no heartbeat (in-memory).
    """

    def __init__(self, storage: BaseStorage, study_id: int, trial_id: int) -> None:
        self._storage = storage
        self._study_id = study_id
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._storage.heartbeat_seconds is not None:
            self._thread = threading.Thread(
                target=self._beat, name="dltune-heartbeat", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        interval = self._storage.heartbeat_seconds
        assert interval is not None
        while not self._stop.wait(interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
                self._storage.fail_stale_trials(self._study_id)
            except Exception:  # a missed beat is retried next time; never kill the trial
                _logger.warning("heartbeat of trial id %d failed", self._trial_id, exc_info=True)


class DeferInterrupts:
    """Holds Ctrl-C (SIGINT, and SIGTERM) back while dltune claims, starts and finishes a
    trial, so an interrupt can never leave a trial RUNNING; it takes effect right after.

    Only the objective runs interruptibly, inside :meth:`released`. Signal handlers can only be
    set in the main thread; elsewhere this does nothing.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._saved: dict[int, Any] = {}
        self._pending = False

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self._pending = True

    def __enter__(self) -> DeferInterrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in self._SIGNALS:
                handler = signal.getsignal(sig)
                if handler in (signal.SIG_IGN, None):
                    continue  # an ignored signal stays ignored
                self._saved[sig] = handler
                signal.signal(sig, self._hold)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()
        if self._pending and exc_type is None:
            self._pending = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Let interrupts through (raising one held back) while the block runs."""
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        try:
            if self._pending:
                self._pending = False
                raise KeyboardInterrupt
            yield
        finally:
            for sig in self._saved:
                signal.signal(sig, self._hold)


def run_trial(
    study: Study,
    objective: Callable[..., object],
    frozen: FrozenTrial,
    catch: tuple[type[Exception], ...] | None,
    interrupts: DeferInterrupts | None = None,
) -> FrozenTrial:
    """Run the objective on a claimed trial and store how it ended.

    Args:
        study: The study.
        objective: The objective.
        frozen: The claimed trial.
        catch: ``None`` to store any exception as FAIL and go on; else the exception types
            that do not propagate.
        interrupts: Interrupts held back outside the objective (none by default).

    Returns:
        The finished trial.

    Raises:
        KeyboardInterrupt: After failing the trial with reason 'interrupted'.
        Exception: The objective's, if ``catch`` is a tuple it is not in (after storing it).
    """
    released = interrupts.released() if interrupts is not None else contextlib.nullcontext()
    trial = study._start(frozen)
    try:
        with released, Heartbeat(study._storage, study._study_id, frozen.trial_id):
            result = objective(trial)
    except TrialPruned as exc:
        if isinstance(exc, TrialStopped):
            with contextlib.suppress(UpdateFinishedTrialError):  # stale already: _finish says so
                trial.set_system_attr(STOPPED_BY_KEY, exc.kind)
        return _finish(study, trial, None, TrialState.PRUNED, str(exc) or None)
    except KeyboardInterrupt:
        _finish(study, trial, None, TrialState.FAIL, INTERRUPTED)
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        finished = _finish(study, trial, None, TrialState.FAIL, reason)
        if catch is not None and not isinstance(exc, catch):
            raise
        _logger.debug("trial %d traceback", frozen.number, exc_info=True)
        return finished
    return _finish(study, trial, result, TrialState.COMPLETE, None)


def _finish(
    study: Study, trial: Trial, result: object, state: TrialState, reason: str | None
) -> FrozenTrial:
    """Store the outcome; return the finished record, built here (no read back)."""
    values: list[float] | None = None
    if state == TrialState.COMPLETE:
        values, why = study._check_values(result)
        if values is None:
            state, reason = TrialState.FAIL, why
    frozen = trial._frozen()
    try:
        study._finish(frozen, state, values, reason)
    except UpdateFinishedTrialError:
        # Another worker failed this trial as stale (this one paused longer than its grace
        # period); its outcome stands and the study goes on.
        stored = study._storage.get_trial(trial._trial_id)
        _logger.warning(
            "trial %d finished after it was marked %s (%s); its result was dropped",
            trial.number,
            stored.state.name,
            stored.reason,
        )
        return stored
    frozen.state, frozen.values = state, values
    if reason is not None:
        frozen.system_attrs[REASON_KEY] = reason
    frozen.datetime_complete = datetime.now()
    return frozen


def run_worker(
    study: Study,
    job: OptimizeJob,
    should_stop: Callable[[], bool] = lambda: False,
    on_finished: Callable[[FrozenTrial], None] | None = None,
) -> int:
    """Claim and run trials until the budget, the deadline or ``should_stop`` ends it.

    Returns:
        How many trials this worker ran.
    """
    storage, worker = study._storage, worker_name()
    n_run = 0
    # Reap dead workers' trials before claiming (so their retries go first), but at most once
    # per heartbeat interval: the heartbeat thread reaps too, and storages without heartbeats
    # have nothing to reap. Not on every trial of the hot loop.
    reap_every = storage.heartbeat_seconds
    last_reap = -float("inf")
    while not should_stop():
        if job.deadline is not None and time.time() >= job.deadline:
            break
        if reap_every is not None and time.monotonic() - last_reap >= reap_every:
            storage.fail_stale_trials(study._study_id)
            last_reap = time.monotonic()
        if study.sampler.is_exhausted(study._view):
            break
        # A finite sampler (a grid) caps the budget inside the atomic claim: checking
        # is_exhausted first and claiming after would let two workers both take the last point.
        cap = study.sampler.max_trials(study._view)
        budget = (
            job.n_trials
            if cap is None
            else cap
            if job.n_trials is None
            else min(cap, job.n_trials)
        )
        with DeferInterrupts() as interrupts:
            frozen = storage.claim_trial(study._study_id, max_trials=budget, worker=worker)
            if frozen is None:
                break
            finished = run_trial(study, job.objective, frozen, job.catch, interrupts)
        n_run += 1
        if on_finished is not None:
            on_finished(finished)
    return n_run
