"""Samplers fitted on the highest rung with enough results (BOHB-style), and top_rung."""

from __future__ import annotations

import math

import pytest

import dltune
from dltune.samplers import GPSampler
from dltune.samplers import TPESampler
from dltune.samplers._history import UnitCache
from dltune.samplers._history import collect
from dltune.samplers._history import top_rung
from dltune.space import BaseDistribution
from dltune.space import FloatDistribution
from dltune.storage import InMemoryStorage
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView

SPACE: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}


def _study(curves: list[tuple[TrialState, dict[int, float], dict[str, object]]]) -> StudyView:
    storage = InMemoryStorage()
    sid = storage.create_new_study([StudyDirection.MAXIMIZE], "mf")
    for i, (state, curve, attrs) in enumerate(curves):
        trial = storage.create_new_trial(sid)
        storage.set_trial_param(trial.trial_id, "x", i / 10, SPACE["x"])
        for step, value in curve.items():
            storage.set_trial_intermediate_value(trial.trial_id, step, value)
        for key, attr in attrs.items():
            storage.set_trial_attr(trial.trial_id, key, attr, system=True)
        if state == TrialState.COMPLETE:
            storage.set_trial_state_values(trial.trial_id, state, [curve[max(curve)]])
        elif state != TrialState.RUNNING:
            storage.set_trial_state_values(trial.trial_id, state)
    return StudyView(storage, sid)


P, R, C = TrialState.PRUNED, TrialState.RUNNING, TrialState.COMPLETE


def test_top_rung_is_the_highest_step_with_enough_finite_results() -> None:
    view = _study(
        [
            (P, {1: 0.5}, {}),
            (P, {1: 0.6}, {}),
            (R, {1: 0.9, 3: 0.95}, {}),  # promoted, still running: counts
            (P, {1: 0.7, 3: math.nan}, {}),  # NaN does not count
            (P, {1: 0.8, 3: 0.9}, {"stopped_by": "diverged"}),  # bad: does not count
        ]
    )
    trials = view.get_trials()
    assert top_rung(trials, 1) == 3
    assert top_rung(trials, 2) == 1
    assert top_rung(trials, 5) is None


def test_a_paused_trial_and_its_continuation_count_once() -> None:
    view = _study([(P, {1: 0.5}, {}), (R, {1: 0.5, 3: 0.7}, {"resume_of": 0}), (P, {1: 0.1}, {})])
    assert top_rung(view.get_trials(), 3) is None
    assert top_rung(view.get_trials(), 2) == 1


def test_collect_at_a_rung_scores_by_the_rung_value_running_trials_included() -> None:
    view = _study(
        [
            (C, {1: 0.6, 3: 0.8}, {}),
            (R, {1: 0.9, 3: 0.95}, {}),
            (P, {1: 0.4}, {}),
            (R, {}, {}),  # no result yet: pending
            (P, {1: 0.7, 3: 0.85}, {"stopped_by": "diverged"}),
        ]
    )
    history = collect(view, SPACE, UnitCache(), rung_points=2)
    assert history.rung == 3
    assert [t.number for t in history.trials] == [1, 0, 2, 4]
    assert history.is_complete.tolist() == [True, True, False, False]
    assert history.score[:2].tolist() == [-0.95, -0.8]  # maximized: sign-flipped
    assert history.is_bad.tolist() == [False, False, False, True]
    assert history.pending.shape == (1, 1)
    plain = collect(view, SPACE, UnitCache())
    assert plain.rung is None and [t.number for t in plain.trials] == [0, 2, 4]


@pytest.mark.parametrize("factory", [TPESampler, GPSampler])
def test_multi_fidelity_samplers_learn_from_rungs_in_a_study(factory: type) -> None:
    def objective(trial: dltune.Trial) -> float:
        x = trial.suggest_float("x", -3.0, 3.0)
        for step in range(1, 4):
            trial.report(-((x - 1.0) ** 2) * step, step)
        return -((x - 1.0) ** 2) * 3

    sampler = factory(seed=0, n_startup_trials=5, multi_fidelity=True, min_points_in_rung=3)
    study = dltune.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=20)
    assert abs(study.best_params["x"] - 1.0) < 0.5


@pytest.mark.parametrize("factory", [TPESampler, GPSampler])
def test_multi_fidelity_arguments_are_checked(factory: type) -> None:
    with pytest.raises(TypeError, match=r"multi_fidelity='yes' must be True or False"):
        factory(multi_fidelity="yes")
    with pytest.raises(ValueError, match=r"min_points_in_rung=0 must be an int >= 1 or None"):
        factory(multi_fidelity=True, min_points_in_rung=0)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_the_bohb_preset_searches_with_hyperband_and_a_rung_fitted_model(sampler: str) -> None:
    from dltune.presets import bohb

    def objective(trial: dltune.Trial) -> float:
        x = trial.suggest_float("x", -3.0, 3.0)
        for step in range(1, 10):
            trial.report(-((x - 1.0) ** 2) - 1.0 / step, step)
            if trial.should_prune():
                raise dltune.TrialPruned()
        return -((x - 1.0) ** 2)

    preset = bohb(max_resource=9, sampler=sampler, seed=0, min_points_in_rung=4)
    assert preset["sampler"]._rung_points == 4
    study = dltune.create_study(direction="maximize", **preset)
    study.optimize(objective, n_trials=30)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    assert abs(study.best_params["x"] - 1.0) < 0.5


def test_the_bohb_preset_refuses_an_unknown_sampler_and_bad_arguments() -> None:
    from dltune.presets import bohb

    with pytest.raises(ValueError, match=r"sampler='cmaes' is not one of 'tpe', 'gp'"):
        bohb(max_resource=9, sampler="cmaes")
    with pytest.raises(ValueError, match=r"reduction_factor=1"):
        bohb(max_resource=9, reduction_factor=1)
