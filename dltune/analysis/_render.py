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
from dltune.analysis._importance import IMPORTANCE_METHODS
from dltune.analysis._importance import NO_IMPORTANCE
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
from dltune.analysis._plots_params_common import describe_param
from dltune.analysis._plots_search import learning_curves
from dltune.analysis._plots_search import optimization_history
from dltune.analysis._plots_search import optimizer_comparison
from dltune.analysis._plots_search import pareto_front
from dltune.analysis._plots_search import timeline
from dltune.analysis._plots_search_optimizers import categorical_params
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.analysis._table import param_names
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

    Needs no plotly package: the dashboard sends it as JSON and plotly.js draws it. User
    strings in it (parameter names, choices) are escaped for plotly's text markup.

    Args:
        record: A plot record, from :func:`plot_records` or one of the builders.

    Returns:
        The figure in plotly's JSON format (JSON-ready: no NaN, no infinities).

    Raises:
        TypeError: If ``record`` is not a :class:`PlotRecord`.
        ValueError: If no renderer knows ``record.kind``.

    Example:
        >>> from dltune.analysis import optimization_history
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> trials = [FrozenTrial(n, n, TrialState.COMPLETE, [v]) for n, v in enumerate([3, 1])]
        >>> figure = to_plotly_dict(optimization_history(trials, ["minimize"]))
        >>> [trace["name"] for trace in figure["data"]]
        ['complete', 'best so far']
    """
    figure: dict[str, Any] = _renderer(_PLOTLY, record)(record)
    return figure


def to_plotly(record: PlotRecord) -> Any:
    """The record as a ``plotly.graph_objects.Figure``, for notebooks (needs ``dltune[plots]``).

    Args:
        record: A plot record, from :func:`plot_records` or one of the builders.

    Returns:
        A new ``plotly.graph_objects.Figure`` of :func:`to_plotly_dict`'s mapping.

    Raises:
        MissingDependencyError: If plotly is not installed.
        TypeError: If ``record`` is not a :class:`PlotRecord`.
        ValueError: If no renderer knows ``record.kind``.

    Example:
        >>> from dltune.analysis import optimization_history
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> trials = [FrozenTrial(0, 0, TrialState.COMPLETE, [1.0])]
        >>> to_plotly(optimization_history(trials, ["minimize"])).data[0].type
        'scatter'
    """
    go = require("plotly.graph_objects", extra="plots", feature="plotly figures")
    return go.Figure(to_plotly_dict(record))


def to_matplotlib(record: PlotRecord) -> Figure:
    """The record drawn as a matplotlib figure, for PNGs (needs ``dltune[plots]``).

    The figure is a plain ``matplotlib.figure.Figure``, not registered with pyplot: nothing
    to close, safe in threads and servers. A ``$`` in user strings is drawn as written.

    Args:
        record: A plot record, from :func:`plot_records` or one of the builders.

    Returns:
        A new figure.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
        TypeError: If ``record`` is not a :class:`PlotRecord`.
        ValueError: If no renderer knows ``record.kind``.

    Example:
        >>> from dltune.analysis import optimization_history
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> trials = [FrozenTrial(0, 0, TrialState.COMPLETE, [1.0])]
        >>> figure = to_matplotlib(optimization_history(trials, ["minimize"]))
        >>> figure.axes[0].get_xlabel()
        'trial number'
    """
    require("matplotlib", extra="plots", feature="matplotlib figures")
    figure: Figure = _renderer(_MATPLOTLIB, record)(record)
    return figure


def save_png(record: PlotRecord, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw ``record`` with matplotlib into a PNG file at ``path``.

    Args:
        record: A plot record, from :func:`plot_records` or one of the builders.
        path: The file to write (replaced if it exists; its folder must exist).
        dpi: Dots per inch of the image.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
        TypeError: If ``record`` is not a :class:`PlotRecord`.
        ValueError: If no renderer knows ``record.kind``.

    Example:
        >>> import tempfile
        >>> from dltune.analysis import optimization_history
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> record = optimization_history([FrozenTrial(0, 0, TrialState.COMPLETE, [1.0])],
        ...                               ["minimize"])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_png(record, Path(folder) / "history.png").read_bytes()[1:4]
        b'PNG'
    """
    require("matplotlib", extra="plots", feature="PNG plots")
    # A Figure made directly (not through pyplot) is freed with its last reference.
    to_matplotlib(record).savefig(path, dpi=dpi)
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
        importance: Precomputed importances (of the first objective); or the method to
            compute them with, one of :data:`IMPORTANCE_METHODS`; or ``"none"``
            (:data:`NO_IMPORTANCE`) to leave the importance chart out; ``None`` (the
            default) computes them with :func:`param_importances`' default method,
            ``"ped_anova"``.

    Returns:
        The records, ready for :func:`to_plotly_dict` or :func:`to_matplotlib`.

    Raises:
        TypeError: If ``importance`` is neither importances, a str nor ``None``.
        ValueError: If ``importance`` is a str that names no method.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(seed=0)
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
        >>> [r.kind for r in plot_records(study)]
        ['history', 'importance', 'parallel', 'slice', 'timeline']
    """
    _check_importance(importance)
    trials, dirs = unpack(source, directions)
    records = [optimization_history(trials, dirs, objective=k) for k in range(len(dirs))]
    if len(dirs) > 1:
        records.append(pareto_front(trials, dirs))
    if any(t.intermediate_values for t in trials):
        records.append(learning_curves(trials, dirs))
    complete = objective_values(trials, 0)
    optimizer = _optimizer_param(complete, trials)
    if optimizer is not None:
        records.append(optimizer_comparison(trials, dirs, param=optimizer))
    names = param_names(complete)
    if len(complete) >= 2 and names:
        found: ParamImportances | None = None
        if isinstance(importance, ParamImportances):
            found = importance
        elif importance is None:
            found = param_importances(trials, dirs)
        elif importance != NO_IMPORTANCE:
            found = param_importances(trials, dirs, method=importance)
        if found is not None:
            records.append(importance_chart(found))
        records.append(parallel_coordinates(trials, dirs, importance=found))
        records.append(param_slices(trials, dirs))
        if len(_numeric_params(complete)) >= 2:
            records.append(param_contour(trials, dirs, importance=found))
    if trials:
        records.append(timeline(trials, dirs))
    return records


def _check_importance(importance: object) -> None:
    choices = [*IMPORTANCE_METHODS, NO_IMPORTANCE]
    if importance is None or isinstance(importance, ParamImportances):
        return
    if not isinstance(importance, str):
        raise TypeError(
            f"importance={importance!r} must be a ParamImportances, a method name (one of "
            f"{choices!r}) or None for the default method"
        )
    if importance not in choices:
        raise ValueError(
            f"importance={importance!r} is not a method; use one of {choices!r}, or None for "
            "the default method"
        )


def _optimizer_param(complete: Sequence[FrozenTrial], trials: Sequence[FrozenTrial]) -> str | None:
    """The categorical parameter of the ``complete`` trials that chooses the optimizer, if any.

    Categorical means: a categorical distribution in the trials, as
    :func:`optimizer_comparison` needs; a parameter without one (hand-made trials) is not.
    """
    categorical = categorical_params(trials)
    candidates = [
        name
        for name in param_names(complete)
        if name in categorical and name.lower().endswith("optimizer")
    ]
    return min(candidates, key=lambda n: (n.lower() != "optimizer", n), default=None)


def _numeric_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """The parameters drawn on a numeric axis (see :func:`describe_param`) that took more than
    one value; a parameter without a distribution is typed by its values."""
    out = []
    for name in param_names(trials):
        values = {t.params[name] for t in trials if name in t.params}
        if len(values) > 1 and not describe_param(name, trials).is_categorical:
            out.append(name)
    return out
