"""The Parzen estimator of TPE: a weighted mixture of product kernels over the unit cube.

Each observation is one mixture component: a truncated normal per numeric dimension (centred on
the observation's unit-cube coordinate) and, per categorical dimension, a distribution that puts
most of its mass on the observed choice. One extra *prior* component (wide normals, uniform
choices) keeps every region reachable. Integer and stepped dimensions are discrete: their density
is the component's mass over the candidate's cell, so a model over ``batch_size in {16, 32, 64}``
compares probabilities, not a continuous density at three points.

Everything is vectorised over candidates and components; one ``ask`` with 1,000 trials in 20
dimensions costs a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr
from scipy.special import ndtr
from scipy.special import ndtri

from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

__all__ = ["ParzenEstimator", "SpaceLayout"]

_EPS = 1e-12
#: The prior component's standard deviation in the unit cube: nearly flat over [0, 1].
_PRIOR_SIGMA = 1.0


@dataclass(frozen=True)
class SpaceLayout:
    """How a space maps onto the estimator's columns.

    Attributes:
        names: Parameter names in column order.
        distributions: The distribution of each column.
        is_categorical: Which columns are categorical (unit value ``(index + 0.5) / n``).
        n_choices: Choices per categorical column (0 for numeric columns).
        step: Internal step of discrete numeric columns (ints, stepped floats), else 0.
    """

    names: tuple[str, ...]
    distributions: tuple[BaseDistribution, ...]
    is_categorical: np.ndarray
    n_choices: np.ndarray
    step: np.ndarray

    @classmethod
    def of(cls, space: dict[str, BaseDistribution]) -> SpaceLayout:
        """The layout of ``space``, in its key order."""
        cat, n_choices, step = [], [], []
        for dist in space.values():
            is_cat = isinstance(dist, CategoricalDistribution)
            cat.append(is_cat)
            n_choices.append(len(dist.choices) if is_cat else 0)  # type: ignore[attr-defined]
            if isinstance(dist, IntDistribution):
                step.append(float(dist.step))
            elif isinstance(dist, FloatDistribution) and dist.step is not None:
                step.append(dist.step)
            else:
                step.append(0.0)
        return cls(
            tuple(space),
            tuple(space.values()),
            np.array(cat, dtype=bool),
            np.array(n_choices, dtype=int),
            np.array(step, dtype=float),
        )

    @property
    def n_dims(self) -> int:
        """The number of columns."""
        return len(self.names)

    def choice_index(self, unit: np.ndarray, column: int) -> np.ndarray:
        """Categorical choice indices of a column of unit values (``to_unit`` of the index)."""
        n = int(self.n_choices[column])
        return np.asarray(np.clip(np.floor(unit * n), 0, n - 1), dtype=int)

    def snap(self, unit: np.ndarray) -> np.ndarray:
        """Map unit points to the unit coordinates of real values (cells' centres, choices)."""
        out = np.array(unit, dtype=float)
        for j, dist in enumerate(self.distributions):
            if self.is_categorical[j] or self.step[j] > 0:
                out[:, j] = [dist.to_unit(dist.from_unit(u)) for u in unit[:, j]]
        return out

    def to_internal(self, unit: np.ndarray) -> list[list[float]]:
        """Internal values of unit points, row by row."""
        return [
            [dist.from_unit(float(u)) for dist, u in zip(self.distributions, row, strict=True)]
            for row in unit
        ]

    def cell_edges(self, unit: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        """The unit-cube edges of the cells that snapped unit values of a discrete column
        belong to."""
        dist = self.distributions[column]
        half = 0.5 * self.step[column]
        internal = [dist.from_unit(float(u)) for u in unit]
        # to_unit maps the outer edges of the end cells to 0 and 1 (for log ints too: low >= 1)
        lo = np.array([dist.to_unit(x - half) for x in internal])
        hi = np.array([dist.to_unit(x + half) for x in internal])
        return lo, hi


class ParzenEstimator:
    """A mixture over observations (rows of unit-cube points) plus a prior component.

    Args:
        layout: The columns.
        points: ``(n, d)`` unit-cube observations.
        weights: ``(n,)`` positive weights of the observations.
        bandwidth: ``(d,)`` or ``(n, d)`` kernel standard deviations of numeric columns.
        prior_weight: The prior component's weight, relative to one observation of weight 1.
        categorical_smoothing: Mass an observation's categorical kernel spreads evenly over
            all choices (the rest goes to the observed choice).
    """

    def __init__(
        self,
        layout: SpaceLayout,
        points: np.ndarray,
        weights: np.ndarray,
        bandwidth: np.ndarray,
        *,
        prior_weight: float,
        categorical_smoothing: float,
    ) -> None:
        n, d = points.shape
        self._layout = layout
        prior = np.full((1, d), 0.5)
        self._mu = np.concatenate([points, prior]) if n else prior
        sigma = np.broadcast_to(bandwidth, (n, d)) if n else np.empty((0, d))
        self._sigma = np.concatenate([sigma, np.full((1, d), _PRIOR_SIGMA)])
        w = np.append(np.asarray(weights, dtype=float), prior_weight)
        self._log_w = np.log(w / w.sum())
        self._is_prior = np.zeros(n + 1, dtype=bool)
        self._is_prior[-1] = True
        self._smoothing = categorical_smoothing
        numeric = ~layout.is_categorical
        mu, sd = self._mu[:, numeric], self._sigma[:, numeric]
        # log of each truncated normal's mass inside [0, 1]
        self._log_z = np.log(np.maximum(ndtr((1 - mu) / sd) - ndtr(-mu / sd), _EPS))

    def sample(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """``n_samples`` unit points drawn from the mixture (discrete columns snapped)."""
        layout = self._layout
        k = rng.choice(len(self._log_w), size=n_samples, p=np.exp(self._log_w))
        out = np.empty((n_samples, layout.n_dims))
        numeric = np.flatnonzero(~layout.is_categorical)
        if numeric.size:
            mu, sd = self._mu[k][:, numeric], self._sigma[k][:, numeric]
            lo, hi = ndtr(-mu / sd), ndtr((1 - mu) / sd)
            u = rng.random(mu.shape)
            p = np.clip(lo + u * (hi - lo), _EPS, 1 - _EPS)
            out[:, numeric] = np.clip(mu + sd * ndtri(p), 0.0, 1.0)
        for j in np.flatnonzero(layout.is_categorical).tolist():
            n_choices = int(layout.n_choices[j])
            observed = layout.choice_index(self._mu[k, j], j)
            spread = rng.random(n_samples) < self._smoothing
            spread |= self._is_prior[k]
            choice = np.where(spread, rng.integers(0, n_choices, n_samples), observed)
            out[:, j] = (choice + 0.5) / n_choices
        return layout.snap(out)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (or mass, for discrete columns) of snapped unit points ``x``."""
        layout = self._layout
        total = np.broadcast_to(self._log_w, (len(x), len(self._log_w))).copy()
        numeric = np.flatnonzero(~layout.is_categorical)
        for pos, j in enumerate(numeric.tolist()):
            mu, sd, log_z = self._mu[:, j], self._sigma[:, j], self._log_z[:, pos]
            if layout.step[j] > 0:
                lo, hi = layout.cell_edges(x[:, j], j)
                a = (lo[:, None] - mu) / sd
                b = (hi[:, None] - mu) / sd
                total += _log_mass(a, b) - log_z
            else:
                z = (x[:, j, None] - mu) / sd
                total += -0.5 * z * z - 0.5 * math.log(2 * math.pi) - np.log(sd) - log_z
        for j in np.flatnonzero(layout.is_categorical).tolist():
            n_choices = int(layout.n_choices[j])
            cand = layout.choice_index(x[:, j], j)
            observed = layout.choice_index(self._mu[:, j], j)
            hit = cand[:, None] == observed[None, :]
            p_obs = 1 - self._smoothing + self._smoothing / n_choices
            p_other = self._smoothing / n_choices
            p = np.where(hit, p_obs, p_other)
            p[:, self._is_prior] = 1.0 / n_choices
            total += np.log(p)
        top = total.max(axis=1, keepdims=True)  # the prior component keeps it finite
        return np.asarray(top[:, 0] + np.log(np.exp(total - top).sum(axis=1)))


def _log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(Phi(b) - Phi(a))`` for ``a <= b``, accurate in both tails."""
    # In the upper tail use the mirror image: Phi(b) - Phi(a) = Phi(-a) - Phi(-b).
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi, log_lo = log_ndtr(hi), log_ndtr(lo)
    diff = np.clip(log_lo - log_hi, -np.inf, -_EPS)
    return np.asarray(log_hi + np.log1p(-np.exp(diff)))
