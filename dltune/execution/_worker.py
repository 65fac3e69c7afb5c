"""The worker loop shared by every executor and by ``dltune worker``: claim, run, finish.

In a batch-synchronous run (``OptimizeJob.batch_size``) the loop also holds each trial back
until the batches before it finished (:class:`BatchGate`), so that every executor obeys it.
"""

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
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._base import STOPPED_BY_KEY
from dltune.trial import INTERRUPTED
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.execution._job import OptimizeJob
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["BatchGate", "DeferInterrupts", "run_trial", "run_worker", "worker_name"]

_logger = logging.getLogger(__name__)

#: Pauses between looks at the storage while a batch waits for the batches before it: short
#: at first (trials of a fast batch end together), growing to a bound (long trials).
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.5
_UNFINISHED = (TrialState.RUNNING, TrialState.WAITING)


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


class BatchGate:
    """Holds the trials of a batch-synchronous run back until the batches before them finished.

    Trial ``n`` is in batch ``n // batch_size``; a trial of batch ``b`` may start once no trial
    numbered below ``b * batch_size`` is RUNNING (finished, or never claimed: a worker never
    waits for a WAITING trial, which only a claim would start). Before claiming, the worker
    waits for the batch of the number its claim will take (the lowest WAITING trial's, else
    the next new one), so a trial is claimed, and its clock starts, when it can run. Should
    another worker's claim come first and push this one into a later batch, the worker waits
    again holding its trial (with heartbeats; Ctrl-C, the deadline or a stop fail it as
    'interrupted'). While waiting it polls the storage, reaps stale trials (a dead worker's
    trial would block the batch forever) and stops at the deadline or when ``should_stop``.

    Args:
        study: The study.
        batch_size: Trials per batch.
        deadline: Epoch seconds after which no trial starts, or ``None``.
        should_stop: Whether the run was asked to stop.

    Example:
        >>> import dltune
        >>> study = dltune.create_study()
        >>> gate = BatchGate(study, 3, None, lambda: False)
        >>> gate.start_of(7), gate.wait_to_claim()  # trial 7 is in the batch 6, 7, 8
        (6, True)
    """

    def __init__(
        self,
        study: Study,
        batch_size: int,
        deadline: float | None,
        should_stop: Callable[[], bool],
    ) -> None:
        self._study = study
        self._batch_size = batch_size
        self._deadline = deadline
        self._should_stop = should_stop
        self._last_reap = -float("inf")

    def start_of(self, number: int) -> int:
        """The number of the first trial of trial ``number``'s batch."""
        return number - number % self._batch_size

    def view(self, frozen: FrozenTrial) -> StudyView:
        """What the sampler and pruner of ``frozen`` read: the trials of earlier batches."""
        return self._study._view.before(self.start_of(frozen.number))

    def wait_to_claim(self) -> bool:
        """Wait until the trial the next claim would take may start; ``False``: stop instead."""
        storage, study_id = self._study._storage, self._study._study_id
        pauses = _pauses()
        while True:
            unfinished = storage.get_all_trials(study_id, _UNFINISHED, copy=False)
            waiting = [t.number for t in unfinished if t.state == TrialState.WAITING]
            number = min(waiting) if waiting else storage.get_n_trials(study_id)
            if not self._blocked(self.start_of(number), unfinished):
                return True
            if not self._pause(next(pauses)):
                return False

    def wait_claimed(self, frozen: FrozenTrial, interrupts: DeferInterrupts) -> bool:
        """Wait, holding the claimed ``frozen``, until its batch may start.

        Returns:
            ``True`` to run it; ``False`` when the deadline passed or the run was stopped
            first: the trial is then failed as 'interrupted'.

        Raises:
            KeyboardInterrupt: After failing the trial as 'interrupted'.
        """
        storage, study_id = self._study._storage, self._study._study_id
        start = self.start_of(frozen.number)
        ready = False
        try:
            with interrupts.released(), Heartbeat(storage, study_id, frozen.trial_id):
                for pause in _pauses():
                    running = storage.get_all_trials(study_id, (TrialState.RUNNING,), copy=False)
                    ready = not self._blocked(start, running)
                    if ready or not self._pause(pause):
                        break
        finally:
            if not ready:
                with contextlib.suppress(UpdateFinishedTrialError):  # reaped already
                    storage.set_trial_state_values(
                        frozen.trial_id, TrialState.FAIL, None, INTERRUPTED
                    )
        return ready

    @staticmethod
    def _blocked(start: int, unfinished: list[FrozenTrial]) -> bool:
        return any(t.state == TrialState.RUNNING and t.number < start for t in unfinished)

    def _pause(self, seconds: float) -> bool:
        """Sleep (reaping stale trials now and then); ``False`` if the run should end."""
        if self._should_stop():
            return False
        if self._deadline is not None:
            left = self._deadline - time.time()
            if left <= 0:
                return False
            seconds = min(seconds, left)
        storage = self._study._storage
        every = storage.heartbeat_seconds
        if every is not None and time.monotonic() - self._last_reap >= every:
            storage.fail_stale_trials(self._study._study_id)
            self._last_reap = time.monotonic()
        time.sleep(seconds)
        return True


