"""Asynchronous successive halving: rung decisions, lineages, promotions, a study end to end."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pruner_helpers import COMPLETE
from pruner_helpers import PRUNED
from pruner_helpers import RUNNING
from pruner_helpers import Board
from pruner_helpers import rung_curve

import dltune
from dltune import Trial
from dltune import TrialPruned
from dltune.pruners import BasePruner
from dltune.pruners import SuccessiveHalvingPruner
from dltune.samplers import RandomSampler
from dltune.storage._base import RESUME_OF_KEY
from dltune.testing import PrunerConformance
from dltune.trial import TrialState

SHA = SuccessiveHalvingPruner


class TestSuccessiveHalvingPruner(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)

    def make_multi_objective_pruner(self) -> BasePruner:
        return SuccessiveHalvingPruner(min_resource=1, reduction_factor=2, objective="rank")


class TestSuccessiveHalvingBootstrap(PrunerConformance):
    def make_pruner(self) -> BasePruner:
        return SuccessiveHalvingPruner(2, 3, 1, bootstrap_count=3, max_resource=8)

    def make_multi_objective_pruner(self) -> BasePruner:
        return SuccessiveHalvingPruner(2, 3, 1, bootstrap_count=3, max_resource=8, objective=1)

    def test_single_objective_index_is_refused(self) -> None:
        board = Board()
        trial = board.running(rung_curve(1.0, (6,)))
        pruner = self.make_multi_objective_pruner()
        with pytest.raises(ValueError, match=r"objective=1 is out of range: .* use 0 or 'rank'"):
            pruner.prune(board.view, trial)


# -- rungs ---------------------------------------------------------------------------------


def test_rungs() -> None:
    assert SHA().rungs(up_to=30) == [1, 3, 9, 27]
    assert SHA(2, 3, 1).rungs(up_to=60) == [6, 18, 54]
    assert SHA(1, 2, max_resource=8).rungs() == [1, 2, 4]
    assert SHA(1, 2, max_resource=8).rungs(up_to=3) == [1, 2]
    assert SHA(4, 4, max_resource=4).rungs() == []
    assert SHA().rungs(up_to=0) == []
    with pytest.raises(ValueError, match=r"up_to=None needs a max_resource"):
        SHA().rungs()


# -- decisions at a rung -------------------------------------------------------------------


def test_the_first_trial_at_a_rung_goes_on() -> None:
    board = Board()
    assert SHA().prune(board.view, board.running({1: 100.0})) is False


@pytest.mark.parametrize(("value", "pruned"), [(0.5, False), (1.0, True), (1.5, True)])
def test_below_eta_only_the_best_so_far_goes_on(value: float, pruned: bool) -> None:
    board = Board()
    board.add({1: 1.0}, RUNNING)
    assert SHA().prune(board.view, board.running({1: value})) is pruned


@pytest.mark.parametrize(
    ("value", "pruned"),
    [(0.5, False), (1.5, False), (2.0, True), (2.5, True), (math.inf, True)],
)
def test_top_third_of_the_rung_goes_on(value: float, pruned: bool) -> None:
    board = Board()
    # Peers in every counted state; with the new trial n = 6, so the top 2 go on. A tie goes
    # to the older trial (2.0).
    states = (COMPLETE, PRUNED, RUNNING, PRUNED, COMPLETE)
    for v, state in zip((1.0, 2.0, 3.0, 4.0, 5.0), states, strict=True):
        board.add({0: 9.0, 1: v}, state)
    trial = board.running({0: 9.0, 1: value})
    assert SHA().prune(board.view, trial) is pruned
    assert SHA(objective="rank").prune(board.view, trial) is pruned  # one objective: the same


def test_failed_trials_do_not_count() -> None:
    board = Board()
    board.add({1: 1.0}, TrialState.FAIL)
    board.add({1: 2.0}, TrialState.FAIL)
    assert SHA().prune(board.view, board.running({1: 5.0})) is False


def test_maximize_prefers_high_values() -> None:
    board = Board("maximize")
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        board.add({1: v}, COMPLETE)
    assert SHA().prune(board.view, board.running({1: 4.5})) is False
    assert SHA().prune(board.view, board.running({1: 3.5})) is True
    assert SHA().prune(board.view, board.running({1: -math.inf})) is True


def test_decides_only_at_the_first_step_of_a_rung() -> None:
    board = Board()
    board.add({1: 1.0, 2: 1.0, 3: 1.0}, COMPLETE)
    trial = board.running()
    pruner = SHA()
    decisions = [pruner.prune(board.view, trial := board.report(trial, s, 5.0)) for s in (0, 1, 2)]
    assert decisions == [False, True, False]  # step 0 is below every rung; step 2 is no rung


def test_a_trial_skipping_rungs_is_judged_at_each() -> None:
    board = Board()
    board.add({1: 3.0, 3: 1.0}, COMPLETE)  # worse at rung 1, better at rung 3
    trial = board.running({0: 0.0, 5: 2.0})  # its step 5 counts for rungs 1 and 3
    assert SHA().prune(board.view, trial) is True
    board2 = Board()
    board2.add({1: 3.0, 3: 9.0}, COMPLETE)
    assert SHA().prune(board2.view, board2.running({0: 0.0, 5: 2.0})) is False


def test_rung_value_is_the_first_step_at_or_past_the_rung() -> None:
    board = Board()
    board.add({2: 1.0, 3: 100.0}, COMPLETE)  # its rung-1 value is 1.0 (step 2)
    assert SHA().prune(board.view, board.running({1: 1.5})) is True
    assert SHA().prune(board.view, board.running({1: 0.5})) is False


def test_bootstrap_count_waits_for_peers() -> None:
    board = Board()
    board.add({1: 1.0}, COMPLETE)
    board.add({1: 2.0}, COMPLETE)
    pruner = SHA(bootstrap_count=4)
    assert pruner.prune(board.view, board.running({1: 9.0})) is False  # n = 3 after 1 running
    assert pruner.prune(board.view, board.running({1: 9.0})) is True  # n = 4


def test_non_finite_values_rank_worst() -> None:
    board = Board()
    for v in (math.nan, math.inf, -math.inf, 1.0, 2.0):
        board.add({1: v}, PRUNED)
    assert SHA().prune(board.view, board.running({1: 1.5})) is False  # second of six
    assert SHA().prune(board.view, board.running({1: 2.5})) is True
    alone = Board()
    assert SHA().prune(alone.view, alone.running({1: math.inf})) is True


def test_max_resource_has_no_rung_at_the_full_budget() -> None:
    board = Board()
    board.add({1: 1.0, 3: 1.0}, COMPLETE)
    assert SHA(max_resource=3).prune(board.view, board.running({1: 0.5, 3: 9.0})) is False
    assert SHA().prune(board.view, board.running({1: 0.5, 3: 9.0})) is True


# -- lineages --------------------------------------------------------------------------------


@pytest.mark.parametrize(("continued", "pruned"), [(True, True), (False, False)])
def test_a_lineage_counts_once(continued: bool, pruned: bool) -> None:
    board = Board()
    paused = board.add({1: 5.0}, PRUNED)
    board.add({1: 5.0, 2: 4.0}, RUNNING, resume_of=paused.number if continued else None)
    board.add({1: 1.0}, COMPLETE)
    # eta 2: counted once the rung holds [5, 1, 2] and only the best goes on; twice it holds
    # [5, 5, 1, 2], and the top two go on.
    assert SHA(reduction_factor=2).prune(board.view, board.running({1: 2.0})) is pruned


def test_a_continuation_is_not_judged_while_re_reporting() -> None:
    board = Board()
    for v in (1.0, 2.0, 3.0):
        board.add({1: v, 3: v}, COMPLETE)
    paused = board.add({0: 9.0, 1: 9.0}, PRUNED)
    trial = board.running(resume_of=paused.number)
    pruner = SHA()
    decisions = []
    for step, value in ((0, 9.0), (1, 9.0), (2, 0.5), (3, 0.5)):
        trial = board.report(trial, step, value)
        decisions.append(pruner.prune(board.view, trial))
    assert decisions == [False, False, False, False]
    trial = board.running(resume_of=paused.number)
    for step, value in ((0, 9.0), (1, 9.0), (3, 9.0)):
        trial = board.report(trial, step, value)
    assert pruner.prune(board.view, trial) is True  # rung 3 is new to the lineage


def test_a_continuation_that_does_not_re_report_uses_the_merged_curve() -> None:
    board = Board()
    board.add({1: 0.7, 3: 1.0}, COMPLETE)
    paused = board.add({1: 0.5}, PRUNED)
    # It reports only step 3: its rung-1 value (0.5, judged already) is the paused trial's,
    # so only rung 3 is decided (alone, step 3 would count for rung 1 too, and lose there).
    trial = board.running({3: 0.8}, resume_of=paused.number)
    assert SHA().prune(board.view, trial) is False


# -- promotion -------------------------------------------------------------------------------


def _paused_second() -> tuple[Board, int]:
    """Trial 1 paused at rung 1, second of two; four worse trials reached the rung since."""
    board = Board()
    board.add({1: 1.0, 2: 1.0}, COMPLETE)
    paused = board.add({1: 2.0}, PRUNED)
    for v in (3.0, 4.0, 5.0, 6.0):
        board.add({1: v}, PRUNED)
    return board, paused.number


def test_promotes_a_paused_trial_now_in_the_top() -> None:
    board, paused = _paused_second()
    promoted = SHA().promote(board.view, board.running())
    assert promoted is not None
    assert (promoted.number, promoted.state) == (paused, PRUNED)


def test_nothing_to_promote_while_not_in_the_top() -> None:
    board, _ = _paused_second()
    board.add({1: 0.5}, COMPLETE)  # n = 7, top 2: [0.5, 1.0]
    assert SHA().promote(board.view, board.running()) is None
    empty = Board()
    assert SHA().promote(empty.view, empty.running()) is None


def test_below_eta_nothing_is_promoted() -> None:
    board = Board()
    board.add({1: 1.0}, PRUNED)
    board.add({1: 2.0}, PRUNED)
    assert SHA().promote(board.view, board.running()) is None


@pytest.mark.parametrize("why", ["continued", "guard", "not-at-a-rung", "infinite"])
def test_who_is_never_promoted(why: str) -> None:
    board = Board()
    board.add({1: 9.0}, COMPLETE)
    value = math.inf if why == "infinite" else 1.0
    curve = {1: value, 2: value} if why == "not-at-a-rung" else {1: value}
    stopped_by = "diverged" if why == "guard" else None
    paused = board.add(curve, PRUNED, stopped_by=stopped_by)
    for v in (10.0, 11.0, 12.0):  # n = 5: only the best goes on
        board.add({1: v}, PRUNED)
    if why == "continued":
        board.add({1: 1.0, 2: 1.0}, TrialState.FAIL, resume_of=paused.number)
    assert SHA().promote(board.view, board.running()) is None


def test_a_promotable_control() -> None:  # the setting above, with nothing to stop it
    board = Board()
    board.add({1: 9.0}, COMPLETE)
    paused = board.add({1: 1.0}, PRUNED)
    for v in (3.0, 4.0, 5.0):
        board.add({1: v}, PRUNED)
    promoted = SHA().promote(board.view, board.running())
    assert promoted is not None and promoted.number == paused.number


def test_promotes_from_the_highest_rung_first_then_the_best() -> None:
    board = Board()
    low = board.add({1: 1.0}, PRUNED)
    board.add({1: 1.1}, PRUNED)
    board.add({1: 0.5, 3: 2.0}, PRUNED)  # paused at rung 3
    high = board.add({1: 0.6, 3: 1.0}, PRUNED)  # paused at rung 3, the better one
    for v in (7.0, 8.0, 9.0, 9.5, 9.9):
        board.add({1: v, 3: v}, PRUNED)
    promoted = SHA().promote(board.view, board.running())
    assert promoted is not None and promoted.number == high.number
    # Once both rung-3 pauses are continued, rung 1 is next: the best paused trial there.
    board.running(resume_of=high.number)
    board.running(resume_of=high.number - 1)
    promoted = SHA().promote(board.view, board.running())
    assert promoted is not None and promoted.number == low.number


def test_promotes_the_latest_trial_of_a_lineage() -> None:
    board = Board()
    first = board.add({1: 1.0}, PRUNED)
    second = board.add({1: 1.0, 3: 1.0}, PRUNED, resume_of=first.number)
    for v in (5.0, 6.0, 7.0):
        board.add({1: v, 3: v}, COMPLETE)
    promoted = SHA().promote(board.view, board.running())
    assert promoted is not None and promoted.number == second.number


def test_multi_objective_by_index_and_rank() -> None:
    board = Board("minimize", "maximize")
    for a, b in ((1.0, 1.0), (2.0, 0.5), (3.0, 3.0), (4.0, 9.0), (5.0, 5.0)):
        board.add({1: a}, COMPLETE, vectors={1: [a, b]})
    trial = board.running({1: 2.5}, vectors={1: [2.5, 10.0]})
    assert SHA(objective=0).prune(board.view, trial) is True  # third of six by the first
    assert SHA(objective=1).prune(board.view, trial) is False  # the best by the second
    # By rank, only (1, 1) shares its front 0; n = 6, so the top 2 go on, (1, 1) first.
    assert SHA(objective="rank").prune(board.view, trial) is False
    late = board.running({1: 3.5}, vectors={1: [3.5, 4.0]})
    assert SHA(objective="rank").prune(board.view, late) is True
    diverged = board.running({1: 0.0}, vectors={1: [0.0, math.nan]})
    assert SHA(objective="rank").prune(board.view, diverged) is True
    missing = board.running({1: 9.0})  # no vector: not judged
    assert SHA(objective=1).prune(board.view, missing) is False
    assert SHA(objective="rank").prune(board.view, missing) is False


def test_a_non_finite_vector_is_never_promoted() -> None:
    # Every other vector diverged: all rank worst alike, so the paused trial would be second
    # of five by age, in the top two (eta 2), were it not for its NaN.
    for second in (math.nan, 2.0):
        board = Board("minimize", "minimize")
        board.add({1: 9.0}, COMPLETE, vectors={1: [9.0, math.nan]})
        paused = board.add({1: 1.0}, PRUNED, vectors={1: [1.0, second]})
        for v in (10.0, 11.0, 12.0):
            board.add({1: v}, PRUNED, vectors={1: [v, math.inf]})
        pruner = SHA(reduction_factor=2, objective="rank")
        promoted = pruner.promote(board.view, board.running())
        if math.isnan(second):
            assert promoted is None
        else:
            assert promoted is not None and promoted.number == paused.number


# -- a study ---------------------------------------------------------------------------------


def test_asha_prunes_most_bad_trials_in_a_study() -> None:
    epochs = 27

    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for epoch in range(1, epochs + 1):  # a continuation re-reports what it resumes
            trial.report(x + 1.0 / epoch, epoch)
            if trial.should_prune():
                raise TrialPruned()
        return x + 1.0 / epochs

    pruner = SHA(min_resource=1, reduction_factor=3, max_resource=epochs)
    study = dltune.create_study(pruner=pruner, sampler=RandomSampler(seed=0))
    study.optimize(objective, n_trials=60)
    trials = study.trials
    bad = [t for t in trials if t.params["x"] > 0.5]
    finished_bad = [t for t in bad if t.state == TrialState.COMPLETE]
    assert len(bad) >= 20
    assert len(finished_bad) <= 0.1 * len(bad)
    assert sum(t.last_step or 0 for t in trials) < 0.4 * len(trials) * epochs
    assert study.best_value < 0.15
    continuations = [t for t in trials if t.system_attrs.get(RESUME_OF_KEY) is not None]
    assert continuations  # paused trials were promoted, with their params
    for t in continuations:
        assert t.params == trials[t.system_attrs[RESUME_OF_KEY]].params


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_resource": 0}, ValueError, r"min_resource=0 must be >= 1"),
        ({"min_resource": 1.5}, TypeError, r"min_resource=1\.5 must be an int"),
        ({"reduction_factor": 1}, ValueError, r"reduction_factor=1 must be >= 2"),
        ({"reduction_factor": True}, TypeError, r"reduction_factor=True must be an int"),
        ({"min_early_stopping_rate": -1}, ValueError, r"min_early_stopping_rate=-1 must be"),
        ({"bootstrap_count": -1}, ValueError, r"bootstrap_count=-1 must be >= 0"),
        ({"bootstrap_count": "2"}, TypeError, r"bootstrap_count='2' must be an int"),
        ({"max_resource": 0}, ValueError, r"max_resource=0 must be >= 1"),
        (
            {"min_resource": 4, "max_resource": 3},
            ValueError,
            r"max_resource=3 must be >= min_resource=4",
        ),
        ({"objective": "pareto"}, ValueError, r"objective='pareto' is not valid; use an objec"),
        ({"objective": -1}, ValueError, r"objective=-1 is not valid; use an objective index"),
        ({"objective": 1.0}, TypeError, r"objective=1\.0 must be an int or a str"),
    ],
)
def test_validation(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SHA(**kwargs)


def test_objective_out_of_range_is_refused_when_pruning() -> None:
    board = Board("minimize", "maximize")
    trial = board.running({1: 1.0}, vectors={1: [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"objective=2 is out of range: the study has 2 objec"):
        SHA(objective=2).prune(board.view, trial)
    board.add({1: 1.0}, PRUNED)
    with pytest.raises(ValueError, match=r"use an objective index 0\.\.1 or 'rank'"):
        SHA(objective=2).promote(board.view, board.running())
