"""Run a study's workers here (one) or in local child processes (several, or one per GPU)."""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.connection import Listener
from typing import Any

import cloudpickle

from dltune.execution._base import BaseExecutor
from dltune.execution._gpu import GPU_ENV
from dltune.execution._gpu import GPULease
from dltune.execution._gpu import gpu_label
from dltune.execution._gpu import resolve_gpus
from dltune.execution._job import OptimizeJob
from dltune.execution._remote import serve_storage_call
from dltune.execution._worker import run_worker
from dltune.storage._memory import InMemoryStorage

__all__ = ["LocalExecutor"]

_logger = logging.getLogger(__name__)

AUTHKEY_ENV = "DLTUNE_WORKER_AUTHKEY"
#: Stands in for an in-memory storage in a child's job; the child then uses the parent's.
PARENT_STORAGE = "dltune:parent-storage"
_SHUTDOWN_SECONDS = 30.0
_LEASE_POLL_SECONDS = 0.5
ORDER_ENV = "CUDA_DEVICE_ORDER"
_EXIT_INTERRUPTED = 130  # the child's code after Ctrl-C (see _child.main)


class LocalExecutor(BaseExecutor):
    """Runs ``n_workers`` workers: in this process for 1, else as child processes.

    Children are fresh Python processes (not forks, so threads, database connections and CUDA
    are safe) that receive the objective with cloudpickle: closures and functions defined in
    ``__main__`` work, and no ``if __name__ == "__main__"`` guard is needed. They talk to the
    study's storage directly, or to this process's in-memory storage through a connection.

    With ``gpus``, one child runs per GPU, started with ``CUDA_VISIBLE_DEVICES`` set to its GPU
    (so CUDA in it sees that one device, as ``cuda:0``; ``CUDA_DEVICE_ORDER`` defaults to
    ``PCI_BUS_ID`` so indices match ``nvidia-smi``). A child starts only once it holds its
    GPU's lease (:class:`~dltune.execution._gpu.GPULease`), which it keeps while it lives: a GPU
    trains one trial at a time, also across separate runs on this machine. A GPU leased by
    another process is waited for (see :meth:`status`), until it is free or the run ends.

    Ctrl-C stops every worker: each running trial is failed with reason 'interrupted', nothing
    is left RUNNING, and ``KeyboardInterrupt`` is raised here.

    Args:
        n_workers: How many workers; ``-1`` for one per CPU core. Default: 1, or one per GPU.
        gpus: ``None`` (no GPU pinning), ``'auto'`` (detect: ``CUDA_VISIBLE_DEVICES``, else
            ``nvidia-smi``), a comma-separated string (``'0,1'``) or a sequence of GPU indices
            or UUIDs (``[0, 1]``, ``['GPU-...']``).

    Raises:
        TypeError: If ``n_workers`` is not an int, or ``gpus`` not a string or sequence.
        ValueError: If ``n_workers`` is 0 or below -1, a GPU id is invalid or repeated, or
            ``n_workers`` differs from the number of GPUs.
        GPUError: If ``gpus='auto'`` finds no GPU.

    Example:
        >>> LocalExecutor(2)
        LocalExecutor(n_workers=2)
        >>> LocalExecutor(gpus="0,1")
        LocalExecutor(n_workers=2, gpus=['0', '1'])
    """

    def __init__(
        self, n_workers: int | None = None, *, gpus: str | Sequence[int | str] | None = None
    ) -> None:
        if n_workers is not None and (
            isinstance(n_workers, bool) or not isinstance(n_workers, int)
        ):
            raise TypeError(f"n_jobs={n_workers!r} must be an int")
        self.gpus: tuple[str, ...] | None = None
        if gpus is not None:
            self.gpus = resolve_gpus(gpus)
            if n_workers is not None and n_workers != len(self.gpus):
                raise ValueError(
                    f"n_workers={n_workers!r} does not match gpus={gpus!r}: one worker runs "
                    f"per GPU ({len(self.gpus)} here); leave n_workers out"
                )
            n_workers = len(self.gpus)
        if n_workers is None:
            n_workers = 1
        if n_workers == -1:
            n_workers = os.cpu_count() or 1
        if n_workers < 1:
            raise ValueError(f"n_jobs={n_workers!r} must be >= 1, or -1 for one per CPU core")
        self.n_workers = n_workers
        self._pool: _ProcessPool | None = None

    def __repr__(self) -> str:
        gpus = "" if self.gpus is None else f", gpus={list(self.gpus)!r}"
        return f"LocalExecutor(n_workers={self.n_workers}{gpus})"

    def run(self, job: OptimizeJob, on_finished: Callable[[int], bool]) -> None:
        if self.n_workers == 1 and self.gpus is None:
            self._run_here(job, on_finished)
            return
        gpus: list[str | None] = list(self.gpus) if self.gpus else [None] * self.n_workers
        self._pool = _ProcessPool(job, gpus, on_finished)
        try:
            self._pool.run()
        finally:
            self._pool = None

    def waiting(self) -> list[str]:
        """What keeps workers from starting now, one line per GPU waited for.

        Safe to call from any thread while :meth:`run` runs (for a live display).

        Returns:
            Lines like ``'waiting for GPU 1 (in use by host:1234)'``; empty when nothing waits.

        Example:
            >>> LocalExecutor(gpus=[0]).waiting()
            []
        """
        pool = self._pool
        return [] if pool is None else pool.waiting()

    def status(self) -> str | None:
        """One line for a live display: the GPUs waited for, or ``None`` when none is.

        Example:
            >>> LocalExecutor(gpus=[0]).status() is None
            True
        """
        pool = self._pool
        return None if pool is None else pool.status()

    @staticmethod
    def _run_here(job: OptimizeJob, on_finished: Callable[[int], bool]) -> None:
        from dltune.study import Study

        study = Study(job.study_name, job.storage, job.sampler, job.pruner)
        stop = False

        def finished(trial: Any) -> None:
            nonlocal stop
            stop = on_finished(trial.trial_id) or stop

        run_worker(study, job, lambda: stop, finished)


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    slot: _Slot
    conn: Connection | None = None
    done: bool = False
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


