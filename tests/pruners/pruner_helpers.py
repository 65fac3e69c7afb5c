"""Hand-built studies for the pruner tests: trials with given curves, states and lineages."""

from __future__ import annotations

from collections.abc import Sequence

from dltune.pruners import HyperbandPruner
from dltune.storage import InMemoryStorage
from dltune.storage._base import REPORTED_VALUES_KEY
from dltune.storage._base import RESUME_OF_KEY
from dltune.storage._base import STOPPED_BY_KEY
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView

PRUNED = TrialState.PRUNED
COMPLETE = TrialState.COMPLETE
RUNNING = TrialState.RUNNING


class Board:
    """A study in memory whose trials are added one by one, each with its curve and state."""

    def __init__(self, *directions: str) -> None:
        self.storage = InMemoryStorage()
        dirs = [StudyDirection.parse(d) for d in directions or ("minimize",)]
        self.study_id = self.storage.create_new_study(dirs, "board")
        self.view = StudyView(self.storage, self.study_id)

    def add(
        self,
        curve: dict[int, float],
        state: TrialState = PRUNED,
        *,
        resume_of: int | None = None,
        stopped_by: str | None = None,
        vectors: dict[int, list[float]] | None = None,
    ) -> FrozenTrial:
        """A trial that reported ``curve`` (and ``vectors``), left in ``state``."""
        trial = self.storage.create_new_trial(self.study_id)
        for step, value in curve.items():
            self.storage.set_trial_intermediate_value(trial.trial_id, step, value)
        attrs: dict[str, object] = {}
        if resume_of is not None:
            attrs[RESUME_OF_KEY] = resume_of
        if stopped_by is not None:
            attrs[STOPPED_BY_KEY] = stopped_by
        if vectors is not None:
            attrs[REPORTED_VALUES_KEY] = {str(s): v for s, v in vectors.items()}
        for key, attr in attrs.items():
            self.storage.set_trial_attr(trial.trial_id, key, attr, system=True)
        if state == COMPLETE:
            n = len(self.view.directions)
            last = curve[max(curve)] if curve else 0.0
            self.storage.set_trial_state_values(trial.trial_id, state, [last] * n)
        elif state != RUNNING:
            self.storage.set_trial_state_values(trial.trial_id, state)
        return self.storage.get_trial(trial.trial_id)

    def running(
        self,
        curve: dict[int, float] | None = None,
        *,
        resume_of: int | None = None,
        vectors: dict[int, list[float]] | None = None,
    ) -> FrozenTrial:
        """A RUNNING trial (see :meth:`add`)."""
        return self.add(curve or {}, RUNNING, resume_of=resume_of, vectors=vectors)

    def report(
        self, trial: FrozenTrial, step: int, value: float, vector: list[float] | None = None
    ) -> FrozenTrial:
        """``trial`` after reporting ``value`` (and ``vector``) at ``step``."""
        self.storage.set_trial_intermediate_value(trial.trial_id, step, value)
        if vector is not None:
            current = self.storage.get_trial(trial.trial_id).system_attrs
            reported = dict(current.get(REPORTED_VALUES_KEY, {}))
            reported[str(step)] = vector
            self.storage.set_trial_attr(trial.trial_id, REPORTED_VALUES_KEY, reported, system=True)
        return self.storage.get_trial(trial.trial_id)

    def get(self, number: int) -> FrozenTrial:
        """The stored trial ``number``."""
        return self.view.get_trials()[number]

    def numbers(self, state: TrialState) -> list[int]:
        """The numbers of the trials in ``state``."""
        return [t.number for t in self.view.get_trials((state,))]

    def next_in_bracket(self, pruner: HyperbandPruner, bracket: int) -> None:
        """Fail filler trials (no reports) until the next trial's number is in ``bracket``."""
        while pruner.bracket_of(len(self.view.get_trials())) != bracket:
            filler = self.storage.create_new_trial(self.study_id)
            self.storage.set_trial_state_values(filler.trial_id, TrialState.FAIL, reason="x")


def rung_curve(value: float, steps: Sequence[int] = (1,)) -> dict[int, float]:
    """The same ``value`` at each of ``steps``."""
    return dict.fromkeys(steps, value)
