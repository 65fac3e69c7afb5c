"""The trainer: reporting, guards, checkpoints and resumption, determinism, devices."""

from __future__ import annotations

import dataclasses
import math
import pickle
import time
from pathlib import Path

import pytest
import torch

import dltune
from dltune.storage import SQLStorage
from dltune.torch import Guards
from dltune.torch import HParams
from dltune.torch import Task
from dltune.torch import TorchObjective
from dltune.torch import checkpoint_path
from dltune.torch import load_checkpoint
from dltune.torch import train
from dltune.torch._objective import _owner
from dltune.torch._trainer import EpochRecord
from dltune.torch._trainer import _Guard
from dltune.torch._trainer import resolve_device
from dltune.trial import TrialState

SMALL = HParams(lr=0.01, width=16, batch_size=64)


def _history(result: dltune.torch.TrainResult) -> list[tuple[float, float, float]]:
    return [(r.train_loss, r.val_loss, r.val_accuracy) for r in result.history]


def test_trains_digits_and_reports_each_epoch(digits_task: Task) -> None:
    study = dltune.create_study(direction="maximize")
    trial = study.ask()
    result = train(digits_task, SMALL, seed=0, trial=trial, evaluate_test=True)
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert trial._intermediate_values == {r.epoch: r.val_accuracy for r in result.history}
    assert result.value == result.history[-1].val_accuracy > 0.8
    assert result.test_accuracy is not None and result.test_accuracy > 0.8
    assert result.n_params > 0


def test_same_seed_same_run_other_seed_other_run(digits_task: Task) -> None:
    hp = dataclasses.replace(SMALL, dropout=0.2)
    task = dataclasses.replace(digits_task, checkpoint_dir=None)
    first, again = train(task, hp, seed=3), train(task, hp, seed=3)
    other = train(task, hp, seed=4)
    assert _history(first) == _history(again)
    assert _history(first) != _history(other)


def test_sgd_with_lr_10_diverges_with_a_reason(digits_task: Task) -> None:
    with pytest.raises(dltune.TrialStopped, match=r"^diverged at epoch \d+(: | step)") as info:
        train(digits_task, HParams(optimizer="sgd", lr=10.0, momentum=0.9, width=16), seed=0)
    assert info.value.kind == "diverged"


def test_exploding_gradient_norm_is_divergence(digits_task: Task) -> None:
    task = dataclasses.replace(digits_task, guards=Guards(max_grad_norm=1e-3))
    with pytest.raises(dltune.TrialStopped, match=r"step 1: gradient norm=\S+ > 0.001"):
        train(task, SMALL, seed=0)


def test_a_run_that_does_not_learn_is_stopped(digits_task: Task) -> None:
    hp = HParams(optimizer="sgd", lr=1e-7, momentum=0.0, width=16)
    with pytest.raises(dltune.TrialStopped, match="^not learning after 2 epochs: ") as info:
        train(digits_task, hp, seed=0)
    assert info.value.kind == "not_learning"


def test_disabled_guards_let_a_stuck_run_finish(digits_task: Task) -> None:
    task = dataclasses.replace(digits_task, guards=Guards(enabled=False))
    hp = HParams(optimizer="sgd", lr=1e-7, momentum=0.0, width=16)
    assert len(train(task, hp, seed=0).history) == 3


def _record(epoch: int, train_loss: float, val_accuracy: float) -> EpochRecord:
    return EpochRecord(epoch, train_loss, 1.0, val_accuracy, 0.1, 0.0)


