"""The pruner base: decide, from what a trial reported, whether to stop it early."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["BasePruner"]


class BasePruner(abc.ABC):
    """Stops hopeless trials. Stateless between calls: it reads what it needs from the study.

    A pruner is called from ``Trial.should_prune()`` in whichever worker runs the trial, with a
    read-only view of the study and the trial's current record (its reported values included).
    """

    @abc.abstractmethod
    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        """Whether ``trial`` should stop now."""
