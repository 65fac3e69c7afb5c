"""The pruner conformance suite: what every :class:`~dltune.pruners.BasePruner` must do."""

from __future__ import annotations

import math

import cloudpickle
import pytest

import dltune
from dltune._trial import Trial
from dltune.exceptions import TrialPruned
from dltune.pruners import BasePruner
from dltune.storage import InMemoryStorage
from dltune.testing._rows import count_rows
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView

__all__ = ["PrunerConformance"]

MIN = StudyDirection.MINIMIZE
MAX = StudyDirection.MAXIMIZE
N_STEPS = 10


def _curve(level: float, step: int) -> float:
    """A learning curve that improves with ``step`` and is worse for a higher ``level``."""
    return level + 1.0 / (step + 1)


def _report(storage: InMemoryStorage, trial_id: int, values: dict[int, float]) -> None:
    for step, value in values.items():
        storage.set_trial_intermediate_value(trial_id, step, value)


def make_history(direction: StudyDirection, *, with_special_values: bool = False) -> StudyView:
    """A study whose trials are in every state, with reported learning curves.

    With ``with_special_values`` the curves also hold NaN and infinities.
    """
    storage = InMemoryStorage()
    study_id = storage.create_new_study([direction], "pruning")
    sign = 1.0 if direction == MIN else -1.0
    for i in range(6):  # COMPLETE, the peers a pruner compares with
        trial = storage.create_new_trial(study_id)
        curve = {s: sign * _curve(float(i), s) for s in range(N_STEPS)}
        if with_special_values and i % 2 == 0:
            curve[i] = math.nan
            curve[N_STEPS - 1 - i] = math.inf if i % 4 == 0 else -math.inf
        _report(storage, trial.trial_id, curve)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [curve[N_STEPS - 1]])
    pruned = storage.create_new_trial(study_id)
    _report(storage, pruned.trial_id, {s: sign * _curve(9.0, s) for s in range(3)})
    storage.set_trial_state_values(pruned.trial_id, TrialState.PRUNED)
    failed = storage.create_new_trial(study_id)
    _report(storage, failed.trial_id, {0: math.nan if with_special_values else 1.0})
    storage.set_trial_state_values(failed.trial_id, TrialState.FAIL, reason="boom")
    silent = storage.create_new_trial(study_id)
    storage.set_trial_state_values(silent.trial_id, TrialState.FAIL, reason="no report")
    running = storage.create_new_trial(study_id)
    _report(storage, running.trial_id, {s: sign * _curve(0.5, s) for s in range(4)})
    storage.create_new_trial(study_id, FrozenTrial(-1, -1, TrialState.WAITING))
    return StudyView(storage, study_id)


def _new_trial(view: StudyView) -> FrozenTrial:
    storage = view._storage
    assert isinstance(storage, InMemoryStorage)
    return storage.create_new_trial(view.study_id)


def _reported(view: StudyView, trial: FrozenTrial, step: int, value: float) -> FrozenTrial:
    storage = view._storage
    storage.set_trial_intermediate_value(trial.trial_id, step, value)
    return storage.get_trial(trial.trial_id)


