"""PED-ANOVA: importance from how the best trials' parameter values differ from all trials'.

Watanabe et al. (2023) show that for the indicator ``b(x) = 1[x is among the best gamma]``, the
main-effect variance of parameter ``d`` over a region (here: all trials) is
``gamma**2 * D_d``, where ``D_d`` is the Pearson divergence
``sum_x p_top(x)**2 / p_all(x) - 1`` between the 1-D density of the best trials' values of
``d`` and that of all trials. Each density is a Parzen estimate on the parameter's own scale;
only 1-D estimates are needed, so the cost is linear in the number of trials.

Conditional parameters (absent from trials of another branch) are measured inside the part of
the space where they exist: with ``A`` the trials that have ``d``, the best ``gamma`` share of
them (the top set within the branch) is compared with all of them, and the variance is weighted
by ``P(A)``, the share of all trials in ``A``: ``P(A) * gamma**2 * D_d|A``, the within-branch
term of the law of total variance. ``gamma`` is the same share in every column, the one the
top set has over all trials (a branch's top set counts its boundary trial in part, so the share
is exact even in a small branch): every parameter is measured against the same indicator. So a
parameter of a branch that never reaches the overall best still shows how much it matters
inside its branch. Whether a branch is taken at all is credited to the parameter that chooses
the branch, which sees it as its own values; the branch's own parameters are not charged with
it a second time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dltune.analysis._importance_columns import ParamColumn

__all__ = ["n_top_trials", "ped_anova_variances"]

# The densities are kernel sums evaluated on this many bins of the unit interval: fine enough
# that binning moves no point by more than the smallest bandwidth, small enough for one matmul.
_N_BINS = 128
_CENTERS = (np.arange(_N_BINS) + 0.5) / _N_BINS
_MIN_BANDWIDTH = 1.0 / 64
_MAX_BANDWIDTH = 0.5
# Pseudo-mass of a discrete parameter, spread evenly over its levels, so an unseen level is
# not impossible. A fixed total (not so much per level) keeps a few top trials from being
# swamped when the parameter has many levels.
_PSEUDO_MASS = 0.5
# The top set never has fewer than this many trials while half the trials are more.
_MIN_TOP = 5


def n_top_trials(n_trials: int, quantile: float) -> int:
    """How many of ``n_trials`` count as the best: the ``quantile`` share, but at least a few.

    Never all of them (from two trials on): a top set equal to the region tells nothing.

    Example:
        >>> n_top_trials(1000, 0.1), n_top_trials(20, 0.1), n_top_trials(2, 0.1)
        (100, 5, 1)
    """
    n_top = max(math.ceil(quantile * n_trials), min(_MIN_TOP, n_trials // 2), 1)
    return min(n_top, max(n_trials - 1, 1))


def ped_anova_variances(
    columns: Sequence[ParamColumn], order: npt.NDArray[np.int64], n_top: int
) -> dict[str, float]:
    """The main-effect variance of the top-set indicator explained by each column.

    Args:
        columns: The parameters over the trials (see :func:`param_columns`).
        order: The trials' indices, best first.
        n_top: How many of all the trials form the top set (see :func:`n_top_trials`); its
            share ``gamma = n_top / len(order)`` is the top share in every column.

    Returns:
        ``name -> P(A) * gamma**2 * D`` (see the module docstring); 0 for a column present
        in fewer than two trials.
    """
    n_trials = len(order)
    gamma = n_top / n_trials
    out: dict[str, float] = {}
    for column in columns:
        present = column.is_present
        ranked = order[present[order]]
        n_region = len(ranked)
        if n_region < 2:
            out[column.name] = 0.0
            continue
        # n_top * n_region / n_trials, exactly n_top when the column is set in every trial
        weights = _top_weights(n_top * n_region / n_trials)
        top = ranked[: weights.size]
        if column.codes is not None:
            divergence = _discrete_divergence(
                column.codes[top], weights, column.codes[ranked], column.n_levels
            )
        else:
            divergence = _kernel_divergence(column.values[top], weights, column.values[ranked])
        out[column.name] = (n_region / n_trials) * gamma**2 * divergence
    return out


def _top_weights(size: float) -> npt.NDArray[np.float64]:
    """Weights of the best trials of a region whose top set holds ``size`` trials: 1 for the
    whole ones, the fraction for the boundary trial.

    Example:
        >>> _top_weights(2.5).tolist(), _top_weights(3.0).tolist()
        ([1.0, 1.0, 0.5], [1.0, 1.0, 1.0])
    """
    whole = math.floor(size + 1e-9)
    part = size - whole
    weights = np.ones(whole + (1 if part > 1e-9 else 0))
    if part > 1e-9:
        weights[-1] = part
    return weights


def _pearson(p_top: npt.NDArray[np.float64], p_region: npt.NDArray[np.float64]) -> float:
    ratio = np.divide(p_top**2, p_region, out=np.zeros_like(p_top), where=p_region > 0)
    return max(float(ratio.sum()) - 1.0, 0.0)


def _discrete_divergence(
    top: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    region: npt.NDArray[np.int64],
    n_levels: int,
) -> float:
    def pmf(
        codes: npt.NDArray[np.int64], weights: npt.NDArray[np.float64] | None
    ) -> npt.NDArray[np.float64]:
        counts = np.bincount(codes, weights=weights, minlength=n_levels).astype(np.float64)
        counts += _PSEUDO_MASS / n_levels
        pmf: npt.NDArray[np.float64] = counts / counts.sum()
        return pmf

    return _pearson(pmf(top, weights), pmf(region, None))


def _bandwidth(
    top: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    region: npt.NDArray[np.float64],
) -> float:
    """Scott's rule on the best trials (weighted); one bandwidth serves both densities.

    The same kernel for both sets means that smoothing alone creates no divergence, and
    ``p_all >= (n_top / n_all) * p_top`` holds bin by bin, so the ratio stays bounded.
    """
    size = float(weights.sum())
    if top.size >= 2:
        mean = float(np.dot(weights, top)) / size
        spread = math.sqrt(float(np.dot(weights, (top - mean) ** 2)) / size)
    else:
        spread = float(np.std(region))
    width = 1.06 * spread * math.pow(size, -0.2)
    return min(max(width, _MIN_BANDWIDTH), _MAX_BANDWIDTH)


def _kernel_divergence(
    top: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    region: npt.NDArray[np.float64],
) -> float:
    width = _bandwidth(top, weights, region)
    # Each row is one bin's Gaussian kernel truncated to [0, 1] and renormalized there.
    kernel = np.exp(-0.5 * ((_CENTERS[:, None] - _CENTERS[None, :]) / width) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)

    def density(
        values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64] | None
    ) -> npt.NDArray[np.float64]:
        bins = np.minimum((values * _N_BINS).astype(np.int64), _N_BINS - 1)
        counts = np.bincount(bins, weights=weights, minlength=_N_BINS).astype(np.float64)
        mass: npt.NDArray[np.float64] = counts @ kernel / counts.sum()
        return mass

    return _pearson(density(top, weights), density(region, None))
