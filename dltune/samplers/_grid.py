"""Exhaustive search over a given grid of values."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune.samplers._base import BaseSampler
from dltune.samplers._base import check_seed
from dltune.space import CategoricalDistribution
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["GridSampler"]

_logger = logging.getLogger(__name__)
_MAX_SHUFFLED = 10**6


class GridSampler(BaseSampler):
    """Visits every combination of the given values once, in a seeded random order.

    Trial ``n`` gets grid point ``order[n]``: the assignment needs no coordination, so any
    number of workers cover the grid without duplicates. Give ``n_trials=len(grid)``; the study
    also stops claiming trials once the grid is covered.

    Args:
        search_space: ``name -> list of values``. Every parameter the objective asks for must be
            here, with values inside the distribution it asks for.
        seed: Seeds the visiting order.

    Raises:
        ValueError: For an empty search space or an empty list of values.

    Example:
        >>> import dltune
        >>> sampler = GridSampler({"x": [-1, 0, 1], "opt": ["sgd", "adam"]})
        >>> study = dltune.create_study(sampler=sampler)
        >>> study.optimize(lambda t: t.suggest_int("x", -1, 1) ** 2, n_trials=6)
        >>> sorted({t.params["x"] for t in study.trials})
        [-1, 0, 1]
    """

    def __init__(self, search_space: Mapping[str, Sequence[Any]], seed: int | None = None) -> None:
        if not isinstance(search_space, Mapping) or not search_space:
            raise ValueError(f"search_space={search_space!r} must be a non-empty dict")
        self._names = sorted(search_space)
        self._values: dict[str, tuple[Any, ...]] = {}
        for name in self._names:
            values = search_space[name]
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"search_space[{name!r}]={values!r} must be a non-empty list of values"
                )
            CategoricalDistribution(tuple(values))  # same rules as choices: hashable, distinct
            self._values[name] = tuple(values)
        self._sizes = [len(self._values[n]) for n in self._names]
        self.grid_size = math.prod(self._sizes)
        self._seed = check_seed(seed)
        rng = np.random.default_rng(self._seed)
        self._order: np.ndarray | None = None
        if self.grid_size <= _MAX_SHUFFLED:
            self._order = rng.permutation(self.grid_size)
        else:  # too big to shuffle: a seeded affine bijection n -> (a n + b) mod N
            self._mult = int(rng.integers(1, self.grid_size))
            while math.gcd(self._mult, self.grid_size) != 1:
                self._mult = int(rng.integers(1, self.grid_size))
            self._shift = int(rng.integers(0, self.grid_size))

    def __len__(self) -> int:
        return self.grid_size

    def grid_point(self, number: int) -> dict[str, Any]:
        """The parameter values trial ``number`` gets."""
        index = number % self.grid_size
        if self._order is not None:
            index = int(self._order[index])
        else:
            index = (self._mult * index + self._shift) % self.grid_size
        point = {}
        for name, size in zip(reversed(self._names), reversed(self._sizes), strict=True):
            index, digit = divmod(index, size)
            point[name] = self._values[name][digit]
        return point

    def is_exhausted(self, study: StudyView) -> bool:
        """Whether every grid point has been assigned to a trial."""
        started = [t for t in study.get_trials() if t.state != TrialState.WAITING]
        return len(started) >= self.grid_size

    def max_trials(self, study: StudyView) -> int | None:
        """The grid's size: trial ``n`` takes grid point ``n``."""
        return self.grid_size

    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        if name not in self._values:
            raise ValueError(
                f"parameter {name!r} is not in the grid; the grid has {self._names!r}"
            )
        if trial.number >= self.grid_size:
            _logger.warning(
                "trial %d is past the grid of %d points; points repeat",
                trial.number,
                self.grid_size,
            )
        value = self.grid_point(trial.number)[name]
        distribution.to_internal(value)  # raises if the grid value is outside the distribution
        return value

    def values(self) -> dict[str, tuple[Any, ...]]:
        """The grid's values per parameter."""
        return dict(self._values)

    def all_points(self) -> list[dict[str, Any]]:
        """Every grid point, in parameter-name order (not visiting order)."""
        return [
            dict(zip(self._names, combo, strict=True))
            for combo in itertools.product(*(self._values[n] for n in self._names))
        ]
