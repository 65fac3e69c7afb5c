"""What to train and how: the data set, the model, the epochs, the guards, the device."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from dltune.torch._hparams import HParams

__all__ = ["METRICS", "Guards", "ModelFactory", "Task"]

#: What the trainer can report as the trial's value, with the direction that is better.
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}

#: A user's model: ``factory(hparams, input_shape, n_classes) -> torch.nn.Module``.
ModelFactory = Callable[["HParams", tuple[int, ...], int], Any]


@dataclass(frozen=True)
class Guards:
    """When the trainer gives up on a trial, and says why.

    A trial *diverges* when a training loss is NaN or infinite, when one batch's loss exceeds
    ``loss_ratio`` times the first batch's loss, when an epoch's mean training loss exceeds
    ``epoch_loss_ratio`` times it (the loss went up, not down), or when the gradient norm
    (before clipping) exceeds ``max_grad_norm``. A trial is *not learning* when, after
    ``patience_epochs`` epochs, its mean training loss of the last epoch is not below
    ``min_improvement`` times the first batch's loss, or its validation accuracy is within
    ``chance_margin`` of chance (``1 / n_classes``). Either ends the trial at once as PRUNED
    with the reason; the study goes on.

    Attributes:
        enabled: ``False`` turns every guard off.
        loss_ratio: Divergence threshold for one batch, as a multiple of the starting loss.
        epoch_loss_ratio: Divergence threshold for an epoch's mean training loss.
        max_grad_norm: Divergence threshold on the global gradient norm; ``None`` disables it.
        patience_epochs: Epochs before the not-learning checks apply; ``0`` disables them.
        min_improvement: The loss must have fallen below this fraction of its start.
        chance_margin: Accuracy this close to chance (absolute) counts as chance.
    """

    enabled: bool = True
    loss_ratio: float = 10.0
    epoch_loss_ratio: float = 1.5
    max_grad_norm: float | None = 1e4
    patience_epochs: int = 2
    min_improvement: float = 0.99
    chance_margin: float = 0.05

    def __post_init__(self) -> None:
        if not self.loss_ratio > 1:
            raise ValueError(f"guards.loss_ratio={self.loss_ratio!r} must be > 1")
        if not self.epoch_loss_ratio > 1:
            raise ValueError(f"guards.epoch_loss_ratio={self.epoch_loss_ratio!r} must be > 1")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"guards.max_grad_norm={self.max_grad_norm!r} must be > 0 or null")
        if isinstance(self.patience_epochs, bool) or not (
            isinstance(self.patience_epochs, int) and self.patience_epochs >= 0
        ):
            raise ValueError(
                f"guards.patience_epochs={self.patience_epochs!r} must be an integer >= 0"
            )
        if not 0 < self.min_improvement <= 1:
            raise ValueError(f"guards.min_improvement={self.min_improvement!r} must be in (0, 1]")
        if not 0 <= self.chance_margin < 1:
            raise ValueError(f"guards.chance_margin={self.chance_margin!r} must be in [0, 1)")


def _default_data_dir() -> Path:
    env = os.environ.get("DLTUNE_DATA_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dltune" / "data"


@dataclass(frozen=True)
class Task:
    """A training task: everything about a trial that is not a hyperparameter.

    Attributes:
        dataset: A name in ``dltune.torch.datasets.DATASETS`` (digits, mnist1d, mnist,
            fashion_mnist, cifar10).
        model: A name in ``dltune.torch.models.MODELS`` (mlp, cnn, resnet), or a factory
            ``(hparams, input_shape, n_classes) -> nn.Module`` for a model of one's own.
        epochs: Training epochs per trial (the maximum resource for pruners).
        metric: ``val_accuracy`` or ``val_loss``: the value reported each epoch and returned.
        data_dir: Where data sets are read from and downloaded to (default:
            ``$DLTUNE_DATA_DIR``, else ``~/.cache/dltune/data``).
        download: Download missing data set files (with checksum verification).
        device: ``auto`` (the first CUDA device if there is one), ``cpu``, ``cuda`` or
            ``cuda:N``.
        checkpoint_dir: Per-trial checkpoints go to ``checkpoint_dir/<study folder>/``;
            ``None`` disables checkpoints.
        keep_checkpoints: Keep the checkpoints of finished trials (by default only those a
            pruner stopped or that failed are kept: they may be resumed).
        guards: Divergence and not-learning guards.
        split_seed: The seed of the fixed train/validation split (the same for every trial).
        threads: Torch intra-op threads per worker; ``None`` leaves torch's default.
    """

    dataset: str = "digits"
    model: str | ModelFactory = "mlp"
    epochs: int = 10
    metric: str = "val_accuracy"
    data_dir: Path = field(default_factory=_default_data_dir)
    download: bool = True
    device: str = "auto"
    checkpoint_dir: Path | None = Path("checkpoints")
    keep_checkpoints: bool = False
    guards: Guards = field(default_factory=Guards)
    split_seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not (
            isinstance(self.epochs, int) and self.epochs >= 1
        ):
            raise ValueError(f"epochs={self.epochs!r} must be an integer >= 1")
        if self.metric not in METRICS:
            raise ValueError(f"metric={self.metric!r} is not one of {', '.join(METRICS)}")
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir).expanduser())

    @property
    def direction(self) -> str:
        """``maximize`` for accuracy, ``minimize`` for loss."""
        return METRICS[self.metric]
