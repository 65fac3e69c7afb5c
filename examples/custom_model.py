"""Tune your own PyTorch model with dltune's trainer, from Python.

The model is a plain ``torch.nn.Module`` built by a factory that receives the trial's
hyperparameters; the search space is define-by-run. Everything else (optimizers, schedules,
losses, guards, checkpoints, retraining the best configurations) comes from ``dltune.torch``.

Run:  python examples/custom_model.py     (about a minute on 2 CPU cores)
"""

from __future__ import annotations

import torch
from torch import nn

import dltune
from dltune.torch import HParams
from dltune.torch import Task
from dltune.torch import TorchObjective
from dltune.torch import retrain_top_k


class TinyConvNet(nn.Module):
    """Two convolutions and a linear head, for 1x8x8 digits."""

    def __init__(self, width: int, dropout: float, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(hparams: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The factory dltune calls for every trial."""
    return TinyConvNet(hparams.width, hparams.dropout, n_classes)


def space(trial: dltune.Trial) -> dict[str, object]:
    """Define-by-run: momentum exists only for SGD."""
    params: dict[str, object] = {
        "optimizer": trial.suggest_categorical("optimizer", ["sgd", "adam"]),
        "lr": trial.suggest_float("lr", 1e-4, 0.3, log=True),
        "width": trial.suggest_int("width", 8, 32, step=8),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
    }
    if params["optimizer"] == "sgd":
        params["momentum"] = trial.suggest_float("momentum", 0.5, 0.99)
    return params


def main() -> None:
    task = Task(dataset="digits", model=build_model, epochs=8, checkpoint_dir="checkpoints")
    study = dltune.create_study(
        study_name="digits-custom-model",
        storage="sqlite:///dltune.db",
        direction="maximize",
        load_if_exists=True,
        seed=0,
    )
    objective = TorchObjective(task, space, fixed={"batch_size": 32, "schedule": "cosine"})
    study.optimize(objective, n_trials=16, n_jobs=2)
    print(f"best validation accuracy {study.best_value:.4f} with {study.best_params}")
    report = retrain_top_k(study, task, k=2, n_seeds=2, model_path="checkpoints/custom.pt")
    best = report.best
    if best is not None:
        mean, std = best.test_accuracy_mean_std
        print(f"retrained pick (trial {best.trial_number}): test accuracy {mean:.4f} ± {std:.4f}")
        print(f"model saved to {report.model_path}")


if __name__ == "__main__":
    main()
