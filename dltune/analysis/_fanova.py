"""fANOVA: the main-effect variance fractions of a random forest fitted to the trials.

Functional ANOVA (Hutter et al., 2014) splits the variance of a function over a product space
into main effects and interactions. A regression tree is piecewise constant over boxes (its
leaves), so its marginal along one parameter, the average over all the others, is exact:

    f_d(x_d) = sum over leaves of  value * [x_d in the leaf's side d] * prod_{j != d} mu_j(side j)

where ``mu_j`` is the measure of parameter ``j``'s axis. ``f_d`` is constant between the
tree's thresholds on ``d``, so its variance is a finite sum. Each tree gives the fraction
``Var(f_d) / Var(f)``; the forest's estimate is the mean over its trees.

Encoding (scikit-learn trees split on numbers only):

- A numeric parameter is its unit-interval position, the axis uniform on ``[0, 1]``.
- A categorical parameter is one ordinal column of choice indices whose axis puts mass
  ``1/k`` on each choice. One-hot columns would not form a product space: the marginal over
  them would average over impossible rows (two choices at once, or none). Trees still isolate
  any single choice with two splits.
- A conditional parameter's absence is one more point on its axis, at ``-1`` (below every
  present value), with the mass of the trials that lack it. The tree may split on absence via
  the parameter or via the parent that chooses the branch, so the effect of taking a branch
  can be shared between the parent and the branch's parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dltune._imports import require
from dltune.analysis._importance_columns import ParamColumn

__all__ = ["fanova_variances"]

_ABSENT = -1.0
# Hutter et al.'s default share of the features each split may choose from.
_MAX_FEATURES = 0.7
# Leaves of two trials halve the trees (and the time) on large studies at no cost in accuracy;
# small studies need every split they can get.
_MIN_SAMPLES_LEAF = 2
_SMALL_STUDY = 64

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Axis:
    """The measure along one feature: a uniform part on ``[0, 1]`` plus point masses."""

    uniform_mass: float
    atoms: FloatArray
    atom_masses: FloatArray

    def measure(self, lo: FloatArray, hi: FloatArray) -> FloatArray:
        """The mass of each interval ``(lo, hi]`` (trees send ``x <= threshold`` left)."""
        mass: FloatArray = self.uniform_mass * (np.clip(hi, 0.0, 1.0) - np.clip(lo, 0.0, 1.0))
        if self.atoms.size:
            inside = (lo[:, None] < self.atoms) & (self.atoms <= hi[:, None])
            mass = mass + inside.astype(np.float64) @ self.atom_masses
        return mass

    def cells(self, thresholds: FloatArray) -> tuple[FloatArray, FloatArray]:
        """One point per piece on which a tree with these thresholds is constant, and its mass."""
        points = self.atoms
        masses = self.atom_masses
        if self.uniform_mass > 0:
            inner = thresholds[(thresholds > 0.0) & (thresholds < 1.0)]
            cuts = np.unique(np.concatenate([[0.0, 1.0], inner]))
            points = np.concatenate([points, 0.5 * (cuts[:-1] + cuts[1:])])
            masses = np.concatenate([masses, self.uniform_mass * np.diff(cuts)])
        order = np.argsort(points)
        return points[order], masses[order]


def _encode(columns: Sequence[ParamColumn]) -> tuple[FloatArray, list[_Axis]]:
    features = []
    axes = []
    for column in columns:
        present = column.is_present
        absent_mass = 1.0 - float(np.mean(present))
        features.append(np.where(present, column.values, _ABSENT))
        if column.is_categorical:
            atoms = np.arange(column.n_levels, dtype=np.float64)
            masses = np.full(column.n_levels, (1.0 - absent_mass) / column.n_levels)
            uniform_mass = 0.0
        else:
            atoms = masses = np.empty(0)
            uniform_mass = 1.0 - absent_mass
        if absent_mass > 0:
            atoms = np.concatenate([[_ABSENT], atoms])
            masses = np.concatenate([[absent_mass], masses])
        axes.append(_Axis(uniform_mass, atoms, masses))
    return np.column_stack(features), axes


def _leaf_boxes(tree: Any, n_features: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each leaf's box ``(lo, hi]`` per feature and its value, built level by level."""
    left = tree.children_left
    right = tree.children_right
    lo = np.full((tree.node_count, n_features), -np.inf)
    hi = np.full((tree.node_count, n_features), np.inf)
    frontier = np.array([0])
    while frontier.size:
        split = frontier[left[frontier] >= 0]
        if not split.size:
            break
        kids_l = left[split]
        kids_r = right[split]
        feature = tree.feature[split]
        threshold = tree.threshold[split]
        lo[kids_l] = lo[kids_r] = lo[split]
        hi[kids_l] = hi[kids_r] = hi[split]
        hi[kids_l, feature] = np.minimum(hi[kids_l, feature], threshold)
        lo[kids_r, feature] = np.maximum(lo[kids_r, feature], threshold)
        frontier = np.concatenate([kids_l, kids_r])
    leaves = left < 0
    return lo[leaves], hi[leaves], tree.value[leaves, 0, 0].astype(np.float64)


