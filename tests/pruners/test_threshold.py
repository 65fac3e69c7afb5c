"""ThresholdPruner: bounds, NaN, warm-up and interval, the time limit on a fake clock."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from datetime import timezone
from typing import Any

import pytest
from pruner_helpers import Board

from dltune.pruners import BasePruner
from dltune.pruners import ThresholdPruner
from dltune.testing import PrunerConformance
from dltune.trial import FrozenTrial


class TestThresholdPruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return ThresholdPruner(lower=-3.0, upper=3.0, n_warmup_steps=1)


class TestThresholdPrunerOnTime(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return ThresholdPruner(max_seconds=3600.0)

    def make_multi_objective_pruner(self) -> BasePruner:
        return ThresholdPruner(upper=2.0, objective=1)


def _decisions(pruner: ThresholdPruner, values: list[float], *directions: str) -> list[bool]:
    board = Board(*directions)
    trial = board.running()
    out = []
    for step, value in enumerate(values):
        trial = board.report(trial, step, value)
        out.append(pruner.prune(board.view, trial))
    return out


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_bounds_whatever_the_direction(direction: str) -> None:
    values = [0.0, 1.0, 2.0, -0.5, 1.5, -2.0]
    expected = [False, False, True, False, False, True]
    assert _decisions(ThresholdPruner(-1.0, 1.5), values, direction) == expected


def test_one_bound() -> None:
    assert _decisions(ThresholdPruner(upper=1.0), [0.5, 1.0, 1.01]) == [False, False, True]
    assert _decisions(ThresholdPruner(lower=1.0), [0.5, 1.0, 9e9]) == [True, False, False]
    assert _decisions(ThresholdPruner(upper=1.0), [-math.inf, math.inf]) == [False, True]


def test_nan_is_pruned() -> None:
    assert _decisions(ThresholdPruner(upper=1.0), [0.0, math.nan]) == [False, True]


def test_warmup_and_interval() -> None:
    pruner = ThresholdPruner(upper=0.0, n_warmup_steps=2, interval_steps=3)
    # Checked at steps 2, 5 and 8 only.
    assert _decisions(pruner, [1.0] * 9) == [False, False, True] * 3


def test_the_last_value_decides() -> None:
    board = Board()
    trial = board.running({0: 0.0, 5: 0.5, 3: 9.0})  # the last step is 5
    assert ThresholdPruner(upper=1.0).prune(board.view, trial) is False


def test_objective_of_a_multi_objective_study() -> None:
    board = Board("maximize", "minimize")
    trial = board.running({0: 0.9}, vectors={0: [0.9, 5e6]})
    assert ThresholdPruner(upper=1e6, objective=1).prune(board.view, trial) is True
    assert ThresholdPruner(upper=1e6).prune(board.view, trial) is False
    no_vector = board.running({0: 0.9})
    assert ThresholdPruner(upper=1e6, objective=1).prune(board.view, no_vector) is False
    with pytest.raises(ValueError, match=r"objective=2 is out of range: .*; use an objective"):
        ThresholdPruner(upper=1.0, objective=2).prune(board.view, trial)


def _clock_after(trial: FrozenTrial, seconds: float) -> Callable[[], float]:
    assert trial.datetime_start is not None
    start = trial.datetime_start.timestamp()
    return lambda: start + seconds


@pytest.mark.parametrize(("elapsed", "pruned"), [(5.0, False), (10.0, False), (10.5, True)])
def test_time_limit(elapsed: float, pruned: bool) -> None:
    board = Board()
    trial = board.running({0: 0.0})  # the storage stamps datetime_start (naive, local time)
    assert trial.datetime_start is not None and trial.datetime_start.tzinfo is None
    pruner = ThresholdPruner(max_seconds=10.0, clock=_clock_after(trial, elapsed))
    assert pruner.prune(board.view, trial) is pruned
    aware = replace(trial, datetime_start=trial.datetime_start.astimezone(timezone.utc))
    assert pruner.prune(board.view, aware) is pruned


def test_time_limit_ignores_warmup_but_needs_a_report() -> None:
    board = Board()
    silent = board.running()
    late = _clock_after(silent, 100.0)
    pruner = ThresholdPruner(upper=9.0, n_warmup_steps=50, max_seconds=10.0, clock=late)
    assert pruner.prune(board.view, silent) is False
    assert pruner.prune(board.view, board.report(silent, 0, 0.0)) is True
    unstarted = replace(board.report(silent, 1, 0.0), datetime_start=None)
    assert pruner.prune(board.view, unstarted) is False


def test_real_clock() -> None:
    board = Board()
    trial = board.running({0: 0.0})
    assert ThresholdPruner(max_seconds=3600.0).prune(board.view, trial) is False
    old = replace(trial, datetime_start=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert ThresholdPruner(max_seconds=3600.0).prune(board.view, old) is True


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, r"ThresholdPruner needs lower, upper or max_seconds; got none"),
        ({"lower": 2.0, "upper": 1.0}, ValueError, r"lower=2\.0 must be <= upper=1\.0"),
        ({"lower": "0"}, TypeError, r"lower='0' must be a number or None"),
        ({"upper": math.nan}, ValueError, r"upper=nan must be a number, not NaN"),
        ({"upper": True}, TypeError, r"upper=True must be a number or None"),
        ({"upper": 1.0, "n_warmup_steps": -1}, ValueError, r"n_warmup_steps=-1 must be >= 0"),
        ({"upper": 1.0, "interval_steps": 0}, ValueError, r"interval_steps=0 must be >= 1"),
        ({"max_seconds": 0.0}, ValueError, r"max_seconds=0\.0 must be > 0"),
        ({"max_seconds": math.inf}, ValueError, r"max_seconds=inf must be a finite number"),
        ({"max_seconds": "1h"}, TypeError, r"max_seconds='1h' must be a number"),
        ({"max_seconds": 1.0, "clock": 5.0}, TypeError, r"clock=5\.0 must be a callable"),
        (
            {"upper": 1.0, "objective": "rank"},
            ValueError,
            r"objective='rank' is not valid; use an",
        ),
        ({"upper": 1.0, "objective": -2}, ValueError, r"objective=-2 is not valid"),
    ],
)
def test_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ThresholdPruner(**kwargs)
