"""PED-ANOVA: importance from how the best trials' parameter values differ from all trials'.

Watanabe et al. (2023) show that for the indicator ``b(x) = 1[x is among the best gamma]``, the
main-effect variance of parameter ``d`` over a region (here: all trials) is
``gamma**2 * D_d``, where ``D_d`` is the Pearson divergence
``sum_x p_top(x)**2 / p_all(x) - 1`` between the 1-D density of the best trials' values of
``d`` and that of all trials. Each density is a Parzen estimate on the parameter's own scale;
only 1-D estimates are needed, so the cost is linear in the number of trials.

Conditional parameters (absent from trials of another branch) are measured inside the part of
the space where they exist: with ``A`` the trials that have ``d``, the best ``gamma`` of them
(the top set within the branch) are compared with all of them, and the variance is weighted by
``P(A)``, the share of all trials in ``A``: ``P(A) * gamma**2 * D_d|A``, the within-branch
term of the law of total variance. So a parameter of a branch that never reaches the overall
best still shows how much it matters inside its branch. Whether a branch is taken at all is
credited to the parameter that chooses the branch, which sees it as its own values; the
branch's own parameters are not charged with it a second time.
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
# Pseudo-count per level of a discrete parameter, so an unseen level is not impossible.
_PSEUDO_COUNT = 0.5
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
    columns: Sequence[ParamColumn], order: npt.NDArray[np.int64], quantile: float
) -> dict[str, float]:
    """The main-effect variance of the top-set indicator explained by each column.

    Args:
        columns: The parameters over the trials (see :func:`param_columns`).
        order: The trials' indices, best first.
        quantile: The share of trials counted as the best (see :func:`n_top_trials`).

    Returns:
        ``name -> P(A) * gamma_A**2 * D`` (see the module docstring); 0 for a column present
        in fewer than two trials.
    """
    n_trials = len(order)
    out: dict[str, float] = {}
    for column in columns:
        present = column.is_present
        ranked = order[present[order]]
        n_region = len(ranked)
        if n_region < 2:
            out[column.name] = 0.0
            continue
        n_top = n_top_trials(n_region, quantile)
        top = ranked[:n_top]
        if column.codes is not None:
            divergence = _discrete_divergence(
                column.codes[top], column.codes[ranked], column.n_levels
            )
        else:
            divergence = _kernel_divergence(column.values[top], column.values[ranked])
        gamma = n_top / n_region
        out[column.name] = (n_region / n_trials) * gamma**2 * divergence
    return out


def _pearson(p_top: npt.NDArray[np.float64], p_region: npt.NDArray[np.float64]) -> float:
    ratio = np.divide(p_top**2, p_region, out=np.zeros_like(p_top), where=p_region > 0)
    return max(float(ratio.sum()) - 1.0, 0.0)


def _discrete_divergence(
    top: npt.NDArray[np.int64], region: npt.NDArray[np.int64], n_levels: int
) -> float:
    def pmf(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        counts = np.bincount(codes, minlength=n_levels).astype(np.float64) + _PSEUDO_COUNT
        pmf: npt.NDArray[np.float64] = counts / counts.sum()
        return pmf

    return _pearson(pmf(top), pmf(region))


def _bandwidth(top: npt.NDArray[np.float64], region: npt.NDArray[np.float64]) -> float:
    """Scott's rule on the best trials; one bandwidth serves both densities.

    The same kernel for both sets means that smoothing alone creates no divergence, and
    ``p_all >= (n_top / n_all) * p_top`` holds bin by bin, so the ratio stays bounded.
    """
    spread = float(np.std(top if top.size >= 2 else region))
    width = 1.06 * spread * math.pow(top.size, -0.2)
    return min(max(width, _MIN_BANDWIDTH), _MAX_BANDWIDTH)


def _kernel_divergence(top: npt.NDArray[np.float64], region: npt.NDArray[np.float64]) -> float:
    width = _bandwidth(top, region)
    # Each row is one bin's Gaussian kernel truncated to [0, 1] and renormalized there.
    kernel = np.exp(-0.5 * ((_CENTERS[:, None] - _CENTERS[None, :]) / width) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)

    def density(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        bins = np.minimum((values * _N_BINS).astype(np.int64), _N_BINS - 1)
        counts = np.bincount(bins, minlength=_N_BINS).astype(np.float64)
        mass: npt.NDArray[np.float64] = counts @ kernel
        return mass / values.size

    return _pearson(density(top), density(region))
