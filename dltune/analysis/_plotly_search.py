"""Plotly figures (as plain JSON-ready dicts) of the "how the search went" records.

No plotly import: the dashboard and the report send these dicts to plotly.js as JSON, and
``to_plotly`` wraps one in a ``plotly.graph_objects.Figure`` for notebooks. Each trace holds at
least one point; empty groups are left out. Above ``GL_THRESHOLD`` points a trace uses WebGL.
User strings (parameter names and values) reach plotly only through :func:`plotly_text`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from dltune.analysis._plots_search_common import BEST_COLOR
from dltune.analysis._plots_search_common import OUTCOME_COLORS
from dltune.analysis._plots_search_common import OUTCOME_NAMES
from dltune.analysis._plots_search_common import base_layout
from dltune.analysis._plots_search_common import by_outcome
from dltune.analysis._plots_search_common import empty_message
from dltune.analysis._plots_search_common import pick
from dltune.analysis._plots_search_common import scatter_type
from dltune.analysis._plots_search_plotly import optimizers_figure
from dltune.analysis._plots_search_plotly import pareto_figure
from dltune.analysis._plots_search_plotly import timeline_figure
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import plotly_text

__all__ = ["PLOTLY"]


def _history(record: PlotRecord) -> dict[str, Any]:
    data = record.data
    n = len(data["number"])
    kind = scatter_type(n)
    traces: list[dict[str, Any]] = []
    layout = base_layout(record, "trial number", data["label"])
    if n:
        text = [f"trial {number}" for number in data["number"]]
        traces.append(
            {
                "type": kind,
                "mode": "markers",
                "name": "complete",
                "legendgroup": "complete",
                "x": data["number"],
                "y": data["value"],
                "text": text,
                "hovertemplate": "%{text}<br>value %{y:.6g}<extra></extra>",
                "marker": {"color": OUTCOME_COLORS["complete"], "size": 6, "opacity": 0.75},
            }
        )
        traces.append(
            {
                "type": kind,
                "mode": "lines",
                "name": "best so far",
                "x": data["number"],
                "y": data["best"],
                "line": {"color": BEST_COLOR, "width": 2, "shape": "hv"},
                "hovertemplate": "best so far %{y:.6g}<extra></extra>",
            }
        )
    traces += _history_others(data["others"])
    if any(trace.get("yaxis") == "y2" for trace in traces):
        layout["yaxis2"] = {"overlaying": "y", "range": [0, 1], "visible": False}
    if not traces:
        empty_message(layout, "No finished trials yet")
    return {"data": traces, "layout": layout}


def _history_others(others: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Pruned/failed trials: at their last value, or as ticks along the bottom without one."""
    traces = []
    for outcome, indices in by_outcome(others["outcome"]).items():
        color = OUTCOME_COLORS.get(outcome, "#777777")
        name = plotly_text(OUTCOME_NAMES.get(outcome, outcome))
        placed = [i for i in indices if others["value"][i] is not None]
        ticks = [i for i in indices if others["value"][i] is None]
        if placed:
            traces.append(
                {
                    "type": scatter_type(len(placed)),
                    "mode": "markers",
                    "name": f"{name} (last reported)",
                    "legendgroup": outcome,
                    "x": pick(others["number"], placed),
                    "y": pick(others["value"], placed),
                    "text": [f"trial {others['number'][i]} ({name})" for i in placed],
                    "hovertemplate": "%{text}<br>last reported %{y:.6g}<extra></extra>",
                    "marker": {"color": color, "size": 6, "symbol": "x", "opacity": 0.6},
                }
            )
        if ticks:
            traces.append(
                {
                    "type": scatter_type(len(ticks)),
                    "mode": "markers",
                    "name": f"{name} (no value)",
                    "legendgroup": outcome,
                    "x": pick(others["number"], ticks),
                    "y": [0.02] * len(ticks),
                    "yaxis": "y2",
                    "text": [f"trial {others['number'][i]} ({name})" for i in ticks],
                    "hovertemplate": "%{text}<extra></extra>",
                    "marker": {"color": color, "size": 10, "symbol": "line-ns-open"},
                }
            )
    return traces


