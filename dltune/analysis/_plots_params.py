"""Which parameters matter and where: parallel coordinates, slices, contour, importance.

Each builder computes a :class:`PlotRecord` of plain, JSON-ready data; ``_plotly_params`` and
``_mpl_params`` draw them. Only COMPLETE trials with a finite value of the chosen objective are
plotted. A parameter's axis (see ``_plots_params_common``) is numeric, on its own scale with
``log`` flagged, or categorical, with integer codes and ``labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._plots_params_common import ParamAxis
from dltune.analysis._plots_params_common import axis_json
from dltune.analysis._plots_params_common import check_importance
from dltune.analysis._plots_params_common import check_max_trials
from dltune.analysis._plots_params_common import choose_params
from dltune.analysis._plots_params_common import describe_param
from dltune.analysis._plots_params_common import encode
from dltune.analysis._plots_params_common import objective_axis
from dltune.analysis._plots_params_common import spread
from dltune.analysis._plots_params_surface import axis_grid
from dltune.analysis._plots_params_surface import bandwidth
from dltune.analysis._plots_params_surface import kernel_surface
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import check_objective
from dltune.analysis._record import finite_or_none
from dltune.analysis._record import objective_label
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = ["importance_chart", "param_contour", "param_slices", "parallel_coordinates"]

_METHOD_LABELS = {"ped_anova": "PED-ANOVA", "fanova": "fANOVA"}
_ABSENT_NOTE = (
    "Trials without a value for a parameter (a conditional parameter they did not use) are "
    "drawn at the 'absent' position below that parameter's axis."
)


def _shown(
    trials: list[FrozenTrial], objective: int, max_trials: int
) -> tuple[list[FrozenTrial], list[float], list[str]]:
    """The trials a plot draws, their objective values and notes on those left out."""
    shown = objective_values(trials, objective)
    notes = []
    if len(shown) < len(trials):
        notes.append(
            f"{len(trials) - len(shown)} of {len(trials)} trials have no finite value "
            "(running, pruned, failed or infinite) and are not shown."
        )
    if not shown:
        notes.append("No complete trial with a finite value yet.")
    # objective_values keeps only trials whose values exist, so indexing is safe.
    values = [float(t.values[objective]) for t in shown]  # type: ignore[index]
    keep = spread(values, max_trials)
    if len(keep) < len(shown):
        notes.append(
            f"Showing {len(keep)} of {len(shown)} trials, evenly spread over their ranking by "
            "value (best and worst included); pass max_trials= to show more."
        )
        shown, values = [shown[i] for i in keep], [values[i] for i in keep]
    return shown, values, notes


def _check_source(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None,
    objective: Any,
    importance: Any,
) -> tuple[list[FrozenTrial], list[StudyDirection], int, ParamImportances | None]:
    trials, dirs = unpack(source, directions)
    index = check_objective(objective, dirs)
    return trials, dirs, index, check_importance(importance, index)


def parallel_coordinates(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    params: Sequence[str] | None = None,
    objective: int = 0,
    max_trials: int = 2000,
    importance: ParamImportances | None = None,
) -> PlotRecord:
    """One vertical axis per parameter and one for the objective; one line per trial.

    Data: ``number`` (one per trial), ``params`` (one axis per parameter: ``name``, ``type``
    ``"numeric"``/``"categorical"``, ``log``, ``range``, ``labels`` and ``values``, one per
    trial: a number, a categorical code, or ``None`` when the trial did not use it) and
    ``objective`` (the same keys, plus ``direction``).

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        params: The parameters to show, in order; default all (at most 12), most important
            first when ``importance`` is given, else in first-use order.
        objective: Which objective (index into the directions).
        max_trials: Show at most this many trials, evenly spread over the ranking by value.
        importance: Importances of ``objective``, to order the default parameters.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``params`` names an unknown parameter or ``objective`` is out of range.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(i, i, TrialState.COMPLETE, [i], {"x": i}) for i in range(3)]
        >>> record = parallel_coordinates(trials, ["minimize"])
        >>> record.data["params"][0]["values"], record.data["objective"]["values"]
        ([0, 1, 2], [0.0, 1.0, 2.0])
    """
    max_trials = check_max_trials(max_trials)
    trials, dirs, k, importance = _check_source(source, directions, objective, importance)
    shown, values, notes = _shown(trials, k, max_trials)
    names, picked = choose_params(params, trials, shown, importance)
    axes = []
    for name in names:
        axis = describe_param(name, trials)
        axes.append({**axis_json(axis), "values": encode(axis, shown)})
    if any(v is None for axis in axes for v in axis["values"]):
        notes.append(_ABSENT_NOTE)
    target = objective_axis(objective_label(dirs, k), dirs[k], values)
    target["values"] = values
    data = {"number": [t.number for t in shown], "params": axes, "objective": target}
    return PlotRecord("parallel", "Parallel coordinates", data, tuple(notes + picked))


def param_slices(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    params: Sequence[str] | None = None,
    objective: int = 0,
    max_trials: int = 2000,
    importance: ParamImportances | None = None,
) -> PlotRecord:
    """The objective against each parameter on its own, one panel per parameter.

    Data: ``objective`` (``name``, ``direction``, ``range``) and ``panels``: per parameter its
    axis (``name``, ``type``, ``log``, ``range``, ``labels``) with ``x`` (values or codes),
    ``y`` (objective values) and ``number`` (trial numbers, for the colour), holding only the
    trials that used the parameter.

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        params: The parameters to show; default as in :func:`parallel_coordinates`.
        objective: Which objective (index into the directions).
        max_trials: Show at most this many trials, evenly spread over the ranking by value.
        importance: Importances of ``objective``, to order the default parameters.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``params`` names an unknown parameter or ``objective`` is out of range.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(i, i, TrialState.COMPLETE, [i], {"x": i}) for i in range(3)]
        >>> panel = param_slices(trials, ["minimize"]).data["panels"][0]
        >>> panel["x"], panel["y"], panel["number"]
        ([0, 1, 2], [0.0, 1.0, 2.0], [0, 1, 2])
    """
    max_trials = check_max_trials(max_trials)
    trials, dirs, k, importance = _check_source(source, directions, objective, importance)
    shown, values, notes = _shown(trials, k, max_trials)
    names, picked = choose_params(params, trials, shown, importance)
    panels = []
    has_absent = False
    for name in names:
        axis = describe_param(name, trials)
        codes = encode(axis, shown)
        used = [i for i, code in enumerate(codes) if code is not None]
        has_absent = has_absent or len(used) < len(codes)
        panel = axis_json(axis)
        panel["x"] = [codes[i] for i in used]
        panel["y"] = [values[i] for i in used]
        panel["number"] = [shown[i].number for i in used]
        panels.append(panel)
    if has_absent:
        notes.append("Each panel shows only the trials that used its parameter.")
    target = objective_axis(objective_label(dirs, k), dirs[k], values)
    data = {"objective": target, "panels": panels}
    return PlotRecord("slice", "Slice plot", data, tuple(notes + picked))


def _check_grid(grid: Any) -> int:
    if isinstance(grid, bool) or not isinstance(grid, int):
        raise TypeError(f"grid={grid!r} must be an int, the number of grid nodes per axis")
    if not 2 <= grid <= 500:
        raise ValueError(f"grid={grid!r} must be between 2 and 500 nodes per axis")
    return grid


def _contour_axes(
    params: Any,
    trials: list[FrozenTrial],
    shown: list[FrozenTrial],
    importance: ParamImportances | None,
) -> list[ParamAxis]:
    """The two axes of the contour: as named, else the two first (or most important)
    numeric parameters, filled up with categorical ones."""
    names, _ = choose_params(params, trials, shown, importance, limit=10**9)
    if params is not None and len(names) != 2:
        raise ValueError(f"params={names!r} must name exactly two parameters for a contour")
    if len(names) < 2:
        raise ValueError(f"a contour needs two parameters; the study has {names!r}")
    axes = []
    for name in names:
        axis = describe_param(name, trials)
        if not axis.is_categorical:
            axes.append(axis)
            if len(axes) == 2:
                return axes
    return (axes + [describe_param(n, trials) for n in names if n not in {a.name for a in axes}])[
        :2
    ]


def param_contour(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    params: Sequence[str] | None = None,
    objective: int = 0,
    grid: int = 40,
    max_trials: int = 2000,
    importance: ParamImportances | None = None,
) -> PlotRecord:
    """The objective over two parameters: a smoothed surface and the trials on it.

    The surface is a Gaussian-kernel-weighted average of the objective on the unit-scaled
    plane (log axes in log space; no smoothing across categorical choices); nodes with no
    trial near are ``None``.

    Data: ``objective`` (``name``, ``direction``, ``range``), ``x`` and ``y`` (axes: ``name``,
    ``type``, ``log``, ``range``, ``labels``), ``grid`` (``x`` and ``y`` node positions,
    ``z[y node][x node]``; ``None`` when no trial used both parameters), ``bandwidth`` (on
    the unit scale) and ``points`` (``x``, ``y``, ``value``, ``number`` of the trials).

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        params: The two parameters (x, then y); default the two most important numeric ones
            when ``importance`` is given, else the first two numeric ones (categorical ones
            when there are fewer numeric ones).
        objective: Which objective (index into the directions).
        grid: Grid nodes per numeric axis (a categorical axis has one per choice).
        max_trials: Draw at most this many trial points (the surface uses every trial).
        importance: Importances of ``objective``, to pick the default parameters.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If the study has fewer than two parameters, ``params`` does not name two
            known ones, ``objective`` is out of range or ``grid`` is not in 2..500.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(i, i, TrialState.COMPLETE, [i], {"x": i, "y": -i})
        ...           for i in range(3)]
        >>> record = param_contour(trials, ["minimize"], grid=3)
        >>> record.data["grid"]["x"], len(record.data["grid"]["z"])
        ([0.0, 1.0, 2.0], 3)
    """
    grid = _check_grid(grid)
    max_trials = check_max_trials(max_trials)
    trials, dirs, k, importance = _check_source(source, directions, objective, importance)
    shown, values, notes = _shown(trials, k, len(trials) + 1)
    axes = _contour_axes(params, trials, shown, importance)
    names = [axis.name for axis in axes]
    codes = [encode(axis, shown) for axis in axes]
    both = [i for i in range(len(shown)) if codes[0][i] is not None and codes[1][i] is not None]
    if len(both) < len(shown):
        notes.append(f"{len(shown) - len(both)} trials did not use both parameters.")
    target = objective_axis(objective_label(dirs, k), dirs[k], values)
    data: dict[str, Any] = {"objective": target, "x": axis_json(axes[0])}
    data["y"] = axis_json(axes[1])
    data["grid"], data["bandwidth"] = None, None
    z = np.array([values[i] for i in both], dtype=float)
    if both:
        width = bandwidth(len(both), grid)
        gx, gy = (
            axis_grid(axis, np.array([c[i] for i in both], dtype=float), grid, width)
            for axis, c in zip(axes, codes, strict=True)
        )
        surface = kernel_surface(gx, gy, z)
        for key, g in (("x", gx), ("y", gy)):
            data[key]["range"] = [float(g.nodes[0]), float(g.nodes[-1])]
        rows = [[finite_or_none(v) for v in row] for row in surface.tolist()]
        data["grid"] = {"x": gx.nodes.tolist(), "y": gy.nodes.tolist(), "z": rows}
        data["bandwidth"] = width
    keep = [both[i] for i in spread(z.tolist(), max_trials)]
    if len(keep) < len(both):
        notes.append(f"Drawing {len(keep)} of {len(both)} trial points; the surface uses all.")
    data["points"] = {
        "x": [codes[0][i] for i in keep],
        "y": [codes[1][i] for i in keep],
        "value": [values[i] for i in keep],
        "number": [shown[i].number for i in keep],
    }
    title = f"Contour of {target['name']} over {names[0]} and {names[1]}"
    return PlotRecord("contour", title, data, tuple(notes))


def importance_chart(importances: ParamImportances) -> PlotRecord:
    """A bar per parameter, the largest share first, with the method in the title.

    Data: ``method`` (``"ped_anova"``, ``"fanova"``), ``method_label`` (``"PED-ANOVA"``,
    ``"fANOVA"``), ``objective``, ``n_trials``, ``params`` and ``importances`` (the shares,
    in the same order, largest first).

    Raises:
        TypeError: If ``importances`` is not a :class:`ParamImportances`.

    Example:
        >>> result = ParamImportances("fanova", 0, {"wd": 0.25, "lr": 0.75}, 50)
        >>> record = importance_chart(result)
        >>> record.title, record.data["params"]
        ('Parameter importance (fANOVA) over 50 trials', ['lr', 'wd'])
    """
    if not isinstance(importances, ParamImportances):
        raise TypeError(
            f"importances={importances!r} must be a ParamImportances "
            "(from dltune.analysis.param_importances)"
        )
    ranked = sorted(importances.importances.items(), key=lambda item: -item[1])
    label = _METHOD_LABELS.get(importances.method, importances.method)
    title = f"Parameter importance ({label}) over {importances.n_trials} trials"
    if importances.objective != 0:
        title += f", objective {importances.objective}"
    notes = list(importances.notes)
    if not ranked:
        notes.append("No parameter to rank.")
    data = {
        "method": importances.method,
        "method_label": label,
        "objective": importances.objective,
        "n_trials": importances.n_trials,
        "params": [name for name, _ in ranked],
        "importances": [finite_or_none(share) for _, share in ranked],
    }
    return PlotRecord("importance", title, data, tuple(notes))
