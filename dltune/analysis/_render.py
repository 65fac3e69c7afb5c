"""Every plot of a study at once, and the two ways to draw a record (plotly, matplotlib).

The renderers per kind live next to their builders (``_plotly_search``, ``_mpl_params``, ...);
none imports a plotting library before it draws. This module only dispatches, so the report,
the dashboard and a notebook draw the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from dltune._imports import require
from dltune.analysis._importance import param_importances
from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._mpl_params import MATPLOTLIB as MPL_PARAMS
from dltune.analysis._mpl_search import MATPLOTLIB as MPL_SEARCH
from dltune.analysis._plotly_params import PLOTLY as PLOTLY_PARAMS
from dltune.analysis._plotly_search import PLOTLY as PLOTLY_SEARCH
from dltune.analysis._plots_params import importance_chart
from dltune.analysis._plots_params import parallel_coordinates
from dltune.analysis._plots_params import param_contour
from dltune.analysis._plots_params import param_slices
from dltune.analysis._plots_search import learning_curves
from dltune.analysis._plots_search import optimization_history
from dltune.analysis._plots_search import optimizer_comparison
from dltune.analysis._plots_search import pareto_front
from dltune.analysis._plots_search import timeline
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.analysis._table import param_names
from dltune.space import CategoricalDistribution
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dltune.study import Study

__all__ = ["plot_records", "save_png", "to_matplotlib", "to_plotly", "to_plotly_dict"]


_PLOTLY: dict[str, Callable[[PlotRecord], dict[str, Any]]] = {**PLOTLY_SEARCH, **PLOTLY_PARAMS}
_MATPLOTLIB: dict[str, Callable[[PlotRecord], Figure]] = {**MPL_SEARCH, **MPL_PARAMS}


def _renderer(table: dict[str, Any], record: PlotRecord) -> Any:
    if not isinstance(record, PlotRecord):
        raise TypeError(f"record={record!r} is not a PlotRecord; build one with dltune.analysis")
    try:
        return table[record.kind]
    except KeyError:
        raise ValueError(
            f"record.kind={record.kind!r} has no renderer; known kinds: {sorted(table)}"
        ) from None


def to_plotly_dict(record: PlotRecord) -> dict[str, Any]:
    """The plotly figure of ``record`` as a plain ``{"data": [...], "layout": {...}}`` mapping.

    Needs no plotly package: the dashboard sends it as JSON and plotly.js draws it.

    Raises:
        TypeError: If ``record`` is not a :class:`PlotRecord`.
        ValueError: If no renderer knows ``record.kind``.
    """
    figure: dict[str, Any] = _renderer(_PLOTLY, record)(record)
    return figure


def to_plotly(record: PlotRecord) -> Any:
    """The record as a ``plotly.graph_objects.Figure`` (for notebooks; needs ``dltune[plots]``).

    Raises:
        MissingDependencyError: If plotly is not installed.
    """
    go = require("plotly.graph_objects", extra="plots", feature="plotly figures")
    return go.Figure(to_plotly_dict(record))


def to_matplotlib(record: PlotRecord) -> Figure:
    """The record drawn as a matplotlib figure (for PNGs; needs ``dltune[plots]``).

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    require("matplotlib", extra="plots", feature="matplotlib figures")
    figure: Figure = _renderer(_MATPLOTLIB, record)(record)
    return figure


def save_png(record: PlotRecord, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw ``record`` with matplotlib into a PNG file at ``path`` and return the path."""
    require("matplotlib", extra="plots", feature="PNG plots")
    import matplotlib.pyplot as plt

    figure = to_matplotlib(record)
    try:
        figure.savefig(path, dpi=dpi)
    finally:
        plt.close(figure)
    return Path(path)


def plot_records(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    importance: ParamImportances | str | None = None,
) -> list[PlotRecord]:
    """Every plot that says something about this study, in reading order.

    History (one per objective), the Pareto front (several objectives), learning curves (when
    trials reported), the optimizer comparison (when a categorical ``optimizer`` parameter
    exists), importance, parallel coordinates, slices, a contour of the two most important
    numeric parameters, and the timeline per worker.

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        importance: Precomputed importances, or the method to compute them with
            (``"ped_anova"``, the default, or ``"fanova"``), or ``"none"`` to leave the
            importance chart out.

    Raises:
        ValueError: On an unknown importance method.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(seed=0)
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
        >>> [r.kind for r in plot_records(study)]
        ['history', 'importance', 'parallel', 'slice', 'timeline']
    """
    if isinstance(importance, str) and importance not in ("ped_anova", "fanova", "none"):
        raise ValueError(
            f"importance={importance!r} is not a method; use 'ped_anova', 'fanova' or 'none'"
        )
    trials, dirs = unpack(source, directions)
    records = [optimization_history(trials, dirs, objective=k) for k in range(len(dirs))]
    if len(dirs) > 1:
        records.append(pareto_front(trials, dirs))
    if any(t.intermediate_values for t in trials):
        records.append(learning_curves(trials, dirs))
    complete = objective_values(trials, 0)
    optimizer = _optimizer_param(complete)
    if optimizer is not None:
        records.append(optimizer_comparison(trials, dirs, param=optimizer))
    names = param_names(complete)
    if len(complete) >= 2 and names:
        found: ParamImportances | None = None
        if isinstance(importance, ParamImportances):
            found = importance
        elif importance != "none":
            found = param_importances(trials, dirs, method=importance or "ped_anova")
        if found is not None:
            records.append(importance_chart(found))
        records.append(parallel_coordinates(trials, dirs, importance=found))
        records.append(param_slices(trials, dirs))
        if len(_numeric_params(complete)) >= 2:
            records.append(param_contour(trials, dirs, importance=found))
    if trials:
        records.append(timeline(trials, dirs))
    return records


def _optimizer_param(trials: Sequence[FrozenTrial]) -> str | None:
    """The categorical parameter choosing the optimizer, if the study has one."""
    candidates = []
    for name in param_names(trials):
        dist = next(t.distributions[name] for t in trials if name in t.distributions)
        if isinstance(dist, CategoricalDistribution) and name.lower().endswith("optimizer"):
            candidates.append(name)
    return min(candidates, key=lambda n: (n.lower() != "optimizer", n), default=None)


def _numeric_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """The float and integer parameters that took more than one value."""
    out = []
    for name in param_names(trials):
        values = {t.params[name] for t in trials if name in t.params}
        dist = next(t.distributions[name] for t in trials if name in t.distributions)
        if not isinstance(dist, CategoricalDistribution) and len(values) > 1:
            out.append(name)
    return out
