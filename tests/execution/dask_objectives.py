"""Objectives for the Dask tests, imported by path on the Dask workers (module-level only)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import dltune

Objective = Callable[[dltune.Trial], float]


def quadratic(trial: dltune.Trial) -> float:
    """A cheap objective with a little sleep, so both workers take trials."""
    x = trial.suggest_float("x", -2.0, 2.0)
    time.sleep(0.05)
    return x * x


def make_shifted(shift: float) -> Objective:
    """A factory: ``(x - shift) ** 2`` (ObjectiveRef('dask_objectives:make_shifted', s))."""

    def objective(trial: dltune.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        return (x - shift) ** 2 + shift

    return objective


def not_callable(value: int) -> int:
    """A broken factory: returns a number, not an objective."""
    return value


class Boom(ValueError):
    """The objective error of the tests."""


def fails_on_third(trial: dltune.Trial) -> float:
    """Raises :class:`Boom` on trial number 2."""
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 2:
        raise Boom(f"boom in trial {trial.number}")
    time.sleep(0.05)
    return x


def slow_steps(trial: dltune.Trial) -> float:
    """About a second of reported steps: long enough to kill its worker mid-trial."""
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(5):
        trial.report(x, step)
        time.sleep(0.2)
    return x


def hangs(trial: dltune.Trial) -> float:
    """Reports once, then sleeps far longer than any test: only an interrupt ends it."""
    trial.report(0.0, 0)
    time.sleep(600)
    return 0.0


def main() -> None:
    """``python dask_objectives.py URL``: optimize ``hangs`` on an owned LocalCluster."""
    import dask_objectives  # by its import path: this file runs as __main__, workers cannot

    from dltune.execution import DaskExecutor
    from dltune.pruners import NopPruner
    from dltune.samplers import RandomSampler

    study = dltune.create_study(
        study_name="hang", storage=sys.argv[1], sampler=RandomSampler(), pruner=NopPruner()
    )
    study.optimize(dask_objectives.hangs, n_trials=2, executor=DaskExecutor(n_workers=1))


if __name__ == "__main__":
    main()