def _tree_fractions(tree: Any, axes: Sequence[_Axis]) -> FloatArray | None:
    """``Var(f_d) / Var(f)`` for each feature of one tree; ``None`` for a constant tree."""
    n_features = len(axes)
    lo, hi, value = _leaf_boxes(tree, n_features)
    mass = np.column_stack([axis.measure(lo[:, d], hi[:, d]) for d, axis in enumerate(axes)])
    leaf_mass = mass.prod(axis=1)
    mean = float(leaf_mass @ value)
    variance = float(leaf_mass @ (value - mean) ** 2)
    if variance <= 1e-12 * max(1.0, mean * mean):
        return None
    ones = np.ones((len(value), 1))
    before = np.cumprod(np.hstack([ones, mass[:, :-1]]), axis=1)
    after = np.cumprod(np.hstack([ones, mass[:, :0:-1]]), axis=1)[:, ::-1]
    others = before * after
    is_split = tree.children_left >= 0
    fractions = np.zeros(n_features)
    for d, axis in enumerate(axes):
        thresholds = tree.threshold[is_split & (tree.feature == d)]
        points, weights = axis.cells(thresholds)
        n_points = len(points)
        start = np.searchsorted(points, lo[:, d], side="right")
        stop = np.searchsorted(points, hi[:, d], side="right")
        contribution = value * others[:, d]
        steps = np.bincount(start, contribution, n_points + 1)
        steps -= np.bincount(stop, contribution, n_points + 1)
        marginal = np.cumsum(steps)[:n_points]
        fractions[d] = float(weights @ (marginal - mean) ** 2) / variance
    return fractions


def fanova_variances(
    columns: Sequence[ParamColumn],
    values: FloatArray,
    *,
    seed: int,
    n_trees: int,
    max_depth: int | None,
) -> tuple[dict[str, float], float]:
    """Fit a forest to ``values`` and return each column's mean main-effect variance fraction.

    Args:
        columns: The parameters over the trials (only ones that vary).
        values: The objective value of each trial.
        seed: Seeds the forest (bootstrap samples and feature choices).
        n_trees: How many trees.
        max_depth: Their depth limit (``None``: grow until leaves are small).

    Returns:
        ``name -> fraction`` and the sum of the fractions (how much of the forest's variance
        the main effects explain; the rest is interactions).

    Raises:
        MissingDependencyError: Without scikit-learn (``pip install 'dltune[importance]'``).
    """
    ensemble = require("sklearn.ensemble", extra="importance", feature="fANOVA importance")
    features, axes = _encode(columns)
    forest = ensemble.RandomForestRegressor(
        n_estimators=n_trees,
        max_depth=max_depth,
        min_samples_leaf=1 if len(values) < _SMALL_STUDY else _MIN_SAMPLES_LEAF,
        max_features=_MAX_FEATURES,
        random_state=seed,
        n_jobs=1,
    )
    forest.fit(features, values)
    per_tree = [_tree_fractions(est.tree_, axes) for est in forest.estimators_]
    kept = [f for f in per_tree if f is not None]
    if not kept:
        return {c.name: 0.0 for c in columns}, 0.0
    mean = np.mean(kept, axis=0)
    return {c.name: float(f) for c, f in zip(columns, mean, strict=True)}, float(mean.sum())
