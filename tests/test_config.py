"""The YAML config: loading, every error path, the search space it describes, the builders."""

from __future__ import annotations

import copy
import math
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import dltune
from dltune.config import ConfigError
from dltune.config import ConfigLoader
from dltune.config import PluginConfig
from dltune.config import SearchSpace
from dltune.config import TuneConfig
from dltune.config import load_config
from dltune.config import parse_config
from dltune.pruners import PRUNERS
from dltune.pruners import MedianPruner
from dltune.pruners import NopPruner
from dltune.pruners import PercentilePruner
from dltune.samplers import SAMPLERS
from dltune.samplers import GridSampler
from dltune.samplers import QMCSampler
from dltune.samplers import RandomSampler
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.torch import Guards
from dltune.torch import Task

FULL_YAML = """\
study: digits-cnn
storage: sqlite:///dltune.db
metric: val_accuracy
direction: maximize
seed: 0
budget: {trials: 30, timeout: 240, workers: 2}
sampler: {type: random, seed: 1}
pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 2}
task:
  dataset: digits
  model: cnn
  epochs: 10
  data_dir: ./data
  download: true
  device: auto
  checkpoint_dir: checkpoints
  guards: {loss_ratio: 10, max_grad_norm: 1.0e4, patience_epochs: 2, min_improvement: 0.99,
           chance_margin: 0.05, enabled: true}
space:
  lr: {low: 1e-4, high: 1.0, log: true}
  optimizer: {choices: [sgd, adam, adamw, rmsprop]}
  momentum: {low: 0.0, high: 0.99, when: {optimizer: [sgd, rmsprop]}}
  nesterov: {choices: [true, false], when: {optimizer: sgd}}
  beta1: {low: 0.8, high: 0.99, when: {optimizer: [adam, adamw]}}
  batch_size: {choices: [16, 32, 64, 128]}
  width: {low: 16, high: 128, step: 16}
  dropout: 0.1
retrain: {top_k: 3, seeds: 3}
lr_find: {min_lr: 1.0e-7, max_lr: 10, steps: 100}
"""

