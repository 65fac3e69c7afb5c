"""Entry point of a worker process started by :class:`~dltune.execution.LocalExecutor`."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from multiprocessing.connection import Client
from types import FrameType

import cloudpickle

_PR_SET_PDEATHSIG = 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Interrupt once: a second Ctrl-C must not cut short failing the trial as 'interrupted'."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies, so no orphan keeps training."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def main(address: str) -> int:
    """Join the parent, receive the job, run the worker loop, report back."""
    from dltune.execution._local import AUTHKEY_ENV
    from dltune.execution._local import PARENT_STORAGE
    from dltune.execution._remote import RemoteStorage
    from dltune.execution._worker import run_worker
    from dltune.study import Study

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    _die_with_parent()
    conn = Client(address, family="AF_UNIX", authkey=bytes.fromhex(os.environ[AUTHKEY_ENV]))
    conn.send(os.getpid())
    lock = threading.Lock()

    def should_stop() -> bool:
        with lock:
            conn.send(("should_stop",))
            return bool(conn.recv())

    def on_finished(trial: object) -> None:
        with lock:
            conn.send(("finished", getattr(trial, "trial_id")))  # noqa: B009

    code = 0
    try:
        # The parent's import path, so objectives defined in its modules unpickle here.
        parent_path = list(conn.recv())
        sys.path[:] = [*parent_path, *(p for p in sys.path if p not in parent_path)]
        job = cloudpickle.loads(conn.recv_bytes())
        if job.storage == PARENT_STORAGE:
            job.storage = RemoteStorage(conn, lock)
        study = Study(job.study_name, job.storage, job.sampler, job.pruner)
        run_worker(study, job, should_stop, on_finished)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        code = 1
        try:
            blob = cloudpickle.dumps(exc)
        except Exception:  # unpicklable: send its text
            blob = cloudpickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        with lock:
            conn.send(("error", blob))
    try:
        with lock:
            conn.send(("done",))
    except OSError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
