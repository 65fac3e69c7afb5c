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
    Pruners that draw random numbers take a ``seed``, and those that read the time take a
    ``clock`` (a ``() -> seconds`` callable), so their tests are exact and fast.
    """

    @abc.abstractmethod
    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        """Whether ``trial`` should stop now."""

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        """A paused trial that the new ``trial`` should continue instead of sampling, if any.

        ``Study.ask()`` calls this for every freshly claimed trial (not an enqueued one or a
        retry). A pruner that *pauses* trials (asynchronous successive halving stops a trial
        that is not yet in the top of its rung, and promotes it later when it is) returns the
        PRUNED trial to continue; the new trial then gets its params and the system attribute
        ``resume_of`` (its number), and the trainer resumes from its checkpoint. The default
        never promotes.
        """
        return None
