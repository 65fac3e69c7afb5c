"""The contour plot's surface: the objective smoothed over a grid of two parameters.

A Gaussian-kernel-weighted average (Nadaraya-Watson) on the unit-scaled plane. Trials are first
binned onto the grid nodes, so the cost is one pass over the trials plus a few small matrix
products (the kernel is separable), whatever the number of trials. Across a categorical axis
nothing is smoothed: each choice keeps its own column. Nodes that no trial is near stay empty
(``NaN``) rather than showing an extrapolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dltune.analysis._plots_params_common import ParamAxis

__all__ = ["AxisGrid", "axis_grid", "bandwidth", "kernel_surface"]

#: The least kernel weight (in trials) a node needs to get a value.
MIN_WEIGHT = 0.05


@dataclass(frozen=True, slots=True)
class AxisGrid:
    """One axis of the grid.

    Attributes:
        nodes: The node positions in the parameter's own values (codes for categoricals).
        index: For each trial, the node it is binned to.
        kernel: ``kernel[i, j]``, the weight node ``j`` gives to a trial binned at node ``i``.
    """

    nodes: np.ndarray
    index: np.ndarray
    kernel: np.ndarray


def bandwidth(n_trials: int, grid: int) -> float:
    """The kernel width on the unit scale: narrower with more trials, never below one cell.

    Example:
        >>> round(bandwidth(64, 40), 3)
        0.125
    """
    return max(0.25 * math.pow(max(n_trials, 1), -1.0 / 6.0), 1.0 / (grid - 1))


def axis_grid(axis: ParamAxis, values: np.ndarray, grid: int, width: float) -> AxisGrid:
    """Bin ``values`` (numbers, or codes on a categorical axis) onto ``grid`` nodes.

    Example:
        >>> g = axis_grid(ParamAxis("x", False, False, 0.0, 1.0), np.array([0.0, 0.9]), 3, 0.5)
        >>> g.nodes.tolist(), g.index.tolist()
        ([0.0, 0.5, 1.0], [0, 2])
    """
    if axis.is_categorical:
        k = max(len(axis.choices), 1)
        return AxisGrid(np.arange(k, dtype=float), values.astype(int), np.eye(k))
    assert axis.low is not None and axis.high is not None  # values exist, so bounds do
    forward = np.log if axis.log else np.asarray
    lo, hi = (math.log(axis.low), math.log(axis.high)) if axis.log else (axis.low, axis.high)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    unit = (forward(values) - lo) / (hi - lo)
    nodes_unit = np.linspace(0.0, 1.0, grid)
    index = np.clip(np.rint(unit * (grid - 1)), 0, grid - 1).astype(int)
    gap = (nodes_unit[:, None] - nodes_unit[None, :]) / width
    nodes = lo + nodes_unit * (hi - lo)
    return AxisGrid(np.exp(nodes) if axis.log else nodes, index, np.exp(-0.5 * gap**2))


def kernel_surface(x: AxisGrid, y: AxisGrid, z: np.ndarray) -> np.ndarray:
    """The kernel-weighted mean of ``z`` at every node, ``[y node][x node]`` (NaN: no data near).

    Example:
        >>> axis = ParamAxis("x", True, False, 0.0, 1.0, ("a", "b"))
        >>> codes = np.array([0.0, 1.0])
        >>> g = axis_grid(axis, codes, 2, 0.1)
        >>> kernel_surface(g, g, np.array([1.0, 3.0])).tolist()
        [[1.0, nan], [nan, 3.0]]
    """
    nx, ny = len(x.nodes), len(y.nodes)
    flat = y.index * nx + x.index
    counts = np.bincount(flat, minlength=nx * ny).reshape(ny, nx).astype(float)
    sums = np.bincount(flat, weights=z, minlength=nx * ny).reshape(ny, nx)
    weight = y.kernel.T @ counts @ x.kernel
    total = y.kernel.T @ sums @ x.kernel
    out = np.full((ny, nx), np.nan)
    near = weight >= MIN_WEIGHT
    out[near] = total[near] / weight[near]
    return out
