"""The read-only view of a study that samplers and pruners receive.

Plug-ins get this view and frozen trial records, never the study object, a worker or the
executor: they can read everything they need to decide, and change nothing they did not write.
The one exception is a note: a sampler may record what it decided (which generation of CMA-ES a
trial belongs to, which sampler an automatic choice picked) as a system attribute under the
``sampler:`` prefix, on the study or on a trial still running. Notes live in storage, so every
worker process sees them.

A view may be cut at a trial number (:meth:`StudyView.before`): it then shows only the trials
numbered below it. Batch-synchronous runs (``study.optimize(..., batch_size=k)``) give each
trial of batch ``b`` the view cut at ``b * k``, so what a sampler or pruner decides cannot
depend on which trials of the same batch happened to run first.
"""

from __future__ import annotations

import bisect
from collections.abc import Container
from typing import Any

from dltune.storage._base import BaseStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["NOTE_PREFIX", "StudyView"]

#: The prefix of every system attribute a sampler writes through :meth:`StudyView.set_note`.
NOTE_PREFIX = "sampler:"


class StudyView:
    """Read access to one study in a storage.

    Example:
        >>> from dltune.storage import InMemoryStorage
        >>> storage = InMemoryStorage()
        >>> sid = storage.create_new_study([StudyDirection.MINIMIZE], "s")
        >>> StudyView(storage, sid).direction
        <StudyDirection.MINIMIZE: 'MINIMIZE'>
    """

    __slots__ = ("_before", "_directions", "_storage", "_study_id")

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self._storage = storage
        self._study_id = study_id
        self._directions: list[StudyDirection] | None = None
        self._before: int | None = None

    def before(self, number: int) -> StudyView:
        """A view of the same study that shows only the trials numbered below ``number``.

        Trials, the best trial and the notes on trials are cut; the study's attributes
        (and notes on the study) are not, since they carry no trial number.

        Raises:
            TypeError: If ``number`` is not an int.
            ValueError: If it is negative.

        Example:
            >>> from dltune.storage import InMemoryStorage
            >>> storage = InMemoryStorage()
            >>> sid = storage.create_new_study([StudyDirection.MINIMIZE], "s")
            >>> trials = [storage.create_new_trial(sid) for _ in range(3)]
            >>> [t.number for t in StudyView(storage, sid).before(2).get_trials()]
            [0, 1]
        """
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"number={number!r} must be an int")
        if number < 0:
            raise ValueError(f"number={number!r} must be >= 0")
        view = StudyView(self._storage, self._study_id)
        view._directions = self._directions
        view._before = number
        return view

    @property
    def trials_before(self) -> int | None:
        """The number this view is cut at (see :meth:`before`), or ``None`` for all trials."""
        return self._before

    @property
    def study_id(self) -> int:
        """The storage's id of the study."""
        return self._study_id

    @property
    def study_name(self) -> str:
        """The study's name."""
        return self._storage.get_study_name_from_id(self._study_id)

    @property
    def directions(self) -> list[StudyDirection]:
        """One direction per objective."""
        if self._directions is None:
            self._directions = self._storage.get_study_directions(self._study_id)
        return list(self._directions)

    @property
    def direction(self) -> StudyDirection:
        """The direction of a single-objective study.

        Raises:
            RuntimeError: If the study has several objectives.
        """
        directions = self.directions
        if len(directions) != 1:
            raise RuntimeError(f"the study has {len(directions)} objectives; use study.directions")
        return directions[0]

    @property
    def is_multi_objective(self) -> bool:
        """Whether the study has more than one objective."""
        return len(self.directions) > 1

    def get_trials(self, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        """The study's trials in number order, optionally filtered by state.

        The records may be the storage's own (no copy of a thousand trials per proposal):
        read them, never change them.
        """
        trials = self._storage.get_all_trials(self._study_id, states, copy=False)
        if self._before is None:
            return trials
        return trials[: bisect.bisect_left(trials, self._before, key=_number)]

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The study's user attributes."""
        return self._storage.get_study_attrs(self._study_id, system=False)

    @property
    def system_attrs(self) -> dict[str, Any]:
        """The study's system attributes."""
        return self._storage.get_study_attrs(self._study_id, system=True)

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The best COMPLETE trial of a single-objective study, or ``None`` if there is none.

        Ties go to the earliest trial.

        Raises:
            ValueError: If the study has several objectives.
        """
        if self._before is None:
            return self._storage.get_best_trial(self._study_id)
        if self.is_multi_objective:
            raise ValueError(
                f"the study has {len(self.directions)} objectives, so no single best trial; "
                "use study.best_trials for the Pareto front"
            )
        sign = 1.0 if self.direction == StudyDirection.MINIMIZE else -1.0
        complete = self.get_trials((TrialState.COMPLETE,))
        # min keeps the first of equal keys, and the trials come in number order
        return min(complete, key=lambda t: sign * _first_value(t), default=None)

    def set_note(self, key: str, value: Any, trial: FrozenTrial | None = None) -> None:
        """Record a sampler's decision as the system attribute ``"sampler:" + key``.

        On the study when ``trial`` is ``None``, else on that trial, which must be RUNNING (a
        finished trial's record is final). The value must be JSON-serializable.

        Raises:
            TypeError: If ``key`` is not a non-empty str.
            ValueError: If ``trial`` is not RUNNING.
        """
        if not isinstance(key, str) or not key:
            raise TypeError(f"key={key!r} must be a non-empty str")
        if trial is None:
            self._storage.set_study_attr(self._study_id, NOTE_PREFIX + key, value, system=True)
            return
        if trial.state != TrialState.RUNNING:
            raise ValueError(
                f"trial {trial.number} is {trial.state.name}; notes go on RUNNING trials only"
            )
        self._storage.set_trial_attr(trial.trial_id, NOTE_PREFIX + key, value, system=True)

    def get_note(self, key: str, trial: FrozenTrial | None = None) -> Any:
        """A note written by :meth:`set_note` (on the study, or on ``trial``), or ``None``."""
        if trial is None:
            return self.system_attrs.get(NOTE_PREFIX + key)
        return trial.system_attrs.get(NOTE_PREFIX + key)


def _number(trial: FrozenTrial) -> int:
    return trial.number


def _first_value(trial: FrozenTrial) -> float:
    assert trial.values is not None  # COMPLETE trials have values
    return trial.values[0]
