"""Every pruner through the conformance suite, then how the percentile pruners decide."""

from __future__ import annotations

import math
from typing import Any

import pytest

import dltune
from dltune import Trial
from dltune import TrialPruned
from dltune.pruners import BasePruner
from dltune.pruners import MedianPruner
from dltune.pruners import NopPruner
from dltune.pruners import PercentilePruner
from dltune.storage import InMemoryStorage
from dltune.testing import PrunerConformance
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView

# -- conformance ---------------------------------------------------------------------------


class TestNopPruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return NopPruner()


class TestMedianPruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return MedianPruner()


class TestEagerMedianPruner(PrunerConformance):
    """No start-up phase: every check above reaches the comparison with peers."""

    def make_pruner(self) -> BasePruner:
        return MedianPruner(n_startup_trials=0)

    def make_multi_objective_pruner(self) -> BasePruner:
        return MedianPruner(n_startup_trials=0, objective="rank")


class TestMedianPrunerOnTheSecondObjective(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return MedianPruner(n_startup_trials=0)

    def make_multi_objective_pruner(self) -> BasePruner:
        return MedianPruner(n_startup_trials=0, objective=1)


class TestPercentilePruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return PercentilePruner(25.0, n_startup_trials=1, n_warmup_steps=2, interval_steps=3)


# -- a study with peers --------------------------------------------------------------------


class Peers:
    """A study whose COMPLETE trials reported ``curves``, and a trial to ask about."""

    def __init__(self, direction: str, curves: list[dict[int, float]]) -> None:
        self.storage = InMemoryStorage()
        self.study_id = self.storage.create_new_study([StudyDirection.parse(direction)], "peers")
        self.view = StudyView(self.storage, self.study_id)
        for curve in curves:
            trial = self.storage.create_new_trial(self.study_id)
            for step, value in curve.items():
                self.storage.set_trial_intermediate_value(trial.trial_id, step, value)
            last = curve[max(curve)] if curve else 0.0
            last = 0.0 if math.isnan(last) else last
            self.storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [last])
        self.trial = self.storage.create_new_trial(self.study_id)

    def report(self, step: int, value: float) -> FrozenTrial:
        self.storage.set_trial_intermediate_value(self.trial.trial_id, step, value)
        return self.storage.get_trial(self.trial.trial_id)

    def decisions(self, pruner: BasePruner, values: list[float]) -> list[bool]:
        """Report ``values`` at steps 0, 1, ... and ask the pruner after each."""
        return [pruner.prune(self.view, self.report(s, v)) for s, v in enumerate(values)]


def flat(value: float, n_steps: int = 10) -> dict[int, float]:
    return dict.fromkeys(range(n_steps), value)


FIVE_PEERS = [flat(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]  # median 3.0 at every step


def test_median_prunes_a_clearly_worse_trial() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [10.0]) == [True]


def test_median_keeps_a_better_trial() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [0.5, 2.0, 2.9, 3.0]) == [False] * 4


def test_median_compares_the_best_value_so_far() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    # A trial that was once better than the median is not pruned for a later bad step.
    assert peers.decisions(MedianPruner(), [2.0, 10.0, 10.0]) == [False, False, False]


def test_median_waits_for_startup_trials() -> None:
    pruner = MedianPruner(n_startup_trials=5)
    assert Peers("minimize", FIVE_PEERS[:4]).decisions(pruner, [10.0]) == [False]
    assert Peers("minimize", FIVE_PEERS).decisions(pruner, [10.0]) == [True]


def test_startup_counts_only_complete_trials() -> None:
    peers = Peers("minimize", FIVE_PEERS[:4])
    for state in (TrialState.PRUNED, TrialState.FAIL):
        other = peers.storage.create_new_trial(peers.study_id)
        peers.storage.set_trial_intermediate_value(other.trial_id, 0, 0.0)
        peers.storage.set_trial_state_values(other.trial_id, state)
    assert peers.decisions(MedianPruner(n_startup_trials=5), [10.0]) == [False]


def test_median_respects_warmup() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    decisions = peers.decisions(MedianPruner(n_warmup_steps=3), [10.0] * 5)
    assert decisions == [False, False, False, True, True]


def test_median_respects_interval() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    pruner = MedianPruner(n_warmup_steps=1, interval_steps=3)
    # Checked at steps 1, 4, 7 only: after the warm-up, every third step.
    assert peers.decisions(pruner, [10.0] * 8) == [
        False,
        True,
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def test_median_maximize() -> None:
    peers = Peers("maximize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [0.5]) == [True]
    peers = Peers("maximize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [3.5, 0.5]) == [False, False]


def test_min_trials_at_the_step() -> None:
    # Only two peers reported step 5.
    curves = [flat(1.0, 3), flat(2.0, 3), flat(3.0, 3), flat(4.0, 6), flat(5.0, 6)]
    peers = Peers("minimize", curves)
    pruner = MedianPruner(n_startup_trials=0, n_min_trials=3)
    decisions = peers.decisions(pruner, [2.5, 2.5, 2.5, 2.5, 2.5, 10.0])
    assert decisions == [False] * 6


def test_nothing_to_compare_past_the_peers_last_step() -> None:
    peers = Peers("minimize", [flat(1.0, 2)] * 5)
    assert peers.decisions(MedianPruner(), [5.0, 5.0, 5.0]) == [True, True, False]


def test_only_nan_reports_are_pruned() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [math.nan, math.nan]) == [True, True]


def test_nan_among_reports_is_ignored() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [1.0, math.nan, 1.0]) == [False, False, False]


def test_nan_peer_values_are_ignored() -> None:
    curves = [flat(v) for v in (1.0, 2.0, 3.0)] + [flat(math.nan), flat(math.nan)]
    peers = Peers("minimize", curves)  # the median of the non-NaN peers is 2.0
    assert peers.decisions(MedianPruner(), [2.5]) == [True]
    peers = Peers("minimize", curves)
    assert peers.decisions(MedianPruner(), [1.5]) == [False]


def test_infinite_reports() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [math.inf]) == [True]
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(MedianPruner(), [-math.inf]) == [False]


