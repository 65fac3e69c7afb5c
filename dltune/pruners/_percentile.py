"""Prune a trial whose best reported value so far is worse than a percentile of its peers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dltune.pruners._base import BasePruner
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["MedianPruner", "PercentilePruner"]


def _check_int(arg: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{arg}={value!r} must be >= {minimum}")
    return value


class PercentilePruner(BasePruner):
    """Prunes when a trial's best value so far is worse than the given percentile of the values
    that COMPLETE trials reported at the same step.

    Args:
        percentile: In ``[0, 100]``; 50 is the median. Lower prunes more when minimizing.
        n_startup_trials: Never prune until this many trials are COMPLETE.
        n_warmup_steps: Never prune a trial before it reported a step >= this.
        interval_steps: Only consider pruning every this many steps after the warm-up.
        n_min_trials: Need at least this many COMPLETE trials with a value at the step.

    Raises:
        ValueError: For a percentile outside ``[0, 100]`` or negative counts.

    Example:
        >>> pruner = PercentilePruner(25.0, n_startup_trials=5)
    """

    def __init__(
        self,
        percentile: float,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        n_min_trials: int = 1,
    ) -> None:
        if isinstance(percentile, bool) or not isinstance(percentile, int | float):
            raise TypeError(f"percentile={percentile!r} must be a number")
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile={percentile!r} must be in [0, 100]")
        self._percentile = float(percentile)
        self._n_startup_trials = _check_int("n_startup_trials", n_startup_trials, 0)
        self._n_warmup_steps = _check_int("n_warmup_steps", n_warmup_steps, 0)
        self._interval_steps = _check_int("interval_steps", interval_steps, 1)
        self._n_min_trials = _check_int("n_min_trials", n_min_trials, 1)

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return False
        if (step - self._n_warmup_steps) % self._interval_steps != 0:
            return False
        if study.is_multi_objective:
            raise NotImplementedError(
                "PercentilePruner prunes single-objective studies only; multi-objective pruning "
                "is planned (issue #5)"
            )
        completed = study.get_trials((TrialState.COMPLETE,))
        if len(completed) < self._n_startup_trials:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        own = [v for s, v in trial.intermediate_values.items() if s <= step and not math.isnan(v)]
        if not own:
            return True  # only NaN reported: nothing shows this trial is learning
        best = max(own) if maximize else min(own)
        peers = [
            t.intermediate_values[step]
            for t in completed
            if step in t.intermediate_values and not math.isnan(t.intermediate_values[step])
        ]
        if len(peers) < self._n_min_trials:
            return False
        pct = 100.0 - self._percentile if maximize else self._percentile
        threshold = float(np.percentile(np.asarray(peers), pct))
        return best < threshold if maximize else best > threshold


class MedianPruner(PercentilePruner):
    """Prunes a trial whose best value so far is worse than the median of its peers' at the
    same step: :class:`PercentilePruner` at 50.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(pruner=MedianPruner(n_startup_trials=2))
    """

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        n_min_trials: int = 1,
    ) -> None:
        super().__init__(
            50.0, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials=n_min_trials
        )
