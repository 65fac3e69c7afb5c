"""Pruning multi-objective studies: by one objective's index or by non-dominated rank."""

from __future__ import annotations

import math

import pytest
from pruner_helpers import COMPLETE
from pruner_helpers import Board

import dltune
from dltune import Trial
from dltune import TrialPruned
from dltune.pruners import BasePruner
from dltune.pruners import HyperbandPruner
from dltune.pruners import MedianPruner
from dltune.pruners import PatientPruner
from dltune.pruners import PercentilePruner
from dltune.pruners import SuccessiveHalvingPruner
from dltune.pruners import ThresholdPruner
from dltune.pruners import nondominated_ranks
from dltune.pruners._scores import Curve
from dltune.pruners._scores import chain
from dltune.trial import FrozenTrial
from dltune.trial import TrialState


def _board() -> Board:
    """Accuracy (maximized) and parameter count (minimized): five COMPLETE trials that trade
    one off against the other, and one dominated by all of them."""
    board = Board("maximize", "minimize")
    for acc, size in ((0.9, 5.0), (0.8, 4.0), (0.7, 3.0), (0.6, 2.0), (0.5, 1.0), (0.1, 9.0)):
        board.add({1: acc}, COMPLETE, vectors={1: [acc, size]})
    return board


@pytest.mark.parametrize(
    ("objective", "vector", "pruned"),
    [
        (0, [0.75, 9.0], False),  # accuracy 0.75 beats the median, 0.65
        (0, [0.55, 0.5], True),
        (1, [0.75, 9.0], True),  # 9 parameters: worse than the median size, 3.5
        (1, [0.55, 0.5], False),
        ("rank", [0.75, 9.0], True),  # front 1 (behind 0.8/4); the peers' median front is 0
        ("rank", [0.55, 0.5], False),  # on the Pareto front
        ("rank", [0.05, 9.5], True),  # dominated by everything: front 2
    ],
)
def test_median_by_objective_and_rank(
    objective: int | str, vector: list[float], pruned: bool
) -> None:
    board = _board()
    trial = board.running({1: vector[0]}, vectors={1: vector})
    assert MedianPruner(n_startup_trials=0, objective=objective).prune(board.view, trial) is pruned


def test_rank_percentile_counts_fronts() -> None:
    board = _board()
    # Front 1 (behind 0.8/4); the peers' fronts are [0, 0, 0, 0, 0, 2] (0.1/9 falls behind it).
    trial = board.running({1: 0.75}, vectors={1: [0.75, 4.5]})
    assert PercentilePruner(90.0, 0, objective="rank").prune(board.view, trial) is False
    assert PercentilePruner(10.0, 0, objective="rank").prune(board.view, trial) is True


def test_missing_vectors_are_not_compared() -> None:
    board = _board()
    trial = board.running({1: 0.01})  # no vector reported
    for objective in (1, "rank"):
        pruner = MedianPruner(n_startup_trials=0, objective=objective)
        assert pruner.prune(board.view, trial) is False
    # Peers without a vector are skipped: with n_min_trials above those left, nothing prunes.
    bare = Board("maximize", "minimize")
    for acc in (0.9, 0.8, 0.7):
        bare.add({1: acc}, COMPLETE)
    lone = bare.running({1: 0.1}, vectors={1: [0.1, 9.0]})
    assert MedianPruner(n_startup_trials=0, objective=1).prune(bare.view, lone) is False
    assert MedianPruner(n_startup_trials=0).prune(bare.view, lone) is True


def test_malformed_vectors_are_ignored() -> None:
    board = _board()
    trial = board.running({1: 0.1}, vectors={1: [0.1]})  # one value for two objectives
    assert MedianPruner(n_startup_trials=0, objective=1).prune(board.view, trial) is False
    board.storage.set_trial_attr(trial.trial_id, "reported_values", {"x": [1, 2]}, system=True)
    trial = board.storage.get_trial(trial.trial_id)
    assert MedianPruner(n_startup_trials=0, objective="rank").prune(board.view, trial) is False


