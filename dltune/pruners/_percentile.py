"""Prune a trial whose best reported value so far is worse than a percentile of its peers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dltune.pruners._base import BasePruner
from dltune.pruners._checks import check_int
from dltune.pruners._checks import check_objective
from dltune.pruners._scores import Curve
from dltune.pruners._scores import Scorer
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["MedianPruner", "PercentilePruner"]


class PercentilePruner(BasePruner):
    """Prunes when a trial's best value so far is worse than the given percentile of the values
    that COMPLETE trials reported at the same step.

    In a multi-objective study, ``objective`` picks what is compared: an objective's index (its
    direction decides what is better), or ``"rank"``: the trial's non-dominated front at the
    current step, among itself and the COMPLETE trials that reported a vector there, against
    the percentile of theirs. A trial that did not report the compared value is not pruned.

    Args:
        percentile: In ``[0, 100]``; 50 is the median. Lower prunes more when minimizing.
        n_startup_trials: Never prune until this many trials are COMPLETE.
        n_warmup_steps: Never prune a trial before it reported a step >= this.
        interval_steps: Only consider pruning every this many steps after the warm-up.
        n_min_trials: Need at least this many COMPLETE trials with a value at the step.
        objective: The objective index compared, or ``"rank"``.

    Raises:
        ValueError: For a percentile outside ``[0, 100]``, negative counts or a bad
            ``objective``; an index the study does not have is refused when pruning.

    Example:
        >>> pruner = PercentilePruner(25.0, n_startup_trials=5)
        >>> by_rank = PercentilePruner(50.0, objective="rank")
    """

    def __init__(
        self,
        percentile: float,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        n_min_trials: int = 1,
        objective: int | str = 0,
    ) -> None:
        if isinstance(percentile, bool) or not isinstance(percentile, int | float):
            raise TypeError(f"percentile={percentile!r} must be a number")
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile={percentile!r} must be in [0, 100]")
        self._percentile = float(percentile)
        self._n_startup_trials = check_int("n_startup_trials", n_startup_trials, 0)
        self._n_warmup_steps = check_int("n_warmup_steps", n_warmup_steps, 0)
        self._interval_steps = check_int("interval_steps", interval_steps, 1)
        self._n_min_trials = check_int("n_min_trials", n_min_trials, 1)
        self._objective = check_objective(objective)

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return False
        if (step - self._n_warmup_steps) % self._interval_steps != 0:
            return False
        scorer = Scorer.of(study, self._objective)
        completed = study.get_trials((TrialState.COMPLETE,))
        if len(completed) < self._n_startup_trials:
            return False
        if scorer.is_rank:
            return self._prune_by_rank(scorer, trial, step, completed)
        own = Curve([trial])
        values = [scorer.value(own, s) for s in own.steps if s <= step]
        reported = [v for v in values if v is not None]
        if not reported:
            return False  # nothing to compare: never prune on missing data
        finite = [v for v in reported if not math.isnan(v)]
        if not finite:
            return True  # only NaN reported: nothing shows this trial is learning
        peers = [scorer.value(Curve([t]), step) for t in completed]
        known = [v for v in peers if v is not None and not math.isnan(v)]
        if len(known) < self._n_min_trials:
            return False
        return min(finite) > float(np.percentile(np.asarray(known), self._percentile))

    def _prune_by_rank(
        self, scorer: Scorer, trial: FrozenTrial, step: int, completed: list[FrozenTrial]
    ) -> bool:
        entries = [(Curve([trial]), step)] + [(Curve([t]), step) for t in completed]
        own, *peers = scorer.scores(entries)
        known = [r for r in peers if r is not None]
        if own is None or len(known) < self._n_min_trials:
            return False
        return own > float(np.percentile(np.asarray(known), self._percentile))


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
        objective: int | str = 0,
    ) -> None:
        super().__init__(
            50.0,
            n_startup_trials,
            n_warmup_steps,
            interval_steps,
            n_min_trials=n_min_trials,
            objective=objective,
        )
