"""Quasi-random (Sobol) search: covers the space more evenly than random draws."""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING
from typing import Any

from dltune.samplers._base import BaseSampler
from dltune.samplers._base import check_seed
from dltune.samplers._random import RandomSampler
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["QMCSampler"]


class QMCSampler(BaseSampler):
    """Scrambled Sobol points (scipy) over the space of the study's first complete trial.

    Trial ``n`` gets Sobol point ``n``, so any number of workers share one low-discrepancy
    sequence without coordination. Until a trial completes, and for parameters outside that
    space (conditional ones), values are drawn at random.

    Args:
        seed: Seeds the scrambling and the random fallback.
        scramble: Scramble the sequence (recommended; unscrambled Sobol starts at the corner).

    Example:
        >>> import dltune
        >>> study = dltune.create_study(sampler=QMCSampler(seed=0))
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    """

    def __init__(self, seed: int | None = None, *, scramble: bool = True) -> None:
        self._seed = check_seed(seed)
        if not isinstance(scramble, bool):
            raise TypeError(f"scramble={scramble!r} must be True or False")
        self._scramble = scramble
        self._fallback = RandomSampler(self._seed)
        self._space: dict[str, BaseDistribution] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def infer_relative_search_space(
        self, study: StudyView, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._space is None:
            complete = study.get_trials((TrialState.COMPLETE,))
            if not complete:
                return {}
            first = min(complete, key=lambda t: t.number)
            self._space = {
                name: dist
                for name, dist in sorted(first.distributions.items())
                if not dist.is_single()
            }
        return dict(self._space)

    def sample_relative(
        self, study: StudyView, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        from scipy.stats import qmc

        with self._lock:
            engine = qmc.Sobol(len(search_space), scramble=self._scramble, seed=self._seed)
            if trial.number:
                engine.fast_forward(trial.number)
            with warnings.catch_warnings():
                # Sobol's balance warning is about drawing sample sizes other than powers of
                # two from one engine; here each trial takes one point of a shared sequence.
                warnings.simplefilter("ignore", UserWarning)
                point = engine.random(1)[0]
        return {
            name: dist.to_external(dist.from_unit(float(u)))
            for (name, dist), u in zip(search_space.items(), point, strict=True)
        }

    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        return self._fallback.sample_independent(study, trial, name, distribution)