@pytest.mark.parametrize(
    "pruner",
    [
        MedianPruner(n_startup_trials=0, objective=2),
        PercentilePruner(10.0, objective=3),
        ThresholdPruner(upper=1.0, objective=2),
        PatientPruner(None, 1, objective=2),
        SuccessiveHalvingPruner(objective=2),
        HyperbandPruner(max_resource=9, objective=2),
    ],
    ids=lambda p: type(p).__name__,
)
def test_an_objective_the_study_lacks_is_refused_when_pruning(pruner: BasePruner) -> None:
    board = _board()
    trial = board.running({1: 0.5, 2: 0.5}, vectors={1: [0.5, 1.0], 2: [0.5, 1.0]})
    with pytest.raises(ValueError, match=r"objective=\d is out of range: the study has 2 obj"):
        pruner.prune(board.view, trial)


def test_a_multi_objective_study_prunes_by_rank() -> None:
    def objective(trial: Trial) -> tuple[float, float]:
        level = float(trial.number % 4) if trial.number < 8 else 5.0
        for step in range(1, 4):
            trial.report([level + 1.0 / step, level + 2.0 / step], step)
            if trial.should_prune():
                raise TrialPruned()
        return level, level

    study = dltune.create_study(
        directions=["minimize", "minimize"],
        pruner=MedianPruner(n_startup_trials=4, objective="rank"),
    )
    study.optimize(objective, n_trials=12)
    states = [t.state for t in study.trials]
    assert states[8:] == [TrialState.PRUNED] * 4  # dominated by every complete trial
    assert [len(t.intermediate_values) for t in study.trials[8:]] == [1] * 4


# -- the shared scoring ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "ranks"),
    [
        ([], []),
        ([(1.0,)], [0]),
        ([(2.0,), (1.0,), (2.0,), (3.0,)], [1, 0, 1, 2]),
        ([(1.0, 2.0), (2.0, 1.0), (2.0, 2.0), (3.0, 3.0)], [0, 0, 1, 2]),
        ([(3.0, math.nan), (2.0, 2.0), (math.inf, 0.0)], [1, 0, 0]),
        ([(1.0, 1.0, 1.0), (0.0, 2.0, 2.0), (2.0, 2.0, 2.0)], [0, 0, 1]),
    ],
)
def test_nondominated_ranks(points: list[tuple[float, ...]], ranks: list[int]) -> None:
    assert nondominated_ranks(points) == ranks


def test_chain_stops_at_a_cycle_or_a_missing_trial() -> None:
    a = FrozenTrial(0, 0, TrialState.PRUNED, system_attrs={"resume_of": 1})
    b = FrozenTrial(1, 1, TrialState.PRUNED, system_attrs={"resume_of": 0})
    assert [t.number for t in chain(b, {0: a, 1: b})] == [0, 1]
    c = FrozenTrial(2, 2, TrialState.RUNNING, system_attrs={"resume_of": 7})
    assert [t.number for t in chain(c, {2: c})] == [2]
    d = FrozenTrial(3, 3, TrialState.RUNNING, system_attrs={"resume_of": None})
    assert [t.number for t in chain(d, {0: a, 3: d})] == [3]


def test_merged_curve_prefers_the_later_trial() -> None:
    a = FrozenTrial(0, 0, TrialState.PRUNED, intermediate_values={1: 1.0, 2: 2.0})
    b = FrozenTrial(1, 1, TrialState.RUNNING, intermediate_values={2: 5.0, 4: 4.0})
    curve = Curve([a, b])
    assert dict(curve.values) == {1: 1.0, 2: 5.0, 4: 4.0}
    assert (curve.steps, curve.last_step, curve.first_step_at_least(3)) == ([1, 2, 4], 4, 4)
    assert curve.first_step_at_least(5) is None
