"""Parameters of a set of trials as numeric columns, the common input of the importance methods.

A numeric parameter becomes its position on the unit interval through its distribution's
bounds (log scale for log distributions, the same map as ``BaseDistribution.to_unit``); a
categorical one becomes the index of its choice. A trial that lacks the parameter (it was not
suggested in that trial's branch of a conditional space) gets NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial

__all__ = ["ParamColumn", "param_columns"]

# A numeric parameter with at most this many grid values is also read as discrete levels:
# a kernel estimate would smear a few integers (layers, heads) into each other.
_MAX_GRID_LEVELS = 32
_MISSING = object()


@dataclass(frozen=True, slots=True)
class ParamColumn:
    """One parameter over a set of trials.

    Attributes:
        name: The parameter's name.
        values: One float per trial: the unit-interval position of a numeric value, the choice
            index of a categorical one, NaN where the trial lacks the parameter.
        codes: The level of each trial (``-1`` where absent) when the parameter is discrete (a
            categorical, or a numeric grid of at most 32 values), else ``None``.
        n_levels: How many levels ``codes`` counts (0 when continuous).
        is_categorical: Whether ``values`` holds choice indices rather than unit positions.
    """

    name: str
    values: npt.NDArray[np.float64]
    codes: npt.NDArray[np.int64] | None
    n_levels: int
    is_categorical: bool

    @property
    def is_present(self) -> npt.NDArray[np.bool_]:
        """Which trials have the parameter."""
        return ~np.isnan(self.values)

    @property
    def n_present(self) -> int:
        """How many trials have the parameter."""
        return int(np.count_nonzero(self.is_present))

    def varies(self) -> bool:
        """Whether the trials that have the parameter hold at least two different values."""
        present = self.values[self.is_present]
        return present.size >= 2 and bool(np.any(present != present[0]))


def param_columns(
    trials: Sequence[FrozenTrial], names: Sequence[str]
) -> tuple[list[ParamColumn], list[str]]:
    """The columns of ``names`` over ``trials``, and notes on parameters left out.

    A parameter whose trials used distributions of different kinds (a float in some, a choice
    in others, or log and linear scales) has no common scale and is left out with a note; so
    is one that no trial holds a distribution for (hand-made trials).
    Numeric ranges that changed between trials are merged into their union.

    Example:
        >>> from dltune.space import FloatDistribution
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> dist = {"x": FloatDistribution(0.0, 4.0)}
        >>> trials = [
        ...     FrozenTrial(i, i, TrialState.COMPLETE, [0.0], {"x": float(i)}, dist)
        ...     for i in (1, 3)
        ... ]
        >>> columns, notes = param_columns(trials, ["x"])
        >>> columns[0].values.tolist()
        [0.25, 0.75]
    """
    columns: list[ParamColumn] = []
    notes: list[str] = []
    for name in names:
        raw: list[Any] = []
        dists: dict[BaseDistribution, None] = {}
        last: BaseDistribution | None = None
        for trial in trials:
            value = trial.params.get(name, _MISSING)
            raw.append(value)
            dist = trial.distributions.get(name) if value is not _MISSING else None
            # Hashing a distribution per trial dominates the cost; most trials repeat the last.
            if dist is not None and dist is not last and dist != last:
                dists.setdefault(dist, None)
                last = dist
        if not dists:
            notes.append(
                f"parameter {name!r} left out: no trial holds its distribution, so it has no "
                "scale to measure on"
            )
            continue
        column = _column(name, raw, list(dists))
        if column is None:
            kinds = sorted({_kind(d) for d in dists})
            notes.append(
                f"parameter {name!r} left out: its trials used distributions of different "
                f"kinds ({', '.join(kinds)}), which share no scale"
            )
        else:
            columns.append(column)
    return columns, notes


def _kind(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "categorical"
    log = getattr(dist, "log", False)
    return f"{type(dist).__name__}{' (log)' if log else ''}"


def _column(name: str, raw: list[Any], dists: list[BaseDistribution]) -> ParamColumn | None:
    present = [v is not _MISSING for v in raw]
    if all(isinstance(d, CategoricalDistribution) for d in dists):
        return _categorical_column(name, raw, present, dists)
    numeric = [d for d in dists if isinstance(d, FloatDistribution | IntDistribution)]
    if len(numeric) != len(dists) or len({d.log for d in numeric}) != 1:
        return None
    return _numeric_column(name, raw, present, numeric)


def _choice_key(value: Any) -> tuple[str, Any]:
    # True == 1 in Python, but a choice of True and a choice of 1 are different choices.
    if isinstance(value, bool | str) or value is None:
        return type(value).__name__, value
    return "num", value


def _categorical_column(
    name: str, raw: list[Any], present: list[bool], dists: list[BaseDistribution]
) -> ParamColumn:
    index: dict[tuple[str, Any], int] = {}
    for dist in dists:
        assert isinstance(dist, CategoricalDistribution)
        for choice in dist.choices:
            index.setdefault(_choice_key(choice), len(index))
    codes = np.full(len(raw), -1, dtype=np.int64)
    for i, (value, has) in enumerate(zip(raw, present, strict=True)):
        if has:
            codes[i] = index.setdefault(_choice_key(value), len(index))
    values = np.where(codes >= 0, codes.astype(np.float64), np.nan)
    return ParamColumn(name, values, codes, len(index), is_categorical=True)


def _unit_bounds(dist: FloatDistribution | IntDistribution) -> tuple[float, float]:
    """The ends of the unit interval on the parameter's own (log) scale, half a step outside."""
    half = 0.0 if dist.step is None else 0.5 * dist.step
    if dist.log:
        return math.log(dist.low - half if isinstance(dist, IntDistribution) else dist.low), (
            math.log(dist.high + half if isinstance(dist, IntDistribution) else dist.high)
        )
    return dist.low - half, dist.high + half


def _grid_levels(dist: FloatDistribution | IntDistribution) -> int:
    if dist.step is None:
        return 0
    return int(round((dist.high - dist.low) / dist.step)) + 1


def _numeric_column(
    name: str,
    raw: list[Any],
    present: list[bool],
    dists: list[FloatDistribution | IntDistribution],
) -> ParamColumn:
    x = np.array([float(v) if has else np.nan for v, has in zip(raw, present, strict=True)])
    bounds = [_unit_bounds(d) for d in dists]
    lo = min(b[0] for b in bounds)
    hi = max(b[1] for b in bounds)
    scaled = np.log(np.where(x > 0, x, np.nan)) if dists[0].log else x
    if hi > lo:
        unit = np.clip((scaled - lo) / (hi - lo), 0.0, 1.0)
    else:
        unit = np.where(np.isnan(x), np.nan, 0.5)
    codes = None
    n_levels = _grid_levels(dists[0]) if len(dists) == 1 else 0
    if 2 <= n_levels <= _MAX_GRID_LEVELS:
        dist = dists[0]
        step = float(dist.step) if dist.step is not None else 1.0
        level = np.rint((np.nan_to_num(x, nan=dist.low) - dist.low) / step)
        codes = np.where(np.isnan(x), -1, np.clip(level, 0, n_levels - 1)).astype(np.int64)
    else:
        n_levels = 0
    return ParamColumn(name, unit, codes, n_levels, is_categorical=False)
