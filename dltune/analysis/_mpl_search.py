"""Matplotlib figures (for PNGs) of the "how the search went" records.

Each renderer builds a ``matplotlib.figure.Figure`` directly (never pyplot's global state), so
drawing is thread-safe and leaves no open figures; matplotlib is imported inside the functions.
User strings go through :func:`mpl_text` (a ``$`` is drawn as written, never as mathtext).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune.analysis._plots_search_common import BEST_COLOR
from dltune.analysis._plots_search_common import OUTCOME_COLORS
from dltune.analysis._plots_search_common import OUTCOME_NAMES
from dltune.analysis._plots_search_common import by_outcome
from dltune.analysis._plots_search_common import pick
from dltune.analysis._plots_search_mpl import new_figure
from dltune.analysis._plots_search_mpl import optimizers_png
from dltune.analysis._plots_search_mpl import pareto_png
from dltune.analysis._plots_search_mpl import show_empty
from dltune.analysis._plots_search_mpl import timeline_png
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import mpl_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MATPLOTLIB"]


def _history(record: PlotRecord) -> Figure:
    data = record.data
    figure = new_figure(record)
    ax = figure.axes[0]
    others = data["others"]
    if not data["number"] and not others["number"]:
        show_empty(ax, "No finished trials yet")
        return figure
    if data["number"]:
        color = OUTCOME_COLORS["complete"]
        ax.scatter(data["number"], data["value"], s=10, alpha=0.75, color=color, label="complete")
        ax.step(data["number"], data["best"], where="post", color=BEST_COLOR, label="best so far")
    for outcome, indices in by_outcome(others["outcome"]).items():
        color = OUTCOME_COLORS.get(outcome, "#777777")
        name = OUTCOME_NAMES.get(outcome, outcome)
        placed = [i for i in indices if others["value"][i] is not None]
        ticks = [i for i in indices if others["value"][i] is None]
        if placed:
            xs, ys = pick(others["number"], placed), pick(others["value"], placed)
            ax.scatter(xs, ys, s=12, marker="x", alpha=0.6, color=color, label=f"{name} (last)")
        if ticks:
            # x in data units, y in axes units: a rug along the bottom edge
            ax.plot(
                pick(others["number"], ticks),
                [0.015] * len(ticks),
                "|",
                markersize=9,
                color=color,
                transform=ax.get_xaxis_transform(),
                label=f"{name} (no value)",
            )
    ax.set_xlabel("trial number")
    ax.set_ylabel(mpl_text(data["label"]))
    ax.legend(fontsize=8, loc="best")
    return figure


def _runs(curve: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """The curve's pieces between missing (NaN/inf) values, as point lists."""
    runs: list[list[tuple[float, float]]] = [[]]
    for step, value in zip(curve["steps"], curve["values"], strict=True):
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((step, value))
    return [run for run in runs if run]


def _draw_curves(ax: Axes, curves: Sequence[dict[str, Any]], outcome: str) -> None:
    from matplotlib.collections import LineCollection

    color = OUTCOME_COLORS.get(outcome, "#777777")
    pieces = [run for curve in curves for run in _runs(curve)]
    alpha = 0.5 if outcome in ("pruned", "not_learning") else 0.85
    lines = LineCollection(pieces, colors=color, linewidths=0.8, alpha=alpha)
    lines.set_label(OUTCOME_NAMES.get(outcome, outcome))
    ax.add_collection(lines)
    ends = [run[-1] for run in pieces]
    # a dot at each piece's end shows one-point curves, which draw no line
    ax.scatter([e[0] for e in ends], [e[1] for e in ends], s=4, color=color, alpha=alpha)


def _learning_curves(record: PlotRecord) -> Figure:
    data = record.data
    curves = data["curves"]
    figure = new_figure(record)
    ax = figure.axes[0]
    if not curves:
        show_empty(ax, "No trial has reported values yet")
        return figure
    for outcome, indices in by_outcome([c["outcome"] for c in curves]).items():
        _draw_curves(ax, pick(curves, indices), outcome)
    for curve in curves:
        if curve["number"] == data["best_number"]:
            for k, run in enumerate(_runs(curve)):
                label = f"best (trial {curve['number']})" if k == 0 else None
                xs, ys = [p[0] for p in run], [p[1] for p in run]
                ax.plot(xs, ys, color=BEST_COLOR, linewidth=2.5, label=label, zorder=3)
    blown = [c for c in curves if c["blowup_step"] is not None and c["blowup_value"] is not None]
    if blown:
        xs, ys = [c["blowup_step"] for c in blown], [c["blowup_value"] for c in blown]
        color = OUTCOME_COLORS["diverged"]
        ax.scatter(xs, ys, marker="x", s=50, color=color, label="blew up (NaN/inf)", zorder=4)
    ax.autoscale_view()
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    ax.legend(fontsize=8, loc="best")
    return figure


#: The matplotlib renderer of each record kind of this module.
MATPLOTLIB: dict[str, Callable[[PlotRecord], Figure]] = {
    "history": _history,
    "learning_curves": _learning_curves,
    "optimizers": optimizers_png,
    "timeline": timeline_png,
    "pareto": pareto_png,
}
