"""A trial promoted from a pause resumes from the paused trial's checkpoint, not epoch 0."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dltune
from dltune.pruners import BasePruner
from dltune.torch import Task
from dltune.torch import TorchObjective
from dltune.torch import checkpoint_path
from dltune.torch import train
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.view import StudyView


class PauseAtTwo(BasePruner):
    """Pauses trial 0 at epoch 2, and promotes it for the next trial."""

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return trial.number == 0 and trial.last_step == 2

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        trials = study.get_trials()
        if trials[0].state == TrialState.PRUNED and len(trials) == 2:
            return trials[0]
        return None


def test_a_promoted_trial_trains_only_the_epochs_the_paused_one_had_not(
    digits_task: Task, tmp_path: Path
) -> None:
    study = dltune.create_study(
        study_name="promote",
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        direction="maximize",
        pruner=PauseAtTwo(),
    )
    space = {"lr": 0.02}
    objective = TorchObjective(digits_task, lambda t: space, fixed={"width": 16}, seed=5)
    study.optimize(objective, n_trials=2)
    paused, promoted = study.trials
    assert paused.state == TrialState.PRUNED and sorted(paused.intermediate_values) == [1, 2]
    assert promoted.state == TrialState.COMPLETE
    assert promoted.system_attrs["resume_of"] == 0
    metrics = promoted.user_attrs["metrics"]
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs"] == 3
    assert metrics["seconds_saved"] > 0
    assert promoted.system_attrs["seed"] == 5  # the paused run's seed
    assert promoted.intermediate_values[2] == paused.intermediate_values[2]
    # Pausing and resuming changes nothing: the same run as one trained straight through.
    straight = train(
        dataclasses.replace(digits_task, checkpoint_dir=None),
        objective.hparams(study.ask()),
        seed=5,
    )
    assert promoted.value == straight.value
    for number in (0, 1):  # the continuation finished: neither checkpoint is kept
        path = checkpoint_path(digits_task, "promote", number)
        assert path is not None and not path.exists()
