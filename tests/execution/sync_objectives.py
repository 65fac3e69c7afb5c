"""Objectives and pruners for the reproducibility tests, importable by worker processes."""

from __future__ import annotations

import random
import time

import numpy as np

import dltune
from dltune.pruners import BasePruner
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.view import StudyView

N_STEPS = 4
#: Each trial sleeps up to this long (from OS entropy, not a seed): workers finish in a
#: different order in every run.
MAX_JITTER_SECONDS = 0.03


def jittery(trial: dltune.Trial) -> float:
    """Deterministic values (from the params and ``trial.seed``) after a random sleep; reports
    ``N_STEPS`` steps and obeys the pruner."""
    x = trial.suggest_float("x", -2.0, 2.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    noise = np.random.default_rng(trial.seed).normal(0.0, 0.01, N_STEPS)
    time.sleep(random.random() * MAX_JITTER_SECONDS)
    value = x * x + y
    for step in range(N_STEPS):
        trial.report(value + 1.0 / (step + 1) + float(noise[step]), step)
        if trial.should_prune():
            raise dltune.TrialPruned()
    return value + float(noise[-1])


def record_seed(trial: dltune.Trial) -> float:
    """Keeps ``trial.seed`` as a user attribute (read back by the test) and returns it."""
    trial.set_user_attr("seen_seed", trial.seed)
    return float(trial.seed)


def resumable(trial: dltune.Trial) -> float:
    """Reports steps 1..4 from where the paused trial it continues stopped; keeps
    ``trial.seed`` as the user attribute ``seen_seed``."""
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("seen_seed", trial.seed)
    resumed = trial.system_attrs.get("resume_of")
    start = 3 if resumed is not None else 1
    time.sleep(random.random() * MAX_JITTER_SECONDS)
    for step in range(start, 5):
        trial.report(x + step, step)
        if trial.should_prune():
            raise dltune.TrialPruned()
    return x


class PauseAtStepTwo(BasePruner):
    """Pauses every trial that is not a continuation at step 2. ``promote`` gives the oldest
    paused trial nothing continues yet; with ``by_parity``, only one whose number has the new
    trial's parity (two 'brackets', as Hyperband has)."""

    def __init__(self, by_parity: bool = False) -> None:
        self.by_parity = by_parity

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return trial.last_step == 2 and trial.system_attrs.get("resume_of") is None

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        trials = study.get_trials()
        continued = {t.system_attrs.get("resume_of") for t in trials}
        for t in trials:
            if self.by_parity and t.number % 2 != trial.number % 2:
                continue
            if t.state == TrialState.PRUNED and t.number not in continued:
                return t
        return None
