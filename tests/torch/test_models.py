"""Tests of dltune/torch/models.py: the model registry and build_model."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from dltune.exceptions import UnknownNameError
from dltune.torch import HParams
from dltune.torch.components import build_optimizer
from dltune.torch.models import MODELS
from dltune.torch.models import build_model

# digits, MNIST, CIFAR, mnist1d as (C, L) and as a bare (L,) signal.
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 40), (40,)]
TINY = HParams(depth=2, width=4)


def _layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_gives_logits_for_every_data_shape(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, TINY, shape, n_classes=7)
    assert model(torch.randn(3, *shape)).shape == (3, 7)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_one_step(name: str) -> None:
    hp = HParams(depth=2, width=4, dropout=0.2, activation="gelu", init="kaiming")
    model = build_model(name, hp, (1, 8, 8), n_classes=3)
    optimizer = build_optimizer(model.parameters(), HParams(optimizer="sgd", lr=0.1))
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.CrossEntropyLoss()(model(torch.randn(8, 1, 8, 8)), torch.randint(0, 3, (8,)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert math.isfinite(loss.item())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("name", MODELS.names())
def test_models_read_dropout_and_activation(name: str) -> None:
    model = build_model(
        name, HParams(depth=2, width=4, dropout=0.3, activation="elu"), (1, 8, 8), 3
    )
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(m.p == 0.3 for m in dropouts)
    assert _layers(model, nn.ELU)
    assert not _layers(model, nn.ReLU)


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_initial_weights(name: str) -> None:
    def weights(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        model = build_model(name, HParams(depth=2, width=4, init="xavier"), (1, 8, 8), 3)
        return [p.detach().clone() for p in model.parameters()]

    first, again, other = weights(1), weights(1), weights(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("name", MODELS.names())
def test_build_model_applies_the_init(name: str) -> None:
    model = build_model(name, HParams(depth=2, width=4, init="xavier_uniform"), (1, 8, 8), 3)
    linears = _layers(model, nn.Linear)
    assert linears
    for layer in linears:
        assert isinstance(layer, nn.Linear)
        assert torch.count_nonzero(layer.bias) == 0


# --- mlp --------------------------------------------------------------------------------------


def test_mlp_has_depth_hidden_layers_of_width() -> None:
    model = build_model("mlp", HParams(depth=3, width=5), (1, 8, 8), n_classes=4)
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert shapes == [(64, 5), (5, 5), (5, 5), (5, 4)]


def test_mlp_flattens_any_shape() -> None:
    model = build_model("mlp", TINY, (2, 2, 2, 2), n_classes=3)
    assert model(torch.randn(4, 2, 2, 2, 2)).shape == (4, 3)


# --- cnn --------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_cnn_works_on_8x8_at_any_depth(depth: int) -> None:
    model = build_model("cnn", HParams(depth=depth, width=2), (1, 8, 8), n_classes=10)
    assert len(_layers(model, nn.MaxPool2d)) == min(depth, 3)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_cnn_channels_double_up_to_eight_times_width() -> None:
    model = build_model("cnn", HParams(depth=5, width=3), (3, 32, 32), n_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 6, 12, 24, 24]
    assert convs[0].in_channels == 3
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert len(_layers(model, nn.BatchNorm2d)) == 5


@pytest.mark.parametrize("name", ["cnn", "resnet"])
@pytest.mark.parametrize("shape", [(1, 40), (40,)], ids=str)
def test_conv_models_use_1d_layers_for_signals(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, TINY, shape, n_classes=10)
    assert _layers(model, nn.Conv1d) and _layers(model, nn.BatchNorm1d)
    assert not _layers(model, nn.Conv2d)


# --- resnet -----------------------------------------------------------------------------------


def test_resnet_has_two_blocks_per_stage_with_projections_where_shape_changes() -> None:
    model = build_model("resnet", HParams(depth=3, width=4), (3, 32, 32), n_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # stem + 2 blocks x 2 convs per stage + one 1x1 projection for stages 2 and 3
    assert len(convs) == 1 + 3 * 4 + 2
    assert sum(c.kernel_size == (1, 1) for c in convs) == 2
    assert sum(c.stride == (2, 2) for c in convs) == 4
    assert max(c.out_channels for c in convs) == 16


def test_resnet_stops_striding_when_the_image_is_one_pixel() -> None:
    model = build_model("resnet", HParams(depth=6, width=1), (1, 8, 8), n_classes=10)
    strided = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 2 * 3  # 8 -> 4 -> 2 -> 1, then stride 1
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_resnet_depth_4_width_64_is_the_cifar_resnet18_layout() -> None:
    model = build_model("resnet", HParams(depth=4, width=64), (3, 32, 32), n_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


# --- user factories ---------------------------------------------------------------------------


def test_a_user_factory_plugs_in() -> None:
    calls: list[tuple[HParams, tuple[int, ...], int]] = []

    def factory(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        calls.append((hp, input_shape, n_classes))
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_classes))

    hp = HParams(width=4)
    torch.manual_seed(3)
    model = build_model(factory, hp, (1, 8, 8), n_classes=10)
    torch.manual_seed(3)
    own = factory(hp, (1, 8, 8), 10)
    assert calls == [(hp, (1, 8, 8), 10)] * 2
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # init "default" keeps the factory's own initialisation
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), own.parameters(), strict=True)
    )


def test_a_user_factory_gets_the_chosen_init() -> None:
    def factory(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        return nn.Linear(input_shape[0], n_classes)

    model = build_model(factory, HParams(init="orthogonal"), (6,), n_classes=3)
    assert isinstance(model, nn.Linear)
    assert torch.count_nonzero(model.bias) == 0
    gram = model.weight @ model.weight.T
    torch.testing.assert_close(gram, 2 * torch.eye(3), atol=1e-4, rtol=1e-4)


def test_a_factory_returning_a_non_module_is_a_type_error() -> None:
    def broken(hp: HParams, input_shape: tuple[int, ...], n_classes: int) -> object:
        return "oops"

    with pytest.raises(
        TypeError,
        match=r"model factory .*test_a_factory_returning_a_non_module_is_a_type_error\.<locals>"
        r"\.broken returned 'oops' \(of type str\), not a torch\.nn\.Module",
    ):
        build_model(broken, TINY, (1, 8, 8), n_classes=3)


def test_a_model_that_is_neither_name_nor_callable_is_a_type_error() -> None:
    with pytest.raises(
        TypeError, match=r"model=42 must be a name in MODELS \(mlp, cnn, resnet\) or a factory"
    ):
        build_model(42, TINY, (1, 8, 8), n_classes=3)  # type: ignore[arg-type]


# --- input checks -----------------------------------------------------------------------------


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown model 'vgg'; valid names: mlp, cnn, resnet$"
    ):
        build_model("vgg", TINY, (1, 8, 8), n_classes=3)


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_conv_models_reject_other_ranks(name: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"model '{name}' cannot take input_shape=\(1, 2, 3, 4\); accepted: \(C, H, W\) "
        r"images, \(C, L\) signals or \(L,\) single-channel signals",
    ):
        build_model(name, TINY, (1, 2, 3, 4), n_classes=3)


@pytest.mark.parametrize("shape", [(), (1, 0, 8), (1, 8.0, 8), "1x8x8"], ids=repr)
def test_bad_input_shape_is_rejected(shape: object) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(f"input_shape={shape!r} must be a non-empty tuple of positive integers"),
    ):
        build_model("mlp", TINY, shape, n_classes=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_classes", [1, 0, 2.0, True])
def test_bad_n_classes_is_rejected(n_classes: object) -> None:
    with pytest.raises(ValueError, match=rf"n_classes={n_classes!r} must be an integer >= 2"):
        build_model("mlp", TINY, (4,), n_classes=n_classes)  # type: ignore[arg-type]
