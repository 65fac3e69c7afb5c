"""Tests for dltune/analysis/_importance.py (PED-ANOVA, fANOVA and their shared encoding)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import dltune
from dltune.analysis._fanova import _encode
from dltune.analysis._fanova import _tree_fractions
from dltune.analysis._importance import param_importances
from dltune.analysis._importance_columns import param_columns
from dltune.analysis._importance_ped import ped_anova_variances
from dltune.samplers import RandomSampler
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

METHODS = ["ped_anova", "fanova"]
X123: dict[str, BaseDistribution] = {f"x{i}": FloatDistribution(0.0, 1.0) for i in (1, 2, 3)}
OPTIMIZER = CategoricalDistribution(("sgd", "adam"))
LR = FloatDistribution(1e-5, 1e-1, log=True)
MOMENTUM = FloatDistribution(0.0, 0.99)
NOISE = FloatDistribution(0.0, 1.0)


def _trials(
    n: int,
    space: Mapping[str, BaseDistribution],
    objective: Callable[[dict[str, Any], np.random.Generator], float],
    seed: int = 0,
) -> list[FrozenTrial]:
    """``n`` COMPLETE trials drawn uniformly from ``space`` (on each parameter's own scale)."""
    rng = np.random.default_rng(seed)
    trials = []
    for k in range(n):
        params = {
            name: dist.to_external(dist.from_unit(float(rng.random())))
            for name, dist in space.items()
        }
        value = objective(params, rng)
        trials.append(FrozenTrial(k, k, TrialState.COMPLETE, [value], params, dict(space)))
    return trials


def _x1_over_x2(params: dict[str, Any], rng: np.random.Generator) -> float:
    """x1 matters much more than x2; x3 is noise."""
    return float(
        10 * (params["x1"] - 0.3) ** 2 + (params["x2"] - 0.5) ** 2 + 0.01 * rng.standard_normal()
    )


def _conditional_trials(n: int, momentum_matters: bool, seed: int = 0) -> list[FrozenTrial]:
    """``optimizer`` picks a branch; only SGD trials have ``momentum``."""
    rng = np.random.default_rng(seed)
    trials = []
    for k in range(n):
        optimizer = "sgd" if rng.random() < 0.5 else "adam"
        params: dict[str, Any] = {
            "optimizer": optimizer,
            "lr": float(10 ** rng.uniform(-5, -1)),
            "noise": float(rng.random()),
        }
        space: dict[str, BaseDistribution] = {"optimizer": OPTIMIZER, "lr": LR, "noise": NOISE}
        value = (math.log10(params["lr"]) + 3) ** 2
        if optimizer == "sgd":
            params["momentum"] = float(rng.uniform(0.0, 0.99))
            space["momentum"] = MOMENTUM
            value += 0.3 + (8 * (params["momentum"] - 0.9) ** 2 if momentum_matters else 0.0)
        trials.append(FrozenTrial(k, k, TrialState.COMPLETE, [value], params, space))
    return trials


def _check_shares(shares: dict[str, float]) -> None:
    assert math.isclose(sum(shares.values()), 1.0)
    assert all(v >= 0 for v in shares.values())
    assert list(shares.values()) == sorted(shares.values(), reverse=True)


# -- what the methods find ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_ranks_the_parameter_that_matters_first_and_noise_last(method: str) -> None:
    trials = _trials(300, X123, _x1_over_x2)
    result = param_importances(trials, ["minimize"], method=method)
    assert list(result.importances) == ["x1", "x2", "x3"]
    assert result.importances["x1"] > 0.6
    assert result.importances["x3"] < 0.1
    assert (result.method, result.objective, result.n_trials) == (method, 0, 300)
    _check_shares(result.importances)


@pytest.mark.parametrize("method", METHODS)
def test_categorical_parameter_that_decides_the_value_ranks_first(method: str) -> None:
    space: dict[str, BaseDistribution] = {
        "act": CategoricalDistribution(("relu", "tanh", "gelu", None)),
        "wd": FloatDistribution(1e-6, 1e-2, log=True),
    }
    penalty = {"relu": 0.0, "tanh": 2.0, "gelu": 0.5, None: 3.0}

    def objective(params: dict[str, Any], rng: np.random.Generator) -> float:
        return penalty[params["act"]] + 0.2 * float(rng.random())

    result = param_importances(_trials(200, space, objective), ["minimize"], method=method)
    assert list(result.importances) == ["act", "wd"]
    assert result.importances["act"] > 0.8


@pytest.mark.parametrize("method", METHODS)
def test_small_integer_grid_counts_as_levels(method: str) -> None:
    space: dict[str, BaseDistribution] = {
        "n_layers": IntDistribution(1, 4),
        "units": IntDistribution(16, 512, log=True),
    }

    def objective(params: dict[str, Any], rng: np.random.Generator) -> float:
        return abs(int(params["n_layers"]) - 3) + 0.1 * float(rng.random())

    result = param_importances(_trials(200, space, objective), ["minimize"], method=method)
    assert list(result.importances) == ["n_layers", "units"]


def test_maximize_ranks_what_makes_values_high() -> None:
    def objective(params: dict[str, Any], rng: np.random.Generator) -> float:
        # Low values come from x1 < 0.1 only, high values from x2 > 0.9 only.
        return float(-3 * (params["x1"] < 0.1) + 3 * (params["x2"] > 0.9) + 0.1 * params["x3"])

    trials = _trials(400, X123, objective)
    low = param_importances(trials, ["minimize"])
    high = param_importances(trials, ["maximize"])
    assert next(iter(low.importances)) == "x1"
    assert next(iter(high.importances)) == "x2"
    assert "lowest values" in low.notes[-1] and "highest values" in high.notes[-1]
    flipped = [
        FrozenTrial(
            t.number, t.trial_id, t.state, [-v for v in t.values or []], t.params, t.distributions
        )
        for t in trials
    ]
    assert param_importances(flipped, ["minimize"]).importances == high.importances


# -- conditional parameters -----------------------------------------------------------------


def test_ped_anova_measures_a_branch_parameter_inside_its_branch() -> None:
    trials = _conditional_trials(300, momentum_matters=True)
    best = sorted(trials, key=lambda t: t.values[0] if t.values else math.inf)[:30]
    assert all(t.params["optimizer"] == "adam" for t in best)
    result = param_importances(trials, ["minimize"])
    shares = result.importances
    assert set(shares) == {"optimizer", "lr", "noise", "momentum"}
    # No SGD trial is among the overall best, yet momentum matters within SGD.
    assert shares["momentum"] > 5 * shares["noise"]
    assert shares["lr"] > shares["noise"] and shares["optimizer"] > shares["noise"]
    assert "'momentum' is conditional: set in 156 of 300 trials" in result.notes


def test_ped_anova_gives_a_branch_parameter_that_does_not_matter_little() -> None:
    result = param_importances(_conditional_trials(300, momentum_matters=False), ["minimize"])
    shares = result.importances
    assert list(shares)[:2] == ["lr", "optimizer"]
    assert shares["momentum"] < 0.1


@pytest.mark.parametrize("n_trials", [60, 300])
def test_ped_anova_tells_a_branch_parameter_that_matters_from_one_that_does_not(
    n_trials: int,
) -> None:
    # In a small study the branch's top set is a handful of trials: the same share as overall.
    matters = _conditional_trials(n_trials, momentum_matters=True)
    idle = _conditional_trials(n_trials, momentum_matters=False)
    shares = param_importances(matters, ["minimize"]).importances
    idle_shares = param_importances(idle, ["minimize"]).importances
    assert shares["momentum"] > 5 * idle_shares["momentum"]
    assert shares["momentum"] > 0.1


def _two_level_branch() -> list[FrozenTrial]:
    """Ten trials, trial k has value k; only trials 0-4 set ``b``: p, p, q, q, q."""
    dist: dict[str, BaseDistribution] = {"b": CategoricalDistribution(("p", "q"))}
    return [
        FrozenTrial(k, k, TrialState.COMPLETE, [float(k)], {"b": "pq"[k >= 2]} if k < 5 else {},
                    dist if k < 5 else {})
        for k in range(10)
    ]  # fmt: skip


def test_ped_anova_measures_a_branch_with_the_overall_top_share() -> None:
    # 2 of 10 trials are the top set (gamma 0.2); the branch of 5 has a top set of 1 trial,
    # the same share, where a floor of a few trials would have taken 2 (share 0.4).
    columns, _ = param_columns(_two_level_branch(), ["b"])
    raw = ped_anova_variances(columns, np.arange(10), n_top=2)
    # pseudo-mass 0.5 over 2 levels; top: trial 0 (p); branch: p, p, q, q, q
    p_top = np.array([1.25, 0.25]) / 1.5
    p_branch = np.array([2.25, 3.25]) / 5.5
    divergence = float((p_top**2 / p_branch).sum()) - 1.0
    assert raw["b"] == pytest.approx(0.5 * 0.2**2 * divergence)


def test_ped_anova_counts_a_fractional_boundary_trial_in_a_branch() -> None:
    # 3 of 10 on top: the branch of 5 gets 1.5 top trials (trial 0 whole, trial 1 half).
    columns, _ = param_columns(_two_level_branch(), ["b"])
    raw = ped_anova_variances(columns, np.arange(10), n_top=3)
    p_top = np.array([1.5 + 0.25, 0.25]) / 2.0
    p_branch = np.array([2.25, 3.25]) / 5.5
    divergence = float((p_top**2 / p_branch).sum()) - 1.0
    assert raw["b"] == pytest.approx(0.5 * 0.3**2 * divergence)


def test_ped_anova_pseudo_mass_does_not_swamp_a_small_top_set() -> None:
    # Six equally common levels, the 5 best trials all on one: the divergence is near the
    # 5.0 it has without smoothing (a pseudo-count of 0.5 per level would give about 2).
    dist: dict[str, BaseDistribution] = {"c": CategoricalDistribution(tuple("abcdef"))}
    trials = [
        FrozenTrial(k, k, TrialState.COMPLETE, [float(k)], {"c": "abcdef"[k % 6]}, dist)
        for k in range(600)
    ]
    order = np.array([6 * k for k in range(5)] + [k for k in range(600) if k % 6 or k >= 30])
    columns, _ = param_columns(trials, ["c"])
    divergence = ped_anova_variances(columns, order, n_top=5)["c"] / (5 / 600) ** 2
    assert 4.0 < divergence < 5.0


def test_fanova_reads_absence_as_a_value() -> None:
    trials = _conditional_trials(200, momentum_matters=True)
    result = param_importances(trials, ["minimize"], method="fanova", n_trees=16)
    shares = result.importances
    assert list(shares)[-1] == "noise"
    assert shares["momentum"] > 0.2 and shares["lr"] > 0.1
    assert any(
        note.startswith("fANOVA over 16 trees: main effects explain") for note in result.notes
    )


def test_fanova_tree_fractions_match_brute_force_over_the_product_grid() -> None:
    ensemble = pytest.importorskip("sklearn.ensemble")
    trials = _conditional_trials(150, momentum_matters=True)
    columns, _ = param_columns(trials, ["optimizer", "lr", "momentum"])
    features, axes = _encode(columns)
    values = np.array([t.values[0] for t in trials if t.values is not None])
    forest = ensemble.RandomForestRegressor(n_estimators=2, max_depth=6, random_state=0)
    forest.fit(features, values)
    for estimator in forest.estimators_:
        tree = estimator.tree_
        # Every tree is constant on the product of each axis's cells: weigh one point per cell.
        cells = [axis.cells(tree.threshold[tree.feature == d]) for d, axis in enumerate(axes)]
        grid = np.stack(np.meshgrid(*[p for p, _ in cells], indexing="ij"), axis=-1)
        weight = np.einsum("i,j,k->ijk", *[w for _, w in cells])
        f = estimator.predict(grid.reshape(-1, 3)).reshape(weight.shape)
        mean = float((weight * f).sum())
        total = float((weight * (f - mean) ** 2).sum())
        expected = []
        for d in range(3):
            others = tuple(j for j in range(3) if j != d)
            marginal = (weight * f).sum(axis=others) / weight.sum(axis=others)
            expected.append(float((cells[d][1] * (marginal - mean) ** 2).sum()) / total)
        fractions = _tree_fractions(tree, axes)
        assert fractions is not None
        np.testing.assert_allclose(fractions, expected, rtol=1e-9, atol=1e-12)


# -- inputs, restrictions, small studies ----------------------------------------------------


def test_params_restricts_and_renormalizes() -> None:
    trials = _trials(300, X123, _x1_over_x2)
    full = param_importances(trials, ["minimize"]).importances
    some = param_importances(trials, ["minimize"], params=["x3", "x2"]).importances
    assert list(some) == ["x2", "x3"]
    assert math.isclose(some["x2"] / some["x3"], full["x2"] / full["x3"])
    _check_shares(some)


def test_reads_a_study_and_picks_the_objective() -> None:
    study = dltune.create_study(directions=["minimize", "maximize"], sampler=RandomSampler(seed=0))

    def objective(trial: dltune.Trial) -> tuple[float, float]:
        a = trial.suggest_float("a", 0.0, 1.0)
        b = trial.suggest_float("b", 0.0, 1.0)
        return (a - 0.2) ** 2, -((b - 0.7) ** 2)

    study.optimize(objective, n_trials=60)
    assert next(iter(param_importances(study).importances)) == "a"
    second = param_importances(study, objective=1)
    assert (next(iter(second.importances)), second.objective) == ("b", 1)


def test_trials_that_do_not_count_are_left_out_with_a_note() -> None:
    trials = _trials(40, X123, _x1_over_x2)
    trials[0].state, trials[0].values = TrialState.PRUNED, None
    trials[1].state, trials[1].values = TrialState.FAIL, None
    trials[2].values = [math.inf]
    result = param_importances(trials, ["minimize"])
    assert result.n_trials == 37
    assert result.notes[0] == (
        "left out 3 trial(s): 1 fail, 1 pruned, 1 complete without a finite value 0"
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_trials", [0, 1])
def test_tiny_study_gives_zero_shares_with_a_note(method: str, n_trials: int) -> None:
    trials = _trials(n_trials, X123, _x1_over_x2)
    trials.append(FrozenTrial(n_trials, n_trials, TrialState.RUNNING, None, {"x1": 0.5}, X123))
    result = param_importances(trials, ["minimize"], method=method)
    # Known parameters come from every trial, the running one too.
    expected = ["x1"] if n_trials == 0 else ["x1", "x2", "x3"]
    assert result.importances == dict.fromkeys(expected, 0.0)
    assert result.n_trials == n_trials
    assert result.notes[-1] == (
        f"only {n_trials} trial(s) are COMPLETE with a finite value 0; importance needs at "
        "least 2, so every share is 0"
    )


@pytest.mark.parametrize("method", METHODS)
def test_two_trials_and_a_fixed_parameter(method: str) -> None:
    space: dict[str, BaseDistribution] = {"x": NOISE, "fixed": IntDistribution(3, 3)}
    trials = [
        FrozenTrial(k, k, TrialState.COMPLETE, [float(k)], {"x": 0.1 + 0.8 * k, "fixed": 3}, space)
        for k in range(2)
    ]
    result = param_importances(trials, ["minimize"], method=method)
    assert "share 0 for ['fixed']: never varied over the trials used" in result.notes
    assert result.importances == {"x": 1.0, "fixed": 0.0}


def test_equal_values_give_zero_shares_with_a_note() -> None:
    trials = _trials(20, X123, lambda params, rng: 1.0)
    result = param_importances(trials, ["minimize"])
    assert set(result.importances.values()) == {0.0}
    assert result.notes[-1] == "all 20 trials have the same value, so every share is 0"


def test_seed_makes_fanova_repeatable_and_ped_anova_ignores_it() -> None:
    trials = _trials(150, X123, _x1_over_x2)

    def run(method: str, seed: int) -> dict[str, float]:
        result = param_importances(trials, ["minimize"], method=method, seed=seed, n_trees=8)
        return result.importances

    assert run("fanova", 3) == run("fanova", 3)
    assert run("fanova", 3) != run("fanova", 4)
    assert run("ped_anova", 3) == run("ped_anova", 4)


def test_encoding_uses_each_parameter_s_own_scale() -> None:
    space: dict[str, BaseDistribution] = {
        "lr": LR,
        "flag": CategoricalDistribution((1, True, "x")),
        "batch": IntDistribution(8, 64, step=8),
    }
    trials = [
        FrozenTrial(
            0, 0, TrialState.COMPLETE, [0.0], {"lr": 1e-3, "flag": True, "batch": 24}, space
        ),
        FrozenTrial(1, 1, TrialState.COMPLETE, [0.0], {"lr": 1e-5, "flag": 1}, space),
    ]
    lr, flag, batch = param_columns(trials, ["lr", "flag", "batch"])[0]
    np.testing.assert_allclose(lr.values, [0.5, 0.0])
    assert flag.codes is not None and flag.codes.tolist() == [1, 0]
    assert batch.codes is not None and batch.codes.tolist() == [2, -1]
    assert batch.n_levels == 8 and np.isnan(batch.values[1])


def test_mixed_distribution_kinds_leave_the_parameter_out() -> None:
    trials = [
        FrozenTrial(k, k, TrialState.COMPLETE, [float(k)], {"p": p}, {"p": dist})
        for k, (p, dist) in enumerate([(0.5, NOISE), ("a", CategoricalDistribution(("a",)))])
    ]
    result = param_importances(trials, ["minimize"])
    assert result.importances == {"p": 0.0}
    assert (
        "parameter 'p' left out: its trials used distributions of different kinds "
        "(FloatDistribution, categorical), which share no scale"
    ) in result.notes


@pytest.mark.parametrize("method", METHODS)
def test_a_parameter_without_a_distribution_is_left_out_with_a_note(method: str) -> None:
    trials = _trials(30, X123, _x1_over_x2)
    for trial in trials:
        trial.params["tag"] = "abc"[trial.number % 3]  # hand-made: no distribution
    result = param_importances(trials, ["minimize"], method=method, n_trees=8)
    assert result.importances["tag"] == 0.0
    assert next(iter(result.importances)) == "x1"
    assert (
        "parameter 'tag' left out: no trial holds its distribution, so it has no scale to "
        "measure on"
    ) in result.notes


# -- against Optuna's evaluators --------------------------------------------------------------


def _optuna_study(trials: list[FrozenTrial]) -> Any:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def convert(dist: BaseDistribution) -> Any:
        if isinstance(dist, CategoricalDistribution):
            return optuna.distributions.CategoricalDistribution(dist.choices)
        assert isinstance(dist, FloatDistribution)
        return optuna.distributions.FloatDistribution(dist.low, dist.high, log=dist.log)

    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=t.params,
                distributions={k: convert(v) for k, v in t.distributions.items()},
                value=t.values[0] if t.values else None,
            )
            for t in trials
        ]
    )
    return study


