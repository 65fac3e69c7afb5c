"""Prune a trial whose value leaves fixed bounds, or that has run too long."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dltune.pruners._base import BasePruner
from dltune.pruners._checks import check_int
from dltune.pruners._checks import check_number
from dltune.pruners._checks import check_objective
from dltune.pruners._scores import Curve
from dltune.pruners._scores import Scorer

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["ThresholdPruner"]


class ThresholdPruner(BasePruner):
    """Prunes a trial whose last reported value is below ``lower``, above ``upper`` or NaN, or
    that has run longer than ``max_seconds``.

    The bounds are in the objective's own units, whatever its direction: a loss that must stay
    below 10 is ``upper=10``, an accuracy that must reach 0.2 is ``lower=0.2``. The time limit
    counts from the trial's ``datetime_start`` (a continuation of a paused trial starts its own
    count) and is checked at every report, warm-up or not; the bounds only after the warm-up,
    every ``interval_steps`` steps.

    Args:
        lower: Prune below this value (``None``: no lower bound).
        upper: Prune above this value (``None``: no upper bound).
        n_warmup_steps: Never check the bounds before a step >= this.
        interval_steps: Check the bounds every this many steps after the warm-up.
        max_seconds: Prune a trial running longer than this (``None``: no limit).
        clock: The current time in seconds since the epoch (the storages' clock); injected
            so tests need not wait. Not ``time.monotonic``: its zero is not the epoch, and
            ``datetime_start`` is a wall-clock time.
        objective: In a multi-objective study, the index of the objective the bounds apply to.

    Raises:
        ValueError: If none of ``lower``, ``upper`` and ``max_seconds`` is given, ``lower >
            upper``, or for a bad count, time or ``objective`` (``"rank"`` has no units to bound).
        TypeError: For arguments of the wrong type.

    Example:
        >>> pruner = ThresholdPruner(upper=10.0, n_warmup_steps=2)
        >>> budget = ThresholdPruner(max_seconds=3600.0)
    """

    def __init__(
        self,
        lower: float | None = None,
        upper: float | None = None,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        max_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        objective: int | str = 0,
    ) -> None:
        self._lower = None if lower is None else _bound("lower", lower)
        self._upper = None if upper is None else _bound("upper", upper)
        if self._lower is not None and self._upper is not None and self._lower > self._upper:
            raise ValueError(f"lower={lower!r} must be <= upper={upper!r}")
        self._n_warmup_steps = check_int("n_warmup_steps", n_warmup_steps, 0)
        self._interval_steps = check_int("interval_steps", interval_steps, 1)
        self._max_seconds = None
        if max_seconds is not None:
            self._max_seconds = check_number("max_seconds", max_seconds)
            if self._max_seconds <= 0.0:
                raise ValueError(f"max_seconds={max_seconds!r} must be > 0")
        if lower is None and upper is None and max_seconds is None:
            raise ValueError("ThresholdPruner needs lower, upper or max_seconds; got none of them")
        if not callable(clock):
            raise TypeError(f"clock={clock!r} must be a callable returning seconds")
        self._clock = clock
        self._objective = check_objective(objective, allow_rank=False)

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        scorer = Scorer.of(study, self._objective, allow_rank=False)
        if self._max_seconds is not None and trial.datetime_start is not None:
            # .timestamp() reads a naive datetime as local time, as the storages wrote it, and
            # an aware one by its zone.
            if self._clock() - trial.datetime_start.timestamp() > self._max_seconds:
                return True
        if step < self._n_warmup_steps or (step - self._n_warmup_steps) % self._interval_steps:
            return False
        value = scorer.raw(Curve([trial]), step)
        if value is None:
            return False
        if math.isnan(value):
            return True
        if self._lower is not None and value < self._lower:
            return True
        return self._upper is not None and value > self._upper


def _bound(arg: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{arg}={value!r} must be a number or None")
    if math.isnan(value):
        raise ValueError(f"{arg}={value!r} must be a number, not NaN")
    return float(value)
