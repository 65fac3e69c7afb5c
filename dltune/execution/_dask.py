"""Run trials as Dask tasks on any Dask cluster; ship the objective by import path."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from dltune.exceptions import DLTuneError
from dltune.execution._base import BaseExecutor
from dltune.execution._objective_ref import ObjectiveRef
from dltune.execution._objective_ref import objective_ref
from dltune.execution._worker import run_worker
from dltune.execution._worker import worker_name
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._base import WORKER_KEY
from dltune.storage._memory import InMemoryStorage
from dltune.trial import INTERRUPTED
from dltune.trial import TrialState

if TYPE_CHECKING:
    from distributed import Client
    from distributed import Future
    from distributed import LocalCluster

    from dltune.execution._job import OptimizeJob
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["DaskExecutor", "SchedulerConnectionError", "run_trial_task"]

_logger = logging.getLogger(__name__)

#: How trials run by a Dask worker record it: ``dask:<worker address>``.
WORKER_PREFIX = "dask:"
_POLL_SECONDS = 0.5  # how long the client waits for a task before re-checking everything
_CAPACITY_SECONDS = 1.0  # how often the client re-reads the cluster's worker threads
_MAX_LOST_IN_A_ROW = 20  # tasks lost to dead workers with no trial finishing in between
_MAX_CACHED_RUNS = 8  # studies a worker process keeps ready (per optimize call)


class SchedulerConnectionError(DLTuneError, ConnectionError):
    """The Dask scheduler at the given address could not be reached."""


# -- the task, on a Dask worker ------------------------------------------------------------


@dataclass
class _Runner:
    """A study ready to run trials in a worker process (one per thread running a task)."""

    study: Study
    job: OptimizeJob


_cache_lock = threading.Lock()
_storages: OrderedDict[str, BaseStorage] = OrderedDict()
_runners: OrderedDict[str, list[_Runner]] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _MAX_CACHED_RUNS:
        cache.popitem(last=False)


def _checkout(token: str, storage_options: dict[str, Any], job: OptimizeJob) -> _Runner:
    """A free runner of this optimize call, or a new one (the storage is shared per process,
    so its engine and trial cache outlive one call)."""
    from dltune.storage import SQLStorage
    from dltune.study import Study

    key = json.dumps(storage_options, sort_keys=True, default=repr)
    with _cache_lock:
        free = _runners.get(token)
        if free:
            return free.pop()
        storage = _storages.get(key)
    if storage is None:
        options = dict(storage_options)
        storage = SQLStorage(options.pop("url"), **options)
        with _cache_lock:
            storage = _storages.setdefault(key, storage)
            _remember(_storages, key, storage)
    job.storage = storage
    # Import and build the objective here, once per process, thread and optimize call.
    ref = job.objective
    assert isinstance(ref, ObjectiveRef)  # the client ships nothing else
    job.objective = ref.resolve()
    return _Runner(Study(job.study_name, storage, job.sampler, job.pruner), job)


def _checkin(token: str, runner: _Runner) -> None:
    with _cache_lock:
        _remember(_runners, token, _runners.get(token, []))
        _runners[token].append(runner)


def _forget(token: str) -> None:
    """Drop an ended optimize call's runners (their objectives may hold data sets)."""
    with _cache_lock:
        _runners.pop(token, None)


def _distributed() -> Any:
    """The ``distributed`` module, typed loosely: much of its API is unannotated."""
    from dltune._imports import require

    return require("distributed", extra="dask", feature="DaskExecutor")


def _this_worker() -> str:
    try:
        return WORKER_PREFIX + str(_distributed().get_worker().address)
    except ValueError:  # not on a Dask worker (a task run locally)
        return worker_name()


def run_trial_task(token: str, storage_options: dict[str, Any], job: OptimizeJob) -> int | None:
    """A Dask task: run one trial of the study (the worker loop, stopped after one trial).

    Args:
        token: The optimize call (workers keep one ready study per call and thread).
        storage_options: The SQL storage's options (its URL and settings: data only).
        job: The job, its objective an :class:`ObjectiveRef`, its storage left out.

    Returns:
        The finished trial's id, or ``None`` when the budget is used up, the sampler is
        exhausted or the deadline passed.
    """
    runner = _checkout(token, storage_options, job)
    finished: list[int] = []
    try:
        run_worker(
            runner.study,
            runner.job,
            should_stop=lambda: bool(finished),
            on_finished=lambda trial: finished.append(trial.trial_id),
            worker=_this_worker(),  # claimed as dask:<worker address>
        )
    finally:
        _checkin(token, runner)
    return finished[0] if finished else None


# -- the client ----------------------------------------------------------------------------


