"""Promotion: a fresh trial continues a paused one when the pruner says so (``resume_of``)."""

from __future__ import annotations

import pytest

import dltune
from dltune.pruners import BasePruner
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.view import StudyView


class PauseAtTwo(BasePruner):
    """Pauses every trial that is not a continuation at step 2; promotes the oldest paused
    trial that no trial continues yet."""

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return trial.last_step == 2 and trial.system_attrs.get("resume_of") is None

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        trials = study.get_trials()
        continued = {t.system_attrs.get("resume_of") for t in trials}
        for t in trials:
            if t.state == TrialState.PRUNED and t.number not in continued:
                return t
        return None


def _objective(trial: dltune.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    start = 1 + len(trial.intermediate_values)
    for step in range(start, 5):
        trial.report(x + step, step)
        if trial.should_prune():
            raise dltune.TrialPruned()
    return x


def test_a_paused_trial_is_continued_with_its_params_by_the_next_fresh_trial() -> None:
    study = dltune.create_study(pruner=PauseAtTwo(), seed=3)
    study.optimize(_objective, n_trials=4)
    t0, t1, t2, t3 = study.trials
    assert t0.state == TrialState.PRUNED and t0.last_step == 2
    assert t1.system_attrs["resume_of"] == 0 and t1.params == t0.params
    assert t1.state == TrialState.COMPLETE
    assert t2.state == TrialState.PRUNED and "resume_of" not in t2.system_attrs
    assert t3.system_attrs["resume_of"] == 2 and t3.params == t2.params


def test_enqueued_trials_and_retries_are_never_turned_into_continuations() -> None:
    study = dltune.create_study(pruner=PauseAtTwo(), seed=3)
    study.optimize(_objective, n_trials=1)
    study.enqueue_trial({"x": 0.25})
    trial = study.ask()
    assert trial.params == {} and "resume_of" not in trial.system_attrs
    assert trial.suggest_float("x", 0.0, 1.0) == 0.25


class AlwaysTrialZero(BasePruner):
    """Promotes trial 0 whenever it is paused, blind to continuations already running (as two
    workers asking at the same moment would be)."""

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return trial.last_step == 2 and trial.number == 0

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        first = study.get_trials()[0]
        return first if first.state == TrialState.PRUNED else None


def test_a_second_continuation_of_the_same_trial_gives_way_to_the_first() -> None:
    study = dltune.create_study(pruner=AlwaysTrialZero(), seed=3)
    study.optimize(_objective, n_trials=1)
    first = study.ask()
    second = study.ask()
    assert first.system_attrs["resume_of"] == 0
    assert first.suggest_float("x", 0.0, 1.0) == study.trials[0].params["x"]
    assert second.system_attrs.get("resume_of") is None and second.params == {}
    second.suggest_float("x", 0.0, 1.0)  # samples as usual


class PromotesRunning(BasePruner):
    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return False

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        trials = study.get_trials()
        return trials[0] if len(trials) > 1 else None


def test_promoting_a_trial_that_is_not_paused_is_an_error_naming_it() -> None:
    study = dltune.create_study(pruner=PromotesRunning())
    study.ask()
    with pytest.raises(RuntimeError, match=r"returned trial 0 in state RUNNING; only a PRUNED"):
        study.ask()
