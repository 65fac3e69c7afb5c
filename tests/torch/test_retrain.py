"""Retraining the top-k configurations, and the learning-rate range test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import dltune
from dltune.torch import HParams
from dltune.torch import Task
from dltune.torch import TorchObjective
from dltune.torch import load_dataset
from dltune.torch import load_model
from dltune.torch import lr_range_test
from dltune.torch import retrain_top_k
from dltune.torch._retrain import top_k_trials


def _space(trial: dltune.Trial) -> dict[str, object]:
    return {"lr": trial.suggest_categorical("lr", [1e-4, 3e-3, 1e-2, 3e-2])}


@pytest.fixture
def searched(digits_task: Task) -> tuple[dltune.Study, Task]:
    task = dataclasses.replace(digits_task, epochs=2)
    study = dltune.create_study(
        study_name="searched",
        direction="maximize",
        sampler=dltune.samplers.GridSampler({"lr": [1e-4, 3e-3, 1e-2, 3e-2]}),
    )
    study.optimize(TorchObjective(task, _space, fixed={"width": 16}), n_trials=4)
    return study, task


def test_top_k_are_the_best_distinct_configurations(searched: tuple[dltune.Study, Task]) -> None:
    study, _ = searched
    top = top_k_trials(study, 2)
    complete = sorted(
        (t for t in study.trials if t.value is not None), key=lambda t: -(t.value or 0)
    )
    assert [t.number for t in top] == [t.number for t in complete[:2]]


def test_retrain_scores_the_top_k_on_test_and_saves_the_chosen_model(
    searched: tuple[dltune.Study, Task], tmp_path: Path
) -> None:
    study, task = searched
    report = retrain_top_k(study, task, k=2, n_seeds=2, model_path=tmp_path / "best.pt")
    assert len(report.candidates) == 2
    for cand in report.candidates:
        assert len(cand.seeds) == 2 and len(set(cand.seeds)) == 2
        assert all(v is not None and 0 <= v <= 1 for v in cand.test_accuracy)
        assert cand.hparams["width"] == 16
    chosen = report.best
    assert chosen is not None
    means = [c.val_mean_std[0] or 0.0 for c in report.candidates]
    assert chosen.val_mean_std[0] == max(means)
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    assert saved["hparams"] == chosen.hparams and "model" in saved
    stored = study.system_attrs["retrain"]
    assert stored["chosen"] == report.chosen
    assert stored["candidates"][0]["trial_number"] == report.candidates[0].trial_number


def test_retrain_refuses_bad_counts(searched: tuple[dltune.Study, Task]) -> None:
    study, task = searched
    with pytest.raises(ValueError, match="k=0 must be an integer >= 1"):
        retrain_top_k(study, task, k=0)
    with pytest.raises(ValueError, match="n_seeds=-1 must be an integer >= 1"):
        retrain_top_k(study, task, n_seeds=-1)


def test_lr_range_test_brackets_a_useful_range(digits_task: Task) -> None:
    result = lr_range_test(digits_task, HParams(optimizer="sgd", width=16), steps=60)
    assert result.optimizer == "sgd"
    assert len(result.lrs) == len(result.losses) >= 10
    assert result.lrs == sorted(result.lrs)
    assert result.low < result.steepest_lr <= result.min_loss_lr == result.high
    assert 1e-5 < result.high < 10
    record = result.to_json(max_points=10)
    assert len(record["curve"]) <= 10 and record["high"] == result.high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "need 0 < min_lr < max_lr"),
        ({"min_lr": 0.0}, "need 0 < min_lr < max_lr"),
        ({"steps": 5}, "steps=5 must be an integer >= 10"),
    ],
)
def test_lr_range_test_refuses_bad_arguments(
    digits_task: Task, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lr_range_test(digits_task, HParams(), **kwargs)  # type: ignore[arg-type]


def test_a_configuration_with_stopped_runs_ranks_below_complete_ones(
    searched: tuple[dltune.Study, Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    study, task = searched
    best = top_k_trials(study, 1)[0]
    real_train = dltune.torch.train

    def flaky(task: Task, hparams: HParams, *, seed: int, **kwargs: object) -> object:
        if seed % 1000 == 0 and hparams.lr == best.params["lr"]:  # its first seed diverges
            raise dltune.TrialStopped("diverged at epoch 1 step 1: loss=nan", kind="diverged")
        return real_train(task, hparams, seed=seed, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dltune.torch._retrain, "train", flaky)
    report = retrain_top_k(study, task, k=2, n_seeds=2)
    first = report.candidates[0]
    assert first.trial_number == best.number
    assert first.val[0] is None and first.stopped == ["diverged at epoch 1 step 1: loss=nan"]
    assert report.chosen == 1  # the other one, whatever its mean


def test_the_saved_model_loads_back(searched: tuple[dltune.Study, Task], tmp_path: Path) -> None:
    study, task = searched
    report = retrain_top_k(study, task, k=1, n_seeds=1, model_path=tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    data = load_dataset(task.dataset, task.data_dir)
    with torch.no_grad():
        logits = model(torch.tensor(data.x_test))
    accuracy = float((logits.argmax(1) == torch.tensor(data.y_test)).float().mean())
    assert report.best is not None
    assert accuracy == pytest.approx(report.best.test_accuracy[0])
    with pytest.raises(ValueError, match="is not a model saved by dltune"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        load_model(tmp_path / "other.pt")


def test_retraining_in_two_processes_gives_the_same_report(
    searched: tuple[dltune.Study, Task],
) -> None:
    study, task = searched
    here = retrain_top_k(study, task, k=2, n_seeds=1)
    there = retrain_top_k(study, task, k=2, n_seeds=1, n_jobs=2)
    assert [c.val for c in here.candidates] == [c.val for c in there.candidates]
