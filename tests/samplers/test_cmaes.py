"""CMAESSampler: the conformance suite, then what CMA-ES promises on its own."""

from __future__ import annotations

import math
import sys
from typing import Any

import cloudpickle
import numpy as np
import pytest

import dltune
from dltune import Trial
from dltune.exceptions import MissingDependencyError
from dltune.samplers import BaseSampler
from dltune.samplers import RandomSampler
from dltune.samplers._cmaes import CMAESSampler
from dltune.samplers._cmaes_run import NOTE_KEY
from dltune.samplers._cmaes_run import tell_values
from dltune.samplers._history import intersection_space
from dltune.samplers._history import is_counted
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.storage._base import STOPPED_BY_KEY
from dltune.study import Study
from dltune.testing import SamplerConformance
from dltune.trial import FrozenTrial
from dltune.trial import TrialState


class TestCMAESSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return CMAESSampler(seed=seed)


class TestCMAESSamplerWithoutMargin(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return CMAESSampler(seed=seed, use_margin=False, n_startup_trials=3)


def _note(study: Study, number: int) -> dict[str, Any]:
    note = study._view.get_note(NOTE_KEY, study.trials[number])
    assert isinstance(note, dict)
    return note


def _positions(study: Study) -> list[tuple[int, int] | None]:
    notes = [study._view.get_note(NOTE_KEY, t) for t in study.trials]
    return [None if n is None else (n["restart"], n["generation"]) for n in notes]


def _sphere(trial: Trial) -> float:
    return sum((trial.suggest_float(f"x{i}", -5.0, 5.0) - 1.0) ** 2 for i in range(5))


# -- it optimises --------------------------------------------------------------------------


def test_beats_random_search_on_a_5d_sphere() -> None:
    best = {}
    for name, sampler in (("cmaes", CMAESSampler(seed=0)), ("random", RandomSampler(seed=0))):
        study = dltune.create_study(sampler=sampler)
        study.optimize(_sphere, n_trials=100)
        best[name] = study.best_value
    assert best["cmaes"] < 0.1 * best["random"]


def test_integer_parameters_stay_inside_and_are_learned() -> None:
    target = (3, -2, 7)

    def objective(trial: Trial) -> float:
        return float(
            sum((trial.suggest_int(f"n{i}", -10, 10) - c) ** 2 for i, c in enumerate(target))
        )

    study = dltune.create_study(sampler=CMAESSampler(seed=0))
    study.optimize(objective, n_trials=100)
    for trial in study.trials:
        assert all(type(v) is int and -10 <= v <= 10 for v in trial.params.values())
    values = [t.values[0] for t in study.trials if t.values]
    assert study.best_value == 0.0
    assert np.median(values[-20:]) < np.median(values[:20]) / 3


def test_stepped_floats_land_on_their_grid_without_margin_too() -> None:
    for use_margin in (True, False):
        study = dltune.create_study(sampler=CMAESSampler(seed=1, use_margin=use_margin))
        study.optimize(
            lambda t: t.suggest_float("a", 0.0, 1.0, step=0.25) + t.suggest_float("b", 0, 1),
            n_trials=20,
        )
        assert {t.params["a"] for t in study.trials} <= {0.0, 0.25, 0.5, 0.75, 1.0}


# -- generations, restarts and replay ------------------------------------------------------


def test_generations_hold_popsize_trials() -> None:
    study = dltune.create_study(sampler=CMAESSampler(seed=0, popsize=5))
    study.optimize(_sphere, n_trials=21)
    positions = _positions(study)
    assert positions[0] is None  # the first trial has no space yet: independent sampler
    assert positions[1:] == [(0, g) for g in range(4) for _ in range(5)]
    assert "x0" in _note(study, 1)
    assert "x0" not in _note(study, 6)


def test_ipop_restarts_a_stalled_run_with_a_larger_population() -> None:
    def flat(trial: Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        return 1.0

    for strategy in ("ipop", None):
        sampler = CMAESSampler(seed=0, popsize=4, restart_strategy=strategy)
        study = dltune.create_study(sampler=sampler)
        study.optimize(flat, n_trials=100)
        positions = [p for p in _positions(study) if p is not None]
        if strategy is None:
            assert {r for r, _ in positions} == {0}
        else:
            # The value range stalls; the restart's first generation has twice the population.
            assert {r for r, _ in positions} == {0, 1} and (1, 1) in positions
            assert positions.count((1, 0)) == 8
            assert all(positions.count((0, g)) == 4 for r, g in set(positions) if r == 0)


def _running_trial(study: Study) -> FrozenTrial:
    return study._storage.create_new_trial(study._study_id)


def _propose(sampler: CMAESSampler, study: Study, frozen: FrozenTrial) -> dict[str, Any]:
    view = study._view
    space = sampler.infer_relative_search_space(view, frozen)
    return sampler.sample_relative(view, frozen, space)


def test_a_fresh_copy_replays_to_the_same_proposal() -> None:
    sampler = CMAESSampler(seed=3)
    pristine = cloudpickle.dumps(sampler)
    study = dltune.create_study(sampler=sampler)
    study.optimize(_sphere, n_trials=40)
    warm = cloudpickle.loads(cloudpickle.dumps(sampler))  # a pickled copy has no cache
    frozen = _running_trial(study)
    proposals = [_propose(s, study, frozen) for s in (sampler, warm, cloudpickle.loads(pristine))]
    assert sampler._cache.run is not None and sampler._cache.run.position[1] >= 4
    assert proposals[0] == proposals[1] == proposals[2]


def test_a_worker_follows_the_mean_of_the_first_noted_trial() -> None:
    sampler = CMAESSampler(seed=0)
    study = dltune.create_study(sampler=sampler)
    study.optimize(_sphere, n_trials=1)
    first, second = _running_trial(study), _running_trial(study)
    _propose(sampler, study, second)  # this worker starts from the centre...
    assert sampler._cache.run is not None
    assert sampler._cache.run.x0.tolist() == [0.5] * 5
    # ...while another one, at the same moment, started the lower-numbered trial elsewhere.
    note = dict(study._view.get_note(NOTE_KEY, study.trials[second.number]))
    note["x0"] = [0.9, 0.5, 0.5, 0.0, 0.5]
    study._view.set_note(NOTE_KEY, note, trial=first)
    third = _running_trial(study)
    proposal = _propose(sampler, study, third)
    assert sampler._cache.run.x0.tolist() == note["x0"]
    assert proposal == _propose(CMAESSampler(seed=0), study, third)


def test_parallel_workers_get_extra_candidates_and_the_first_finished_are_told() -> None:
    def run(tell_order: list[int]) -> tuple[list[Any], dict[str, Any]]:
        study = dltune.create_study(sampler=CMAESSampler(seed=5, popsize=4))
        study.optimize(_sphere, n_trials=1)
        trials = [study.ask() for _ in range(6)]  # six workers, a population of four
        values = [_sphere(t) for t in trials]
        for i in tell_order:
            study.tell(trials[i], values[i])
        after = study.ask()
        _sphere(after)
        return _positions(study), after.params

    positions, forward = run([0, 1, 2, 3, 4, 5])
    assert positions == [None] + [(0, 0)] * 6 + [(0, 1)]
    _, forward_again = run([0, 1, 2, 3, 5, 4])  # the first four to finish are the same
    _, backward = run([5, 4, 3, 2, 1, 0])
    assert forward == forward_again
    assert forward != backward


# -- pruned, diverged and failed trials -----------------------------------------------------


def _finished(number: int, state: TrialState, value: float | None = None, **kw: Any) -> Any:
    return FrozenTrial(
        number=number,
        trial_id=number,
        state=state,
        values=None if value is None else [value],
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        **kw,
    )


def test_bad_trials_are_told_worse_than_every_complete_one() -> None:
    trials = [
        _finished(0, TrialState.FAIL),
        _finished(1, TrialState.COMPLETE, 3.0),
        _finished(2, TrialState.PRUNED, intermediate_values={0: 0.1, 1: 0.2}),
        _finished(3, TrialState.COMPLETE, -1.0),
        _finished(4, TrialState.PRUNED, system_attrs={STOPPED_BY_KEY: "diverged"}),
        _finished(5, TrialState.PRUNED, intermediate_values={0: 0.0}),
    ]
    assert all(is_counted(t) for t in trials)
    values, worst = tell_values(trials, 1.0, None)
    assert values[1] == 3.0 and values[3] == -1.0 and worst == 3.0
    # Pruned ones by how far they got, then the diverged and failed ones, all below 3.0.
    assert 3.0 < values[2] < values[5] < min(values[0], values[4])
    maximized, _ = tell_values(trials, -1.0, None)
    assert maximized[3] == 1.0 and maximized[1] == -3.0 and maximized[2] > 1.0
    # A generation with no complete trial ranks after the worst complete value so far.
    all_bad, still = tell_values([trials[0], trials[4]], 1.0, 7.0)
    assert min(all_bad) > 7.0 and still == 7.0


def test_failed_trials_complete_their_generation_and_stale_ones_do_not() -> None:
    for reason, generations in ((None, {0, 1, 2}), ("stale", {0})):
        study = dltune.create_study(sampler=CMAESSampler(seed=0, popsize=4))
        study.optimize(_sphere, n_trials=1)
        for _ in range(12):
            trial = study.ask()
            _sphere(trial)
            study.tell(trial, state=TrialState.FAIL, reason=reason)
        positions = _positions(study)[1:]
        assert {p[1] for p in positions if p is not None} == generations
        assert None not in positions


def test_a_diverging_region_is_left() -> None:
    # The value improves towards x + y = 2, but past x + y = 1.2 trials fail (diverge).
    def objective(trial: Trial) -> float:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        if x + y > 1.2:
            raise RuntimeError("diverged")
        return -(x + y)

    n_failed = 0
    for seed in range(4):
        study = dltune.create_study(sampler=CMAESSampler(seed=seed))
        study.optimize(objective, n_trials=80)
        n_failed += sum(t.state == TrialState.FAIL for t in study.trials)
        assert study.best_value < -1.15
    # Measured: 65 of 320 fail; 98 when failed trials are left out of the update instead.
    assert n_failed < 80


# -- what goes to the independent sampler --------------------------------------------------


def test_categorical_parameters_go_to_the_independent_sampler() -> None:
    independent = RandomSampler(seed=123)
    sampler = CMAESSampler(seed=0, independent_sampler=independent)
    study = dltune.create_study(sampler=sampler)
    choices = ("a", "b", "c", "d")

    def objective(trial: Trial) -> float:
        c = trial.suggest_categorical("c", list(choices))
        return trial.suggest_float("x", 0, 1) + choices.index(str(c))

    study.optimize(objective, n_trials=12)
    trials = study.trials
    frozen = _running_trial(study)
    assert list(sampler.infer_relative_search_space(study._view, frozen)) == ["x"]
    dist = CategoricalDistribution(choices)
    for trial in trials:
        expected = independent.sample_independent(study._view, trial, "c", dist)
        assert trial.params["c"] == expected


def test_multi_objective_studies_use_the_independent_sampler() -> None:
    sampler = CMAESSampler(seed=0)
    study = dltune.create_study(sampler=sampler, directions=["minimize", "maximize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 10)
    assert _positions(study) == [None] * 10
    assert sampler.infer_relative_search_space(study._view, _running_trial(study)) == {}


def test_startup_trials_then_cmaes_from_the_best_ones() -> None:
    study = dltune.create_study(sampler=CMAESSampler(seed=0, n_startup_trials=8))
    study.optimize(_sphere, n_trials=10)
    positions = _positions(study)
    assert positions == [None] * 8 + [(0, 0)] * 2
    best_two = sorted(study.trials[:8], key=lambda t: t.value or 0.0)[:2]
    mean = [np.mean([(t.params[f"x{i}"] + 5) / 10 for t in best_two]) for i in range(5)]
    assert np.allclose(_note(study, 8)["x0"], mean)


def test_x0_is_the_initial_mean() -> None:
    study = dltune.create_study(sampler=CMAESSampler(seed=0, x0={"x0": 4.0, "x3": -5.0}))
    study.optimize(_sphere, n_trials=2)
    assert _note(study, 1)["x0"] == [0.9, 0.5, 0.5, 0.0, 0.5]


def test_the_shared_space_is_the_intersection_of_counted_trials() -> None:
    sampler = CMAESSampler(seed=0)
    study = dltune.create_study(sampler=sampler)

    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 3 == 0:
            trial.suggest_int("n", 1, 4)
        trial.suggest_float("single", 2.0, 2.0)
        return x

    for i in range(6):
        trial = study.ask()
        value = objective(trial)
        study.tell(
            trial,
            state=TrialState.PRUNED if i == 4 else TrialState.COMPLETE,
            values=None if i == 4 else value,
        )
        counted = [t for t in study.trials if t.state.is_finished() and is_counted(t)]
        frozen = _running_trial(study)
        assert sampler.infer_relative_search_space(study._view, frozen) == intersection_space(
            counted
        )
        study.tell(frozen.number, state=TrialState.FAIL, reason="stale")


# -- duplicates ------------------------------------------------------------------------------


def test_points_already_tried_are_avoided() -> None:
    # A flat objective over a 4 x 4 grid: the search stays near the middle four points, so
    # without redrawing about half the trials would repeat one (8 of 16 distinct).
    for seed in range(4):
        study = dltune.create_study(sampler=CMAESSampler(seed=seed))
        study.optimize(
            lambda t: float(t.suggest_int("a", 0, 3) + 0 * t.suggest_int("b", 0, 3)) * 0, 16
        )
        points = {(t.params["a"], t.params["b"]) for t in study.trials}
        assert len(points) >= 12


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ValueError, r"seed=-1 must be >= 0"),
        ({"sigma0": 0.0}, ValueError, r"sigma0=0.0 must be in \(0, 1\]"),
        ({"sigma0": 1.5}, ValueError, r"sigma0=1.5 must be in \(0, 1\]"),
        ({"sigma0": "big"}, TypeError, r"sigma0='big' must be a number"),
        ({"popsize": 3}, ValueError, r"popsize=3 must be an int >= 4"),
        ({"popsize": 4.0}, TypeError, r"popsize=4.0 must be an int"),
        ({"n_startup_trials": -1}, ValueError, r"n_startup_trials=-1 must be an int >= 0"),
        ({"n_startup_trials": True}, TypeError, r"n_startup_trials=True must be an int"),
        ({"restart_strategy": "bipop"}, ValueError, r"restart_strategy='bipop' is not supp"),
        ({"inc_popsize": 0}, ValueError, r"inc_popsize=0 must be an int >= 1"),
        ({"use_margin": 1}, TypeError, r"use_margin=1 must be True or False"),
        ({"independent_sampler": "random"}, TypeError, r"independent_sampler='random' must"),
        ({"x0": [0.5]}, TypeError, r"x0=\[0.5\] must be a mapping"),
        ({"x0": {1: 0.5}}, TypeError, r"x0 key 1 must be a parameter name"),
        ({"x0": {"x": "a"}}, TypeError, r"x0\['x'\]='a' must be a number"),
        ({"x0": {"x": math.nan}}, ValueError, r"x0\['x'\]=nan must be a finite number"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        CMAESSampler(**kwargs)


def test_x0_outside_its_distribution_is_refused_when_used() -> None:
    study = dltune.create_study(sampler=CMAESSampler(seed=0, x0={"x0": 9.0}))
    study.optimize(_sphere, n_trials=1)
    with pytest.raises(ValueError, match=r"x0\['x0'\]=9.0 is not a value of FloatDist"):
        _sphere(study.ask())


def test_missing_cmaes_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cmaes", None)  # an import of cmaes now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'dltune\[cmaes\]'"):
        CMAESSampler()
