"""Run a study's workers here (one) or in local child processes (several)."""

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
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.connection import Listener
from typing import Any

import cloudpickle

from dltune.execution._base import BaseExecutor
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
_EXIT_INTERRUPTED = 130  # the child's code after Ctrl-C (see _child.main)


class LocalExecutor(BaseExecutor):
    """Runs ``n_workers`` workers: in this process for 1, else as child processes.

    Children are fresh Python processes (not forks, so threads, database connections and CUDA
    are safe) that receive the objective with cloudpickle: closures and functions defined in
    ``__main__`` work, and no ``if __name__ == "__main__"`` guard is needed. They talk to the
    study's storage directly, or to this process's in-memory storage through a connection.

    Ctrl-C stops every worker: each running trial is failed with reason 'interrupted', nothing
    is left RUNNING, and ``KeyboardInterrupt`` is raised here.

    Args:
        n_workers: How many workers; ``-1`` for one per CPU core.

    Raises:
        ValueError: If ``n_workers`` is 0 or below -1.

    Example:
        >>> executor = LocalExecutor(2)
    """

    def __init__(self, n_workers: int = 1) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int):
            raise TypeError(f"n_jobs={n_workers!r} must be an int")
        if n_workers == -1:
            n_workers = os.cpu_count() or 1
        if n_workers < 1:
            raise ValueError(f"n_jobs={n_workers!r} must be >= 1, or -1 for one per CPU core")
        self.n_workers = n_workers

    def __repr__(self) -> str:
        return f"LocalExecutor(n_workers={self.n_workers})"

    def run(self, job: OptimizeJob, on_finished: Callable[[int], bool]) -> None:
        if self.n_workers == 1:
            self._run_here(job, on_finished)
        else:
            _ProcessPool(job, self.n_workers, on_finished).run()

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
    conn: Connection | None = None
    done: bool = False
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class _ProcessPool:
    """Starts the children, serves their requests, relays finished trials, stops them."""

    def __init__(
        self, job: OptimizeJob, n_workers: int, on_finished: Callable[[int], bool]
    ) -> None:
        self._job = job
        self._n = n_workers
        self._on_finished = on_finished
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._storage_lock = threading.Lock()
        in_memory = isinstance(job.storage, InMemoryStorage)
        child_job = replace(job, storage=PARENT_STORAGE) if in_memory else job  # type: ignore[arg-type]
        self._payload = cloudpickle.dumps(child_job)

    def run(self) -> None:
        authkey = secrets.token_bytes(32)
        with Listener(family="AF_UNIX", authkey=authkey) as listener:
            env = {**os.environ, AUTHKEY_ENV: authkey.hex()}
            cmd = [sys.executable, "-m", "dltune.execution._child", str(listener.address)]
            children = {}
            for _ in range(self._n):
                proc = subprocess.Popen(cmd, env=env)
                children[proc.pid] = _Child(proc)
            threading.Thread(
                target=self._accept, args=(listener,), name="dltune-accept", daemon=True
            ).start()
            try:
                self._loop(children)
            except BaseException:
                self._stop.set()
                self._shutdown(children)
                raise
        errors = [c.error for c in children.values() if c.error is not None]
        if errors:
            raise errors[0]

    def _accept(self, listener: Listener) -> None:
        for _ in range(self._n):
            try:
                conn = listener.accept()
                pid = conn.recv()
            except (OSError, EOFError):
                return
            self._events.put(("conn", (pid, conn)))

    def _loop(self, children: dict[int, _Child]) -> None:
        while not all(c.done for c in children.values()):
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
            elif kind == "done":
                child = children[data]
                code = child.proc.wait()
                child.done = True
                if child.error is not None:
                    self._stop.set()
                elif code not in (0, _EXIT_INTERRUPTED):
                    _warn_exited(child.proc.pid, code)

    def _reap_exited(self, children: dict[int, _Child]) -> None:
        for child in children.values():
            if child.done or child.proc.poll() is None:
                continue
            if child.conn is None or (child.thread is not None and not child.thread.is_alive()):
                child.done = True
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
