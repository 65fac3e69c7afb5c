"""Tests of dltune/torch/components.py: the tunable component registries and builders."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dltune.exceptions import UnknownNameError
from dltune.torch import HParams
from dltune.torch import HParamsError
from dltune.torch.components import ACTIVATIONS
from dltune.torch.components import INITS
from dltune.torch.components import LOSSES
from dltune.torch.components import OPTIMIZERS
from dltune.torch.components import SCHEDULES
from dltune.torch.components import FocalLoss
from dltune.torch.components import apply_init
from dltune.torch.components import build_loss
from dltune.torch.components import build_optimizer
from dltune.torch.components import build_scheduler
from dltune.torch.components import check_names
from dltune.torch.components import make_activation


def _tiny_model(activation: nn.Module | None = None) -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), activation or nn.ReLU(), nn.Linear(8, 3))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(16, 4), torch.randint(0, 3, (16,))


def _train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module | None = None
) -> float:
    """One step on a random batch; returns the loss after checking the parameters moved."""
    x, y = _batch()
    before = [p.detach().clone() for p in model.parameters()]
    loss = (loss_fn or nn.CrossEntropyLoss())(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    return float(loss.item())


def _lrs(hp: HParams, steps_per_epoch: int, epochs: int) -> list[float]:
    """The learning rate each batch of a run trains with."""
    optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], hp)
    scheduler = build_scheduler(optimizer, hp, steps_per_epoch, epochs)
    lrs = []
    for _ in range(steps_per_epoch * epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


# --- optimizers -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_trains_one_step(name: str) -> None:
    model = _tiny_model()
    optimizer = build_optimizer(model.parameters(), HParams(optimizer=name, lr=0.01))
    assert math.isfinite(_train_step(model, optimizer))
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_sgd_gets_momentum_and_nesterov() -> None:
    hp = HParams(optimizer="sgd", momentum=0.5, nesterov=True, weight_decay=1e-3)
    group = build_optimizer(_tiny_model().parameters(), hp).param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.5, True, 1e-3)


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_adam_family_gets_betas(name: str, cls: type[torch.optim.Optimizer]) -> None:
    hp = HParams(optimizer=name, beta1=0.8, beta2=0.95, weight_decay=0.01)
    optimizer = build_optimizer(_tiny_model().parameters(), hp)
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.95)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_rmsprop_gets_momentum() -> None:
    hp = HParams(optimizer="rmsprop", momentum=0.3)
    group = build_optimizer(_tiny_model().parameters(), hp).param_groups[0]
    assert group["momentum"] == 0.3


# Two values of each field an optimizer may declare in ``uses``.
_TWO_VALUES: dict[str, tuple[object, object]] = {
    "momentum": (0.5, 0.8),
    "nesterov": (False, True),
    "beta1": (0.5, 0.8),
    "beta2": (0.9, 0.99),
}


def _settings(optimizer: torch.optim.Optimizer) -> dict[str, object]:
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}


@pytest.mark.parametrize(
    ("name", "field"),
    [(name, field) for name in OPTIMIZERS.names() for field in OPTIMIZERS.get(name).uses],
)
def test_declared_uses_reach_the_optimizer(name: str, field: str) -> None:
    first, second = (
        build_optimizer(
            _tiny_model().parameters(), HParams.from_params({"optimizer": name, field: value})
        )
        for value in _TWO_VALUES[field]
    )
    assert _settings(first) != _settings(second)


def test_nesterov_without_momentum_is_an_error_before_anything_is_built() -> None:
    with pytest.raises(HParamsError, match=r"nesterov=True needs momentum > 0, got momentum=0\.0"):
        HParams(optimizer="sgd", momentum=0.0, nesterov=True)
    HParams(optimizer="adam", momentum=0.0, nesterov=True)  # ignored by Adam: fine


def test_unknown_optimizer_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"unknown optimizer 'adamm'; valid names: sgd, adam, adamw, rmsprop, adagrad$",
    ):
        build_optimizer(_tiny_model().parameters(), HParams(optimizer="adamm"))


# --- schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_runs_a_whole_run(name: str) -> None:
    model = _tiny_model()
    hp = HParams(schedule=name, lr=0.1, warmup_epochs=0.5, step_size=1, optimizer="sgd")
    optimizer = build_optimizer(model.parameters(), hp)
    scheduler = build_scheduler(optimizer, hp, steps_per_epoch=3, epochs=2)
    for _ in range(6):
        assert 0 < optimizer.param_groups[0]["lr"] <= 0.1 + 1e-12
        assert math.isfinite(_train_step(model, optimizer))
        scheduler.step()


def test_warmup_rises_linearly_then_holds() -> None:
    lrs = _lrs(HParams(lr=0.4, schedule="warmup", warmup_epochs=1.0), 4, 2)
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4])


def test_warmup_epochs_put_a_warmup_in_front_of_constant() -> None:
    with_warmup = _lrs(HParams(lr=0.4, schedule="constant", warmup_epochs=1.0), 4, 2)
    assert with_warmup == _lrs(HParams(lr=0.4, schedule="warmup", warmup_epochs=1.0), 4, 2)
    assert _lrs(HParams(lr=0.4, schedule="constant"), 4, 2) == [0.4] * 8


def test_fractional_warmup_rounds_to_whole_batches() -> None:
    lrs = _lrs(HParams(lr=0.4, schedule="warmup", warmup_epochs=0.5), 4, 1)
    assert lrs == pytest.approx([0.2, 0.4, 0.4, 0.4])


def test_warmup_schedule_without_warmup_epochs_warms_up_over_one_epoch() -> None:
    lrs = _lrs(HParams(lr=0.4, schedule="warmup"), 4, 2)
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4])


def test_cosine_decays_from_lr_to_near_zero() -> None:
    lrs = _lrs(HParams(lr=0.1, schedule="cosine"), 10, 2)
    assert lrs[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[10] == pytest.approx(0.05)
    assert 0 < lrs[-1] < 0.001


def test_cosine_with_warmup_rises_to_lr_then_decays() -> None:
    lrs = _lrs(HParams(lr=0.1, schedule="cosine", warmup_epochs=1.0), 5, 3)
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(0.9 * math.pi)))


def test_step_decays_at_the_boundary() -> None:
    lrs = _lrs(HParams(lr=0.1, schedule="step", step_size=2, step_gamma=0.5), 3, 5)
    assert lrs == pytest.approx([0.1] * 6 + [0.05] * 6 + [0.025] * 3)


def test_onecycle_peaks_at_lr() -> None:
    lrs = _lrs(HParams(lr=0.1, schedule="onecycle"), 5, 4)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(0.1)
    assert 0 < peak < len(lrs) - 1
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert lrs[-1] < 0.001


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad"])
def test_onecycle_leaves_momentum_as_tuned(name: str) -> None:
    hp = HParams(lr=0.1, schedule="onecycle", optimizer=name, beta1=0.7, momentum=0.6)
    optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], hp)
    before = {k: v for k, v in optimizer.param_groups[0].items() if k in ("betas", "momentum")}
    scheduler = build_scheduler(optimizer, hp, 2, 2)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    after = {k: v for k, v in optimizer.param_groups[0].items() if k in ("betas", "momentum")}
    assert after == before


@pytest.mark.parametrize(
    ("name", "warmup_epochs"),
    [(name, warmup_epochs) for name in SCHEDULES.names() for warmup_epochs in (0.0, 1.0)],
)
def test_scheduler_state_round_trips(name: str, warmup_epochs: float) -> None:
    hp = HParams(lr=0.1, schedule=name, warmup_epochs=warmup_epochs, step_size=1)
    steps_per_epoch, epochs, resume_at = 4, 3, 2

    def start() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], hp)
        return optimizer, build_scheduler(optimizer, hp, steps_per_epoch, epochs)

    optimizer, scheduler = start()
    for _ in range(resume_at):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed_optimizer, resumed_scheduler = start()
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed_scheduler.load_state_dict(saved["scheduler"])
    expected, got = [], []
    for _ in range(steps_per_epoch * epochs - resume_at):
        expected.append(optimizer.param_groups[0]["lr"])
        got.append(resumed_optimizer.param_groups[0]["lr"])
        for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed_scheduler)):
            opt.step()
            sched.step()
    assert got == expected
    # The rest of the run changes the rate (so the test can tell a lost state), bar constant.
    assert len(set(expected)) > 1 or (name, warmup_epochs) == ("constant", 0.0)


@pytest.mark.parametrize(("argument", "values"), [("steps_per_epoch", (0, 2)), ("epochs", (3, 0))])
def test_scheduler_run_length_is_checked(argument: str, values: tuple[int, int]) -> None:
    optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], HParams())
    with pytest.raises(ValueError, match=rf"{argument}=0 must be an integer >= 1"):
        build_scheduler(optimizer, HParams(), *values)


def test_unknown_schedule_lists_valid_names() -> None:
    optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], HParams())
    with pytest.raises(
        UnknownNameError,
        match=r"unknown schedule 'cosin'; valid names: constant, step, cosine, onecycle, warmup$",
    ):
        build_scheduler(optimizer, HParams(schedule="cosin"), 2, 2)


# --- activations ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation_trains_one_step(name: str) -> None:
    activation = make_activation(name)
    assert isinstance(activation, nn.Module)
    assert make_activation(name) is not activation
    model = _tiny_model(activation)
    optimizer = build_optimizer(model.parameters(), HParams(optimizer="sgd", lr=0.1))
    assert math.isfinite(_train_step(model, optimizer))


@pytest.mark.parametrize(
    ("name", "cls"),
    [("swish", nn.SiLU), ("Leaky-ReLU", nn.LeakyReLU), ("gelu", nn.GELU), ("tanh", nn.Tanh)],
)
def test_activation_names_and_aliases(name: str, cls: type[nn.Module]) -> None:
    assert type(make_activation(name)) is cls


def test_leaky_relu_gain_matches_its_slope() -> None:
    module = make_activation("leaky_relu")
    assert isinstance(module, nn.LeakyReLU)
    assert ACTIVATIONS.get("leaky_relu").gain_param == module.negative_slope


def test_unknown_activation_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"unknown activation 'relu6'; valid names: relu, leaky_relu, elu, gelu, "
        r"silu \(alias swish\), tanh$",
    ):
        make_activation("relu6")


# --- losses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_trains_one_step(name: str) -> None:
    model = _tiny_model()
    optimizer = build_optimizer(model.parameters(), HParams(optimizer="sgd", lr=0.1))
    loss = _train_step(model, optimizer, build_loss(HParams(loss=name)))
    assert math.isfinite(loss) and loss > 0


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits, targets = torch.randn(32, 5) * 3, torch.randint(0, 5, (32,))
    focal = build_loss(HParams(loss="focal", focal_gamma=0.0))(logits, targets)
    torch.testing.assert_close(focal, build_loss(HParams(loss="ce"))(logits, targets))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_matches_its_formula(gamma: float) -> None:
    logits, targets = torch.randn(32, 5), torch.randint(0, 5, (32,))
    p_t = logits.softmax(dim=1)[torch.arange(32), targets]
    expected = (-((1 - p_t) ** gamma) * p_t.log()).mean()
    got = build_loss(HParams(loss="focal", focal_gamma=gamma))(logits, targets)
    torch.testing.assert_close(got, expected)
    assert got < F.cross_entropy(logits, targets)


def test_focal_gradient_is_finite_for_confident_predictions() -> None:
    logits = torch.tensor([[100.0, 0.0, 0.0], [0.0, 3.0, 0.0]], requires_grad=True)
    loss = FocalLoss(gamma=0.5)(logits, torch.tensor([0, 1]))
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("gamma", [-1.0, math.inf, "2"])
def test_focal_gamma_is_checked(gamma: object) -> None:
    with pytest.raises(ValueError, match=rf"gamma={gamma!r} must be a"):
        FocalLoss(gamma=gamma)  # type: ignore[arg-type]


def test_label_smoothing_differs_from_cross_entropy_and_reads_hparams() -> None:
    logits, targets = torch.randn(32, 5), torch.randint(0, 5, (32,))
    smooth = build_loss(HParams(loss="label_smoothing", label_smoothing=0.2))(logits, targets)
    plain = build_loss(HParams(loss="cross_entropy"))(logits, targets)
    assert not torch.allclose(smooth, plain)
    torch.testing.assert_close(smooth, F.cross_entropy(logits, targets, label_smoothing=0.2))


def test_focal_reads_focal_gamma() -> None:
    loss = build_loss(HParams(loss="focal", focal_gamma=3.5))
    assert isinstance(loss, FocalLoss)
    assert loss.gamma == 3.5


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"unknown loss 'mse'; valid names: cross_entropy \(alias ce\), label_smoothing, "
        r"focal$",
    ):
        build_loss(HParams(loss="mse"))


# --- initialisation ---------------------------------------------------------------------------


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, 3)
        self.conv2 = nn.Conv2d(2, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.layer_norm = nn.LayerNorm(4)
        self.linear = nn.Linear(4, 3)


def _perturbed() -> _Mixed:
    model = _Mixed()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.fill_(2.0 if name.endswith("weight") else 3.0)
            elif name.endswith("bias"):
                param.fill_(1.0)
    return model


@pytest.mark.parametrize("name", [n for n in INITS.names() if n != "default"])
def test_every_init_changes_weights_and_resets_biases_and_norms(name: str) -> None:
    model = _perturbed()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_init(model, name, "relu")
    for layer in ("conv1", "conv2", "linear"):
        assert not torch.equal(model.state_dict()[f"{layer}.weight"], before[f"{layer}.weight"])
        assert torch.count_nonzero(model.state_dict()[f"{layer}.bias"]) == 0
    for norm in (model.norm, model.layer_norm):
        assert torch.equal(norm.weight, torch.ones(4))
        assert torch.equal(norm.bias, torch.zeros(4))


def test_default_init_leaves_the_model_alone() -> None:
    model = _perturbed()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_init(model, "default", "relu")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", INITS.names())
def test_every_init_trains_one_step(name: str) -> None:
    model = _tiny_model(nn.Tanh())
    apply_init(model, name, "tanh")
    optimizer = build_optimizer(model.parameters(), HParams(optimizer="sgd", lr=0.1))
    assert math.isfinite(_train_step(model, optimizer))


@pytest.mark.parametrize(
    ("init", "activation", "std"),
    [
        ("kaiming", "relu", math.sqrt(2 / 1000)),
        ("kaiming_normal", "gelu", math.sqrt(2 / 1000)),
        ("kaiming", "tanh", 5 / 3 / math.sqrt(1000)),
        ("kaiming", "leaky_relu", math.sqrt(2 / (1 + 0.01**2)) / math.sqrt(1000)),
        ("kaiming_uniform", "relu", math.sqrt(2 / 1000)),
        ("xavier_normal", "tanh", 5 / 3 * math.sqrt(2 / 1500)),
        ("xavier", "relu", math.sqrt(2) * math.sqrt(2 / 1500)),
        ("xavier", "silu", math.sqrt(2) * math.sqrt(2 / 1500)),
    ],
)
def test_init_uses_the_activation_gain(init: str, activation: str, std: float) -> None:
    layer = nn.Linear(1000, 500)
    apply_init(layer, init, activation)
    assert layer.weight.std().item() == pytest.approx(std, rel=0.03)


@pytest.mark.parametrize(("activation", "gain"), [("tanh", 5 / 3), ("relu", math.sqrt(2))])
def test_orthogonal_init_is_orthogonal_with_gain(activation: str, gain: float) -> None:
    layer = nn.Linear(20, 10)
    apply_init(layer, "orthogonal", activation)
    gram = layer.weight @ layer.weight.T
    torch.testing.assert_close(gram, gain**2 * torch.eye(10), atol=1e-4, rtol=1e-4)


def test_init_is_deterministic_under_a_seed() -> None:
    weights = []
    for _ in range(2):
        torch.manual_seed(7)
        model = _Mixed()
        apply_init(model, "xavier", "relu")
        weights.append(model.linear.weight.clone())
    assert torch.equal(weights[0], weights[1])


def test_unknown_init_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"unknown init 'he'; valid names: kaiming_normal \(alias kaiming\), "
        r"kaiming_uniform, xavier_normal, xavier_uniform \(alias xavier\), orthogonal, default$",
    ):
        apply_init(_Mixed(), "he", "relu")


def test_apply_init_checks_the_activation_name() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown activation 'rel'; valid names: relu"):
        apply_init(_Mixed(), "xavier", "rel")


# --- check_names ------------------------------------------------------------------------------


def test_check_names_accepts_valid_names_and_aliases() -> None:
    check_names(
        HParams(optimizer="SGD", schedule="onecycle", activation="swish", loss="ce", init="xavier")
    )


@pytest.mark.parametrize("field", ["optimizer", "schedule", "activation", "loss", "init"])
def test_check_names_names_the_bad_field(field: str) -> None:
    with pytest.raises(
        UnknownNameError, match=rf"^{field}: unknown {field} 'bogus'; valid names: \w"
    ):
        check_names(HParams.from_params({field: "bogus"}))


def test_check_names_reports_every_bad_field() -> None:
    with pytest.raises(UnknownNameError) as info:
        check_names(HParams(optimizer="adamm", loss="mse"))
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "optimizer: unknown optimizer 'adamm'; valid names: sgd, adam, adamw, rmsprop, adagrad"
    )
    assert lines[1].startswith("loss: unknown loss 'mse'; valid names: cross_entropy")
    assert len(lines) == 2
