"""Every sampler through the conformance suite, then what each one promises on its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.stats import qmc

import dltune
from dltune import Trial
from dltune.samplers import BaseSampler
from dltune.samplers import GridSampler
from dltune.samplers import QMCSampler
from dltune.samplers import RandomSampler
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.testing import EVERY_KIND_SPACE
from dltune.testing import ConditionalSpace
from dltune.testing import SamplerConformance
from dltune.trial import TrialState

# -- conformance ---------------------------------------------------------------------------


class TestRandomSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return RandomSampler(seed=seed)


class TestQMCSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return QMCSampler(seed=seed)


class TestUnscrambledQMCSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return QMCSampler(seed=seed, scramble=False)


def _grid_values(dist: BaseDistribution) -> list[Any]:
    """A few values of ``dist``: its ends (and middle, for a step), or every choice.

    Few enough that the grid of the whole suite stays under the size GridSampler shuffles.
    """
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    has_step = getattr(dist, "step", None) not in (None, 1)
    values = []
    for unit in (0.0, 0.5, 1.0) if has_step else (0.0, 1.0):
        value = dist.to_external(dist.from_unit(unit))
        if value not in values:
            values.append(value)
    return values


GRID_CONDITIONAL = ConditionalSpace(
    root="optimizer",
    branches={
        "sgd": {"sgd_lr": FloatDistribution(1e-4, 1.0, log=True)},
        "adam": {
            "adam_lr": FloatDistribution(1e-5, 1e-1, log=True),
            "n_warmup": IntDistribution(1, 5),
        },
        "constant": {},
    },
)


class TestGridSampler(SamplerConformance):
    """The grid covers a fixed space: every kind of distribution, and one conditional space."""

    def search_space(self) -> dict[str, BaseDistribution]:
        return dict(EVERY_KIND_SPACE)

    def conditional_space(self) -> ConditionalSpace:
        return GRID_CONDITIONAL

    def make_sampler(self, seed: int) -> BaseSampler:
        space = {**self.search_space(), **self.conditional_space().distributions()}
        return GridSampler({name: _grid_values(d) for name, d in space.items()}, seed=seed)


# -- grid ------------------------------------------------------------------------------------

SMALL_GRID: dict[str, list[Any]] = {"x": [-1, 0, 1], "opt": ["sgd", "adam"], "flag": [None, True]}


def make_grid_objective() -> Callable[[Trial], float]:
    """The objective over SMALL_GRID, as a closure: worker processes get it by value, without
    importing this module (and pytest and Hypothesis with it)."""

    def objective(trial: Trial) -> float:
        x = trial.suggest_int("x", -1, 1)
        trial.suggest_categorical("opt", ["sgd", "adam"])
        trial.suggest_categorical("flag", [None, True])
        return float(x * x)

    return objective


def _points(study: dltune.Study) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(sorted(t.params.items(), key=lambda kv: kv[0])) for t in study.trials), key=repr
    )


def _all_points(sampler: GridSampler) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(sorted(p.items(), key=lambda kv: kv[0])) for p in sampler.all_points()), key=repr
    )


def test_grid_covers_every_point_once_with_two_workers() -> None:
    sampler = GridSampler(SMALL_GRID, seed=0)
    assert len(sampler) == 12
    study = dltune.create_study(sampler=sampler)
    study.optimize(make_grid_objective(), n_trials=12, n_jobs=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    assert _points(study) == _all_points(sampler)


def test_grid_exhausted_stops_the_study() -> None:
    sampler = GridSampler(SMALL_GRID, seed=1)
    study = dltune.create_study(sampler=sampler)
    study.optimize(make_grid_objective(), n_trials=100)
    assert len(study.trials) == 12
    assert _points(study) == _all_points(sampler)
    assert sampler.is_exhausted(study._view) is True
    study.optimize(make_grid_objective())  # no budget: the exhausted grid alone ends it
    assert len(study.trials) == 12


@pytest.mark.slow
def test_grid_exhausted_stops_an_unbounded_study_with_two_workers() -> None:
    sampler = GridSampler({"x": [0, 1, 2, 3, 4, 5]}, seed=2)
    study = dltune.create_study(sampler=sampler)
    study.optimize(lambda t: float(t.suggest_int("x", 0, 5)), n_jobs=2)
    assert sorted(t.params["x"] for t in study.trials) == [0, 1, 2, 3, 4, 5]


def _key(point: dict[str, Any]) -> str:
    return repr(sorted(point.items()))


def test_grid_points_depend_on_seed_only() -> None:
    a, b, c = (GridSampler(SMALL_GRID, seed=s) for s in (3, 3, 4))
    assert [a.grid_point(n) for n in range(12)] == [b.grid_point(n) for n in range(12)]
    assert [a.grid_point(n) for n in range(12)] != [c.grid_point(n) for n in range(12)]
    assert sorted(_key(a.grid_point(n)) for n in range(12)) == sorted(map(_key, a.all_points()))


def test_large_grid_order_depends_on_the_seed() -> None:
    # "Visits every combination ... in a seeded random order", also past 10**6 points.
    space = {f"p{i}": list(range(10)) for i in range(7)}
    a, b = GridSampler(space, seed=0), GridSampler(space, seed=1)
    first_a = [_key(a.grid_point(n)) for n in range(20)]
    assert first_a != [_key(b.grid_point(n)) for n in range(20)]
    # Early trials spread over the grid rather than varying only the last parameter.
    assert len({a.grid_point(n)["p0"] for n in range(20)}) > 1
    assert len(set(first_a)) == 20


def test_grid_refuses_a_parameter_outside_the_grid() -> None:
    study = dltune.create_study(sampler=GridSampler({"x": [1, 2]}))
    trial = study.ask()
    with pytest.raises(
        ValueError, match=r"parameter 'y' is not in the grid; the grid has \['x'\]"
    ):
        trial.suggest_float("y", 0, 1)
    assert study.trials[0].params == {}


def test_grid_refuses_a_value_outside_the_distribution() -> None:
    study = dltune.create_study(sampler=GridSampler({"x": [5]}))
    trial = study.ask()
    with pytest.raises(ValueError, match=r"value 5 is outside IntDistribution\(low=0, high=3"):
        trial.suggest_int("x", 0, 3)
    assert study.trials[0].params == {}


@pytest.mark.parametrize(
    ("search_space", "error", "match"),
    [
        ({}, ValueError, r"search_space=\{\} must be a non-empty dict"),
        ([("x", [1])], ValueError, r"search_space=\[\('x', \[1\]\)\] must be a non-empty dict"),
        ({"x": []}, ValueError, r"search_space\['x'\]=\[\] must be a non-empty list of values"),
        ({"x": "abc"}, ValueError, r"search_space\['x'\]='abc' must be a non-empty list"),
        ({"x": 3}, ValueError, r"search_space\['x'\]=3 must be a non-empty list"),
        ({"x": [1, 1]}, ValueError, r"holds duplicates"),
        ({"x": [[1], [2]]}, TypeError, r"choice \[1\] of type list is not supported"),
        ({"x": [{}]}, TypeError, r"choice \{\} of type dict is not supported"),
        ({"x": [math.nan]}, ValueError, r"choice nan is not supported"),
    ],
)
def test_grid_validation(search_space: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        GridSampler(search_space)


# -- seeds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [RandomSampler, QMCSampler, lambda seed: GridSampler({"x": [1]}, seed=seed)],
    ids=["random", "qmc", "grid"],
)
@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [
        (-1, ValueError, r"seed=-1 must be >= 0"),
        ("1", TypeError, r"seed='1' must be an int or None"),
        (1.0, TypeError, r"seed=1\.0 must be an int or None"),
        (True, TypeError, r"seed=True must be an int or None"),
    ],
)
def test_seed_validation(make: Any, seed: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(seed)


def test_numpy_integer_seed_is_accepted() -> None:
    a = dltune.create_study(sampler=RandomSampler(seed=np.int64(3)))  # type: ignore[arg-type, unused-ignore]
    b = dltune.create_study(sampler=RandomSampler(seed=3))
    for study in (a, b):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


# -- random ------------------------------------------------------------------------------------


def test_random_values_do_not_depend_on_the_order_of_suggestions() -> None:
    def forward(trial: Trial) -> float:
        return trial.suggest_float("a", 0, 1) + trial.suggest_int("b", 0, 100)

    def backward(trial: Trial) -> float:
        return trial.suggest_int("b", 0, 100) + trial.suggest_float("a", 0, 1)

    studies = [dltune.create_study(sampler=RandomSampler(seed=11)) for _ in range(2)]
    studies[0].optimize(forward, n_trials=5)
    studies[1].optimize(backward, n_trials=5)
    assert [t.params for t in studies[0].trials] == [t.params for t in studies[1].trials]


def test_random_log_scale_is_uniform_in_log_space() -> None:
    study = dltune.create_study(sampler=RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=400)
    lrs = np.array([t.params["lr"] for t in study.trials])
    assert 0.42 < np.mean(lrs < 1e-2) < 0.58  # the log-midpoint splits the draws in half


def test_random_categorical_covers_every_choice() -> None:
    choices = [None, True, 1, 1.5, "a"]
    study = dltune.create_study(sampler=RandomSampler(seed=0))
    study.optimize(
        lambda t: float(choices.index(t.suggest_categorical("c", choices))), n_trials=60
    )
    seen = {(type(v), v) for v in (t.params["c"] for t in study.trials)}
    assert seen == {(type(c), c) for c in choices}


# -- quasi-random ------------------------------------------------------------------------------


def _unit_points(study: dltune.Study) -> np.ndarray:
    rows = []
    for trial in study.trials:
        rows.append(
            [
                trial.distributions[n].to_unit(trial.distributions[n].to_internal(trial.params[n]))
                for n in ("x", "y")
            ]
        )
    return np.array(rows)


def make_xy() -> Callable[[Trial], float]:
    def objective(trial: Trial) -> float:
        return trial.suggest_float("x", 0, 1) + trial.suggest_float("y", -5, 5)

    return objective


def test_qmc_points_have_lower_discrepancy_than_random() -> None:
    discrepancies = {}
    for name, sampler in (("qmc", QMCSampler(seed=0)), ("random", RandomSampler(seed=0))):
        study = dltune.create_study(sampler=sampler)
        study.optimize(make_xy(), n_trials=64)
        discrepancies[name] = qmc.discrepancy(_unit_points(study))
    assert discrepancies["qmc"] < 0.5 * discrepancies["random"]


@pytest.mark.slow
def test_qmc_is_shared_by_two_workers() -> None:
    serial = dltune.create_study(sampler=QMCSampler(seed=5))
    serial.optimize(make_xy(), n_trials=16)
    parallel = dltune.create_study(sampler=QMCSampler(seed=5))
    parallel.optimize(make_xy(), n_trials=16, n_jobs=2)
    assert len(parallel.trials) == 16
    # Trial n gets Sobol point n whichever worker runs it. Trial 0 is random, and so is trial 1
    # when it starts before trial 0 completes; random values depend only on seed and number.
    serial_params = [t.params for t in serial.trials]
    parallel_params = [t.params for t in parallel.trials]
    assert parallel_params[0] == serial_params[0]
    assert parallel_params[2:] == serial_params[2:]


def test_qmc_conditional_parameters_fall_back_to_random() -> None:
    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 2:
            trial.suggest_int("extra", 1, 9)
        return x

    study = dltune.create_study(sampler=QMCSampler(seed=0))
    study.optimize(objective, n_trials=10)
    extras = [t.params["extra"] for t in study.trials if "extra" in t.params]
    assert len(extras) == 5
    assert all(1 <= e <= 9 for e in extras)
