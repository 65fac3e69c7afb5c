"""Hyperparameter importance: which parameters explain an objective, by PED-ANOVA or fANOVA."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from dltune.analysis._fanova import fanova_variances
from dltune.analysis._importance_columns import ParamColumn
from dltune.analysis._importance_columns import param_columns
from dltune.analysis._importance_ped import n_top_trials
from dltune.analysis._importance_ped import ped_anova_variances
from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._record import check_objective
from dltune.analysis._record import check_param_names
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.analysis._table import param_names
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = ["IMPORTANCE_METHODS", "NO_IMPORTANCE", "param_importances"]

#: The importance methods :func:`param_importances` knows, the default first.
IMPORTANCE_METHODS = ("ped_anova", "fanova")
#: What ``importance=`` of :func:`~dltune.analysis.plot_records` (and of the report) takes to
#: leave importance out; not a method.
NO_IMPORTANCE = "none"


def param_importances(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    method: str = "ped_anova",
    objective: int = 0,
    params: Sequence[str] | None = None,
    seed: int = 0,
    quantile: float = 0.1,
    n_trees: int = 64,
    max_depth: int | None = 16,
) -> ParamImportances:
    """How much each parameter explains of one objective, as shares that sum to 1.

    ``"ped_anova"`` (the default; numpy only, linear in the trials) compares, per parameter,
    the density of the best ``quantile`` of the trials with that of all trials (Watanabe et
    al., 2023): a parameter whose best values cluster matters. ``"fanova"`` fits a random
    forest (scikit-learn) and splits its variance into each parameter's main effect (Hutter et
    al., 2014). Only COMPLETE trials with a finite value for ``objective`` count.

    Conditional parameters (absent from trials of another branch): PED-ANOVA measures one
    inside the trials that have it, weighted by how often it is set, and credits the choice of
    branch to the parameter that makes it; fANOVA reads absence as one more value of it.

    Args:
        source: A study, or a list of trials (then give ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        method: ``"ped_anova"`` or ``"fanova"``.
        objective: Which objective (index into the directions).
        params: Only these parameters (default: every parameter any trial used).
        seed: Seeds the fANOVA forest; PED-ANOVA is deterministic and ignores it.
        quantile: PED-ANOVA: the share of trials counted as the best (at least 5 trials while
            the study has 10 or more); a conditional parameter uses the same share of the
            trials that have it.
        n_trees: fANOVA: how many trees in the forest.
        max_depth: fANOVA: the trees' depth limit (``None``: unlimited).

    Returns:
        The shares, most important first. All are 0, with a note saying why, when fewer than
        two trials count or nothing varies; a parameter that never varies gets 0.

    Raises:
        ValueError: For an unknown ``method``, an ``objective`` out of range, unknown or no
            ``params``, or ``quantile``, ``n_trees`` or ``max_depth`` out of range.
        TypeError: For arguments of the wrong type (``params`` as one string, say).
        MissingDependencyError: For ``"fanova"`` without scikit-learn.

    Example:
        >>> from dltune.space import FloatDistribution
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> space = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
        >>> trials = [
        ...     FrozenTrial(
        ...         i, i, TrialState.COMPLETE, [i % 10], {"x": i % 10 / 10, "y": i % 7 / 7}, space
        ...     )
        ...     for i in range(50)
        ... ]
        >>> result = param_importances(trials, ["minimize"])
        >>> list(result.importances)
        ['x', 'y']
    """
    _check_options(method, seed, quantile, n_trees, max_depth)
    trials, study_directions = unpack(source, directions)
    check_objective(objective, study_directions)
    known = param_names(trials)
    names = known if params is None else check_param_names(params, known)
    usable = objective_values(trials, objective)
    notes = _left_out_trials(trials, len(usable), objective)
    if len(usable) < 2:
        notes.append(
            f"only {len(usable)} trial(s) are COMPLETE with a finite value {objective}; "
            "importance needs at least 2, so every share is 0"
        )
        return _result(method, objective, dict.fromkeys(names, 0.0), len(usable), notes)
    values = np.array([t.values[objective] for t in usable if t.values is not None])
    columns, column_notes = param_columns(usable, names)
    notes.extend(column_notes)
    varying = _varying(columns, notes)
    raw = dict.fromkeys(names, 0.0)
    if np.all(values == values[0]):
        notes.append(f"all {len(usable)} trials have the same value, so every share is 0")
        return _result(method, objective, raw, len(usable), notes)
    maximize = study_directions[objective] == StudyDirection.MAXIMIZE
    if varying and method == "ped_anova":
        raw.update(_ped_anova(varying, values, quantile, maximize, notes))
    elif varying:
        raw.update(_fanova(varying, values, seed, n_trees, max_depth, notes))
    if names and math.fsum(raw.values()) <= 0:
        notes.append("no parameter explains any of the variation, so every share is 0")
    return _result(method, objective, raw, len(usable), notes)


def _check_options(
    method: object, seed: object, quantile: object, n_trees: object, max_depth: object
) -> None:
    if not isinstance(method, str):
        raise TypeError(f"method={method!r} must be a str, one of {list(IMPORTANCE_METHODS)!r}")
    if method not in IMPORTANCE_METHODS:
        raise ValueError(
            f"method={method!r} is not an importance method; use one of "
            f"{list(IMPORTANCE_METHODS)!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed={seed!r} must be an int")
    if isinstance(quantile, bool) or not isinstance(quantile, int | float):
        raise TypeError(f"quantile={quantile!r} must be a float in (0, 1), e.g. 0.1")
    if not 0.0 < quantile < 1.0:
        raise ValueError(
            f"quantile={quantile!r} must be in (0, 1), the share of trials counted as the "
            "best, e.g. 0.1"
        )
    if isinstance(n_trees, bool) or not isinstance(n_trees, int):
        raise TypeError(f"n_trees={n_trees!r} must be an int, e.g. 64")
    if n_trees < 1:
        raise ValueError(f"n_trees={n_trees!r} must be at least 1, e.g. 64")
    if max_depth is None:
        return
    if isinstance(max_depth, bool) or not isinstance(max_depth, int):
        raise TypeError(f"max_depth={max_depth!r} must be an int or None, e.g. 16")
    if max_depth < 1:
        raise ValueError(f"max_depth={max_depth!r} must be at least 1 (or None), e.g. 16")


def _left_out_trials(trials: Sequence[FrozenTrial], n_usable: int, objective: int) -> list[str]:
    """One note on the trials that do not count, by why."""
    counts = Counter(t.state.name.lower() for t in trials if t.state != TrialState.COMPLETE)
    n_bad_value = sum(1 for t in trials if t.state == TrialState.COMPLETE) - n_usable
    parts = [f"{n} {state}" for state, n in sorted(counts.items())]
    if n_bad_value:
        parts.append(f"{n_bad_value} complete without a finite value {objective}")
    if not parts:
        return []
    return [f"left out {len(trials) - n_usable} trial(s): {', '.join(parts)}"]


def _varying(columns: list[ParamColumn], notes: list[str]) -> list[ParamColumn]:
    """The columns that vary; notes on the conditional ones and on those that never vary."""
    n_trials = len(columns[0].values) if columns else 0
    fixed = [c.name for c in columns if not c.varies()]
    if fixed:
        notes.append(f"share 0 for {fixed!r}: never varied over the trials used")
    varying = [c for c in columns if c.varies()]
    for column in varying:
        if column.n_present < n_trials:
            notes.append(
                f"{column.name!r} is conditional: set in {column.n_present} of {n_trials} trials"
            )
    return varying


def _ped_anova(
    columns: list[ParamColumn],
    values: npt.NDArray[np.float64],
    quantile: float,
    maximize: bool,
    notes: list[str],
) -> dict[str, float]:
    n_top = n_top_trials(len(values), quantile)
    order = np.argsort(-values if maximize else values, kind="stable")
    best = "highest" if maximize else "lowest"
    notes.append(
        f"PED-ANOVA: the {n_top} trials with the {best} values against all {len(values)}; "
        f"a conditional parameter compares the best {n_top / len(values):.1%} of the trials "
        "that have it (the same share) with all of them"
    )
    return ped_anova_variances(columns, order, n_top)


def _fanova(
    columns: list[ParamColumn],
    values: npt.NDArray[np.float64],
    seed: int,
    n_trees: int,
    max_depth: int | None,
    notes: list[str],
) -> dict[str, float]:
    raw, explained = fanova_variances(
        columns, values, seed=seed, n_trees=n_trees, max_depth=max_depth
    )
    notes.append(
        f"fANOVA over {n_trees} trees: main effects explain {explained:.0%} of the forest's "
        "variance; the rest (interactions) is left out of the shares"
    )
    return raw


def _result(
    method: str, objective: int, raw: dict[str, float], n_trials: int, notes: list[str]
) -> ParamImportances:
    total = math.fsum(raw.values())
    shares = {name: v / total if total > 0 else 0.0 for name, v in raw.items()}
    ordered = dict(sorted(shares.items(), key=lambda item: (-item[1], item[0])))
    return ParamImportances(method, objective, ordered, n_trials, tuple(notes))
