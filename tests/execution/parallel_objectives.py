"""Objectives and a worker script for the multi-process tests (imported by path in children)."""

from __future__ import annotations

import sys
import time

import dltune
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.storage import SQLStorage

N_REPORTS = 20


def reporting(trial: dltune.Trial) -> float:
    """Two params, ``N_REPORTS`` intermediate values, a cheap value."""
    x = trial.suggest_float("x", -1.0, 1.0)
    k = trial.suggest_int("k", 1, 8)
    for step in range(N_REPORTS):
        trial.report(x * x + k / (step + 1), step)
    return x * x + k


def sleepy(trial: dltune.Trial) -> float:
    """Long enough to be killed mid-trial."""
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(4):
        trial.report(x, step)
        time.sleep(0.15)
    return x


def main() -> None:
    """``python parallel_objectives.py URL STUDY N_TRIALS N_JOBS``: one worker or driver."""
    url, study_name, n_trials, n_jobs = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    storage = SQLStorage(url, heartbeat_seconds=0.2, grace_seconds=1.5, max_retries=2)
    study = dltune.create_study(
        study_name=study_name,
        storage=storage,
        sampler=RandomSampler(),
        pruner=NopPruner(),
        load_if_exists=True,
    )
    study.optimize(sleepy, n_trials=n_trials, n_jobs=n_jobs)


if __name__ == "__main__":
    main()
