"""The sampler base: joint ('relative') sampling with a per-parameter ('independent') fallback.

At the start of each trial the study asks the sampler which part of the space it wants to sample
jointly (:meth:`BaseSampler.infer_relative_search_space`) and samples it
(:meth:`BaseSampler.sample_relative`). Every parameter outside that part, or any parameter of a
define-by-run space that appears for the first time, goes through
:meth:`BaseSampler.sample_independent`, the one required method. Random and quasi-random
samplers need only that; model-based ones (TPE, Gaussian process, CMA-ES) fill in the relative
hooks without any change to this base.
"""

from __future__ import annotations

import abc
import secrets
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.trial import TrialState
    from dltune.view import StudyView

__all__ = ["BaseSampler", "DelegatesIndependent"]


class BaseSampler(abc.ABC):
    """Proposes parameter values; reads the study only through a read-only view.

    Samplers must not keep state that other worker processes would need: what they learn comes
    from the trials in storage, so a copy of the sampler in each worker behaves as one.
    """

    def infer_relative_search_space(
        self, study: StudyView, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """The parameters to sample jointly for ``trial``. Returns ``{}`` (none) by default."""
        return {}

    def sample_relative(
        self, study: StudyView, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Jointly sample ``search_space``, returning external values. ``{}`` by default."""
        return {}

    @abc.abstractmethod
    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        """Sample one parameter on its own, returning its external value."""

    def is_exhausted(self, study: StudyView) -> bool:
        """Whether the sampler has nothing left to propose (a covered grid). ``False`` by
        default; workers stop claiming trials once it is ``True``."""
        return False

    def max_trials(self, study: StudyView) -> int | None:
        """The most trials this sampler can serve (a grid's size), or ``None`` for no limit.

        Workers pass it to the storage's atomic claim as a trial budget, so k workers racing
        for the last grid point never run past the grid. ``None`` by default.
        """
        return None

    def before_trial(self, study: StudyView, trial: FrozenTrial) -> None:  # noqa: B027
        """Called when a trial starts, before any sampling. Does nothing by default."""

    def after_trial(  # noqa: B027 - optional hook
        self,
        study: StudyView,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Called when a trial finished, before it is stored. Does nothing by default."""


class DelegatesIndependent(BaseSampler):
    """A model-based sampler whose parameters outside the modelled space (and whose trial
    hooks) go to an inner ``_independent`` sampler, as GP and CMA-ES do."""

    _independent: BaseSampler

    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        return self._independent.sample_independent(study, trial, name, distribution)

    def before_trial(self, study: StudyView, trial: FrozenTrial) -> None:
        """Passes the call on to the independent sampler."""
        self._independent.before_trial(study, trial)

    def after_trial(
        self,
        study: StudyView,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Passes the call on to the independent sampler."""
        self._independent.after_trial(study, trial, state, values)


def check_seed(seed: int | None) -> int:
    """Validate a seed and return it, or a fresh random one for ``None``.

    Raises:
        TypeError: If ``seed`` is not an int or None.
        ValueError: If it is negative.
    """
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed={seed!r} must be an int or None")
    if seed < 0:
        raise ValueError(f"seed={seed!r} must be >= 0")
    return int(seed)


def trial_rng(seed: int, number: int, name: str = "") -> np.random.Generator:
    """A generator that depends only on the sampler seed, the trial number and a name.

    Deriving randomness this way, rather than from one generator advanced call after call, makes
    a seeded study give the same trials whichever worker runs which trial, and makes a
    parameter's value independent of which other parameters a define-by-run objective asked for
    first.
    """
    return np.random.default_rng([seed, number, zlib.crc32(name.encode())])


def rung_points(multi_fidelity: bool, min_points_in_rung: int | None, default: int) -> int | None:
    """Check a sampler's multi-fidelity arguments; the ``rung_points`` for ``collect``.

    Example:
        >>> rung_points(True, None, 10), rung_points(False, None, 10), rung_points(True, 4, 10)
        (10, None, 4)
    """
    if not isinstance(multi_fidelity, bool):
        raise TypeError(f"multi_fidelity={multi_fidelity!r} must be True or False")
    if min_points_in_rung is not None and (
        isinstance(min_points_in_rung, bool)
        or not isinstance(min_points_in_rung, int)
        or min_points_in_rung < 1
    ):
        raise ValueError(f"min_points_in_rung={min_points_in_rung!r} must be an int >= 1 or None")
    if not multi_fidelity:
        return None
    return max(1, default) if min_points_in_rung is None else min_points_in_rung
