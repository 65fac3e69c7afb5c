"""The trainer's hyperparameters: one flat record, filled from a search space or by hand.

Every tunable knob of :func:`dltune.torch.train` is a field here, so a search space (YAML or
Python) names them directly. Components read only the fields they use: ``momentum`` matters to
SGD and RMSprop, ``beta1``/``beta2`` to the Adam family, ``label_smoothing`` to that loss, and so
on. A value for a field the chosen component ignores is allowed (a conditional space leaves the
others at their defaults).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dltune.exceptions import DLTuneError

__all__ = ["HParams", "HParamsError"]


class HParamsError(DLTuneError, ValueError):
    """A hyperparameter name or value the trainer cannot use."""


@dataclass(frozen=True)
class HParams:
    """Everything the trainer tunes, with usable defaults.

    Attributes:
        optimizer: A name in ``dltune.torch.components.OPTIMIZERS`` (sgd, adam, adamw, rmsprop,
            adagrad).
        lr: The (peak) learning rate.
        momentum: Momentum for SGD and RMSprop.
        nesterov: Nesterov momentum for SGD (needs ``momentum > 0``).
        beta1: Adam/AdamW first-moment decay.
        beta2: Adam/AdamW second-moment decay.
        weight_decay: L2 penalty (decoupled for AdamW).
        schedule: A name in ``SCHEDULES`` (constant, step, cosine, onecycle, warmup).
        warmup_epochs: Linear warm-up length in epochs (may be fractional); used by every
            schedule but onecycle, which has its own warm-up.
        step_size: Epochs between decays of the step schedule.
        step_gamma: The step schedule's decay factor.
        activation: A name in ``ACTIVATIONS``.
        loss: A name in ``LOSSES`` (cross_entropy, label_smoothing, focal).
        label_smoothing: Smoothing of the label_smoothing loss.
        focal_gamma: The focal loss's focusing parameter.
        init: A name in ``INITS`` (default keeps the framework's initialisation).
        batch_size: Training batch size.
        dropout: Dropout probability in the model.
        grad_clip: Clip the global gradient norm to this; ``None`` (or 0) does not clip.
        depth: Hidden layers (MLP) or convolutional stages (CNN, ResNet).
        width: Hidden units (MLP) or base channels (CNN, ResNet).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_size: int = 10
    step_gamma: float = 0.1
    activation: str = "relu"
    loss: str = "cross_entropy"
    label_smoothing: float = 0.1
    focal_gamma: float = 2.0
    init: str = "default"
    batch_size: int = 64
    dropout: float = 0.0
    grad_clip: float | None = None
    depth: int = 2
    width: int = 64

    def __post_init__(self) -> None:
        for check in _CHECKS:
            check(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """The names a search space may set."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **fixed: Any) -> HParams:
        """Build from a trial's params (plus fixed values, which the params override).

        Raises:
            HParamsError: For an unknown name (listing the valid ones) or a bad value.
        """
        merged = {**fixed, **params}
        valid = cls.field_names()
        unknown = sorted(k for k in merged if k not in valid)
        if unknown:
            raise HParamsError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))}; the trainer "
                f"accepts: {', '.join(valid)}"
            )
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


def _number(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise HParamsError(f"{name}={value!r} must be {kind}")
    fine = (
        math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not fine:
        lo = "(" if low_open else "["
        hi = ")" if high_open or high == math.inf else "]"
        raise HParamsError(f"{name}={value!r} is out of range; accepted: {lo}{low}, {high}{hi}")


def _check_numbers(hp: HParams) -> None:
    for name in ("optimizer", "schedule", "activation", "loss", "init"):
        value = getattr(hp, name)
        if not isinstance(value, str):
            raise HParamsError(f"{name}={value!r} must be a name (a string)")
    _number("lr", hp.lr, low=0, low_open=True)
    _number("momentum", hp.momentum, low=0, high=1, high_open=True)
    _number("beta1", hp.beta1, low=0, high=1, high_open=True)
    _number("beta2", hp.beta2, low=0, high=1, high_open=True)
    _number("weight_decay", hp.weight_decay, low=0)
    _number("warmup_epochs", hp.warmup_epochs, low=0)
    _number("step_size", hp.step_size, low=1, integer=True)
    _number("step_gamma", hp.step_gamma, low=0, high=1, low_open=True)
    _number("label_smoothing", hp.label_smoothing, low=0, high=1, high_open=True)
    _number("focal_gamma", hp.focal_gamma, low=0)
    _number("batch_size", hp.batch_size, low=1, integer=True)
    _number("dropout", hp.dropout, low=0, high=1, high_open=True)
    if hp.grad_clip is not None:
        _number("grad_clip", hp.grad_clip, low=0)
    _number("depth", hp.depth, low=1, integer=True)
    _number("width", hp.width, low=1, integer=True)
    if not isinstance(hp.nesterov, bool):
        raise HParamsError(f"nesterov={hp.nesterov!r} must be true or false")
    if hp.nesterov and hp.optimizer.strip().lower() == "sgd" and hp.momentum == 0:
        raise HParamsError(
            f"nesterov={hp.nesterov!r} needs momentum > 0, got momentum={hp.momentum!r}; "
            "set momentum > 0 or nesterov to false"
        )


_CHECKS = [_check_numbers]
