"""Uniform random search."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from dltune.samplers._base import BaseSampler
from dltune.samplers._base import check_seed
from dltune.samplers._base import trial_rng

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["RandomSampler"]


class RandomSampler(BaseSampler):
    """Draws every parameter uniformly (in log space for ``log=True``), independently.

    Args:
        seed: Makes the study reproducible: a trial's values depend only on the seed, the trial
            number and the parameter name, whichever worker runs it.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(sampler=RandomSampler(seed=0))
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
        >>> len(study.trials)
        5
    """

    def __init__(self, seed: int | None = None) -> None:
        self._seed = check_seed(seed)

    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        unit = trial_rng(self._seed, trial.number, name).random()
        return distribution.to_external(distribution.from_unit(unit))
