"""An objective that records the GPU its worker sees, and a stand-in for another dltune run
holding GPU leases (``python gpu_objectives.py hold ID...``). Imported by path in children."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dltune
from dltune.execution._gpu import GPULease

#: How long a recording trial takes.
TRIAL_SECONDS = 0.1


def _meet(folder: Path, n_workers: int) -> None:
    """Wait (at most 30 s) until ``n_workers`` processes reached here, so they overlap."""
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(folder.iterdir())) < n_workers and time.monotonic() < deadline:
        time.sleep(0.02)


def recording(trial: dltune.Trial, barrier: str | None = None, n_workers: int = 2) -> float:
    """Records ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER``, the pid, start and end times.

    With ``barrier`` (a folder), the first trial of each worker waits for ``n_workers``
    workers to reach it, so their trials run at the same time.
    """
    start = time.time()
    if barrier is not None:
        _meet(Path(barrier), n_workers)
    time.sleep(TRIAL_SECONDS)
    trial.set_user_attr("gpu", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_user_attr("order", os.environ.get("CUDA_DEVICE_ORDER"))
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("start", start)
    trial.set_user_attr("end", time.time())
    return trial.suggest_float("x", 0.0, 1.0)


def hold(gpus: list[str]) -> int:
    """Hold the leases of ``gpus`` as another run would; say 'held'; give them back when
    stdin closes."""
    leases = [GPULease(gpu) for gpu in gpus]
    if not all(lease.try_acquire() for lease in leases):
        print("busy", flush=True)
        return 1
    print("held", flush=True)
    sys.stdin.read()
    for lease in leases:
        lease.release()
    return 0


if __name__ == "__main__":
    if sys.argv[1] != "hold":
        raise SystemExit(f"unknown command {sys.argv[1]!r}; use: hold ID...")
    sys.exit(hold(sys.argv[2:]))
