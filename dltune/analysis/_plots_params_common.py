"""What the parameter plots share: input checks, the parameter axes and the trial cap.

A parameter becomes an *axis*: numeric (its values on their own scale, ``log`` when every
distribution it was drawn from is log-scaled) or categorical (each value replaced by its
integer code, the position of the choice, with ``labels`` for the ticks). A trial that did not
use a conditional parameter has ``None`` there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import cast

import numpy as np

from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._record import check_param_names
from dltune.analysis._table import param_names
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

__all__ = [
    "MAX_PARAMS",
    "ParamAxis",
    "axis_json",
    "check_importance",
    "check_max_trials",
    "choose_params",
    "describe_param",
    "encode",
    "objective_axis",
    "spread",
]

#: How many parameters a plot shows when the caller does not name them.
MAX_PARAMS = 12


@dataclass(frozen=True, slots=True)
class ParamAxis:
    """How one parameter is laid out on a plot axis.

    Attributes:
        name: The parameter.
        is_categorical: Whether values are replaced by integer codes.
        log: Whether the numeric axis is log-scaled.
        low: The smallest value (distribution bounds and data), ``None`` when never seen.
        high: The largest value, ``None`` when never seen.
        choices: The categorical choices, in code order (empty for numeric axes).
    """

    name: str
    is_categorical: bool
    log: bool
    low: float | None
    high: float | None
    choices: tuple[Any, ...] = ()


def _key(value: Any) -> tuple[type, Any]:
    """A dictionary key under which ``True`` and ``1`` stay different choices."""
    return (type(value), value)


def _is_numeric(kinds: set[type]) -> bool:
    return all(issubclass(k, int | float) and not issubclass(k, bool) for k in kinds)


def describe_param(name: str, trials: Sequence[FrozenTrial]) -> ParamAxis:
    """The axis of ``name`` over ``trials`` (from their distributions, else their values).

    Example:
        >>> from dltune.trial import TrialState
        >>> t = FrozenTrial(0, 0, TrialState.COMPLETE, [1.0], {"opt": "sgd"})
        >>> describe_param("opt", [t]).choices
        ('sgd',)
    """
    # Whole-list passes only: per-trial function calls and ABC isinstance checks would cost
    # a large part of the 0.5 s budget on 10^5 (trial, parameter) pairs.
    values = [t.params[name] for t in trials if name in t.params]
    dists = {id(d): d for d in [t.distributions.get(name) for t in trials] if d is not None}
    kinds = {type(d) for d in dists.values()}
    categorical = {k for k in kinds if issubclass(k, CategoricalDistribution)}
    if categorical or not _is_numeric(set(map(type, values))):
        tuples = dict.fromkeys(
            cast(CategoricalDistribution, d).choices
            for d in dists.values()
            if type(d) in categorical
        )
        choices: dict[tuple[type, Any], Any] = {}
        for choice in [c for t in tuples for c in t] + values:
            choices.setdefault(_key(choice), choice)
        n = len(choices)
        return ParamAxis(name, True, False, 0.0, float(max(n - 1, 0)), tuple(choices.values()))
    numeric_kinds = {k for k in kinds if issubclass(k, FloatDistribution | IntDistribution)}
    numeric = [
        cast(FloatDistribution | IntDistribution, d)
        for d in dists.values()
        if type(d) in numeric_kinds
    ]
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    bounds = (
        [float(min(d.low for d in numeric)), float(max(d.high for d in numeric))]
        if numeric
        else []
    )
    if array.size:
        bounds += [float(array.min()), float(array.max())]
    low = min(bounds) if bounds else None
    high = max(bounds) if bounds else None
    log = bool(numeric) and all(d.log for d in numeric) and (low is None or low > 0)
    return ParamAxis(name, False, log, low, high)


def encode(axis: ParamAxis, trials: Sequence[FrozenTrial]) -> list[Any]:
    """Each trial's value on ``axis``: a number, a categorical code, or ``None`` when absent.

    Example:
        >>> from dltune.trial import TrialState
        >>> ts = [FrozenTrial(i, i, TrialState.COMPLETE, [1.0], p) for i, p in
        ...       enumerate([{"opt": "sgd"}, {"opt": "adam"}, {}])]
        >>> encode(describe_param("opt", ts), ts)
        [0, 1, None]
    """
    name = axis.name
    if axis.is_categorical:
        codes = {_key(choice): i for i, choice in enumerate(axis.choices)}
        return [codes[_key(t.params[name])] if name in t.params else None for t in trials]
    out: list[Any] = []
    for trial in trials:
        value = trial.params.get(name)
        if value is None or not math.isfinite(value):
            out.append(None)
        else:
            out.append(value if isinstance(value, int) else float(value))
    return out


def axis_json(axis: ParamAxis) -> dict[str, Any]:
    """The axis as a record holds it: ``name``, ``type``, ``log``, ``range``, ``labels``."""
    return {
        "name": axis.name,
        "type": "categorical" if axis.is_categorical else "numeric",
        "log": axis.log,
        "range": None if axis.low is None or axis.high is None else [axis.low, axis.high],
        "labels": [str(c) for c in axis.choices] if axis.is_categorical else None,
    }


def objective_axis(
    label: str, direction: StudyDirection, values: Sequence[float]
) -> dict[str, Any]:
    """The objective as an axis (same keys as :func:`axis_json`, plus ``direction``)."""
    return {
        "name": label,
        "type": "numeric",
        "log": False,
        "range": [min(values), max(values)] if values else None,
        "labels": None,
        "direction": direction.name.lower(),
    }


def check_max_trials(max_trials: Any) -> int:
    """``max_trials`` as an int >= 1.

    Raises:
        TypeError: If it is not an int.
        ValueError: If it is below 1.
    """
    if isinstance(max_trials, bool) or not isinstance(max_trials, int):
        raise TypeError(f"max_trials={max_trials!r} must be an int >= 1")
    if max_trials < 1:
        raise ValueError(f"max_trials={max_trials!r} must be >= 1")
    return max_trials


def check_importance(importance: Any, objective: int) -> ParamImportances | None:
    """``importance`` if it is ``None`` or a :class:`ParamImportances` of ``objective``.

    Raises:
        TypeError: If it is something else.
        ValueError: If it was computed for another objective.
    """
    if importance is None:
        return None
    if not isinstance(importance, ParamImportances):
        raise TypeError(
            f"importance={importance!r} must be a ParamImportances "
            "(from dltune.analysis.param_importances) or None"
        )
    if importance.objective != objective:
        raise ValueError(
            f"importance is for objective {importance.objective!r} but objective={objective!r}; "
            f"compute it with objective={objective!r}"
        )
    return importance


def choose_params(
    params: Any,
    trials: Sequence[FrozenTrial],
    shown: Sequence[FrozenTrial],
    importance: ParamImportances | None,
    limit: int = MAX_PARAMS,
) -> tuple[list[str], list[str]]:
    """The parameters to plot and the notes saying what was left out.

    ``params`` (checked against every parameter of ``trials``) wins; otherwise every parameter
    of the ``shown`` trials, most important first when ``importance`` is given (else in
    first-use order), at most ``limit`` of them.

    Raises:
        TypeError: If ``params`` is not a list of names.
        ValueError: If it is empty, repeats a name or names an unknown parameter.
    """
    known = param_names(trials)
    if params is not None:
        return check_param_names(params, known), []
    present = param_names(shown) or known
    if importance is not None:
        ranked = [p for p in importance.importances if p in present]
        present = ranked + [p for p in present if p not in importance.importances]
    if len(present) <= limit:
        return present, []
    order = "most important" if importance is not None else "first"
    note = (
        f"Showing the {order} {limit} of {len(present)} parameters; "
        "pass params=[...] to choose others."
    )
    return present[:limit], [note]


def spread(values: Sequence[float], max_n: int) -> np.ndarray:
    """Indices of at most ``max_n`` of ``values``, evenly spread over their ranking.

    Keeps the best and the worst and the shape of the value distribution; returns the indices
    in their original order.

    Example:
        >>> spread([5.0, 1.0, 4.0, 2.0, 3.0], 3).tolist()
        [0, 1, 4]
    """
    n = len(values)
    if n <= max_n:
        return np.arange(n)
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    ranks = np.unique(np.rint(np.linspace(0, n - 1, max_n)).astype(int))
    return np.sort(order[ranks])