@pytest.mark.parametrize(
    ("percentile", "value", "pruned"),
    [
        (25.0, 2.5, True),  # the 25th percentile of 1..5 is 2.0
        (25.0, 1.5, False),
        (75.0, 3.5, False),  # the 75th is 4.0
        (75.0, 4.5, True),
        (0.0, 1.5, True),
        (100.0, 4.9, False),
    ],
)
def test_percentile_minimize(percentile: float, value: float, pruned: bool) -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(PercentilePruner(percentile), [value]) == [pruned]


@pytest.mark.parametrize(
    ("percentile", "value", "pruned"),
    [
        (25.0, 3.5, True),  # the best quarter, when maximizing, is above 4.0
        (25.0, 4.5, False),
        (75.0, 2.5, False),
        (75.0, 1.5, True),
    ],
)
def test_percentile_maximize(percentile: float, value: float, pruned: bool) -> None:
    peers = Peers("maximize", FIVE_PEERS)
    assert peers.decisions(PercentilePruner(percentile), [value]) == [pruned]


def test_nop_never_prunes() -> None:
    peers = Peers("minimize", FIVE_PEERS)
    assert peers.decisions(NopPruner(), [1e9, math.nan, math.inf]) == [False] * 3


def test_median_prunes_in_a_study() -> None:
    def objective(trial: Trial) -> float:
        level = 10.0 if trial.number >= 5 and trial.number % 2 else float(trial.number % 5)
        for step in range(5):
            trial.report(level + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise TrialPruned()
        return level

    study = dltune.create_study(pruner=MedianPruner(n_startup_trials=5), seed=0)
    study.optimize(objective, n_trials=12)
    states = [t.state for t in study.trials]
    assert states[:5] == [TrialState.COMPLETE] * 5
    assert [states[n] for n in (5, 7, 9, 11)] == [TrialState.PRUNED] * 4
    assert [len(study.trials[n].intermediate_values) for n in (5, 7, 9, 11)] == [1] * 4
    assert study.best_value == 0.0


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"percentile": -1.0}, ValueError, r"percentile=-1\.0 must be in \[0, 100\]"),
        ({"percentile": 100.5}, ValueError, r"percentile=100\.5 must be in \[0, 100\]"),
        ({"percentile": math.nan}, ValueError, r"percentile=nan must be in \[0, 100\]"),
        ({"percentile": "50"}, TypeError, r"percentile='50' must be a number"),
        ({"percentile": True}, TypeError, r"percentile=True must be a number"),
        ({"n_startup_trials": -1}, ValueError, r"n_startup_trials=-1 must be >= 0"),
        ({"n_startup_trials": 1.5}, TypeError, r"n_startup_trials=1\.5 must be an int"),
        ({"n_warmup_steps": -1}, ValueError, r"n_warmup_steps=-1 must be >= 0"),
        ({"n_warmup_steps": None}, TypeError, r"n_warmup_steps=None must be an int"),
        ({"interval_steps": 0}, ValueError, r"interval_steps=0 must be >= 1"),
        ({"interval_steps": False}, TypeError, r"interval_steps=False must be an int"),
        ({"n_min_trials": 0}, ValueError, r"n_min_trials=0 must be >= 1"),
        ({"objective": "pareto"}, ValueError, r"objective='pareto' is not valid; use an objec"),
        ({"objective": -1}, ValueError, r"objective=-1 is not valid; use an objective index"),
        ({"objective": [0]}, TypeError, r"objective=\[0\] must be an int or a str"),
    ],
)
def test_percentile_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        PercentilePruner(**{"percentile": 50.0, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_startup_trials": -2}, ValueError, r"n_startup_trials=-2 must be >= 0"),
        ({"n_warmup_steps": "3"}, TypeError, r"n_warmup_steps='3' must be an int"),
        ({"interval_steps": -1}, ValueError, r"interval_steps=-1 must be >= 1"),
        ({"n_min_trials": 0}, ValueError, r"n_min_trials=0 must be >= 1"),
        ({"objective": "Rank"}, ValueError, r"objective='Rank' is not valid"),
    ],
)
def test_median_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        MedianPruner(**kwargs)


def test_study_refuses_a_pruner_of_another_type() -> None:
    storage = InMemoryStorage()
    with pytest.raises(TypeError, match=r"pruner='median' must be an instance of BasePruner"):
        dltune.create_study(storage=storage, pruner="median")  # type: ignore[arg-type]
    assert storage.get_all_studies() == []