class PrunerConformance:
    """Checks that a pruner answers a bool in every situation and never fails on odd reports.

    Subclass it under a name pytest collects and implement :meth:`make_pruner`.

    Example:
        >>> from dltune.pruners import NopPruner
        >>> class TestNopPruner(PrunerConformance):
        ...     def make_pruner(self) -> NopPruner:
        ...         return NopPruner()
    """

    def make_pruner(self) -> BasePruner:
        """Return a new pruner. Called once or more per test."""
        raise NotImplementedError("subclasses of PrunerConformance implement make_pruner()")

    @pytest.mark.parametrize("direction", [MIN, MAX], ids=["minimize", "maximize"])
    def test_never_prunes_before_any_report(self, direction: StudyDirection) -> None:
        pruner = self.make_pruner()
        for view in (make_history(direction), make_history(direction, with_special_values=True)):
            trial = _new_trial(view)
            assert pruner.prune(view, trial) is False

    @pytest.mark.parametrize("direction", [MIN, MAX], ids=["minimize", "maximize"])
    @pytest.mark.parametrize("level", [-5.0, 2.5, 50.0], ids=["good", "middling", "bad"])
    def test_answers_a_bool_at_every_step(self, direction: StudyDirection, level: float) -> None:
        pruner = self.make_pruner()
        view = make_history(direction)
        trial = _new_trial(view)
        sign = 1.0 if direction == MIN else -1.0
        for step in range(N_STEPS + 3):  # past the peers' last step too
            trial = _reported(view, trial, step, sign * _curve(level, step))
            assert type(pruner.prune(view, trial)) is bool

    @pytest.mark.parametrize("direction", [MIN, MAX], ids=["minimize", "maximize"])
    def test_sparse_and_repeated_steps(self, direction: StudyDirection) -> None:
        pruner = self.make_pruner()
        view = make_history(direction)
        trial = _new_trial(view)
        for step in (0, 3, 7, 100):
            trial = _reported(view, trial, step, 1e3)
            assert type(pruner.prune(view, trial)) is bool
            assert type(pruner.prune(view, trial)) is bool

    @pytest.mark.parametrize("direction", [MIN, MAX], ids=["minimize", "maximize"])
    @pytest.mark.parametrize(
        "values",
        [
            [math.nan] * 4,
            [1.0, math.nan, 0.5, math.nan],
            [math.nan, 1.0, 0.5, 0.25],
            [math.inf, -math.inf, math.inf, 1.0],
        ],
        ids=["all-nan", "nan-between", "nan-first", "infinite"],
    )
    def test_special_reports(self, direction: StudyDirection, values: list[float]) -> None:
        pruner = self.make_pruner()
        for view in (make_history(direction), make_history(direction, with_special_values=True)):
            trial = _new_trial(view)
            for step, value in enumerate(values):
                trial = _reported(view, trial, step, value)
                assert type(pruner.prune(view, trial)) is bool

    @pytest.mark.parametrize("state", [TrialState.PRUNED, TrialState.FAIL])
    def test_without_complete_peers(self, state: TrialState) -> None:
        pruner = self.make_pruner()
        storage = InMemoryStorage()
        view = StudyView(storage, storage.create_new_study([MIN], "no-peers"))
        for _ in range(3):
            other = storage.create_new_trial(view.study_id)
            _report(storage, other.trial_id, {0: 0.0, 1: 0.0})
            storage.set_trial_state_values(other.trial_id, state)
        trial = _new_trial(view)
        for step in range(3):
            trial = _reported(view, trial, step, 1e6)
            assert type(pruner.prune(view, trial)) is bool

    def test_empty_study(self) -> None:
        pruner = self.make_pruner()
        storage = InMemoryStorage()
        view = StudyView(storage, storage.create_new_study([MAX], "empty"))
        trial = _new_trial(view)
        assert pruner.prune(view, trial) is False
        for step in range(3):
            trial = _reported(view, trial, step, float(step))
            assert type(pruner.prune(view, trial)) is bool

    def test_reads_without_writing(self) -> None:
        pruner = self.make_pruner()
        view = make_history(MIN, with_special_values=True)
        trial = _reported(view, _new_trial(view), 0, 100.0)
        before = count_rows(view._storage)
        for step in range(1, N_STEPS):
            pruner.prune(view, trial)
            trial = _reported(view, trial, step, 100.0)
        after = count_rows(view._storage)
        after["trial_intermediate_values"] -= N_STEPS - 1  # those the test itself reported
        assert after == before

    @pytest.mark.parametrize("direction", ["minimize", "maximize"])
    def test_study_runs_to_the_budget(self, direction: str) -> None:
        sign = 1.0 if direction == "minimize" else -1.0

        def objective(trial: Trial) -> float:
            level = float((trial.number * 7) % 11)
            for step in range(N_STEPS):
                trial.report(sign * _curve(level, step), step)
                if trial.should_prune():
                    raise TrialPruned()
            return sign * _curve(level, N_STEPS - 1)

        study = dltune.create_study(direction=direction, pruner=self.make_pruner())
        study.optimize(objective, n_trials=20, catch=())
        states = [t.state for t in study.trials]
        assert len(states) == 20
        assert set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
        assert TrialState.COMPLETE in states

    def test_picklable_copy_decides_the_same(self) -> None:
        original = self.make_pruner()
        copy = cloudpickle.loads(cloudpickle.dumps(original))
        for direction in (MIN, MAX):
            view = make_history(direction)
            trial = _new_trial(view)
            for step in range(N_STEPS):
                trial = _reported(view, trial, step, _curve(3.0, step))
                assert copy.prune(view, trial) == original.prune(view, trial)