def _params_text(params: dict[str, Any]) -> str:
    """The first 12 params as hover lines (escaped: names and values are the user's)."""
    shown = list(params.items())[:12]
    text = "<br>".join(f"{plotly_text(name)}={plotly_text(repr(value))}" for name, value in shown)
    return text + ("<br>..." if len(params) > len(shown) else "")


def _curve_lines(curves: Sequence[dict[str, Any]], outcome: str) -> dict[str, Any]:
    """All curves of one outcome as one trace, separated by gaps (fast to draw)."""
    name = plotly_text(OUTCOME_NAMES.get(outcome, outcome))
    xs: list[Any] = []
    ys: list[Any] = []
    text: list[str] = []
    for curve in curves:
        xs += [*curve["steps"], None]
        ys += [*curve["values"], None]
        text += [f"trial {curve['number']} ({name})"] * len(curve["steps"]) + [""]
    return {
        "type": scatter_type(len(xs)),
        "mode": "lines",
        "name": name,
        "legendgroup": outcome,
        "x": xs,
        "y": ys,
        "text": text,
        "hovertemplate": "%{text}<br>step %{x}<br>value %{y:.6g}<extra></extra>",
        "line": {"color": OUTCOME_COLORS.get(outcome, "#777777"), "width": 1},
        "opacity": 0.55 if outcome in ("pruned", "not_learning") else 0.85,
    }


def _curve_ends(curves: Sequence[dict[str, Any]], outcome: str) -> dict[str, Any] | None:
    """A marker at each curve's last finite point whose hover shows the trial's params."""
    points = []
    for curve in curves:
        last = [
            (s, v) for s, v in zip(curve["steps"], curve["values"], strict=True) if v is not None
        ]
        if last:
            points.append((*last[-1], curve))
    if not points:
        return None
    name = plotly_text(OUTCOME_NAMES.get(outcome, outcome))
    return {
        "type": scatter_type(len(points)),
        "mode": "markers",
        "name": f"{name} (end)",
        "legendgroup": outcome,
        "showlegend": False,
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "text": [
            f"trial {c['number']} ({name})<br>{_params_text(c['params'])}" for *_, c in points
        ],
        "hovertemplate": "%{text}<br>step %{x}: %{y:.6g}<extra></extra>",
        "marker": {"color": OUTCOME_COLORS.get(outcome, "#777777"), "size": 5},
    }


def _learning_curves(record: PlotRecord) -> dict[str, Any]:
    data = record.data
    curves = data["curves"]
    layout = base_layout(record, "step", "reported value")
    traces: list[dict[str, Any]] = []
    for outcome, indices in by_outcome([c["outcome"] for c in curves]).items():
        group = pick(curves, indices)
        traces.append(_curve_lines(group, outcome))
        ends = _curve_ends(group, outcome)
        if ends is not None:
            traces.append(ends)
    best = [c for c in curves if c["number"] == data["best_number"]]
    if best:
        traces.append(
            {
                **_curve_lines(best, "complete"),
                "name": f"best (trial {best[0]['number']})",
                "legendgroup": "best",
                "line": {"color": BEST_COLOR, "width": 3},
                "opacity": 1.0,
            }
        )
    blown = [c for c in curves if c["blowup_step"] is not None and c["blowup_value"] is not None]
    if blown:
        traces.append(
            {
                "type": scatter_type(len(blown)),
                "mode": "markers",
                "name": "blew up (NaN/inf)",
                "x": [c["blowup_step"] for c in blown],
                "y": [c["blowup_value"] for c in blown],
                "text": [f"trial {c['number']} blew up at step {c['blowup_step']}" for c in blown],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": OUTCOME_COLORS["diverged"], "symbol": "x", "size": 10},
            }
        )
    if not traces:
        empty_message(layout, "No trial has reported values yet")
    return {"data": traces, "layout": layout}


#: The plotly renderer of each record kind of this module.
PLOTLY: dict[str, Callable[[PlotRecord], dict[str, Any]]] = {
    "history": _history,
    "learning_curves": _learning_curves,
    "optimizers": optimizers_figure,
    "timeline": timeline_figure,
    "pareto": pareto_figure,
}