@dataclass
class _Slot:
    """One worker's place: its GPU (if any), lease, and whether it waits, runs or is over."""

    gpu: str | None
    lease: GPULease | None = None
    child: _Child | None = None
    is_over: bool = False
    is_blocked: bool = False  # its GPU was leased by another process at the last try
    holder: str | None = None  # who has the GPU while this slot waits for it
    next_try: float = 0.0

    @property
    def is_waiting(self) -> bool:
        return self.is_blocked and self.child is None and not self.is_over

    def message(self) -> str:
        assert self.gpu is not None
        return f"waiting for {gpu_label(self.gpu)} (in use by {self.holder or 'another process'})"


class _ProcessPool:
    """Starts the children (each once its GPU is free), serves their requests, relays
    finished trials, stops them."""

    def __init__(
        self, job: OptimizeJob, gpus: list[str | None], on_finished: Callable[[int], bool]
    ) -> None:
        self._job = job
        self._slots = [_Slot(gpu, None if gpu is None else GPULease(gpu)) for gpu in gpus]
        self._on_finished = on_finished
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._to_accept: queue.Queue[bool] = queue.Queue()  # one True per child started
        self._stop = threading.Event()
        self._is_over = False  # a worker ran out of work: waiting slots need not start
        self._slots_lock = threading.Lock()  # status() reads the slots from other threads
        self._storage_lock = threading.Lock()
        in_memory = isinstance(job.storage, InMemoryStorage)
        child_job = replace(job, storage=PARENT_STORAGE) if in_memory else job  # type: ignore[arg-type]
        self._payload = cloudpickle.dumps(child_job)
        self._env: dict[str, str] = {}
        self._cmd: list[str] = []

    def run(self) -> None:
        authkey = secrets.token_bytes(32)
        with Listener(family="AF_UNIX", authkey=authkey) as listener:
            self._env = {**os.environ, AUTHKEY_ENV: authkey.hex()}
            self._cmd = [sys.executable, "-m", "dltune.execution._child", str(listener.address)]
            children: dict[int, _Child] = {}
            threading.Thread(
                target=self._accept, args=(listener,), name="dltune-accept", daemon=True
            ).start()
            try:
                self._loop(children)
            except BaseException:
                self._stop.set()
                self._shutdown(children)
                raise
            finally:
                self._to_accept.put(False)  # no more children: the accept thread ends
                for slot in self._slots:
                    self._end_slot(slot)
        errors = [c.error for c in children.values() if c.error is not None]
        if errors:
            raise errors[0]

    def waiting(self) -> list[str]:
        with self._slots_lock:
            return [slot.message() for slot in self._slots if slot.is_waiting]

    def status(self) -> str | None:
        with self._slots_lock:
            waiting = [slot.message() for slot in self._slots if slot.is_waiting]
            running = any(s.child is not None and not s.child.done for s in self._slots)
        if not waiting:
            return None
        text = "; ".join(waiting)
        return text if running else f"{text}; no trial runs until a GPU is free"

    def _accept(self, listener: Listener) -> None:
        while self._to_accept.get():
            try:
                conn = listener.accept()
                pid = conn.recv()
            except (OSError, EOFError):
                return
            self._events.put(("conn", (pid, conn)))

    def _start_slots(self, children: dict[int, _Child]) -> None:
        """Start each slot whose GPU is free; give up waiting once the run is over."""
        now = time.monotonic()
        deadline = self._job.deadline
        over = (
            self._stop.is_set()
            or self._is_over
            or (deadline is not None and time.time() > deadline)
        )
        for slot in self._slots:
            if slot.child is not None or slot.is_over:
                continue
            if over:
                with self._slots_lock:
                    slot.is_over = True
                continue
            if slot.lease is not None:
                if now < slot.next_try:
                    continue
                if not slot.lease.try_acquire():
                    self._wait(slot, now)
                    continue
                if slot.is_blocked:
                    _logger.info("%s is free now; starting its worker", gpu_label(slot.lease.gpu))
            self._start(slot, children)

    def _wait(self, slot: _Slot, now: float) -> None:
        assert slot.lease is not None
        holder = slot.lease.holder()
        if holder != slot.holder or not slot.is_blocked:
            _logger.info(
                "waiting for %s (in use by %s)",
                gpu_label(slot.lease.gpu),
                holder or "another process",
            )
        with self._slots_lock:
            slot.holder = holder or slot.holder
            slot.is_blocked = True
        slot.next_try = now + _LEASE_POLL_SECONDS

    def _start(self, slot: _Slot, children: dict[int, _Child]) -> None:
        env = self._env
        pass_fds: tuple[int, ...] = ()
        if slot.lease is not None:
            env = {**env, GPU_ENV: slot.lease.gpu}
            env.setdefault(ORDER_ENV, "PCI_BUS_ID")  # indices as nvidia-smi numbers them
            pass_fds = (slot.lease.fileno(),)  # the child keeps the GPU leased while it lives
        proc = subprocess.Popen(self._cmd, env=env, pass_fds=pass_fds)
        child = _Child(proc, slot)
        with self._slots_lock:
            slot.child = child
            slot.is_blocked = False
        children[proc.pid] = child
        self._to_accept.put(True)

    def _end_slot(self, slot: _Slot) -> None:
        with self._slots_lock:
            slot.is_over = True
        if slot.lease is not None:
            slot.lease.release()

    def _loop(self, children: dict[int, _Child]) -> None:
        while True:
            self._start_slots(children)
            if all(slot.is_over for slot in self._slots):
                return
            try:
                kind, data = self._events.get(timeout=0.2)
            except queue.Empty:
                self._reap_exited(children)
                continue
            if kind == "conn":
                pid, conn = data
                child = children[pid]
                child.conn = conn
                child.thread = threading.Thread(
                    target=self._serve, args=(child,), name=f"dltune-serve-{pid}", daemon=True
                )
                child.thread.start()
            elif kind == "finished":
                if self._on_finished(data):
                    self._stop.set()
            elif kind == "done" and not children[data].done:
                child = children[data]
                code = child.proc.wait()
                self._child_done(child)
                if child.error is not None:
                    self._stop.set()
                elif code == 0:
                    self._is_over = True  # its worker loop ran out of trials or time
                elif code != _EXIT_INTERRUPTED:
                    _warn_exited(child.proc.pid, code)

    def _child_done(self, child: _Child) -> None:
        child.done = True
        self._end_slot(child.slot)  # the GPU is free for others as soon as its child is gone

    def _reap_exited(self, children: dict[int, _Child]) -> None:
        for child in children.values():
            if child.done or child.proc.poll() is None:
                continue
            if child.conn is None or (child.thread is not None and not child.thread.is_alive()):
                self._child_done(child)
                _warn_exited(child.proc.pid, child.proc.returncode)

    def _serve(self, child: _Child) -> None:
        conn = child.conn
        assert conn is not None
        pid = child.proc.pid
        try:
            conn.send(list(sys.path))
            conn.send_bytes(self._payload)
            while True:
                message = conn.recv()
                kind = message[0]
                if kind == "call":
                    with self._storage_lock:
                        reply = serve_storage_call(self._job.storage, message)
                    conn.send(reply)
                elif kind == "should_stop":
                    conn.send(self._stop.is_set())
                elif kind == "finished":
                    self._events.put(("finished", message[1]))
                elif kind == "error":
                    child.error = _load_error(message[1])
                    self._stop.set()  # an uncaught objective error stops the study
                elif kind == "done":
                    break
        except (EOFError, OSError):
            pass  # the child died; _reap_exited reports it
        except Exception as exc:  # a protocol error must not hang the parent
            child.error = exc
        finally:
            conn.close()
            self._events.put(("done", pid))

    def _shutdown(self, children: dict[int, _Child]) -> None:
        """Interrupt the children (their trials fail as 'interrupted') and wait for them."""
        for child in children.values():
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + _SHUTDOWN_SECONDS
        for child in children.values():
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def _load_error(blob: bytes) -> BaseException:
    try:
        error = cloudpickle.loads(blob)
    except Exception as exc:
        return RuntimeError(f"a worker failed with an error that could not be loaded: {exc}")
    return error if isinstance(error, BaseException) else RuntimeError(repr(error))


def _warn_exited(pid: int, code: int) -> None:
    _logger.warning(
        "worker process %d exited with code %d; its running trial, if any, fails as stale "
        "and the other workers go on",
        pid,
        code,
    )
