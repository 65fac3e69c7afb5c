"""What an importance method returns: one share per parameter, with the method named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ParamImportances"]


@dataclass(frozen=True, slots=True)
class ParamImportances:
    """How much each parameter explains of one objective's variation.

    Attributes:
        method: The method that computed it (``"ped_anova"`` or ``"fanova"``).
        objective: Which objective (index into the study's directions).
        importances: ``param -> share``, most important first; the shares are >= 0 and sum
            to 1 (all 0 when nothing varies).
        n_trials: How many trials the estimate used.
        notes: What a reader should know (too few trials, parameters left out and why).

    Example:
        >>> result = ParamImportances("ped_anova", 0, {"lr": 0.8, "wd": 0.2}, 40)
        >>> next(iter(result.importances))
        'lr'
    """

    method: str
    objective: int
    importances: dict[str, float]
    n_trials: int
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as one JSON-ready mapping."""
        return {
            "method": self.method,
            "objective": self.objective,
            "importances": dict(self.importances),
            "n_trials": self.n_trials,
            "notes": list(self.notes),
        }
