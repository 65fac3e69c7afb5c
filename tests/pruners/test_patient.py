"""PatientPruner: patience, min_delta, the wrapped pruner's say, rank mode, config form."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pruner_helpers import COMPLETE
from pruner_helpers import PRUNED
from pruner_helpers import Board

from dltune.pruners import BasePruner
from dltune.pruners import MedianPruner
from dltune.pruners import PatientPruner
from dltune.pruners import SuccessiveHalvingPruner
from dltune.pruners import ThresholdPruner
from dltune.pruners import patient_pruner
from dltune.testing import PrunerConformance


class TestPatientAlone(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return PatientPruner(None, patience=2)

    def make_multi_objective_pruner(self) -> BasePruner:
        return PatientPruner(None, patience=2, objective="rank")


class TestPatientWrappingAsha(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return PatientPruner(SuccessiveHalvingPruner(reduction_factor=2), 1, 0.01)


def _decisions(
    pruner: PatientPruner, values: list[float], direction: str = "minimize"
) -> list[bool]:
    board = Board(direction)
    trial = board.running()
    out = []
    for step, value in enumerate(values):
        trial = board.report(trial, step, value)
        out.append(pruner.prune(board.view, trial))
    return out


def test_prunes_after_patience_steps_without_improvement() -> None:
    values = [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 2.0]
    expected = [False, False, False, False, False, True, False]
    assert _decisions(PatientPruner(None, 3), values) == expected


def test_maximize() -> None:
    values = [1.0, 2.0, 2.0, 1.0, 3.0]
    expected = [False, False, False, True, False]
    assert _decisions(PatientPruner(None, 2), values, "maximize") == expected


@pytest.mark.parametrize(("min_delta", "pruned"), [(0.0, False), (0.05, False), (0.1, True)])
def test_min_delta(min_delta: float, pruned: bool) -> None:
    # The window's best, 3.9, improves on the earlier best, 4.0, by 0.1: not by more.
    values = [5.0, 4.0, 3.95, 3.9, 3.92]
    assert _decisions(PatientPruner(None, 3, min_delta), values)[-1] is pruned


def test_nan_never_improves() -> None:
    values = [1.0, math.nan, math.nan]
    assert _decisions(PatientPruner(None, 2), values) == [False, False, True]
    values = [math.nan, 1.0, 2.0]  # a number after NaN improves on it
    assert _decisions(PatientPruner(None, 2), values) == [False, False, False]


def test_sparse_steps_count_as_reported() -> None:
    board = Board()
    trial = board.running({0: 1.0, 10: 1.0, 20: 1.0})
    assert PatientPruner(None, 2).prune(board.view, trial) is True
    assert PatientPruner(None, 3).prune(board.view, trial) is False


@pytest.mark.parametrize(("upper", "pruned"), [(100.0, False), (0.0, True)])
def test_the_wrapped_pruner_must_agree(upper: float, pruned: bool) -> None:
    pruner = PatientPruner(ThresholdPruner(upper=upper), 1)
    assert _decisions(pruner, [1.0, 1.0]) == [False, pruned]
    assert _decisions(pruner, [2.0, 1.0]) == [False, False]  # improving: wrapped not asked


def test_promote_is_the_wrapped_pruners() -> None:
    board = Board()
    board.add({1: 9.0}, COMPLETE)
    paused = board.add({1: 1.0}, PRUNED)
    for value in (10.0, 11.0, 12.0):
        board.add({1: value}, PRUNED)
    fresh = board.running()
    promoted = PatientPruner(SuccessiveHalvingPruner(), 2).promote(board.view, fresh)
    assert promoted is not None and promoted.number == paused.number
    assert PatientPruner(None, 2).promote(board.view, fresh) is None
    assert PatientPruner(MedianPruner(), 2).promote(board.view, fresh) is None


def test_by_objective_index_and_rank() -> None:
    board = Board("minimize", "maximize")
    vectors = {0: [1.0, 1.0], 1: [1.0, 2.0], 2: [1.0, 3.0]}  # the second objective improves
    trial = board.running({s: v[0] for s, v in vectors.items()}, vectors=vectors)
    assert PatientPruner(None, 2).prune(board.view, trial) is True
    assert PatientPruner(None, 2, objective=1).prune(board.view, trial) is False
    assert PatientPruner(None, 2, objective="rank").prune(board.view, trial) is False
    # A step that trades the objectives off is not dominated by the earlier ones: it improves.
    vectors = {0: [2.0, 2.0], 1: [3.0, 3.0], 2: [1.0, 1.0]}
    trial = board.running({s: v[0] for s, v in vectors.items()}, vectors=vectors)
    assert PatientPruner(None, 2, objective="rank").prune(board.view, trial) is False
    vectors = {0: [1.0, 3.0], 1: [2.0, 2.0], 2: [1.5, 2.5]}  # each dominated by step 0
    trial = board.running({s: v[0] for s, v in vectors.items()}, vectors=vectors)
    assert PatientPruner(None, 2, objective="rank").prune(board.view, trial) is True
    with pytest.raises(ValueError, match=r"objective=5 is out of range"):
        PatientPruner(None, 2, objective=5).prune(board.view, trial)


def test_config_form_of_wrapped() -> None:
    assert patient_pruner(2).wrapped is None
    assert isinstance(patient_pruner(2, "median").wrapped, MedianPruner)
    built = patient_pruner(2, {"type": "asha", "reduction_factor": 2}, 0.1, objective=0)
    assert isinstance(built.wrapped, SuccessiveHalvingPruner)
    assert built.wrapped.reduction_factor == 2
    pruner = ThresholdPruner(upper=1.0)
    assert patient_pruner(1, pruner).wrapped is pruner


@pytest.mark.parametrize(
    ("wrapped", "error", "match"),
    [
        ("medain", ValueError, r"wrapped='medain' is refused: unknown pruner 'medain'"),
        ({"n_startup_trials": 1}, ValueError, r"wrapped=\{'n_startup_trials': 1\} has no type"),
        (
            {"type": "median", "bogus": 1},
            ValueError,
            r"wrapped=\{'type': 'median', 'bogus': 1\} is refused: .*bogus",
        ),
        (
            {"type": "asha", "reduction_factor": 1},
            ValueError,
            r"is refused: reduction_factor=1 must be >= 2 \(give a pruner name or \{type",
        ),
        (3, TypeError, r"wrapped=3 must be a BasePruner or None"),
    ],
)
def test_config_form_errors(wrapped: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        patient_pruner(2, wrapped)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"wrapped": "median"}, TypeError, r"wrapped='median' must be a BasePruner or None"),
        ({"patience": 0}, ValueError, r"patience=0 must be >= 1"),
        ({"patience": 2.0}, TypeError, r"patience=2\.0 must be an int"),
        ({"min_delta": -0.1}, ValueError, r"min_delta=-0\.1 must be >= 0\.0"),
        ({"min_delta": math.inf}, ValueError, r"min_delta=inf must be a finite number"),
        ({"min_delta": None}, TypeError, r"min_delta=None must be a number"),
        ({"objective": "best"}, ValueError, r"objective='best' is not valid"),
        ({"objective": None}, TypeError, r"objective=None must be an int or a str"),
    ],
)
def test_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        PatientPruner(**{"wrapped": None, "patience": 2, **kwargs})
