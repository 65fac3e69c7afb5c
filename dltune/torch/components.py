"""The trainer's tunable components, each chosen by name from a registry.

Five registries hold what :class:`~dltune.torch.HParams` names: :data:`OPTIMIZERS`,
:data:`SCHEDULES`, :data:`ACTIVATIONS`, :data:`LOSSES` and :data:`INITS`. A builder turns an
``HParams`` into the torch object (:func:`build_optimizer`, :func:`build_scheduler`,
:func:`make_activation`, :func:`build_loss`, :func:`apply_init`), and :func:`check_names` checks
all five names at once, so a typo fails before any training. Adding an entry to a registry makes
it available to configs and search spaces at once.

Example:
    >>> from dltune.torch import HParams
    >>> check_names(HParams(optimizer="sgd", schedule="cosine", loss="focal"))
    >>> OPTIMIZERS.names()
    ['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad']
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.lr_scheduler import OneCycleLR
from torch.optim.optimizer import ParamsT

from dltune._registry import Registry
from dltune.exceptions import UnknownNameError
from dltune.torch._hparams import HParams
from dltune.torch._hparams import HParamsError

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "ActivationSpec",
    "FocalLoss",
    "GainName",
    "OptimizerSpec",
    "ScheduleFactory",
    "WeightInit",
    "apply_init",
    "build_loss",
    "build_optimizer",
    "build_scheduler",
    "check_names",
    "make_activation",
]

# ---------------------------------------------------------------------------------------------
# Optimizers


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one optimizer from ``HParams``.

    Attributes:
        build: ``build(params, hparams) -> Optimizer``; reads ``lr``, ``weight_decay`` and the
            fields in ``uses``.
        uses: The ``HParams`` fields it reads beyond ``lr`` and ``weight_decay`` (what a
            conditional search space should tune along with it).

    Example:
        >>> OPTIMIZERS.get("sgd").uses
        ('momentum', 'nesterov')
    """

    build: Callable[[ParamsT, HParams], Optimizer]
    uses: tuple[str, ...] = ()


#: Optimizers by name: sgd, adam, adamw, rmsprop, adagrad.
OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


def _sgd(params: ParamsT, hp: HParams) -> Optimizer:
    if hp.nesterov and hp.momentum == 0:
        raise HParamsError(
            f"nesterov={hp.nesterov!r} needs momentum > 0, got momentum={hp.momentum!r}; "
            "set momentum > 0 or nesterov to false"
        )
    return torch.optim.SGD(
        params,
        lr=hp.lr,
        momentum=hp.momentum,
        nesterov=hp.nesterov,
        weight_decay=hp.weight_decay,
    )


def _adam(params: ParamsT, hp: HParams) -> Optimizer:
    return torch.optim.Adam(
        params, lr=hp.lr, betas=(hp.beta1, hp.beta2), weight_decay=hp.weight_decay
    )


def _adamw(params: ParamsT, hp: HParams) -> Optimizer:
    return torch.optim.AdamW(
        params, lr=hp.lr, betas=(hp.beta1, hp.beta2), weight_decay=hp.weight_decay
    )


def _rmsprop(params: ParamsT, hp: HParams) -> Optimizer:
    return torch.optim.RMSprop(
        params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
    )


def _adagrad(params: ParamsT, hp: HParams) -> Optimizer:
    return torch.optim.Adagrad(params, lr=hp.lr, weight_decay=hp.weight_decay)


OPTIMIZERS.add("sgd", OptimizerSpec(_sgd, uses=("momentum", "nesterov")))
OPTIMIZERS.add("adam", OptimizerSpec(_adam, uses=("beta1", "beta2")))
OPTIMIZERS.add("adamw", OptimizerSpec(_adamw, uses=("beta1", "beta2")))
OPTIMIZERS.add("rmsprop", OptimizerSpec(_rmsprop, uses=("momentum",)))
OPTIMIZERS.add("adagrad", OptimizerSpec(_adagrad))


def build_optimizer(params: ParamsT, hp: HParams) -> Optimizer:
    """The optimizer ``hp.optimizer`` over ``params``, set from ``hp``.

    Weight decay is an L2 penalty for every optimizer but AdamW, where it is decoupled.

    Args:
        params: Parameters (or parameter groups), e.g. ``model.parameters()``.
        hp: The hyperparameters.

    Returns:
        A torch optimizer.

    Raises:
        UnknownNameError: For an unknown ``hp.optimizer``, listing the valid names.
        HParamsError: For ``nesterov`` with ``momentum == 0``.

    Example:
        >>> opt = build_optimizer([torch.zeros(2, requires_grad=True)], HParams(optimizer="sgd"))
        >>> opt.param_groups[0]["momentum"]
        0.9
    """
    return OPTIMIZERS.get(hp.optimizer).build(params, hp)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (stepped once per batch)