MINIMAL: dict[str, Any] = {
    "study": "s",
    "budget": {"trials": 3},
    "task": {"dataset": "digits", "model": "mlp"},
    "space": {
        "optimizer": {"choices": ["sgd", "adam"]},
        "momentum": {"low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
        "lr": {"low": 1e-4, "high": 1e-1, "log": True},
        "width": 16,
    },
}

_DELETE = object()


def _with(changes: Mapping[str, Any], base: Mapping[str, Any] = MINIMAL) -> dict[str, Any]:
    """A copy of ``base`` with ``{"a.b.c": value}`` set (or deleted with ``_DELETE``)."""
    data = copy.deepcopy(dict(base))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def _fails(data: Any, *lines: str) -> ConfigError:
    """Parsing fails with each of ``lines`` as one whole line of the message."""
    with pytest.raises(ConfigError, match=rf"(?m)^  {re.escape(lines[0])}$") as info:
        parse_config(data, source="t.yaml")
    for line in lines[1:]:
        assert line in info.value.errors
    assert str(info.value).startswith("invalid config t.yaml:\n")
    return info.value


@pytest.fixture
def full(tmp_path: Path) -> TuneConfig:
    path = tmp_path / "tune.yaml"
    path.write_text(FULL_YAML)
    return load_config(path)


# -- a valid config ---------------------------------------------------------------------------


def test_full_config_parses(full: TuneConfig) -> None:
    assert (full.study, full.storage, full.metric, full.direction) == (
        "digits-cnn",
        "sqlite:///dltune.db",
        "val_accuracy",
        "maximize",
    )
    assert (full.budget.trials, full.budget.timeout, full.budget.workers) == (30, 240.0, 2)
    assert (full.retrain.top_k, full.retrain.seeds) == (3, 3)
    assert (full.lr_find.min_lr, full.lr_find.max_lr, full.lr_find.steps) == (1e-7, 10.0, 100)
    assert full.space.names() == ["lr", "optimizer", "momentum", "nesterov", "beta1"] + [
        "batch_size",
        "width",
    ]
    assert full.space.fixed == {"dropout": 0.1}
    assert full.space.distributions["lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert full.space.distributions["width"] == IntDistribution(16, 128, step=16)
    assert full.space.distributions["momentum"] == FloatDistribution(0.0, 0.99)
    assert full.space.conditions["beta1"] == {"optimizer": ("adam", "adamw")}
    assert full.source.endswith("tune.yaml")


def test_full_config_builds(full: TuneConfig) -> None:
    task = full.build_task()
    assert isinstance(task, Task)
    assert (task.dataset, task.model, task.epochs, task.metric) == (
        "digits",
        "cnn",
        10,
        full.metric,
    )
    assert (task.data_dir, task.checkpoint_dir, task.device) == (
        Path("data"),
        Path("checkpoints"),
        "auto",
    )
    assert task.guards == Guards()
    assert isinstance(full.build_sampler(), RandomSampler)
    pruner = full.build_pruner()
    assert isinstance(pruner, MedianPruner)
    assert (pruner._n_startup_trials, pruner._n_warmup_steps) == (5, 2)
    kwargs = full.study_kwargs()
    assert sorted(kwargs) == ["direction", "pruner", "sampler", "seed", "storage", "study_name"]
    assert kwargs["seed"] == full.seed
    assert (kwargs["study_name"], kwargs["storage"], kwargs["direction"]) == (
        "digits-cnn",
        "sqlite:///dltune.db",
        "maximize",
    )


def test_suggest_gives_the_active_params_and_the_fixed_values(full: TuneConfig) -> None:
    kwargs = {**full.study_kwargs(), "storage": None}  # in memory
    study = dltune.create_study(**kwargs)
    optimizers = set()
    for _ in range(40):
        trial = study.ask()
        params = full.space.suggest(trial)
        optimizer = params["optimizer"]
        optimizers.add(optimizer)
        assert ("momentum" in params) == (optimizer in ("sgd", "rmsprop"))
        assert ("nesterov" in params) == (optimizer == "sgd")
        assert ("beta1" in params) == (optimizer in ("adam", "adamw"))
        assert params["dropout"] == 0.1
        assert set(trial.params) == set(params) - {"dropout"}  # fixed values are not suggested
        study.tell(trial, 0.5)
    assert optimizers == {"sgd", "adam", "adamw", "rmsprop"}


def test_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.direction == "maximize"
    assert config.storage is None and config.seed is None
    assert config.sampler == PluginConfig(type="auto")
    assert config.pruner == PluginConfig(type="median")
    assert isinstance(config.build_pruner(), MedianPruner)
    assert (config.retrain.top_k, config.retrain.seeds) == (3, 3)
    assert config.task.checkpoint_dir == "checkpoints"
    assert config.source == "<config>"
    loss = parse_config(_with({"metric": "val_loss"}))
    assert loss.direction == "minimize"


def test_float_hyperparameters_with_integer_bounds_are_float_ranges() -> None:
    config = parse_config(_with({"space.warmup_epochs": {"low": 0, "high": 2}}))
    assert config.space.distributions["warmup_epochs"] == FloatDistribution(0.0, 2.0)
    config = parse_config(_with({"space.weight_decay": {"low": 0, "high": 1}}))
    assert config.space.distributions["weight_decay"] == FloatDistribution(0.0, 1.0)
    config = parse_config(_with({"space.depth": {"low": 1, "high": 3}}))
    assert config.space.distributions["depth"] == IntDistribution(1, 3)


def test_seed_fills_the_sampler_seed_unless_given() -> None:
    def sampled(config: TuneConfig) -> float:
        study = dltune.create_study(**config.study_kwargs())
        return study.ask().suggest_float("x", 0.0, 1.0)

    seeded = _with({"seed": 7})
    assert sampled(parse_config(seeded)) == sampled(parse_config(seeded))
    explicit = _with({"seed": 7, "sampler": {"type": "random", "seed": 8}})
    assert sampled(parse_config(explicit)) == sampled(parse_config(_with({"seed": 8})))
    assert sampled(parse_config(explicit)) != sampled(parse_config(seeded))


def test_plugins_by_name_alias_and_shorthand() -> None:
    config = parse_config(_with({"sampler": "qmc", "pruner": {"type": "None"}}))
    assert config.sampler.to_mapping() == {"type": "qmc"}
    assert config.pruner.type == "nop"  # canonical name of the alias
    assert isinstance(config.build_sampler(), QMCSampler)
    assert isinstance(config.build_pruner(), NopPruner)
    config = parse_config(_with({"pruner": {"type": "percentile", "percentile": 25.0}}))
    assert isinstance(config.build_pruner(), PercentilePruner)
    assert {"random", "grid", "qmc"} <= set(SAMPLERS)
    assert {"nop", "median", "percentile"} <= set(PRUNERS) and "none" in PRUNERS


def test_grid_sampler_takes_its_grid_from_the_space() -> None:
    space = {
        "optimizer": {"choices": ["sgd", "adam"]},
        "width": {"low": 16, "high": 48, "step": 16},
        "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
    }
    config = parse_config(_with({"sampler": {"type": "grid"}, "space": space}))
    sampler = config.build_sampler()
    assert isinstance(sampler, GridSampler) and sampler.grid_size == 2 * 3 * 3
    study = dltune.create_study(**config.study_kwargs())
    seen = {tuple(sorted(config.space.suggest(study.ask()).items())) for _ in range(18)}
    assert len(seen) == 18


def test_to_mapping_round_trips(full: TuneConfig) -> None:
    again = parse_config(full.to_mapping())
    assert again.to_mapping() == full.to_mapping()
    assert again.space == full.space and again.task == full.task
    text = yaml.safe_dump(full.to_mapping(), sort_keys=False)
    assert parse_config(yaml.load(text, Loader=ConfigLoader)).to_mapping() == full.to_mapping()
    assert full.to_mapping()["sampler"] == {"type": "random", "seed": 1}
    back = pickle.loads(pickle.dumps(full))  # workers in other processes get a copy
    assert back.to_mapping() == full.to_mapping() and back.source == full.source


def test_with_overrides(full: TuneConfig) -> None:
    other = full.with_overrides(trials=5, workers=1, storage="sqlite:///o.db", timeout=9, seed=3)
    assert (other.budget.trials, other.budget.workers, other.budget.timeout) == (5, 1, 9.0)
    assert (other.storage, other.seed) == ("sqlite:///o.db", 3)
    assert (full.budget.trials, full.seed) == (30, 0)  # the original is unchanged
    assert full.with_overrides() is full
    narrowed = full.with_overrides(space=full.space.with_bounds("lr", 1e-3, 1e-2))
    assert narrowed.space.distributions["lr"] == FloatDistribution(1e-3, 1e-2, log=True)
    with pytest.raises(ConfigError, match=r"\(with workers=0\):\n  budget\.workers: must be >= 1"):
        full.with_overrides(workers=0)
    with pytest.raises(ConfigError, match=r"seed: must be >= 0 \(got -1; an integer >= 0\)"):
        full.with_overrides(seed=-1)


def test_config_error_pickles() -> None:
    err = ConfigError(["a: b (got 1; c)", "d: e (got 2; f)"], "x.yaml")
    back = pickle.loads(pickle.dumps(err))
    assert (back.errors, back.source, str(back)) == (err.errors, err.source, str(err))


# -- YAML -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-4", 1e-4),
        ("1e4", 1e4),
        ("-2E+3", -2000.0),
        ("1.0e4", 1e4),
        ("1.0e-4", 1e-4),
        (".5e1", 5.0),
        ("1_000e-3", 1.0),
        ("1e", "1e"),
        ("e4", "e4"),
        ("12", 12),
    ],
)
def test_loader_reads_yaml_12_floats(text: str, value: object) -> None:
    loaded = yaml.load(f"x: {text}", Loader=ConfigLoader)["x"]
    assert loaded == value and type(loaded) is type(value)
    assert yaml.safe_load("x: 1e-4")["x"] == "1e-4"  # what PyYAML alone does


