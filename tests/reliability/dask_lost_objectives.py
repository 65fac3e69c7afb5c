"""The objective of the lost-Dask-worker scenario, imported by path on the Dask workers."""

from __future__ import annotations

import time

import dltune


def slow_steps(trial: dltune.Trial) -> float:
    """About a second of reported steps: long enough to kill its worker mid-trial."""
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(5):
        trial.report(x, step)
        time.sleep(0.2)
    return x
