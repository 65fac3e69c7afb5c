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
from dltune.storage._base import REPORTED_VALUES_KEY
from dltune.storage._base import RESUME_OF_KEY
from dltune.storage._base import STOPPED_BY_KEY
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

    It also holds a paused (PRUNED) trial continued by a RUNNING one (``resume_of``) that
    re-reported its values, and a PRUNED trial a guard stopped. With ``with_special_values`` the
    curves also hold NaN and infinities.
    """
    return _history([direction], with_special_values=with_special_values)


def make_multi_history(
    directions: list[StudyDirection], *, with_special_values: bool = False
) -> StudyView:
    """:func:`make_history` for several objectives: the trials also report one vector per step
    (under ``reported_values``), trading the objectives off, some steps without a vector.
    """
    return _history(directions, with_special_values=with_special_values)


def _history(directions: list[StudyDirection], *, with_special_values: bool) -> StudyView:
    storage = InMemoryStorage()
    study_id = storage.create_new_study(directions, "pruning")
    signs = [1.0 if d == MIN else -1.0 for d in directions]

    def add(level: float, steps: range, state: TrialState, **attrs: object) -> FrozenTrial:
        trial = storage.create_new_trial(study_id)
        curve = {s: signs[0] * _curve(level, s) for s in steps}
        if with_special_values and level.is_integer() and int(level) % 2 == 0:
            at = int(level) % len(curve)
            curve[at] = math.nan
            curve[len(curve) - 1 - at] = math.inf if int(level) % 4 == 0 else -math.inf
        _report(storage, trial.trial_id, curve)
        if len(signs) > 1:  # the other objectives get better as the first gets worse
            vectors = {
                str(s): [v] + [k * signs[k] * _curve(6.0 - level, s) for k in range(1, len(signs))]
                for s, v in curve.items()
                if s % 4 != 3  # some steps report the first objective only
            }
            storage.set_trial_attr(trial.trial_id, REPORTED_VALUES_KEY, vectors, system=True)
        for key, value in attrs.items():
            storage.set_trial_attr(trial.trial_id, key, value, system=True)
        if state == TrialState.COMPLETE:
            values = [curve[max(curve)]] * len(signs)
            values = [0.0 if math.isnan(v) else v for v in values]
            storage.set_trial_state_values(trial.trial_id, state, values)
        elif state != TrialState.RUNNING:
            storage.set_trial_state_values(trial.trial_id, state, reason=state.name.lower())
        return trial

    for i in range(6):  # COMPLETE, the peers a pruner compares with
        add(float(i), range(N_STEPS), TrialState.COMPLETE)
    add(9.0, range(3), TrialState.PRUNED)
    paused = add(1.5, range(4), TrialState.PRUNED)
    add(1.5, range(6), TrialState.RUNNING, **{RESUME_OF_KEY: paused.number})
    add(0.25, range(2), TrialState.PRUNED, **{STOPPED_BY_KEY: "diverged"})
    failed = storage.create_new_trial(study_id)
    _report(storage, failed.trial_id, {0: math.nan if with_special_values else 1.0})
    storage.set_trial_state_values(failed.trial_id, TrialState.FAIL, reason="boom")
    silent = storage.create_new_trial(study_id)
    storage.set_trial_state_values(silent.trial_id, TrialState.FAIL, reason="no report")
    add(0.5, range(4), TrialState.RUNNING)
    storage.create_new_trial(study_id, FrozenTrial(-1, -1, TrialState.WAITING))
    return StudyView(storage, study_id)


def _new_trial(view: StudyView) -> FrozenTrial:
    storage = view._storage
    assert isinstance(storage, InMemoryStorage)
    return storage.create_new_trial(view.study_id)


def _reported(
    view: StudyView, trial: FrozenTrial, step: int, value: float, vector: list[float] | None = None
) -> FrozenTrial:
    storage = view._storage
    storage.set_trial_intermediate_value(trial.trial_id, step, value)
    if vector is not None:
        reported = dict(
            storage.get_trial(trial.trial_id).system_attrs.get(REPORTED_VALUES_KEY, {})
        )
        reported[str(step)] = vector
        storage.set_trial_attr(trial.trial_id, REPORTED_VALUES_KEY, reported, system=True)
    return storage.get_trial(trial.trial_id)


def _check_promoted(view: StudyView, promoted: FrozenTrial | None) -> None:
    """``promoted`` is ``None`` or a PRUNED trial of the study that nobody continues yet."""
    if promoted is None:
        return
    assert isinstance(promoted, FrozenTrial)
    assert promoted.state == TrialState.PRUNED
    stored = {t.number: t for t in view.get_trials()}
    assert promoted.number in stored
    assert stored[promoted.number].trial_id == promoted.trial_id
    assert all(t.system_attrs.get(RESUME_OF_KEY) != promoted.number for t in stored.values())


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

    def make_multi_objective_pruner(self) -> BasePruner:
        """Return a new pruner for studies of two objectives (by default :meth:`make_pruner`;
        override it to check, say, comparison by non-dominated rank)."""
        return self.make_pruner()

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

    @pytest.mark.parametrize("special", [False, True], ids=["plain", "special-values"])
    @pytest.mark.parametrize(
        "directions", [[MIN, MAX], [MAX, MAX, MIN]], ids=["min-max", "max-max-min"]
    )
    def test_multi_objective_study(self, directions: list[StudyDirection], special: bool) -> None:
        pruner = self.make_multi_objective_pruner()
        view = make_multi_history(directions, with_special_values=special)
        trial = _new_trial(view)
        assert pruner.prune(view, trial) is False
        for step in range(N_STEPS + 2):
            level = 2.0 + 0.1 * step
            first = _curve(level, step) * (1.0 if directions[0] == MIN else -1.0)
            vector = (
                None if step % 3 == 2 else [first] + [_curve(level, step)] * (len(directions) - 1)
            )
            trial = _reported(view, trial, step, first, vector)
            assert type(pruner.prune(view, trial)) is bool
        _check_promoted(view, pruner.promote(view, _new_trial(view)))

    @pytest.mark.parametrize("direction", [MIN, MAX], ids=["minimize", "maximize"])
    @pytest.mark.parametrize("special", [False, True], ids=["plain", "special-values"])
    def test_promote_answers_none_or_a_paused_trial(
        self, direction: StudyDirection, special: bool
    ) -> None:
        pruner = self.make_pruner()
        view = make_history(direction, with_special_values=special)
        _check_promoted(view, pruner.promote(view, _new_trial(view)))
        storage = InMemoryStorage()
        empty = StudyView(storage, storage.create_new_study([direction], "empty"))
        assert pruner.promote(empty, _new_trial(empty)) is None

    def test_promote_reads_without_writing(self) -> None:
        pruner = self.make_pruner()
        view = make_history(MIN, with_special_values=True)
        trial = _new_trial(view)
        before = count_rows(view._storage)
        pruner.promote(view, trial)
        assert count_rows(view._storage) == before

    def test_multi_objective_study_runs_to_the_budget(self) -> None:
        def objective(trial: Trial) -> tuple[float, float]:
            level = float((trial.number * 7) % 11)
            for step in range(N_STEPS):
                trial.report([_curve(level, step), -_curve(10.0 - level, step)], step)
                if trial.should_prune():
                    raise TrialPruned()
            return _curve(level, N_STEPS - 1), -_curve(10.0 - level, N_STEPS - 1)

        study = dltune.create_study(
            directions=["minimize", "maximize"], pruner=self.make_multi_objective_pruner()
        )
        study.optimize(objective, n_trials=12, catch=())
        states = {t.state for t in study.trials}
        assert len(study.trials) == 12
        assert states <= {TrialState.COMPLETE, TrialState.PRUNED}
        assert TrialState.COMPLETE in states