class _Driver:
    """Keeps one task per worker thread in flight, relays finished trials, ends the run."""

    def __init__(
        self,
        client: Client,
        job: OptimizeJob,
        ref: ObjectiveRef,
        on_finished: Callable[[int], bool],
    ) -> None:
        self._client = client
        self._job = job
        self._on_finished = on_finished
        self._storage = job.storage
        self.study_id = job.storage.get_study_id_from_name(job.study_name)
        self._token = uuid.uuid4().hex
        self._storage_options = _storage_options(job.storage)
        # Data only: sampler, pruner, budget and the objective's import path (Dask pickles it).
        self._shipped = replace(job, storage=None, objective=ref)  # type: ignore[arg-type]
        self._in_flight: set[Future[Any]] = set()
        self._n_submitted = 0
        self._stopping = False  # stop requested, deadline passed, or an error
        self._budget_used = False  # a task found nothing to claim
        self._errors: list[BaseException] = []
        self._lost_in_a_row = 0
        self._retries_seen: set[int] = set()  # the WAITING retries of the last _settle
        self._capacity = 1
        self.threads = -1  # the cluster's worker threads at the last look (-1: not looked yet)
        self._capacity_at = -float("inf")
        self.addresses: set[str] = set()  # every worker seen (to clean up after an owned cluster)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._cancel()
            if isinstance(exc, Exception):  # not on Ctrl-C: exit at once
                self._forget()
            raise
        self._forget()
        if self._errors:
            raise self._errors[0]

    def _forget(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the cluster may be gone
            self._client.run(_forget, self._token)

    def _loop(self) -> None:
        while True:
            if self._job.deadline is not None and time.time() >= self._job.deadline:
                self._stopping = True
            if not (self._stopping or self._budget_used):
                while len(self._in_flight) < self._read_capacity():
                    self._submit()
            if not self._in_flight:
                if self._stopping or not self._settle():
                    return
                continue
            for future in self._wait():
                self._collect(future)

    def _read_capacity(self) -> int:
        """The cluster's worker threads (at least 1, so an adaptive cluster sees work)."""
        if time.monotonic() - self._capacity_at >= _CAPACITY_SECONDS:
            nthreads: dict[str, int] = self._client.nthreads()  # type: ignore[no-untyped-call]
            self.addresses.update(nthreads)
            self.threads = sum(nthreads.values())
            self._capacity = max(1, self.threads)
            self._capacity_at = time.monotonic()
        return self._capacity

    def _submit(self) -> None:
        key = f"dltune-trial-{self._token}-{self._n_submitted}"
        self._n_submitted += 1
        future = self._client.submit(
            run_trial_task, self._token, self._storage_options, self._shipped, key=key
        )
        self._in_flight.add(future)

    def _wait(self) -> list[Future[Any]]:
        try:
            done, _ = _distributed().wait(
                list(self._in_flight), timeout=_POLL_SECONDS, return_when="FIRST_COMPLETED"
            )
        except TimeoutError:
            return []
        return list(done)

    def _collect(self, future: Future[Any]) -> None:
        killed_worker = _distributed().KilledWorker
        self._in_flight.discard(future)
        try:
            trial_id = future.result()
        except (killed_worker, CancelledError) as exc:
            self._lost(exc)
            return
        except Exception as exc:  # an objective error outside `catch`: stop the study
            self._errors.append(exc)
            self._stopping = True
            return
        self._lost_in_a_row = 0
        if trial_id is None:
            self._budget_used = True
        elif self._on_finished(trial_id):
            self._stopping = True

    def _lost(self, exc: BaseException) -> None:
        self._lost_in_a_row += 1
        _logger.warning(
            "a trial task was lost with its Dask worker (%s: %s); its trial, if it started, "
            "fails as stale and is retried if the storage allows; starting another",
            type(exc).__name__,
            exc,
        )
        if self._lost_in_a_row >= _MAX_LOST_IN_A_ROW:
            raise RuntimeError(
                f"{self._lost_in_a_row} trial tasks in a row were lost with their Dask workers "
                f"(the last: {type(exc).__name__}: {exc}); the workers keep dying, look at "
                "their logs (memory limits, crashes in the objective)"
            ) from exc

    def _settle(self) -> bool:
        """After the budget is used up: wait for Dask trials still RUNNING (their worker may
        be lost: they fail as stale after the grace period) and run their retries.

        Returns:
            Whether the run goes on.
        """
        self._storage.fail_stale_trials(self.study_id)
        states = (TrialState.RUNNING, TrialState.WAITING)
        trials = self._storage.get_all_trials(self.study_id, states, copy=False)
        retries = {
            t.trial_id
            for t in trials
            if t.state == TrialState.WAITING and RETRY_OF_KEY in t.system_attrs
        }
        if retries:
            if retries == self._retries_seen:  # the tasks claimed none of them: give up
                _logger.warning("%d retries of stale trials stay WAITING", len(retries))
                return False
            self._retries_seen = retries
            for _ in retries:
                self._submit()
            return True
        if any(_ran_on_dask(t) for t in trials if t.state == TrialState.RUNNING):
            interval = self._storage.heartbeat_seconds or _POLL_SECONDS
            time.sleep(min(max(interval, 0.05), 5.0))
            return True
        return False

    def _cancel(self) -> None:
        if not self._in_flight:
            return
        try:
            self._client.cancel(list(self._in_flight))  # type: ignore[no-untyped-call]
        except Exception:  # the connection may be gone; nothing more to do
            _logger.debug("cancelling trial tasks failed", exc_info=True)


def _ran_on_dask(trial: FrozenTrial) -> bool:
    return str(trial.system_attrs.get(WORKER_KEY, "")).startswith(WORKER_PREFIX)


# -- the executor --------------------------------------------------------------------------


class DaskExecutor(BaseExecutor):
    """Runs each trial as a Dask task, on any Dask cluster (a LocalCluster, or Slurm, PBS and
    Kubernetes through dask-jobqueue and dask-kubernetes).

    One task claims one trial within the study's budget and runs it, so Dask (its dashboard,
    an adaptive cluster) sees trial-sized work; the client keeps about one task per worker
    thread in flight and re-reads the thread count as workers join and leave. Workers open the
    study's storage themselves: use PostgreSQL for several machines (SQLite only where every
    worker sees the same file). The objective travels by import path (a module-level function
    or an :class:`ObjectiveRef`), so every worker must be able to import it; samplers and
    pruners travel with the tasks. A trial records its worker as ``dask:<worker address>``.

    A lost worker's trial stays RUNNING until its heartbeat is older than the storage's
    ``grace_seconds``; then it fails as stale and, with ``max_retries``, its retry runs first.
    The run waits for that before it ends. An objective error outside ``catch`` stops the study
    and is raised here once the running trials finished.

    With no ``client`` and no ``address``, a ``LocalCluster`` of ``n_workers`` single-threaded
    worker processes is started for each run and closed after it (on errors and Ctrl-C too;
    trials its workers were running are then failed as 'interrupted'). Its workers start with
    this process's import path; a script doing this needs the
    ``if __name__ == "__main__":`` guard, as for any Dask LocalCluster.

    Args:
        client: A ``distributed.Client``; used as it is and never closed.
        address: A scheduler address such as ``"tcp://host:8786"``; a Client connects to it for
            each run and closes after it.
        n_workers: Worker processes of the LocalCluster started without ``client`` or
            ``address`` (default: Dask's, one per core).

    Raises:
        MissingDependencyError: If ``distributed`` is not installed.
        TypeError: For a ``client`` that is not a ``distributed.Client``, or an ``address`` or
            ``n_workers`` of the wrong type.
        ValueError: If both ``client`` and ``address`` are given, ``n_workers`` is given with
            either, or ``n_workers`` is below 1.

    Example:
        >>> DaskExecutor(n_workers=2)  # nothing starts before study.optimize runs it
        DaskExecutor(n_workers=2)
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        address: str | None = None,
        n_workers: int | None = None,
    ) -> None:
        distributed = _distributed()
        if client is not None and not isinstance(client, distributed.Client):
            raise TypeError(
                f"client={client!r} must be a distributed.Client; or pass "
                "address='tcp://host:port' to connect to a scheduler"
            )
        if address is not None:
            if not isinstance(address, str):
                raise TypeError(
                    f"address={address!r} must be a scheduler address string such as "
                    "'tcp://host:8786'"
                )
            if not address.strip():
                raise ValueError(f"address={address!r} is empty; use e.g. 'tcp://host:8786'")
            if client is not None:
                raise ValueError(
                    f"give client= or address={address!r}, not both: the client is already "
                    "connected to its scheduler"
                )
        if n_workers is not None:
            if isinstance(n_workers, bool) or not isinstance(n_workers, int):
                raise TypeError(f"n_workers={n_workers!r} must be an int or None")
            if n_workers < 1:
                raise ValueError(f"n_workers={n_workers!r} must be >= 1")
            if client is not None or address is not None:
                raise ValueError(
                    f"n_workers={n_workers!r} sizes the LocalCluster started without client= "
                    "or address=; a cluster given by client= or address= has its own workers"
                )
        self._client = client
        self._address = address
        self.n_workers = n_workers
        self._driver: _Driver | None = None

    def status(self) -> str | None:
        driver = self._driver
        if driver is not None and driver.threads == 0:
            return "waiting for Dask workers: the scheduler has none"
        return None

    def __repr__(self) -> str:
        if self._client is not None:
            return f"DaskExecutor(client={self._client!r})"
        if self._address is not None:
            return f"DaskExecutor(address={self._address!r})"
        return f"DaskExecutor(n_workers={self.n_workers!r})"

    def run(self, job: OptimizeJob, on_finished: Callable[[int], bool]) -> None:
        ref = objective_ref(job.objective)
        _check_storage(job.storage)
        if self._client is not None:
            _warn_if_sqlite_elsewhere(job.storage, self._client.scheduler.address)
            self._drive(self._client, job, ref, on_finished)
        elif self._address is not None:
            with _connect(self._address) as client:
                _warn_if_sqlite_elsewhere(job.storage, self._address)
                self._drive(client, job, ref, on_finished)
        else:
            self._run_on_local_cluster(job, ref, on_finished)

    def _run_on_local_cluster(
        self, job: OptimizeJob, ref: ObjectiveRef, on_finished: Callable[[int], bool]
    ) -> None:
        distributed = _distributed()
        # No fixed dashboard port: a second run (or a test) would collide with the first.
        cluster: LocalCluster = distributed.LocalCluster(
            n_workers=self.n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        driver = None
        try:
            with distributed.Client(cluster) as client:
                _logger.info(
                    "started a Dask LocalCluster of %d worker(s); its dashboard: %s",
                    len(cluster.workers),
                    client.dashboard_link,
                )
                driver = _Driver(client, job, ref, on_finished)
                self._drive(client, job, ref, on_finished, driver)
        finally:
            cluster.close()
            if driver is not None:
                _fail_orphans(job.storage, driver.study_id, driver.addresses)

    def _drive(
        self,
        client: Client,
        job: OptimizeJob,
        ref: ObjectiveRef,
        on_finished: Callable[[int], bool],
        driver: _Driver | None = None,
    ) -> None:
        self._driver = driver if driver is not None else _Driver(client, job, ref, on_finished)
        try:
            self._driver.run()
        finally:
            self._driver = None


@contextlib.contextmanager
def _connect(address: str) -> Iterator[Client]:
    try:
        client = _distributed().Client(address)
    except (OSError, TimeoutError) as exc:
        raise SchedulerConnectionError(
            f"cannot reach the Dask scheduler at address={address!r}: {exc}; start one "
            "(`dask scheduler`) or check the address"
        ) from exc
    with client:
        yield client


def _check_storage(storage: BaseStorage) -> None:
    from dltune.storage import SQLStorage

    if not isinstance(storage, SQLStorage):
        where = "is in memory" if isinstance(storage, InMemoryStorage) else "is not SQL"
        raise ValueError(
            f"storage={storage!r} {where}, which Dask workers cannot reach; create the "
            "study with storage='postgresql+psycopg://user:password@host/db' (recommended "
            "for clusters) or 'sqlite:///path/study.db' (workers on this machine)"
        )


def _storage_options(storage: BaseStorage) -> dict[str, Any]:
    """What a worker needs to open the same SQL storage: its URL and settings (data only)."""
    from dltune.storage import SQLStorage

    assert isinstance(storage, SQLStorage)  # _check_storage ran
    return storage.__getstate__()  # SQLStorage's options record


def _is_local_address(address: str) -> bool:
    if address.startswith("inproc://"):
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_if_sqlite_elsewhere(storage: BaseStorage, scheduler_address: str) -> None:
    """SQLite works across machines only on a file all of them share: say so."""
    from dltune.storage import SQLStorage

    if not isinstance(storage, SQLStorage) or not storage.url.startswith("sqlite"):
        return
    if _is_local_address(scheduler_address):
        return
    _logger.warning(
        "the study is in SQLite (%s) and the Dask scheduler %s may have workers on other "
        "machines: every worker must open the very same file (a shared file system; SQLite "
        "locks poorly over NFS). PostgreSQL is recommended for a cluster",
        storage.url,
        scheduler_address,
    )


def _fail_orphans(storage: BaseStorage, study_id: int, addresses: set[str]) -> None:
    """Fail as 'interrupted' the trials left RUNNING by a closed cluster's workers."""
    from dltune.exceptions import UpdateFinishedTrialError

    names = {WORKER_PREFIX + address for address in addresses}
    try:
        for trial in storage.get_all_trials(study_id, (TrialState.RUNNING,), copy=False):
            if trial.system_attrs.get(WORKER_KEY) in names:
                with contextlib.suppress(UpdateFinishedTrialError):
                    storage.set_trial_state_values(
                        trial.trial_id, TrialState.FAIL, None, INTERRUPTED
                    )
    except Exception:  # never hide the error that ended the run
        _logger.warning("could not fail the closed cluster's running trials", exc_info=True)
