"""The read-only view of a study that samplers and pruners receive.

Plug-ins get this view and frozen trial records, never the study object, a worker or the
executor: they can read everything they need to decide, and change nothing.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from dltune.storage._base import BaseStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["StudyView"]


class StudyView:
    """Read access to one study in a storage.

    Example:
        >>> from dltune.storage import InMemoryStorage
        >>> storage = InMemoryStorage()
        >>> sid = storage.create_new_study([StudyDirection.MINIMIZE], "s")
        >>> StudyView(storage, sid).direction
        <StudyDirection.MINIMIZE: 'MINIMIZE'>
    """

    __slots__ = ("_directions", "_storage", "_study_id")

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self._storage = storage
        self._study_id = study_id
        self._directions: list[StudyDirection] | None = None

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
        """The study's trials in number order, optionally filtered by state."""
        return self._storage.get_all_trials(self._study_id, states)

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
        """The best COMPLETE trial of a single-objective study, or ``None`` if there is none."""
        return self._storage.get_best_trial(self._study_id)