def test_guard_rules() -> None:
    task = Task(guards=Guards(loss_ratio=5, patience_epochs=2, chance_margin=0.05))
    guard = _Guard(task.guards, n_classes=10, start_loss=None)
    guard.check_step(1, 1, 2.0, 1.0)  # sets the start
    guard.check_step(1, 2, 9.9, 1.0)
    with pytest.raises(dltune.TrialStopped, match=r"loss=10.5 > 5x its start 2"):
        guard.check_step(1, 3, 10.5, 1.0)
    with pytest.raises(dltune.TrialStopped, match=r"step 4: loss=inf"):
        guard.check_step(1, 4, math.inf, None)
    guard.check_epoch(_record(1, 2.9, 0.1))  # before the patience: anything but divergence
    with pytest.raises(dltune.TrialStopped, match=r"mean training loss 3.1 > 1.5x its start 2"):
        guard.check_epoch(_record(1, 3.1, 0.5))
    with pytest.raises(dltune.TrialStopped, match=r"training loss 1.99 is not below its start"):
        guard.check_epoch(_record(2, 1.99, 0.9))
    with pytest.raises(dltune.TrialStopped, match=r"accuracy 0.140 is at chance \(0.100\)"):
        guard.check_epoch(_record(2, 1.0, 0.14))
    guard.check_epoch(_record(2, 1.0, 0.16))
    with pytest.raises(dltune.TrialStopped, match="validation loss=nan"):
        guard.check_epoch(EpochRecord(3, 1.0, math.nan, 0.9, 0.1, 0.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss_ratio": 1.0}, "guards.loss_ratio=1.0 must be > 1"),
        ({"epoch_loss_ratio": 0.5}, "guards.epoch_loss_ratio=0.5 must be > 1"),
        ({"max_grad_norm": 0.0}, "guards.max_grad_norm=0.0 must be > 0 or null"),
        ({"patience_epochs": -1}, "guards.patience_epochs=-1 must be an integer >= 0"),
        ({"min_improvement": 1.5}, r"guards.min_improvement=1.5 must be in \(0, 1\]"),
        ({"chance_margin": 1.0}, r"guards.chance_margin=1.0 must be in \[0, 1\)"),
    ],
)
def test_bad_guards_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Guards(**kwargs)  # type: ignore[arg-type]


def test_bad_task_is_refused() -> None:
    with pytest.raises(ValueError, match="epochs=0 must be an integer >= 1"):
        Task(epochs=0)
    with pytest.raises(ValueError, match="metric='accuracy' is not one of val_accuracy, val_loss"):
        Task(metric="accuracy")


def test_resuming_from_a_checkpoint_continues_the_same_run(digits_task: Task) -> None:
    hp = dataclasses.replace(SMALL, dropout=0.1, schedule="step", step_size=1, step_gamma=0.5)
    path = digits_task.checkpoint_dir / "run.pt"  # type: ignore[operator]
    two = dataclasses.replace(digits_task, epochs=2)
    train(two, hp, seed=5, checkpoint=path)
    resumed = train(digits_task, hp, seed=5, checkpoint=path)
    straight = train(dataclasses.replace(digits_task, checkpoint_dir=None), hp, seed=5)
    assert resumed.resumed_from_epoch == 2
    assert _history(resumed) == _history(straight)


def test_a_checkpoint_of_other_hyperparameters_is_ignored(digits_task: Task) -> None:
    path = digits_task.checkpoint_dir / "run.pt"  # type: ignore[operator]
    train(dataclasses.replace(digits_task, epochs=1), SMALL, seed=0, checkpoint=path)
    other = dataclasses.replace(SMALL, lr=0.02)
    assert train(digits_task, other, seed=0, checkpoint=path).resumed_from_epoch == 0


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran on load",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": _Exploit()}, path)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps({"x": _Exploit()}))
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        load_checkpoint(path)


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device='tpu' is not a device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            resolve_device("cuda")


def _space(trial: dltune.Trial) -> dict[str, object]:
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    lr = 10.0 if optimizer == "sgd" else 0.01
    return {"optimizer": optimizer, "lr": lr}


def test_objective_records_diverged_trials_and_the_study_goes_on(
    digits_task: Task, tmp_path: Path
) -> None:
    study = dltune.create_study(
        study_name="guards",
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        direction="maximize",
        sampler=dltune.samplers.GridSampler({"optimizer": ["sgd", "adam"]}),
    )
    study.optimize(TorchObjective(digits_task, _space, fixed={"width": 16}), n_trials=2)
    by_optimizer = {t.params["optimizer"]: t for t in study.trials}
    sgd, adam = by_optimizer["sgd"], by_optimizer["adam"]
    assert sgd.state == TrialState.PRUNED and sgd.outcome == "diverged"
    assert sgd.reason is not None and sgd.reason.startswith("diverged at epoch")
    assert adam.state == TrialState.COMPLETE and adam.outcome == "complete"
    assert adam.system_attrs["hparams"]["width"] == 16
    assert adam.user_attrs["metrics"]["epochs"] == 3
    assert adam.value == adam.intermediate_values[3]