@pytest.mark.parametrize("method", METHODS)
def test_top_parameter_agrees_with_optuna(method: str) -> None:
    optuna = pytest.importorskip("optuna")
    space: dict[str, BaseDistribution] = {**X123, "act": CategoricalDistribution(("a", "b"))}

    def objective(params: dict[str, Any], rng: np.random.Generator) -> float:
        return _x1_over_x2(params, rng) + (0.3 if params["act"] == "b" else 0.0)

    trials = _trials(150, space, objective, seed=5)
    if method == "ped_anova":
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    else:
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=16, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        theirs = optuna.importance.get_param_importances(
            _optuna_study(trials), evaluator=evaluator
        )
    ours = param_importances(trials, ["minimize"], method=method, n_trees=16).importances
    assert next(iter(ours)) == next(iter(theirs)) == "x1"


def test_ped_anova_ranks_one_parameter_of_ten() -> None:
    # Correctness only: the speed on 10,000 trials is measured in benchmarks/analysis.py.
    space = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(1, 11)}
    result = param_importances(_trials(400, space, _x1_over_x2), ["minimize"])
    assert next(iter(result.importances)) == "x1"
    assert result.importances["x1"] > 0.5


# -- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"method": "shap"},
            ValueError,
            r"method='shap' is not an importance method; use one of \['ped_anova', 'fanova'\]",
        ),
        ({"method": 1}, TypeError, r"method=1 must be a str"),
        (
            {"objective": 2},
            ValueError,
            r"objective=2 is out of range: the study has 1 objective\(s\), so use 0..0",
        ),
        ({"objective": -1}, ValueError, r"objective=-1 is out of range"),
        ({"objective": True}, TypeError, r"objective=True must be an int"),
        (
            {"params": ["x1", "lr"]},
            ValueError,
            r"names the unknown parameter 'lr'; known parameters: \['x1', 'x2', 'x3'\]",
        ),
        ({"params": "x1"}, TypeError, r"params='x1' must be a list of parameter names"),
        ({"params": ["x1", 2]}, TypeError, r"holds 2, which is not a parameter name"),
        ({"params": []}, ValueError, r"params=\[\] is empty"),
        ({"seed": "0"}, TypeError, r"seed='0' must be an int"),
        ({"quantile": 1.0}, ValueError, r"quantile=1.0 must be in \(0, 1\)"),
        ({"quantile": "0.1"}, TypeError, r"quantile='0.1' must be a float"),
        ({"n_trees": 0}, ValueError, r"n_trees=0 must be at least 1"),
        ({"n_trees": 2.5}, TypeError, r"n_trees=2.5 must be an int"),
        ({"max_depth": 0}, ValueError, r"max_depth=0 must be at least 1"),
        ({"max_depth": "deep"}, TypeError, r"max_depth='deep' must be an int or None"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    trials = _trials(10, X123, _x1_over_x2)
    with pytest.raises(error, match=match):
        param_importances(trials, ["minimize"], **kwargs)


def test_trials_without_directions_raise() -> None:
    with pytest.raises(ValueError, match=r"directions=None: with a list of trials"):
        param_importances(_trials(3, X123, _x1_over_x2))