#: ``factory(optimizer, hparams, steps_per_epoch, epochs) -> LRScheduler``, stepped per batch.
ScheduleFactory = Callable[[Optimizer, HParams, int, int], LRScheduler]

#: Learning-rate schedules by name: constant, step, cosine, onecycle, warmup.
SCHEDULES: Registry[ScheduleFactory] = Registry("schedule")


def _warmup_steps(hp: HParams, steps_per_epoch: int) -> int:
    if hp.warmup_epochs == 0:
        return 0
    return max(1, round(hp.warmup_epochs * steps_per_epoch))


def _lambda_schedule(optimizer: Optimizer, warmup: int, shape: Callable[[int], float]) -> LambdaLR:
    """A LambdaLR of ``shape`` with a linear warm-up over the first ``warmup`` steps.

    The factor is a closure (a plain function), which LambdaLR leaves out of its state_dict:
    a resumed run rebuilds it from the hyperparameters and loads only the step count.
    """

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return warm * shape(step)

    return LambdaLR(optimizer, factor)


def _constant(optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int) -> LRScheduler:
    return _lambda_schedule(optimizer, _warmup_steps(hp, steps_per_epoch), lambda step: 1.0)


def _step(optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int) -> LRScheduler:
    period = hp.step_size * steps_per_epoch
    gamma = hp.step_gamma

    def shape(step: int) -> float:
        return float(gamma ** (step // period))

    return _lambda_schedule(optimizer, _warmup_steps(hp, steps_per_epoch), shape)


def _cosine(optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int) -> LRScheduler:
    warmup = _warmup_steps(hp, steps_per_epoch)
    span = max(1, steps_per_epoch * epochs - warmup)

    def shape(step: int) -> float:
        progress = min(1.0, max(0.0, (step - warmup) / span))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return _lambda_schedule(optimizer, warmup, shape)


def _onecycle(optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int) -> LRScheduler:
    # cycle_momentum=False: the tuned momentum / beta1 stay as given, and optimizers without
    # momentum (adagrad) work too.
    return OneCycleLR(
        optimizer, max_lr=hp.lr, total_steps=steps_per_epoch * epochs, cycle_momentum=False
    )


def _warmup(optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int) -> LRScheduler:
    # A warm-up schedule always warms up: one epoch when warmup_epochs is left at 0, so a
    # search over schedules does not need a conditional warmup_epochs to make it valid.
    epochs_of_warmup = hp.warmup_epochs if hp.warmup_epochs > 0 else 1.0
    warmup = max(1, round(epochs_of_warmup * steps_per_epoch))
    return _lambda_schedule(optimizer, warmup, lambda step: 1.0)


SCHEDULES.add("constant", _constant)
SCHEDULES.add("step", _step)
SCHEDULES.add("cosine", _cosine)
SCHEDULES.add("onecycle", _onecycle)
SCHEDULES.add("warmup", _warmup)


def build_scheduler(
    optimizer: Optimizer, hp: HParams, steps_per_epoch: int, epochs: int
) -> LRScheduler:
    """The learning-rate schedule ``hp.schedule``, to be stepped once per batch.

    - ``constant``: ``hp.lr`` throughout.
    - ``step``: multiplied by ``hp.step_gamma`` every ``hp.step_size`` epochs (counted from the
      start of the run).
    - ``cosine``: cosine decay from ``hp.lr`` to 0 over the run (after any warm-up).
    - ``onecycle``: torch's ``OneCycleLR`` with ``max_lr=hp.lr`` over the run (its own warm-up;
      momentum is not cycled, so ``hp.momentum``/``hp.beta1`` hold).
    - ``warmup``: linear warm-up over ``hp.warmup_epochs`` (one epoch when it is 0), then
      constant.

    ``hp.warmup_epochs > 0`` puts a linear warm-up (from ``lr / warmup_steps`` up to the
    schedule's value) in front of constant, step and cosine too; fractional epochs round to
    whole batches (at least one). The scheduler's ``state_dict`` holds no functions. To resume,
    build the optimizer and the scheduler as at the start, then load the optimizer's state, then
    the scheduler's (in that order: building a scheduler sets the optimizer's learning rate).

    Args:
        optimizer: The optimizer whose learning rate is scheduled.
        hp: The hyperparameters.
        steps_per_epoch: Batches per epoch (>= 1).
        epochs: Epochs in the run (>= 1).

    Returns:
        A torch learning-rate scheduler.

    Raises:
        UnknownNameError: For an unknown ``hp.schedule``, listing the valid names.
        HParamsError: For schedule ``warmup`` with ``warmup_epochs == 0``.
        ValueError: For ``steps_per_epoch`` or ``epochs`` below 1.

    Example:
        >>> opt = build_optimizer([torch.zeros(1, requires_grad=True)], HParams(lr=0.1))
        >>> sched = build_scheduler(opt, HParams(lr=0.1, schedule="cosine"), 2, 1)
        >>> [round(lr, 3) for lr in sched.get_last_lr()]
        [0.1]
    """
    for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    return SCHEDULES.get(hp.schedule)(optimizer, hp, steps_per_epoch, epochs)


# ---------------------------------------------------------------------------------------------
# Activations

#: The nonlinearities ``torch.nn.init.calculate_gain`` knows that activations here map to.
GainName = Literal["relu", "leaky_relu", "tanh", "sigmoid", "selu", "linear"]

_LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class ActivationSpec:
    """An activation and the nonlinearity its weights are initialised for.

    Attributes:
        build: Makes a fresh activation module.
        gain: The ``torch.nn.init.calculate_gain`` nonlinearity used by :func:`apply_init`.
        gain_param: Its parameter (the negative slope of leaky_relu).

    Example:
        >>> ACTIVATIONS.get("swish").gain
        'relu'
    """

    build: Callable[[], nn.Module]
    gain: GainName
    gain_param: float | None = None


#: Activations by name: relu, leaky_relu, elu, gelu, silu (alias swish), tanh. ELU, GELU and
#: SiLU have no gain in torch; being ReLU-like, they are initialised with ReLU's (sqrt 2).
ACTIVATIONS: Registry[ActivationSpec] = Registry("activation")
ACTIVATIONS.add("relu", ActivationSpec(nn.ReLU, "relu"))
ACTIVATIONS.add(
    "leaky_relu",
    ActivationSpec(functools.partial(nn.LeakyReLU, _LEAKY_SLOPE), "leaky_relu", _LEAKY_SLOPE),
)
ACTIVATIONS.add("elu", ActivationSpec(nn.ELU, "relu"))
ACTIVATIONS.add("gelu", ActivationSpec(nn.GELU, "relu"))
ACTIVATIONS.add("silu", ActivationSpec(nn.SiLU, "relu"), aliases=("swish",))
ACTIVATIONS.add("tanh", ActivationSpec(nn.Tanh, "tanh"))


def make_activation(name: str) -> nn.Module:
    """A new activation module by name.

    Raises:
        UnknownNameError: For an unknown name, listing the valid names.

    Example:
        >>> make_activation("swish")
        SiLU()
    """
    return ACTIVATIONS.get(name).build()


# ---------------------------------------------------------------------------------------------
# Losses


class FocalLoss(nn.Module):
    """Multi-class focal loss, ``mean(-(1 - p_t) ** gamma * log p_t)`` (Lin et al., 2017).

    ``p_t`` is the softmax probability of the target class, computed through ``log_softmax``;
    ``gamma == 0`` is cross-entropy. The focusing weight is floored at machine epsilon so that a
    fully confident prediction (``p_t == 1``) gives a zero gradient, not NaN, for ``gamma < 1``.

    Args:
        gamma: The focusing parameter (>= 0).

    Raises:
        ValueError: For a negative or non-finite ``gamma``.

    Example:
        >>> loss = FocalLoss(gamma=2.0)
        >>> round(loss(torch.zeros(1, 2), torch.tensor([0])).item(), 4)
        0.1733
    """

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if isinstance(gamma, bool) or not isinstance(gamma, int | float):
            raise ValueError(f"gamma={gamma!r} must be a number >= 0")
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma={gamma!r} must be a finite number >= 0")
        self.gamma = float(gamma)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The mean focal loss of ``logits`` (batch, classes) for int64 ``targets`` (batch,)."""
        log_p = F.log_softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
        if self.gamma == 0:
            return -log_p.mean()
        eps = torch.finfo(log_p.dtype).eps
        weight = (-torch.expm1(log_p)).clamp(min=eps) ** self.gamma
        return -(weight * log_p).mean()

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


#: Losses by name, each ``factory(hparams) -> module(logits, targets) -> mean loss``:
#: cross_entropy (alias ce), label_smoothing (``hp.label_smoothing``), focal (``hp.focal_gamma``).
LOSSES: Registry[Callable[[HParams], nn.Module]] = Registry("loss")
LOSSES.add("cross_entropy", lambda hp: nn.CrossEntropyLoss(), aliases=("ce",))
LOSSES.add("label_smoothing", lambda hp: nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing))
LOSSES.add("focal", lambda hp: FocalLoss(hp.focal_gamma))


def build_loss(hp: HParams) -> nn.Module:
    """The loss ``hp.loss``: a module taking (logits, int64 targets) to a scalar mean loss.

    Raises:
        UnknownNameError: For an unknown ``hp.loss``, listing the valid names.

    Example:
        >>> build_loss(HParams(loss="label_smoothing", label_smoothing=0.2))
        CrossEntropyLoss()
    """
    return LOSSES.get(hp.loss)(hp)


# ---------------------------------------------------------------------------------------------
# Weight initialisation

#: ``init(weight, activation)``: fills a Linear or Conv weight in place for ``activation``.
WeightInit = Callable[[Tensor, ActivationSpec], None]


def _kaiming_normal(weight: Tensor, act: ActivationSpec) -> None:
    nn.init.kaiming_normal_(weight, a=act.gain_param or 0.0, nonlinearity=act.gain)


def _kaiming_uniform(weight: Tensor, act: ActivationSpec) -> None:
    nn.init.kaiming_uniform_(weight, a=act.gain_param or 0.0, nonlinearity=act.gain)


def _xavier_normal(weight: Tensor, act: ActivationSpec) -> None:
    nn.init.xavier_normal_(weight, gain=nn.init.calculate_gain(act.gain, act.gain_param))


def _xavier_uniform(weight: Tensor, act: ActivationSpec) -> None:
    nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(act.gain, act.gain_param))


def _orthogonal(weight: Tensor, act: ActivationSpec) -> None:
    nn.init.orthogonal_(weight, gain=nn.init.calculate_gain(act.gain, act.gain_param))


#: Weight initialisations by name: kaiming_normal (alias kaiming), kaiming_uniform,
#: xavier_normal, xavier_uniform (alias xavier), orthogonal, and default (``None``: keep the
#: framework's initialisation).
INITS: Registry[WeightInit | None] = Registry("init")
INITS.add("kaiming_normal", _kaiming_normal, aliases=("kaiming",))
INITS.add("kaiming_uniform", _kaiming_uniform)
INITS.add("xavier_normal", _xavier_normal)
INITS.add("xavier_uniform", _xavier_uniform, aliases=("xavier",))
INITS.add("orthogonal", _orthogonal)
INITS.add("default", None)

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def apply_init(model: nn.Module, init: str, activation: str) -> None:
    """Re-initialise ``model``'s Linear and Conv layers in place with ``init``.

    Weights get ``init`` for ``activation`` (its gain, see :class:`ActivationSpec`; kaiming
    passes the nonlinearity, xavier and orthogonal use ``calculate_gain``), biases become 0, and
    norm layers are reset to weight 1, bias 0. Every such layer gets the same gain, the
    classifier head included. ``default`` leaves the model as built.

    Args:
        model: The model.
        init: A name in :data:`INITS`.
        activation: A name in :data:`ACTIVATIONS` (the model's activation).

    Raises:
        UnknownNameError: For an unknown ``init`` or ``activation``, listing the valid names.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> apply_init(layer, "xavier", "tanh")
        >>> layer.bias.tolist()
        [0.0, 0.0]
    """
    fill = INITS.get(init)
    act = ACTIVATIONS.get(activation)
    if fill is None:
        return
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _WEIGHTED):
                fill(module.weight, act)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, _NORMS):
                if module.weight is not None:
                    module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()


# ---------------------------------------------------------------------------------------------
# All names at once

_FIELDS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("optimizer", OPTIMIZERS.canonical),
    ("schedule", SCHEDULES.canonical),
    ("activation", ACTIVATIONS.canonical),
    ("loss", LOSSES.canonical),
    ("init", INITS.canonical),
)


def check_names(hp: HParams) -> None:
    """Check the five component names of ``hp`` (optimizer, schedule, activation, loss, init).

    Raises:
        UnknownNameError: Naming each bad field with its value and the valid names, e.g.
            ``optimizer: unknown optimizer 'adamm'; valid names: sgd, ...`` (one line per bad
            field).

    Example:
        >>> check_names(HParams(optimizer="adamm"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dltune.exceptions.UnknownNameError: optimizer: unknown optimizer 'adamm'; valid names: ...
    """
    problems = []
    for field, canonical in _FIELDS:
        try:
            canonical(getattr(hp, field))
        except UnknownNameError as exc:
            problems.append(f"{field}: {exc}")
    if problems:
        raise UnknownNameError("\n".join(problems))