def test_a_retried_trial_resumes_from_the_checkpoint_of_the_one_it_retries(
    digits_task: Task, tmp_path: Path
) -> None:
    storage = SQLStorage(
        f"sqlite:///{tmp_path / 'retry.db'}",
        heartbeat_seconds=0.1,
        grace_seconds=0.5,
        max_retries=1,
    )
    study = dltune.create_study(study_name="retry", storage=storage, direction="maximize")
    objective = TorchObjective(digits_task, lambda t: {"lr": 0.01}, fixed={"width": 16}, seed=7)
    # Trial 0 trains two of three epochs, then its worker "dies": no heartbeat, no result.
    dead = study.ask()
    two = dataclasses.replace(digits_task, epochs=2)
    train(
        two,
        objective.hparams(dead),
        seed=7,
        trial=dead,
        checkpoint=checkpoint_path(digits_task, "retry", 0),
        owner=_owner("retry", dead._frozen()),
    )
    time.sleep(0.6)
    storage.fail_stale_trials(study._study_id)
    study.optimize(objective, n_trials=1)  # the retry takes the place of the trial it retries
    first, retry = study.trials
    assert first.state == TrialState.FAIL and first.reason == "stale"
    assert retry.system_attrs["retry_of"] == 0 and retry.state == TrialState.COMPLETE
    assert retry.user_attrs["metrics"]["resumed_from_epoch"] == 2
    assert retry.system_attrs["seed"] == 7  # the dead run's seed, not 7 + 1
    assert sorted(retry.intermediate_values) == [1, 2, 3]
    assert retry.intermediate_values[2] == first.intermediate_values[2]
    straight = train(
        dataclasses.replace(digits_task, checkpoint_dir=None),
        objective.hparams(study.ask()),
        seed=7,
    )
    assert retry.value == straight.value
    finished = checkpoint_path(digits_task, "retry", 1)
    assert finished is not None and not finished.exists()  # finished: cleaned up


def test_a_checkpoint_of_a_deleted_study_of_the_same_name_is_not_resumed(
    digits_task: Task,
) -> None:
    objective = TorchObjective(digits_task, lambda t: {"lr": 0.01}, fixed={"width": 16})
    path = checkpoint_path(digits_task, "reused", 0)
    assert path is not None
    old = dltune.create_study(study_name="reused", direction="maximize")
    train(
        dataclasses.replace(digits_task, epochs=1),
        objective.hparams(old.ask()),
        seed=0,
        checkpoint=path,
        owner={"study": "reused", "trial_id": 0, "started": "long ago"},
    )
    assert path.exists()
    new = dltune.create_study(study_name="reused", direction="maximize")
    new.optimize(objective, n_trials=1)
    assert new.trials[0].user_attrs["metrics"]["resumed_from_epoch"] == 0


def test_objective_refuses_bad_arguments(digits_task: Task) -> None:
    with pytest.raises(TypeError, match="must be a dltune.torch.Task"):
        TorchObjective("digits", lambda t: {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a SearchSpace or a callable"):
        TorchObjective(digits_task, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        TorchObjective(digits_task, lambda t: {}, fixed={"lrate": 0.1})


def test_val_loss_is_cross_entropy_whatever_the_training_loss(digits_task: Task) -> None:
    task = dataclasses.replace(digits_task, epochs=1, checkpoint_dir=None, metric="val_loss")
    losses = {
        name: train(task, dataclasses.replace(SMALL, loss=name), seed=0).value
        for name in ("cross_entropy", "focal", "label_smoothing")
    }
    # Same seed, same data: the runs differ only by what they optimise, so their
    # cross-entropy on validation is of one scale (focal's own loss would be far smaller).
    assert max(losses.values()) < 2 * min(losses.values())


def test_a_last_batch_of_one_sample_is_not_trained_on(digits_task: Task) -> None:
    n_train = 1079  # digits' training split
    assert n_train % 22 == 1
    hp = HParams(batch_size=22, width=8, depth=2)
    task = dataclasses.replace(digits_task, model="resnet", epochs=1, checkpoint_dir=None)
    assert len(train(task, hp, seed=0).history) == 1
