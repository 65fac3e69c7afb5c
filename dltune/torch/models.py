"""The trainer's models, chosen by name: ``mlp``, ``cnn`` and ``resnet``.

Each reads ``hp.depth``, ``hp.width``, ``hp.dropout`` and ``hp.activation``, and takes any
input shape the data sets give: images ``(C, H, W)`` and 1-D signals ``(C, L)`` or ``(L,)``.
A model of one's own is a :data:`ModelFactory` passed to :func:`build_model` (or added to
:data:`MODELS`).

Example:
    >>> import torch
    >>> from dltune.torch import HParams
    >>> net = build_model("cnn", HParams(depth=2, width=4), (1, 8, 8), n_classes=10)
    >>> net(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor
from torch import nn

from dltune._registry import Registry
from dltune.torch._hparams import HParams
from dltune.torch._task import ModelFactory
from dltune.torch.components import apply_init
from dltune.torch.components import make_activation

__all__ = ["MODELS", "ModelFactory", "build_model"]

#: Models by name: mlp, cnn, resnet. Each is ``factory(hparams, input_shape, n_classes)``.
MODELS: Registry[ModelFactory] = Registry("model")

_SPATIAL_SHAPES = "(C, H, W) images, (C, L) signals or (L,) single-channel signals"


def _mlp(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    size = math.prod(input_shape)
    for _ in range(hp.depth):
        layers += [
            nn.Linear(size, hp.width),
            make_activation(hp.activation),
            nn.Dropout(hp.dropout),
        ]
        size = hp.width
    layers.append(nn.Linear(size, n_classes))
    return nn.Sequential(*layers)


class _Layers:
    """The 1-D or 2-D versions of the layers a convolutional model needs."""

    def __init__(self, model: str, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) not in (1, 2, 3):
            raise ValueError(
                f"model {model!r} cannot take input_shape={input_shape!r}; accepted: "
                f"{_SPATIAL_SHAPES}"
            )
        self.two_d = len(input_shape) == 3
        self.conv: Callable[..., nn.Module] = nn.Conv2d if self.two_d else nn.Conv1d
        self.norm: Callable[[int], nn.Module] = nn.BatchNorm2d if self.two_d else nn.BatchNorm1d
        self.max_pool: Callable[[int], nn.Module] = nn.MaxPool2d if self.two_d else nn.MaxPool1d
        self.global_pool: Callable[[int], nn.Module] = (
            nn.AdaptiveAvgPool2d if self.two_d else nn.AdaptiveAvgPool1d
        )
        # A bare (L,) signal becomes (1, L).
        self.stem: list[nn.Module] = []
        shape = input_shape
        if len(shape) == 1:
            self.stem.append(nn.Unflatten(1, (1, shape[0])))
            shape = (1, shape[0])
        self.channels = shape[0]
        self.size = list(shape[1:])

    def head(self, channels: int, hp: HParams, n_classes: int) -> list[nn.Module]:
        return [
            self.global_pool(1),
            nn.Flatten(),
            nn.Dropout(hp.dropout),
            nn.Linear(channels, n_classes),
        ]


def _stage_channels(hp: HParams, stage: int) -> int:
    return hp.width * min(1 << stage, 8)


def _cnn(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    kit = _Layers("cnn", input_shape)
    layers = list(kit.stem)
    channels, size = kit.channels, kit.size
    for stage in range(hp.depth):
        out = _stage_channels(hp, stage)
        layers += [
            kit.conv(channels, out, kernel_size=3, padding=1, bias=False),
            kit.norm(out),
            make_activation(hp.activation),
        ]
        if min(size) >= 2:
            layers.append(kit.max_pool(2))
            size = [s // 2 for s in size]
        channels = out
    return nn.Sequential(*layers, *kit.head(channels, hp, n_classes))


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the input (projected if its shape changes)."""

    def __init__(
        self, kit: _Layers, channels: int, out: int, stride: int, activation: str
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            kit.conv(channels, out, kernel_size=3, stride=stride, padding=1, bias=False),
            kit.norm(out),
            make_activation(activation),
            kit.conv(out, out, kernel_size=3, padding=1, bias=False),
            kit.norm(out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels != out:
            self.shortcut = nn.Sequential(
                kit.conv(channels, out, kernel_size=1, stride=stride, bias=False), kit.norm(out)
            )
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(self.body(x) + self.shortcut(x))
        return out


def _resnet(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    kit = _Layers("resnet", input_shape)
    stem_out = _stage_channels(hp, 0)
    layers = [
        *kit.stem,
        kit.conv(kit.channels, stem_out, kernel_size=3, padding=1, bias=False),
        kit.norm(stem_out),
        make_activation(hp.activation),
    ]
    channels, size = stem_out, kit.size
    for stage in range(hp.depth):
        out = _stage_channels(hp, stage)
        stride = 2 if stage > 0 and min(size) >= 2 else 1
        if stride == 2:
            size = [(s + 1) // 2 for s in size]
        layers.append(_BasicBlock(kit, channels, out, stride, hp.activation))
        layers.append(_BasicBlock(kit, out, out, 1, hp.activation))
        channels = out
    return nn.Sequential(*layers, *kit.head(channels, hp, n_classes))


MODELS.add("mlp", _mlp)
MODELS.add("cnn", _cnn)
MODELS.add("resnet", _resnet)


def _describe_factory(factory: object) -> str:
    name = getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None)
    module = getattr(factory, "__module__", None)
    if isinstance(name, str):
        return f"{module}.{name}" if isinstance(module, str) else name
    return repr(factory)


def _check_shape(input_shape: tuple[int, ...], n_classes: int) -> tuple[int, ...]:
    if not isinstance(input_shape, tuple | list) or not input_shape:
        raise ValueError(
            f"input_shape={input_shape!r} must be a non-empty tuple of positive integers"
        )
    for dim in input_shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(
                f"input_shape={input_shape!r} must be a non-empty tuple of positive integers"
            )
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes={n_classes!r} must be an integer >= 2")
    return tuple(input_shape)


def build_model(
    model: str | ModelFactory, hp: HParams, input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    """Build a model by name (or with a factory of one's own) and initialise its weights.

    The models (all read ``hp.depth``, ``hp.width``, ``hp.dropout``, ``hp.activation``):

    - ``mlp``: flattens the input; ``depth`` hidden layers of ``width`` units (Linear,
      activation, dropout); a Linear classifier.
    - ``cnn``: ``depth`` blocks of 3x3 convolution, batch norm, activation and 2x max pooling
      (while the spatial size is at least 2), with ``width``, ``2 * width``, ... channels (at
      most ``8 * width``); global average pooling, dropout, Linear.
    - ``resnet``: a 3x3 stem, then ``depth`` stages of two basic residual blocks (projection
      shortcuts where the shape changes), ``width * 2**stage`` channels (at most ``8 * width``),
      stride 2 at the start of every stage but the first while the size allows it; global
      average pooling, dropout, Linear. ``depth=4, width=64`` is the CIFAR ResNet-18 layout.

    ``cnn`` and ``resnet`` use 2-D layers for ``(C, H, W)`` inputs and 1-D layers for ``(C, L)``
    and ``(L,)`` inputs. Weights are then set by ``apply_init(model, hp.init, hp.activation)``
    (``default`` keeps torch's initialisation, so a user factory's own init survives).

    Args:
        model: A name in :data:`MODELS`, or a factory ``(hparams, input_shape, n_classes) ->
            nn.Module``.
        hp: The hyperparameters.
        input_shape: One example's shape, without the batch dimension.
        n_classes: The number of classes (>= 2): the width of the output logits.

    Returns:
        The model, giving ``(batch, n_classes)`` logits.

    Raises:
        UnknownNameError: For an unknown model (or init / activation) name, listing the valid
            names.
        TypeError: If ``model`` is neither a name nor callable, or the factory does not return
            an ``nn.Module``.
        ValueError: For a bad ``input_shape`` or ``n_classes``, or a shape the model cannot
            take.

    Example:
        >>> import torch
        >>> net = build_model("mlp", HParams(depth=1, width=8), (40,), n_classes=3)
        >>> net(torch.zeros(2, 40)).shape
        torch.Size([2, 3])
    """
    shape = _check_shape(input_shape, n_classes)
    if isinstance(model, str):
        factory = MODELS.get(model)
        described = f"{MODELS.canonical(model)!r}"
    elif callable(model):
        factory = model
        described = _describe_factory(model)
    else:
        raise TypeError(
            f"model={model!r} must be a name in MODELS ({MODELS.describe()}) or a factory "
            "(hparams, input_shape, n_classes) -> torch.nn.Module"
        )
    net = factory(hp, shape, n_classes)
    if not isinstance(net, nn.Module):
        raise TypeError(
            f"model factory {described} returned {net!r} (of type {type(net).__name__}), "
            "not a torch.nn.Module"
        )
    apply_init(net, hp.init, hp.activation)
    return net
