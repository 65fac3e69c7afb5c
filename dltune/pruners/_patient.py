"""Prune a trial that stopped improving, optionally only when another pruner agrees."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune.pruners._base import BasePruner
from dltune.pruners._checks import check_int
from dltune.pruners._checks import check_number
from dltune.pruners._checks import check_objective
from dltune.pruners._scores import Curve
from dltune.pruners._scores import Scorer

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["PatientPruner", "patient_pruner"]


class PatientPruner(BasePruner):
    """Prunes a trial whose best value has not improved by more than ``min_delta`` in its last
    ``patience`` reported steps, and then only if ``wrapped`` also says prune.

    With ``objective="rank"`` (multi-objective studies), a step improves when its vector beats
    every earlier one of the trial by more than ``min_delta`` in at least one objective (it
    would extend the trial's own Pareto front). A NaN never improves.

    Args:
        wrapped: The pruner that must agree; ``None`` prunes on patience alone.
        patience: Reported steps without improvement before pruning (>= 1).
        min_delta: The least change that counts as an improvement (>= 0).
        objective: The objective index compared, or ``"rank"``.

    Raises:
        TypeError: If ``wrapped`` is not a pruner or ``None``, or for arguments of the wrong
            type.
        ValueError: For ``patience < 1``, a negative or infinite ``min_delta`` or a bad
            ``objective``.

    Example:
        >>> from dltune.pruners import MedianPruner
        >>> pruner = PatientPruner(MedianPruner(), patience=3, min_delta=0.01)
        >>> alone = PatientPruner(None, patience=5)
    """

    def __init__(
        self,
        wrapped: BasePruner | None,
        patience: int,
        min_delta: float = 0.0,
        *,
        objective: int | str = 0,
    ) -> None:
        if wrapped is not None and not isinstance(wrapped, BasePruner):
            raise TypeError(f"wrapped={wrapped!r} must be a BasePruner or None")
        self._wrapped = wrapped
        self._patience = check_int("patience", patience, 1)
        self._min_delta = check_number("min_delta", min_delta, minimum=0.0)
        self._objective = check_objective(objective)

    @property
    def wrapped(self) -> BasePruner | None:
        """The pruner that must agree, or ``None``."""
        return self._wrapped

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        if trial.last_step is None:
            return False
        scorer = Scorer.of(study, self._objective)
        curve = Curve([trial])
        points = [p for p in (scorer.point(curve, s) for s in curve.steps) if p is not None]
        if len(points) <= self._patience:
            return False
        before, window = points[: -self._patience], points[-self._patience :]
        if any(_improves(point, before, self._min_delta) for point in window):
            return False
        return self._wrapped is None or self._wrapped.prune(study, trial)

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        """What ``wrapped`` promotes (nothing without one)."""
        return None if self._wrapped is None else self._wrapped.promote(study, trial)


def _improves(
    point: tuple[float, ...], before: Sequence[tuple[float, ...]], min_delta: float
) -> bool:
    """Whether ``point`` beats each earlier point by more than ``min_delta`` somewhere."""
    if any(math.isnan(v) for v in point):
        return False
    return all(
        any(
            v < (math.inf if math.isnan(b) else b) - min_delta
            for v, b in zip(point, old, strict=True)
        )
        for old in before
    )


def patient_pruner(
    patience: int,
    wrapped: BasePruner | str | Mapping[str, Any] | None = None,
    min_delta: float = 0.0,
    *,
    objective: int | str = 0,
) -> PatientPruner:
    """A :class:`PatientPruner` whose ``wrapped`` may be given as in a config.

    ``wrapped`` is a pruner, ``None``, a registered name (``"median"``) or a mapping of
    ``type`` and the constructor's arguments (``{type: median, n_startup_trials: 3}``), so a
    ``dltune tune`` config can write ``pruner: {type: patient, patience: 3, wrapped: median}``.

    Raises:
        ValueError: If ``wrapped`` names no pruner or its arguments are refused.
        TypeError: If ``wrapped`` is of another type.

    Example:
        >>> pruner = patient_pruner(3, {"type": "median", "n_startup_trials": 2})
        >>> type(pruner.wrapped).__name__
        'MedianPruner'
    """
    if isinstance(wrapped, str | Mapping):
        wrapped = _build_wrapped(wrapped)
    return PatientPruner(wrapped, patience, min_delta, objective=objective)


def _build_wrapped(spec: str | Mapping[str, Any]) -> BasePruner:
    from dltune.pruners import PRUNERS  # the registry imports this module

    accepted = "a pruner name or {type: <pruner name>, <its arguments>}"
    kwargs = {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "type"}
    name = spec if isinstance(spec, str) else spec.get("type")
    if not isinstance(name, str):
        raise ValueError(f"wrapped={spec!r} has no type; give {accepted}")
    try:
        factory = PRUNERS.get(name)
        pruner = factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"wrapped={spec!r} is refused: {exc} (give {accepted})") from exc
    return pruner