def _pauses() -> Iterator[float]:
    pause = _FIRST_POLL_SECONDS
    while True:
        yield pause
        pause = min(_MAX_POLL_SECONDS, pause * 1.5)


def run_trial(
    study: Study,
    objective: Callable[..., object],
    frozen: FrozenTrial,
    catch: tuple[type[Exception], ...] | None,
    interrupts: DeferInterrupts | None = None,
    *,
    view: StudyView | None = None,
) -> FrozenTrial:
    """Run the objective on a claimed trial and store how it ended.

    Args:
        study: The study.
        objective: The objective.
        frozen: The claimed trial.
        catch: ``None`` to store any exception as FAIL and go on; else the exception types
            that do not propagate.
        interrupts: Interrupts held back outside the objective (none by default).
        view: What the trial's sampler and pruner read: the whole study by default, the
            earlier batches in a batch-synchronous run (:meth:`BatchGate.view`).

    Returns:
        The finished trial.

    Raises:
        KeyboardInterrupt: After failing the trial with reason 'interrupted'.
        Exception: The objective's, if ``catch`` is a tuple it is not in (after storing it).
    """
    released = interrupts.released() if interrupts is not None else contextlib.nullcontext()
    trial = study._start(frozen, view)
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
        study._finish(frozen, state, values, reason, trial._view)
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
    worker: str | None = None,
) -> int:
    """Claim and run trials until the budget, the deadline or ``should_stop`` ends it.

    Trials record ``worker`` as the worker that ran them (default ``host:pid``).

    With ``job.batch_size`` the run is batch-synchronous (see :class:`BatchGate`): trials
    start batch by batch and their sampler and pruner see only the earlier batches. Without,
    the loop reads nothing more than the claim.

    Returns:
        How many trials this worker ran.
    """
    storage, worker = study._storage, worker or worker_name()
    gate = None
    if job.batch_size is not None:
        gate = BatchGate(study, job.batch_size, job.deadline, should_stop)
    n_run = 0
    # Reap dead workers' trials before claiming (so their retries go first), but at most once
    # per heartbeat interval: the heartbeat thread reaps too, and storages without heartbeats
    # have nothing to reap. Not on every trial of the hot loop.
    reap_every = storage.heartbeat_seconds
    last_reap = -float("inf")
    while not should_stop():
        if gate is not None and not gate.wait_to_claim():
            break
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
                # The budget is spent, but another worker's running trial may yet die and be
                # retried in its place: with retries on, stay (interruptibly) until none runs.
                with interrupts.released():
                    retry = _await_retry(study, job, should_stop)
                if retry:
                    continue
                break
            view = None
            if gate is not None:
                if not gate.wait_claimed(frozen, interrupts):
                    break
                view = gate.view(frozen)
            finished = run_trial(study, job.objective, frozen, job.catch, interrupts, view=view)
        n_run += 1
        if on_finished is not None:
            on_finished(finished)
    return n_run


def _await_retry(study: Study, job: OptimizeJob, should_stop: Callable[[], bool]) -> bool:
    """After the budget is spent: wait while other workers' trials run, since one of them may
    go stale and be retried. ``True`` once a retry is WAITING (claim it), ``False`` when no
    trial runs any more, the storage makes no retries, or the run must end.
    """
    storage, study_id = study._storage, study._study_id
    if storage.max_retries == 0 or storage.heartbeat_seconds is None:
        return False
    poll = min(storage.heartbeat_seconds, 0.5)
    while not should_stop() and (job.deadline is None or time.time() < job.deadline):
        storage.fail_stale_trials(study_id)
        pending = storage.get_all_trials(
            study_id, (TrialState.RUNNING, TrialState.WAITING), copy=False
        )
        waiting = [t for t in pending if t.state == TrialState.WAITING]
        if any(t.system_attrs.get(RETRY_OF_KEY) is not None for t in waiting):
            return True
        if len(waiting) == len(pending):  # nothing RUNNING: nothing left to retry
            return False
        time.sleep(poll)
    return False
