"""Hyperband: brackets, their rungs and shares, the assignment of trials, per-bracket rungs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import cloudpickle
import pytest
from pruner_helpers import COMPLETE
from pruner_helpers import PRUNED
from pruner_helpers import Board

from dltune.pruners import BasePruner
from dltune.pruners import HyperbandPruner
from dltune.pruners import SuccessiveHalvingPruner
from dltune.testing import PrunerConformance

HB = HyperbandPruner


class TestHyperbandPruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return HyperbandPruner(1, max_resource=8, reduction_factor=2, seed=3)

    def make_multi_objective_pruner(self) -> BasePruner:
        return HyperbandPruner(1, max_resource=8, reduction_factor=2, objective="rank")


@pytest.mark.parametrize(
    ("args", "rungs", "weights"),
    [
        ((1, 27, 3), [[1, 3, 9], [3, 9], [9], []], [27, 12, 6, 4]),
        ((1, 30, 3), [[1, 3, 9, 27], [3, 9, 27], [9, 27], [27]], [27, 12, 6, 4]),
        ((1, 26, 3), [[1, 3, 9], [3, 9], [9]], [9, 5, 3]),
        ((2, 18, 3), [[2, 6], [6], []], [9, 5, 3]),
        ((1, 8, 2), [[1, 2, 4], [2, 4], [4], []], [8, 6, 4, 4]),
        ((5, 5, 3), [[]], [1]),
    ],
)
def test_brackets(args: tuple[int, int, int], rungs: list[list[int]], weights: list[int]) -> None:
    pruner = HB(args[0], max_resource=args[1], reduction_factor=args[2])
    assert pruner.n_brackets == len(rungs)
    assert [pruner.rungs(b) for b in range(pruner.n_brackets)] == rungs
    assert pruner.bracket_weights == weights
    assert all(
        isinstance(pruner.bracket_pruner(b), SuccessiveHalvingPruner) for b in range(len(rungs))
    )


def test_bracket_assignment_is_deterministic_and_seeded() -> None:
    numbers = range(200)
    first = [HB(max_resource=27).bracket_of(n) for n in numbers]
    assert first == [HB(max_resource=27, seed=0).bracket_of(n) for n in numbers]
    copy = cloudpickle.loads(cloudpickle.dumps(HB(max_resource=27)))
    assert first == [copy.bracket_of(n) for n in numbers]
    other = [HB(max_resource=27, seed=1).bracket_of(n) for n in numbers]
    assert other != first
    assert other == [HB(max_resource=27, seed=1).bracket_of(n) for n in numbers]
    assert first[:10] == [0, 2, 0, 1, 0, 0, 3, 0, 0, 1]  # pinned: the same on every machine


def test_brackets_get_their_share_of_trials() -> None:
    pruner = HB(max_resource=27)
    counts = Counter(pruner.bracket_of(n) for n in range(20_000))
    total = sum(pruner.bracket_weights)
    for bracket, weight in enumerate(pruner.bracket_weights):
        assert counts[bracket] / 20_000 == pytest.approx(weight / total, abs=0.015)


def test_a_continuation_belongs_to_the_bracket_of_its_root() -> None:
    pruner = HB(max_resource=27)
    board = Board()
    root = board.add({1: 1.0}, PRUNED)
    middle = board.add({1: 1.0, 3: 1.0}, PRUNED, resume_of=root.number)
    board.next_in_bracket(pruner, (pruner.bracket_of(root.number) + 1) % pruner.n_brackets)
    last = board.running(resume_of=middle.number)
    assert pruner.bracket_of(last.number) != pruner.bracket_of(root.number)
    assert pruner.bracket_of(last.number, board.view) == pruner.bracket_of(root.number)
    assert pruner.bracket_of(middle.number, board.view) == pruner.bracket_of(root.number)
    assert pruner.bracket_of(999, board.view) == pruner.bracket_of(999)  # not in the study


def test_rungs_count_only_the_trials_of_the_bracket() -> None:
    pruner = HB(max_resource=9)  # brackets: rungs [1, 3], [3], []
    board = Board()
    for value in (0.1, 0.2, 0.3):  # excellent, in bracket 1
        board.next_in_bracket(pruner, 1)
        board.add({3: value}, COMPLETE)
    board.next_in_bracket(pruner, 0)
    board.add({1: 1.0, 3: 1.0}, COMPLETE)
    board.next_in_bracket(pruner, 0)
    trial = board.running({1: 0.5, 3: 0.5})
    assert pruner.prune(board.view, trial) is False  # the best of bracket 0
    assert SuccessiveHalvingPruner(max_resource=9).prune(board.view, trial) is True


def test_the_last_bracket_never_prunes() -> None:
    pruner = HB(max_resource=9)
    board = Board()
    for value in (0.1, 0.2, 0.3):
        board.add({1: value, 3: value}, COMPLETE)
    board.next_in_bracket(pruner, 2)
    trial = board.running()
    decisions = []
    for step in range(1, 9):
        trial = board.report(trial, step, 100.0)
        decisions.append(pruner.prune(board.view, trial))
    assert decisions == [False] * 8


def test_promotes_only_within_the_new_trials_bracket() -> None:
    pruner = HB(max_resource=9)
    board = Board()
    board.next_in_bracket(pruner, 0)
    board.add({1: 1.0, 2: 1.0}, COMPLETE)
    board.next_in_bracket(pruner, 0)
    paused = board.add({1: 2.0}, PRUNED)
    for value in (3.0, 4.0, 5.0, 6.0):
        board.next_in_bracket(pruner, 0)
        board.add({1: value}, PRUNED)
    board.next_in_bracket(pruner, 1)
    assert pruner.promote(board.view, board.running()) is None
    board.next_in_bracket(pruner, 0)
    promoted = pruner.promote(board.view, board.running())
    assert promoted is not None and promoted.number == paused.number


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_resource": 0}, ValueError, r"min_resource=0 must be >= 1"),
        ({"max_resource": 0}, ValueError, r"max_resource=0 must be >= 1"),
        ({"max_resource": "9"}, TypeError, r"max_resource='9' must be an int"),
        ({"min_resource": 10}, ValueError, r"max_resource=9 must be >= min_resource=10"),
        ({"reduction_factor": 1}, ValueError, r"reduction_factor=1 must be >= 2"),
        ({"seed": -1}, ValueError, r"seed=-1 must be >= 0"),
        ({"seed": 1.0}, TypeError, r"seed=1\.0 must be an int"),
        ({"bootstrap_count": -1}, ValueError, r"bootstrap_count=-1 must be >= 0"),
        ({"objective": "crowding"}, ValueError, r"objective='crowding' is not valid"),
    ],
)
def test_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        HB(**{"max_resource": 9, **kwargs})


@pytest.mark.parametrize(
    ("bracket", "error", "match"),
    [
        (3, ValueError, r"bracket=3 must be in 0\.\.2"),
        (-1, ValueError, r"bracket=-1 must be in 0\.\.2"),
        ("0", TypeError, r"bracket='0' must be an int"),
    ],
)
def test_bad_bracket(bracket: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        HB(max_resource=9).rungs(bracket)
