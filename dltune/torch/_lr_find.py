"""The learning-rate range test: one short run with an exponentially growing learning rate.

The loss falls slowly at tiny learning rates, fastest somewhere in the middle, then blows up.
Where it falls fastest and where it bottoms out bracket the useful range; a search over
``[min(steepest / 10, lowest / 100), lowest-loss lr]`` wastes few trials on rates that barely
train or that diverge. The upper end is where the *smoothed* loss bottoms out, which lags the
raw curve a little: it errs on the high side, which a search then explores rather than
excludes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from dltune.torch._hparams import HParams
from dltune.torch._task import Task
from dltune.torch._trainer import _Tensors
from dltune.torch._trainer import resolve_device
from dltune.torch.components import build_loss
from dltune.torch.components import build_optimizer
from dltune.torch.components import check_names
from dltune.torch.datasets import load_dataset
from dltune.torch.models import build_model

__all__ = ["LR_FIND_KEY", "LRRangeResult", "lr_range_test"]

#: Study system attribute where ``dltune tune --lr-find`` keeps the range test's results.
LR_FIND_KEY = "lr_find"
#: Stop once the smoothed loss exceeds this multiple of its minimum: it has diverged.
_BLOWUP = 4.0
_SMOOTHING = 0.9


@dataclass
class LRRangeResult:
    """The range test's curve and the range it suggests.

    Attributes:
        optimizer: The optimizer tested.
        lrs: The learning rate of each step run.
        losses: The smoothed training loss at each step.
        steepest_lr: Where the smoothed loss fell fastest (per log-lr).
        min_loss_lr: Where the smoothed loss was lowest.
        low: The suggested range's lower end (``steepest_lr / 10``, or ``min_loss_lr / 100``
            if that is lower: the range spans at least two decades).
        high: The suggested range's upper end (``min_loss_lr``: beyond it the loss rises).
    """

    optimizer: str
    lrs: list[float]
    losses: list[float]
    steepest_lr: float
    min_loss_lr: float
    low: float
    high: float

    def to_json(self, max_points: int = 50) -> dict[str, Any]:
        """A JSON record with the curve thinned to ``max_points``."""
        every = max(1, math.ceil(len(self.lrs) / max_points))
        return {
            "optimizer": self.optimizer,
            "steepest_lr": self.steepest_lr,
            "min_loss_lr": self.min_loss_lr,
            "low": self.low,
            "high": self.high,
            "curve": [
                [lr, loss]
                for lr, loss in zip(self.lrs[::every], self.losses[::every], strict=True)
            ],
        }


def lr_range_test(
    task: Task,
    hparams: HParams,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    seed: int = 0,
) -> LRRangeResult:
    """Run the range test for ``hparams.optimizer`` on ``task``.

    Args:
        task: The data set and model.
        hparams: Everything but the learning rate (which the test sweeps).
        min_lr: The first learning rate.
        max_lr: The last learning rate (the test stops earlier when the loss blows up).
        steps: Batches in the sweep.
        seed: Seeds the weights and batches.

    Raises:
        ValueError: For ``min_lr >= max_lr``, non-positive rates or fewer than 10 steps.

    Example:
        >>> from dltune.torch import HParams, Task, lr_range_test
        >>> result = lr_range_test(Task(dataset="digits", checkpoint_dir=None),
        ...                        HParams(optimizer="sgd", width=32), steps=40)
        >>> result.low < result.high
        True
    """
    if not (0 < min_lr < max_lr) or not math.isfinite(max_lr):
        raise ValueError(f"min_lr={min_lr!r} and max_lr={max_lr!r} need 0 < min_lr < max_lr")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
        raise ValueError(f"steps={steps!r} must be an integer >= 10")
    hparams = replace(hparams, lr=min_lr, schedule="constant", warmup_epochs=0.0)
    check_names(hparams)
    device = resolve_device(task.device)
    data = load_dataset(
        task.dataset, task.data_dir, download=task.download, split_seed=task.split_seed
    )
    tensors = _Tensors.of(data, device)
    torch.manual_seed(seed)
    model = build_model(task.model, hparams, data.input_shape, data.n_classes).to(device)
    optimizer = build_optimizer(model.parameters(), hparams)
    loss_fn = build_loss(hparams)
    order = torch.Generator().manual_seed(seed)
    n_train = len(tensors.x_train)
    batch_size = min(hparams.batch_size, n_train)
    growth = (max_lr / min_lr) ** (1.0 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    permutation = torch.randperm(n_train, generator=order)
    cursor = 0
    model.train()
    for step in range(steps):
        lr = min_lr * growth**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        if cursor + batch_size > n_train:
            permutation, cursor = torch.randperm(n_train, generator=order), 0
        idx = permutation[cursor : cursor + batch_size].to(device)
        cursor += batch_size
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(tensors.x_train[idx]), tensors.y_train[idx])
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        avg = _SMOOTHING * avg + (1 - _SMOOTHING) * value
        smoothed = avg / (1 - _SMOOTHING ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if step > 5 and smoothed > _BLOWUP * best:
            break
        loss.backward()
        optimizer.step()
    return _suggest(hparams.optimizer, lrs, losses)


def _suggest(optimizer: str, lrs: list[float], losses: list[float]) -> LRRangeResult:
    if not lrs:
        raise ValueError(
            f"lr range test for {optimizer!r}: the loss was not finite at the first step; "
            "lower min_lr or check the data and model"
        )
    if len(lrs) < 3:
        # Diverged almost at once: the smallest rates tried are the only evidence.
        lr = lrs[0]
        return LRRangeResult(optimizer, lrs, losses, lr, lr, lr / 100, lr)
    log_lr = np.log10(np.asarray(lrs))
    curve = np.asarray(losses)
    min_index = int(np.argmin(curve))
    # The steepest descent before the minimum (after it the loss only rises).
    slopes = (
        np.gradient(curve[: min_index + 1], log_lr[: min_index + 1]) if min_index >= 2 else None
    )
    steep_index = int(np.argmin(slopes)) if slopes is not None else min_index
    steepest, lowest = lrs[steep_index], lrs[min_index]
    low = min(steepest / 10, lowest / 100)
    return LRRangeResult(optimizer, lrs, losses, steepest, lowest, low, lowest)
