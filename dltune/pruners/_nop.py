"""The pruner that never prunes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dltune.pruners._base import BasePruner

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["NopPruner"]


class NopPruner(BasePruner):
    """Never prunes: every trial runs to the end.

    Example:
        >>> NopPruner().prune  # doctest: +ELLIPSIS
        <bound method NopPruner.prune of ...>
    """

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return False