def test_config_file_with_1e_floats(full: TuneConfig) -> None:
    assert full.space.distributions["lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert full.task.guards.max_grad_norm == 1e4


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("study: x\nbudget: {trials: 3\ntask:\n  dataset: digits\n")
    message = (
        f"invalid config {path}:\n  line 3, column 5: invalid YAML: expected ',' or '}}', but "
        "got ':' (while parsing a flow mapping that starts at line 2, column 9)"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
    path.write_text("study: x\n  bad: indent\n")
    with pytest.raises(ConfigError, match="line 2, column 6: invalid YAML: mapping values are"):
        load_config(path)


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("study: x\nspace:\n  lr: 1\n  lr: 2\n")
    with pytest.raises(
        ConfigError, match="line 4, column 3: invalid YAML: found duplicate key 'lr'"
    ):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    message = (
        f"invalid config {path}:\n  config: cannot read the file: No such file or directory "
        f"(got {str(path)!r}; a readable YAML file)"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


@pytest.mark.parametrize("text", ["- 1\n- 2\n", ""])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    got = [1, 2] if text else None
    with pytest.raises(ConfigError, match=re.escape(f"config: must be a mapping (got {got!r}; ")):
        load_config(path)


# -- every error path -------------------------------------------------------------------------

HPARAMS = (
    "optimizer, lr, momentum, nesterov, beta1, beta2, weight_decay, schedule, warmup_epochs, "
    "step_size, step_gamma, activation, loss, label_smoothing, focal_gamma, init, batch_size, "
    "dropout, grad_clip, depth, width"
)
TOP_KEYS = "study, storage, metric, direction, seed, budget, task, space, sampler, pruner, "
TOP_KEYS += "retrain, lr_find"
TASK_KEYS = "dataset, model, epochs, data_dir, download, device, checkpoint_dir, "
TASK_KEYS += "keep_checkpoints, guards, "
TASK_KEYS += "split_seed, threads"
SPEC_KEYS = "choices, low, high, log, step, type, when"
OPTIMIZERS = "sgd, adam, adamw, rmsprop, adagrad"
LR = "space.lr"

ERRORS: list[tuple[dict[str, Any], str]] = [
    # top level
    (
        {"studdy": "x"},
        "studdy: unknown key 'studdy', did you mean 'study'? (got 'x'; accepted keys: "
        f"{TOP_KEYS})",
    ),
    ({"study": _DELETE}, "study: required (missing; the study name, a non-empty string)"),
    ({"study": ""}, "study: must not be empty (got ''; the study name, a non-empty string)"),
    ({"study": 3}, "study: must be a string (got 3; the study name, a non-empty string)"),
    ({"metric": "acc"}, "metric: unknown metric 'acc' (valid names: val_accuracy, val_loss)"),
    (
        {"direction": "minimize"},
        "direction: contradicts metric val_accuracy, which is maximized (got 'minimize'; "
        "'maximize', or leave direction out)",
    ),
    (
        {"direction": "up"},
        "direction: must be 'maximize' or 'minimize' (got 'up'; maximize or minimize, as the "
        "metric implies)",
    ),
    ({"seed": 1.5}, "seed: must be an integer (got 1.5; an integer >= 0)"),
    # budget
    ({"budget.workers": 0}, "budget.workers: must be >= 1 (got 0; an integer >= 1)"),
    ({"budget.trials": 0}, "budget.trials: must be >= 1 (got 0; an integer >= 1)"),
    ({"budget.trials": True}, "budget.trials: must be an integer (got True; an integer >= 1)"),
    ({"budget.timeout": -1}, "budget.timeout: must be > 0 (got -1; seconds, a number > 0)"),
    (
        {"budget.timeout": math.inf},
        "budget.timeout: must be a finite number (got inf; seconds, a number > 0)",
    ),
    (
        {"budget": {"workers": 2}},
        "budget: needs trials or timeout (got {'workers': 2}; trials, timeout or both, e.g. "
        "{trials: 30} or {timeout: 600})",
    ),
    (
        {"budget": 5},
        "budget: must be a mapping (got 5; a mapping with keys trials, timeout, workers, retries)",
    ),
    (
        {"budget": _DELETE},
        "budget: required (missing; a mapping of trials and/or timeout, and workers)",
    ),
    # task
    (
        {"task.epoch": 10},
        "task.epoch: unknown key 'epoch', did you mean 'epochs'? (got 10; accepted keys: "
        f"{TASK_KEYS})",
    ),
    (
        {"task.dataset": "digitz"},
        "task.dataset: unknown data set 'digitz', did you mean 'digits'? (valid names: digits, "
        "mnist1d (alias mnist_1d), mnist, fashion_mnist (alias fmnist), cifar10 (alias "
        "cifar_10))",
    ),
    ({"task.model": "vgg"}, "task.model: unknown model 'vgg' (valid names: mlp, cnn, resnet)"),
    ({"task.model": _DELETE}, "task.model: required (missing; a model name, e.g. cnn)"),
    (
        {"task.device": "gpu"},
        "task.device: is not a device (got 'gpu'; auto, cpu, cuda or cuda:N)",
    ),
    ({"task.epochs": 0}, "task.epochs: must be >= 1 (got 0; an integer >= 1)"),
    (
        {"task.guards.loss_ratio": 0.5},
        "task.guards.loss_ratio: must be > 1 (got 0.5; a number > 1)",
    ),
    (
        {"task.guards.min_improvement": 2},
        "task.guards.min_improvement: must be <= 1 (got 2; a number in (0, 1])",
    ),
    (
        {"task.guards.enabled": "yes"},
        "task.guards.enabled: must be true or false (got 'yes'; true or false)",
    ),
    # space: the distributions' rules
    (
        {f"{LR}.low": -1.0},
        "space.lr.low: must be > 0 with log: true (got -1.0; a positive number)",
    ),
    ({LR: {"low": 0.5, "high": 0.1}}, "space.lr.low: must be <= high (got 0.5; a number <= 0.1)"),
    (
        {LR: {"low": 0.1, "high": 0.5, "log": True, "step": 0.1}},
        "space.lr.step: cannot be combined with log: true (got 0.1; drop step or log)",
    ),
    (
        {LR: {"low": 0.1, "high": 0.5, "step": -0.1}},
        "space.lr.step: must be > 0 (got -0.1; a positive number)",
    ),
    (
        {LR: {"low": 0.1, "high": 0.5, "step": 0.3}},
        "space.lr.step: does not divide the range high - low = 0.4 (got 0.3; choose a step that "
        "divides it or set high to 0.4)",
    ),
    ({LR: {"low": 0.1}}, "space.lr.high: required with low (missing; a number, the upper bound)"),
    (
        {LR: {"low": "1e-4", "high": 1.0}},
        "space.lr.low: must be a finite number (got '1e-4'; a number)",
    ),
    (
        {LR: {"low": 0.1, "high": 0.5, "log": "yes"}},
        "space.lr.log: must be true or false (got 'yes'; a boolean)",
    ),
    (
        {LR: {"low": 0.1, "high": 0.5, "type": "double"}},
        "space.lr.type: must be float or int (got 'double'; float or int)",
    ),
    (
        {LR: {"lo": 0.1, "low": 0.1, "high": 0.5}},
        "space.lr.lo: unknown key 'lo', did you mean 'low'? (got 0.1; accepted keys: "
        f"{SPEC_KEYS})",
    ),
    (
        {LR: {"log": True}},
        "space.lr: needs choices, or low and high (got {'log': True}; {choices: [...]}, {low: "
        "..., high: ...} or one fixed value)",
    ),
    (
        {"space.depth": {"low": 0, "high": 3, "log": True}},
        "space.depth.low: must be >= 1 with log: true (got 0; an integer >= 1)",
    ),
    (
        {"space.depth": {"low": 1, "high": 3, "type": "int", "step": 0.5}},
        "space.depth.step: must be an integer with type: int (got 0.5; an integer)",
    ),
    (
        {"space.optimizer": {"choices": []}},
        "space.optimizer.choices: must not be empty (got []; at least one value)",
    ),
    (
        {"space.optimizer": {"choices": "sgd"}},
        "space.optimizer.choices: must be a list (got 'sgd'; a non-empty list of values)",
    ),
    (
        {"space.optimizer": {"choices": ["sgd", ["adam"]]}},
        "space.optimizer.choices[1]: must be a single value (got ['adam']; null, true/false, a "
        "number or a string)",
    ),
    (
        {"space.optimizer": {"choices": ["sgd", "sgd"]}},
        "space.optimizer.choices[1]: repeats choice 0 (got 'sgd'; each choice once)",
    ),
    (
        {"space.optimizer": {"choices": ["sgd"], "low": 1}},
        "space.optimizer.low: cannot be combined with choices (got 1; either choices or a "
        "low/high range)",
    ),
    (
        {"space.optimizer": ["sgd", "adam"]},
        "space.optimizer: a list is not a parameter (got ['sgd', 'adam']; put the values under "
        "choices, as {choices: [...]}, or give one fixed value)",
    ),
    (
        {"space": ["lr"]},
        "space: must be a mapping (got ['lr']; a mapping of hyperparameter name to spec, e.g. "
        "{lr: {low: ..., high: ...}})",
    ),
    # space: the trainer
    (
        {"space.optimizer": {"choices": ["sgd", "adamx"]}},
        "space.optimizer.choices[1]: unknown optimizer 'adamx', did you mean 'adam'? (valid "
        f"names: {OPTIMIZERS})",
    ),
    (
        {"space.loss": "focul"},
        "space.loss: unknown loss 'focul', did you mean 'focal'? (valid names: cross_entropy "
        "(alias ce), label_smoothing, focal)",
    ),
    (
        {"space.activation": {"choices": ["relu", "swish", "mish"]}},
        "space.activation.choices[2]: unknown activation 'mish' (valid names: relu, leaky_relu, "
        "elu, gelu, silu (alias swish), tanh)",
    ),
    (
        {"space.lrr": 0.1},
        f"space.lrr: unknown hyperparameter 'lrr', did you mean 'lr'? (valid names: {HPARAMS})",
    ),
    (
        {"space.colour": {"choices": [1, 2]}},
        f"space.colour: unknown hyperparameter 'colour' (valid names: {HPARAMS})",
    ),
    (
        {LR: {"low": 0, "high": 1}},
        "space.lr.low: lr is out of range (got 0.0; accepted: (0, inf))",
    ),
    ({"space.dropout": 1.5}, "space.dropout: dropout is out of range (got 1.5; accepted: [0, 1))"),
    (
        {"space.width": {"low": 16.0, "high": 128.0}},
        "space.width: width takes integers, not a float range (got {'low': 16.0, 'high': "
        "128.0}; integer low, high and step, without type: float)",
    ),
    (
        {"space.batch_size": {"low": 16, "high": 128, "type": "float"}},
        "space.batch_size: batch_size takes integers, not a float range (got {'low': 16.0, "
        "'high': 128.0}; integer low, high and step, without type: float)",
    ),
    (
        {"space.batch_size": {"choices": [16, 32.5]}},
        "space.batch_size.choices[1]: batch_size must be an integer (got 32.5; an integer)",
    ),
    (
        {"space.depth": {"low": 0, "high": 3}},
        "space.depth.low: depth is out of range (got 0; accepted: [1, inf))",
    ),
    (
        {"space.nesterov": {"low": 0, "high": 1}},
        "space.nesterov: nesterov takes true or false, not a range (got {'low': 0, 'high': 1}; "
        "{choices: [...]} or one fixed value)",
    ),
    # space: conditions
    (
        {"space.momentum.when": {"optimiser": "sgd"}},
        "space.momentum.when.optimiser: unknown parameter 'optimiser', did you mean "
        "'optimizer'? (valid names: optimizer, width)",
    ),
    (
        {"space.momentum.when": {"optimizer": "rmsprop"}},
        "space.momentum.when.optimizer: is not a value optimizer can take (got 'rmsprop'; one "
        "of the choices of optimizer: 'sgd', 'adam')",
    ),
    (
        {"space.momentum.when": {"optimizer": ["sgd", "adamw"]}},
        "space.momentum.when.optimizer[1]: is not a value optimizer can take (got 'adamw'; one "
        "of the choices of optimizer: 'sgd', 'adam')",
    ),
    (
        {"space.momentum.when": {"width": 32}},
        "space.momentum.when.width: is not a value width can take (got 32; width is fixed to 16)",
    ),
    (
        {"space.momentum.when": {"lr": 0.1}},
        "space.momentum.when.lr: lr is a float range; conditions test categorical ones (got "
        "'lr'; a categorical parameter or a fixed value: optimizer, width)",
    ),
    (
        {"space.momentum.when": ["optimizer"]},
        "space.momentum.when: must be a mapping (got ['optimizer']; a mapping of parameter name "
        "to value(s), e.g. {optimizer: [sgd, rmsprop]})",
    ),
    (
        {"space.optimizer.when": {"optimizer": "sgd"}},
        "space.optimizer.when: conditions form a cycle optimizer -> optimizer (got "
        "{'optimizer': 'sgd'}; a parameter cannot depend on itself, directly or through others)",
    ),
    # sampler and pruner
    (
        {"sampler": {"type": "tpee"}},
        "sampler.type: unknown sampler 'tpee', did you mean 'tpe'? (valid names: random, grid, "
        "qmc, tpe, gp, cmaes (alias cma, cma_es), auto)",
    ),
    (
        {"sampler": {"type": "random", "sead": 1}},
        "sampler.sead: unknown key 'sead', did you mean 'seed'? (got 1; accepted keys: seed)",
    ),
    (
        {"sampler": {"type": "random", "seed": -1}},
        "sampler.seed: must be >= 0 (got -1; a value the random sampler accepts)",
    ),
    ({"sampler": {"seed": 1}}, "sampler.type: required (missing; a registered name)"),
    (
        {"pruner": None},
        "pruner: must be a name or a mapping (got None; a name, or a mapping of type and "
        "arguments, e.g. {type: median})",
    ),
    (
        {"sampler": {"type": "grid"}},
        "sampler.search_space: required by the grid sampler (missing; a mapping of parameter "
        "name to values; or leave it out with a space of choices and ranges with step, at most "
        "10,000 values each)",
    ),
    (
        {"pruner": {"type": "percentile"}},
        "pruner.percentile: required by the percentile pruner (missing; the arguments of "
        "PercentilePruner)",
    ),
    (
        {"pruner": {"type": "percentile", "percentile": 150}},
        "pruner.percentile: must be in [0, 100] (got 150; a value the percentile pruner accepts)",
    ),
    (
        {"pruner": {"type": "median", "n_warmup_step": 2}},
        "pruner.n_warmup_step: unknown key 'n_warmup_step', did you mean 'n_warmup_steps'? (got "
        "2; accepted keys: n_startup_trials, n_warmup_steps, interval_steps, n_min_trials, "
        "objective)",
    ),
    (
        {"pruner": {"type": "nop", "x": 1}},
        "pruner.x: unknown key 'x' (got 1; accepted keys: none)",
    ),
    # retrain and lr_find
    ({"retrain.top_k": -1}, "retrain.top_k: must be >= 0 (got -1; an integer >= 0 (0 disables))"),
    ({"retrain.seeds": 0}, "retrain.seeds: must be >= 1 (got 0; an integer >= 1)"),
    (
        {"lr_find": {"min_lr": 1.0, "max_lr": 0.1}},
        "lr_find.max_lr: must be > min_lr (got 0.1; a number > min_lr = 1.0)",
    ),
    ({"lr_find.steps": 5}, "lr_find.steps: must be >= 10 (got 5; an integer >= 10)"),
]


@pytest.mark.parametrize(("changes", "line"), ERRORS, ids=[e[1].split(":")[0] for e in ERRORS])
def test_error(changes: dict[str, Any], line: str) -> None:
    err = _fails(_with(changes), line)
    assert err.errors == [line]


def test_cycle_through_two_params() -> None:
    space = {
        "optimizer": {"choices": ["sgd", "adam"], "when": {"loss": "focal"}},
        "loss": {"choices": ["cross_entropy", "focal"], "when": {"optimizer": "sgd"}},
    }
    _fails(
        _with({"space": space}),
        "space.optimizer.when: conditions form a cycle optimizer -> loss -> optimizer "
        "(got {'loss': 'focal'}; a parameter cannot depend on itself, directly or through others)",
    )


def test_every_problem_is_reported_at_once() -> None:
    data = _with(
        {
            "budget.workers": 0,
            "task.epoch": 3,
            "space.lr.low": -1.0,
            "space.optimizer": {"choices": []},
            "sampler": {"type": "tpee"},
            "metric": "val_loss",
            "direction": "maximize",
            "colour": "red",
        }
    )
    err = _fails(data, "budget.workers: must be >= 1 (got 0; an integer >= 1)")
    assert [e.split(":")[0] for e in err.errors] == [
        "direction",
        "budget.workers",
        "task.epoch",
        "space.optimizer.choices",
        "space.lr.low",
        "sampler.type",
        "colour",
    ]
    assert "https://" not in str(err) and "Input should" not in str(err)


def test_parse_config_refuses_a_non_mapping() -> None:
    _fails(
        "study: x", f"config: must be a mapping (got 'study: x'; a mapping with keys {TOP_KEYS})"
    )


# -- SearchSpace ------------------------------------------------------------------------------


def test_space_kinds() -> None:
    space = SearchSpace.from_mapping(
        {
            "a": {"low": 1, "high": 5},
            "b": {"low": 1, "high": 5, "type": "float"},
            "c": {"low": 1.0, "high": 5.0, "type": "int", "step": 2},
            "d": {"low": 1, "high": 4.5},
            "e": {"choices": [None, True, 1, 1.5, "x"]},
            "f": None,
            "g": "const",
        }
    )
    assert space.distributions == {
        "a": IntDistribution(1, 5),
        "b": FloatDistribution(1.0, 5.0),
        "c": IntDistribution(1, 5, step=2),
        "d": FloatDistribution(1.0, 4.5),
        "e": CategoricalDistribution((None, True, 1, 1.5, "x")),
    }
    assert space.fixed == {"f": None, "g": "const"}
    assert space.names() == ["a", "b", "c", "d", "e"]
    assert "f" in space and "z" not in space and len(space) == 7
    assert SearchSpace.from_mapping(space.to_mapping()) == space


def test_space_from_python() -> None:
    space = SearchSpace(
        {"opt": CategoricalDistribution(("sgd", "adam")), "m": FloatDistribution(0.0, 1.0)},
        fixed={"w": 3},
        when={"m": {"opt": "sgd"}},
    )
    assert space == SearchSpace.from_mapping(
        {
            "opt": {"choices": ["sgd", "adam"]},
            "m": {"low": 0.0, "high": 1.0, "when": {"opt": "sgd"}},
            "w": 3,
        }
    )
    assert space.is_active("m", {"opt": "sgd"}) and not space.is_active("m", {"opt": "adam"})
    assert "SearchSpace.from_mapping({'opt'" in repr(space)
    with pytest.raises(ConfigError, match=r"space\.w: is both tuned and fixed \(got 3;"):
        SearchSpace({"w": FloatDistribution(0.0, 1.0)}, fixed={"w": 3})
    with pytest.raises(
        ConfigError, match=r"space\.w\.when: only a tuned parameter has conditions"
    ):
        SearchSpace(fixed={"w": 3}, when={"w": {"w": 3}})
    with pytest.raises(ConfigError, match=r"space\.x: must be a distribution \(got \(0, 1\);"):
        SearchSpace({"x": (0, 1)})  # type: ignore[dict-item]  # the error under test


def test_space_errors_from_python() -> None:
    with pytest.raises(ConfigError, match=r"invalid config <space>:\n  space\.x\.low: must be <="):
        SearchSpace.from_mapping({"x": {"low": 2, "high": 1}})
    with pytest.raises(ConfigError, match=r"space: must be a mapping \(got 3;"):
        SearchSpace.from_mapping(3)  # type: ignore[arg-type]  # the error under test
    with pytest.raises(ConfigError, match=r"space\.1: a parameter name must be a string \(got 1;"):
        SearchSpace.from_mapping({1: 2})  # type: ignore[dict-item]  # the error under test


def test_conditions_on_a_conditional_parameter() -> None:
    space = SearchSpace.from_mapping(
        {
            "width": {"low": 1, "high": 2, "when": {"use_nesterov": True}},  # defined first
            "use_nesterov": {"choices": [True, False], "when": {"opt": "sgd"}},
            "opt": {"choices": ["sgd", "adam"]},
        }
    )
    study = dltune.create_study(seed=0)
    seen = set()
    for _ in range(30):
        params = space.suggest(study.ask())
        seen.add(tuple(sorted(params)))
        assert ("use_nesterov" in params) == (params["opt"] == "sgd")
        assert ("width" in params) == (params.get("use_nesterov") is True)
    assert seen == {("opt",), ("opt", "use_nesterov"), ("opt", "use_nesterov", "width")}


def test_condition_distinguishes_true_from_one() -> None:
    space = SearchSpace.from_mapping(
        {"flag": {"choices": [1, True]}, "x": {"low": 0, "high": 1, "when": {"flag": True}}}
    )
    assert space.is_active("x", {"flag": True}) and not space.is_active("x", {"flag": 1})


def test_with_bounds() -> None:
    space = SearchSpace.from_mapping(
        {
            "lr": {"low": 1e-5, "high": 1.0, "log": True},
            "opt": {"choices": ["a", "b"]},
            "m": {"low": 0.0, "high": 1.0, "step": 0.25, "when": {"opt": "a"}},
        }
    )
    narrowed = space.with_bounds("lr", 1e-3, 1e-1)
    assert narrowed.distributions["lr"] == FloatDistribution(1e-3, 1e-1, log=True)
    assert space.distributions["lr"] == FloatDistribution(1e-5, 1.0, log=True)  # a copy
    m = space.with_bounds("m", 0.25, 0.75)
    assert m.distributions["m"] == FloatDistribution(0.25, 0.75, step=0.25)
    assert m.conditions == space.conditions
    message = "with_bounds: name='opt' is not a float parameter of the space; float parameters: "
    with pytest.raises(ValueError, match=re.escape(message + "lr, m")):
        space.with_bounds("opt", 0, 1)
    with pytest.raises(ValueError, match=r"name='nope' is not a float parameter"):
        space.with_bounds("nope", 0, 1)
    with pytest.raises(
        ValueError, match=r"with_bounds\('lr'\): log=True needs low > 0, got low=0\.0"
    ):
        space.with_bounds("lr", 0.0, 1.0)


_CHILD = st.sampled_from(["a", "b", "c"])


@st.composite
def _spaces(draw: st.DrawFn) -> dict[str, Any]:
    mapping: dict[str, Any] = {"parent": {"choices": ["a", "b", "c"]}}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["float", "int", "cat", "fixed"]))
        if kind == "float":
            low = draw(st.floats(1e-6, 1e3))
            spec: Any = {"low": low, "high": low * draw(st.floats(1.0, 1e3))}
            spec["log"] = draw(st.booleans())
        elif kind == "int":
            low = draw(st.integers(1, 100))
            step = draw(st.integers(1, 5))
            spec = {"low": low, "high": low + step * draw(st.integers(0, 20)), "step": step}
        elif kind == "cat":
            spec = {
                "choices": draw(st.lists(st.integers(-9, 9), min_size=1, max_size=4, unique=True))
            }
        else:
            spec = draw(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)))
        if kind != "fixed" and draw(st.booleans()):
            spec["when"] = {"parent": draw(st.lists(_CHILD, min_size=1, max_size=3, unique=True))}
        mapping[f"p{i}"] = spec
    return mapping


@settings(max_examples=40, deadline=None)
@given(mapping=_spaces(), seed=st.integers(0, 2**16))
def test_suggest_stays_inside_the_distributions(mapping: dict[str, Any], seed: int) -> None:
    space = SearchSpace.from_mapping(mapping)
    study = dltune.create_study(seed=seed)
    for _ in range(3):
        params = space.suggest(study.ask())
        for name, dist in space.distributions.items():
            when = space.conditions.get(name, {}).get("parent")
            assert (name in params) == (when is None or params["parent"] in when)
            if name in params:
                assert dist.contains(dist.to_internal(params[name]))
        for name, value in space.fixed.items():
            assert params[name] == value
