"""Plot records of how the search went: history, learning curves, optimizers, timeline, Pareto.

Each builder takes a study (or its trials and directions) and returns a :class:`PlotRecord` of
plain, JSON-ready data; ``_plotly_search`` and ``_mpl_search`` draw them. Nothing here imports a
plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune.analysis._plots_search_common import direction_name
from dltune.analysis._plots_search_common import epoch
from dltune.analysis._plots_search_common import is_better
from dltune.analysis._plots_search_common import last_value
from dltune.analysis._plots_search_common import plain_params
from dltune.analysis._plots_search_common import plural
from dltune.analysis._plots_search_common import value_of
from dltune.analysis._plots_search_curves import learning_curves
from dltune.analysis._plots_search_curves import timeline
from dltune.analysis._plots_search_optimizers import optimizer_comparison
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import check_objective
from dltune.analysis._record import objective_label
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import continued_numbers

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = [
    "learning_curves",
    "optimization_history",
    "optimizer_comparison",
    "pareto_front",
    "timeline",
]


def optimization_history(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    objective: int = 0,
) -> PlotRecord:
    """Each finished trial's value by trial number, with the best value so far.

    Data keys: ``objective``, ``label``, ``direction``; per COMPLETE trial with a finite value
    (by number) ``number``, ``value``, ``best`` (best so far, respecting the direction) and
    ``complete`` (epoch seconds or ``None``, to plot by time); ``best_number``; ``others``
    (the pruned, guard-stopped and failed trials: ``number``, ``outcome``, ``value`` (the
    last reported value, ``None`` if there is none or it is not finite) and ``complete``).
    A paused trial that a later trial continues is not among ``others``: the continuation
    carries its lineage (as in the learning curves and the optimizer comparison).

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        objective: Which objective to draw (an index into the directions).

    Raises:
        ValueError: If ``objective`` is out of range.
        TypeError: If ``objective`` is not an int.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> trials = [FrozenTrial(n, n, TrialState.COMPLETE, [v]) for n, v in enumerate([3, 1, 2])]
        >>> optimization_history(trials, ["minimize"]).data["best"]
        [3.0, 1.0, 1.0]
    """
    trials, dirs = unpack(source, directions)
    check_objective(objective, dirs, "objective")
    maximize = dirs[objective] == StudyDirection.MAXIMIZE
    numbers: list[int] = []
    values: list[float] = []
    best: list[float] = []
    complete: list[float | None] = []
    best_value = -math.inf if maximize else math.inf  # any finite value beats it
    best_number: int | None = None
    for trial in objective_values(trials, objective):
        value = value_of(trial, objective)
        if is_better(value, best_value, maximize):
            best_value, best_number = value, trial.number
        numbers.append(trial.number)
        values.append(value)
        best.append(best_value)
        complete.append(epoch(trial.datetime_complete))
    continued = continued_numbers(trials)
    ended = sorted(
        (t for t in trials if t.state in (TrialState.PRUNED, TrialState.FAIL)),
        key=lambda t: t.number,
    )
    n_ended = len(ended)
    ended = [t for t in ended if t.number not in continued]
    others = {
        "number": [t.number for t in ended],
        "outcome": [t.outcome for t in ended],
        "value": [last_value(t) for t in ended],
        "complete": [epoch(t.datetime_complete) for t in ended],
    }
    notes = []
    n_infinite = sum(
        1 for t in trials if t.state == TrialState.COMPLETE and t.values is not None
    ) - len(numbers)
    if n_infinite:
        notes.append(f"{plural(n_infinite, 'complete trial')} with an infinite value not drawn.")
    if not numbers:
        notes.append("No trial has completed yet.")
    if others["number"]:
        notes.append(
            "Pruned and failed trials are drawn at their last reported value, or as ticks "
            "along the bottom when they reported none."
        )
    if len(ended) < n_ended:
        notes.append(
            f"{plural(n_ended - len(ended), 'paused trial')} not drawn: the trial that "
            "continued each carries its lineage."
        )
    title = "Optimization history" + ("" if len(dirs) == 1 else f" of objective {objective}")
    data: dict[str, Any] = {
        "objective": objective,
        "label": objective_label(dirs, objective),
        "direction": direction_name(dirs[objective]),
        "number": numbers,
        "value": values,
        "best": best,
        "complete": complete,
        "best_number": best_number,
        "others": others,
    }
    return PlotRecord("history", title, data, tuple(notes))


def _check_pair(objectives: Any, directions: Sequence[StudyDirection]) -> tuple[int, int]:
    n = len(directions)
    if n < 2:
        raise ValueError(
            "pareto_front needs a multi-objective study; this study has 1 objective "
            "(draw optimization_history instead)"
        )
    if isinstance(objectives, str) or not isinstance(objectives, Sequence) or len(objectives) != 2:
        raise ValueError(
            f"objectives={objectives!r} must be two objective indices, e.g. (0, 1), in 0..{n - 1}"
        )
    first = check_objective(objectives[0], directions, "objectives[0]")
    second = check_objective(objectives[1], directions, "objectives[1]")
    if first == second:
        raise ValueError(
            f"objectives={objectives!r} names one objective twice; use two of 0..{n - 1}"
        )
    return first, second


def _front_mask(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """Which points no other point dominates, both coordinates to be minimized (O(n log n))."""
    order = sorted(range(len(xs)), key=lambda i: (xs[i], ys[i]))
    mask = [False] * len(xs)
    best_y = math.inf
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and xs[order[end]] == xs[order[start]]:
            end += 1
        group_min = ys[order[start]]  # the group is sorted by y
        if group_min < best_y:
            for i in order[start:end]:
                mask[i] = ys[i] == group_min
            best_y = group_min
        start = end
    return mask


def pareto_front(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    objectives: Sequence[int] = (0, 1),
) -> PlotRecord:
    """The COMPLETE trials of a multi-objective study on two objectives, and their front.

    Data keys: ``objectives`` (the two indices), ``x_label``, ``y_label``, ``directions``;
    per COMPLETE trial with finite values (by number) ``number``, ``x``, ``y`` and
    ``on_front`` (no other trial is at least as good on both and better on one);
    ``front`` (``number``, ``x``, ``y``, ``params`` of the front, sorted by ``x`` for a line).

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        objectives: The two objectives to draw, as indices into the directions.

    Raises:
        ValueError: If the study has one objective, or ``objectives`` are not two distinct
            valid indices.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> pts = [[1, 3], [2, 2], [3, 3]]
        >>> trials = [FrozenTrial(n, n, TrialState.COMPLETE, v) for n, v in enumerate(pts)]
        >>> pareto_front(trials, ["minimize", "minimize"]).data["on_front"]
        [True, True, False]
    """
    trials, dirs = unpack(source, directions)
    first, second = _check_pair(objectives, dirs)
    done: list[FrozenTrial] = []
    xs: list[float] = []
    ys: list[float] = []
    for trial in objective_values(trials, first):  # COMPLETE, finite on the first objective
        values = trial.values or []
        if second < len(values) and math.isfinite(values[second]):
            done.append(trial)
            xs.append(float(values[first]))
            ys.append(float(values[second]))
    sign_x = -1.0 if dirs[first] == StudyDirection.MAXIMIZE else 1.0
    sign_y = -1.0 if dirs[second] == StudyDirection.MAXIMIZE else 1.0
    mask = _front_mask([sign_x * x for x in xs], [sign_y * y for y in ys])
    front = sorted((i for i in range(len(done)) if mask[i]), key=lambda i: (xs[i], ys[i]))
    notes = []
    n_complete = sum(1 for t in trials if t.state == TrialState.COMPLETE)
    if n_complete > len(done):
        n_bad = n_complete - len(done)
        notes.append(f"{plural(n_bad, 'complete trial')} with an infinite value not drawn.")
    if len(dirs) > 2:
        notes.append(
            f"The front is over objectives {first} and {second} only; the study has "
            f"{len(dirs)}, so other trials may be Pareto-optimal on the rest."
        )
    if not done:
        notes.append("No trial has completed yet.")
    data: dict[str, Any] = {
        "objectives": [first, second],
        "x_label": objective_label(dirs, first),
        "y_label": objective_label(dirs, second),
        "directions": [direction_name(dirs[first]), direction_name(dirs[second])],
        "number": [t.number for t in done],
        "x": xs,
        "y": ys,
        "on_front": mask,
        "front": {
            "number": [done[i].number for i in front],
            "x": [xs[i] for i in front],
            "y": [ys[i] for i in front],
            "params": [plain_params(done[i]) for i in front],
        },
    }
    return PlotRecord("pareto", "Pareto front", data, tuple(notes))
