"""The optimizer comparison record: the seed question "Adam vs RMSprop vs SGD"."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune.analysis._plots_search_common import direction_name
from dltune.analysis._plots_search_common import is_better
from dltune.analysis._plots_search_common import plural
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import check_objective
from dltune.analysis._record import objective_label
from dltune.analysis._record import unpack
from dltune.space import CategoricalDistribution
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import continued_numbers

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = ["categorical_params", "optimizer_comparison"]

#: The outcomes counted per choice (WAITING trials have not used a choice yet).
COUNTED = ("complete", "pruned", "diverged", "not_learning", "fail", "running")


def categorical_params(trials: Sequence[FrozenTrial]) -> dict[str, CategoricalDistribution]:
    """Every categorical parameter of the trials (first-use order) and its first distribution."""
    found: dict[str, CategoricalDistribution] = {}
    seen: set[str] = set()
    for trial in trials:
        if seen.issuperset(trial.distributions):
            continue  # the common case, and cheap: no isinstance per parameter
        for name, dist in trial.distributions.items():
            if name not in seen:
                seen.add(name)
                if isinstance(dist, CategoricalDistribution):
                    found[name] = dist
    return found


def _pick_param(param: Any, categorical: dict[str, CategoricalDistribution]) -> str:
    names = list(categorical)
    if param is None:
        if "optimizer" in categorical:
            return "optimizer"
        for name in names:
            if name.lower().endswith("optimizer"):
                return name
        raise ValueError(
            "param=None: no categorical parameter is named 'optimizer' or ends with "
            f"'optimizer'; pass param= one of the categorical parameters {names!r}"
        )
    if not isinstance(param, str):
        raise TypeError(f"param={param!r} must be a parameter name (a str), one of {names!r}")
    if param not in categorical:
        raise ValueError(
            f"param={param!r} is not a categorical parameter of this study; use one of {names!r}"
        )
    return param


def _label(choice: Any) -> str:
    return choice if isinstance(choice, str) else repr(choice)


def _new_group(label: str) -> dict[str, Any]:
    return {
        "choice": label,
        "values": [],
        "numbers": [],
        "best": None,
        "best_number": None,
        "counts": dict.fromkeys(COUNTED, 0),
    }


def optimizer_comparison(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    param: str | None = None,
    objective: int = 0,
) -> PlotRecord:
    """Per choice of a categorical parameter (the optimizer): best value, all values, outcomes.

    Data keys: ``param``, ``objective``, ``label``, ``direction``, ``choices``: one mapping per
    choice (the distribution's order, then choices seen only in trials) with ``choice`` (its
    label), ``values`` and ``numbers`` (the COMPLETE trials with a finite value that used it),
    ``best`` and ``best_number`` (respecting the direction; ``None`` if none completed) and
    ``counts`` (trials by outcome: ``complete``, ``pruned``, ``diverged``, ``not_learning``,
    ``fail``, ``running``).

    A paused trial that a later trial continues is counted once, through its continuation.

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        param: The categorical parameter to compare by; by default ``"optimizer"``, else the
            first one whose name ends with ``optimizer``.
        objective: Which objective's values to compare (an index into the directions).

    Raises:
        ValueError: If ``param`` is not a categorical parameter (or none can be found), or
            ``objective`` is out of range.
        TypeError: If ``param`` is not a str or ``objective`` not an int.

    Example:
        >>> import dltune
        >>> study = dltune.create_study()
        >>> for name, loss in [("sgd", 1.0), ("adam", 0.5), ("adam", 0.2)]:
        ...     study.enqueue_trial({"optimizer": name})
        ...     trial = study.ask()
        ...     _ = trial.suggest_categorical("optimizer", ["sgd", "adam"])
        ...     _ = study.tell(trial, loss)
        >>> [(c["choice"], c["best"]) for c in optimizer_comparison(study).data["choices"]]
        [('sgd', 1.0), ('adam', 0.2)]
    """
    trials, dirs = unpack(source, directions)
    check_objective(objective, dirs, "objective")
    categorical = categorical_params(trials)
    name = _pick_param(param, categorical)
    maximize = dirs[objective] == StudyDirection.MAXIMIZE
    groups = {repr(c): _new_group(_label(c)) for c in categorical[name].choices}
    continued = continued_numbers(trials)
    n_without = 0
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == TrialState.WAITING or trial.number in continued:
            continue
        if name not in trial.params:
            n_without += 1
            continue
        choice = trial.params[name]
        key = repr(choice)
        if key not in groups:
            groups[key] = _new_group(_label(choice))
        group, outcome = groups[key], trial.outcome
        group["counts"][outcome] = group["counts"].get(outcome, 0) + 1
        if trial.state != TrialState.COMPLETE or trial.values is None:
            continue
        value = float(trial.values[objective])
        if not math.isfinite(value):
            continue
        group["values"].append(value)
        group["numbers"].append(trial.number)
        if is_better(value, group["best"], maximize):
            group["best"], group["best_number"] = value, trial.number
    notes = []
    if n_without:
        notes.append(f"{plural(n_without, 'trial')} without {name!r} not counted.")
    if continued:
        notes.append(
            f"{plural(len(continued), 'paused trial')} counted once, through the trial "
            "that continued it."
        )
    data: dict[str, Any] = {
        "param": name,
        "objective": objective,
        "label": objective_label(dirs, objective),
        "direction": direction_name(dirs[objective]),
        "choices": list(groups.values()),
    }
    return PlotRecord("optimizers", f"Comparison by {name}", data, tuple(notes))
