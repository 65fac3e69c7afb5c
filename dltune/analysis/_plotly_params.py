"""Plotly drawings of the parameter records, as plain figure dicts (no plotly import).

Each function turns a record of ``_plots_params`` into ``{"data": [...], "layout": {...}}`` in
plotly's JSON figure format: the dashboard sends it to plotly.js as it is, and
``plotly.graph_objects.Figure(figure)`` takes it in a notebook. Colours: the best objective
values are bright (yellow) whatever the direction. Every user string (parameter names,
choices, titles) goes through :func:`plotly_text`, and none is written into a hover template;
the one exception is a ``parcoords`` tick label, which plotly.js writes as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dltune.analysis._plots_params_scale import axis_scale
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import plotly_text

__all__ = ["PLOTLY"]

_Figure = dict[str, Any]
_COLORS = "Viridis"
_SLICE_COLUMNS = 4


def _layout(record: PlotRecord, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": plotly_text(record.title)}, "template": "plotly_white", **extra}


def _empty(record: PlotRecord, message: str) -> _Figure:
    """A figure with no trace, saying why."""
    note = {"text": plotly_text(message), "showarrow": False, "xref": "paper", "yref": "paper"}
    hidden = {"visible": False}
    return {
        "data": [],
        "layout": _layout(
            record, annotations=[{**note, "x": 0.5, "y": 0.5}], xaxis=hidden, yaxis=hidden
        ),
    }


def _colour(objective: dict[str, Any], values: list[float], **extra: Any) -> dict[str, Any]:
    """Marker/line colour by objective value, the best end bright."""
    return {
        "color": values,
        "colorscale": _COLORS,
        "reversescale": objective["direction"] == "minimize",
        "showscale": True,
        "colorbar": {"title": {"text": plotly_text(objective["name"])}},
        **extra,
    }


def _best_last(values: list[float], direction: str) -> list[int]:
    """Row order that draws the best trials last (on top)."""
    sign = -1.0 if direction == "minimize" else 1.0
    return sorted(range(len(values)), key=lambda i: sign * values[i])


def parallel(record: PlotRecord) -> _Figure:
    """A ``parcoords`` trace: one dimension per parameter, then the objective.

    Log axes are drawn in log10 with ticks at the parameter's values; categorical axes show
    their labels; a trial without a conditional parameter sits at the ``absent`` tick below.
    """
    data = record.data
    target = data["objective"]
    if not data["number"]:
        return _empty(record, "No complete trial with a finite value yet.")
    order = _best_last(target["values"], target["direction"])
    dimensions = []
    for axis in [*data["params"], target]:
        scale = axis_scale(axis, axis["values"])
        dimensions.append(
            {
                "label": plotly_text(axis["name"]),
                "values": [scale.position(axis["values"][i]) for i in order],
                "range": [scale.low, scale.high],
                "tickvals": scale.tickvals,
                # parcoords writes tick labels as plain text (no markup, no entities)
                "ticktext": scale.ticktext,
            }
        )
    line = _colour(target, [target["values"][i] for i in order])
    trace = {"type": "parcoords", "dimensions": dimensions, "line": line}
    return {"data": [trace], "layout": _layout(record, margin={"l": 80, "r": 40})}


def _domains(n: int, gap: float) -> list[list[float]]:
    """``n`` equal, ``gap``-separated intervals covering [0, 1] in order."""
    width = (1.0 - (n - 1) * gap) / n
    return [[round(i * (width + gap), 6), round(i * (width + gap) + width, 6)] for i in range(n)]


def _category_axis(axis: dict[str, Any]) -> dict[str, Any]:
    """Axis settings that show a parameter's own scale: log, categorical labels, or linear."""
    if axis["type"] == "categorical":
        labels = axis["labels"]
        ticks = list(range(len(labels)))
        return {
            "tickmode": "array",
            "tickvals": ticks,
            "ticktext": [plotly_text(label) for label in labels],
            "range": [-0.5, len(labels) - 0.5],
        }
    return {"type": "log" if axis["log"] else "linear"}


def _slice_trace(i: int, panel: dict[str, Any], numbers: list[int]) -> dict[str, Any]:
    suffix = "" if i == 0 else str(i + 1)
    marker = {
        "color": panel["number"],
        "colorscale": "Blues",
        "cmin": min(numbers),
        "cmax": max(numbers),
        "showscale": i == 0,
        "size": 6,
        "colorbar": {"title": {"text": "trial"}},
    }
    shown = panel["x"]
    if panel["type"] == "categorical":
        labels = [plotly_text(label) for label in panel["labels"]]
        shown = [labels[code] for code in panel["x"]]
    return {
        "type": "scatter",
        "mode": "markers",
        "name": plotly_text(panel["name"]),
        "showlegend": False,
        "x": panel["x"],
        "y": panel["y"],
        "xaxis": f"x{suffix}",
        "yaxis": f"y{suffix}",
        "marker": marker,
        "customdata": [[n, s] for n, s in zip(panel["number"], shown, strict=True)],
        # The name comes from the trace, never formatted into the template.
        "hovertemplate": "trial %{customdata[0]}<br>%{fullData.name}=%{customdata[1]}"
        "<br>value=%{y}<extra></extra>",
    }


def slices(record: PlotRecord) -> _Figure:
    """One scatter subplot per parameter (up to four a row), coloured by trial number."""
    data = record.data
    panels = data["panels"]
    numbers = [n for panel in panels for n in panel["number"]]
    if not numbers:
        return _empty(record, "No complete trial with a finite value yet.")
    columns = min(len(panels), _SLICE_COLUMNS)
    rows = math.ceil(len(panels) / columns)
    x_domains, y_domains = _domains(columns, 0.05), _domains(rows, 0.12)[::-1]
    layout = _layout(record, height=120 + 280 * rows)
    traces = []
    for i, panel in enumerate(panels):
        suffix = "" if i == 0 else str(i + 1)
        row, column = divmod(i, columns)
        layout[f"xaxis{suffix}"] = {
            "domain": x_domains[column],
            "anchor": f"y{suffix}",
            "title": {"text": plotly_text(panel["name"])},
            **_category_axis(panel),
        }
        yaxis: dict[str, Any] = {"domain": y_domains[row], "anchor": f"x{suffix}"}
        if i > 0:
            yaxis["matches"] = "y"
        if column == 0:
            yaxis["title"] = {"text": plotly_text(data["objective"]["name"])}
        layout[f"yaxis{suffix}"] = yaxis
        traces.append(_slice_trace(i, panel, numbers))
    return {"data": traces, "layout": layout}


def contour(record: PlotRecord) -> _Figure:
    """The smoothed surface (a heatmap when an axis is categorical), the trials and the best."""
    data = record.data
    target, points, grid = data["objective"], data["points"], data["grid"]
    if grid is None:
        return _empty(record, "No trial with a finite value used both parameters yet.")
    categorical = "categorical" in (data["x"]["type"], data["y"]["type"])
    surface = {
        "type": "heatmap" if categorical else "contour",
        "x": grid["x"],
        "y": grid["y"],
        "z": grid["z"],
        "connectgaps": False,
        "hovertemplate": "%{x}, %{y}: %{z:.4g}<extra>surface</extra>",
        **{k: v for k, v in _colour(target, []).items() if k != "color"},
    }
    dots = {
        "type": "scatter",
        "mode": "markers",
        "name": "trials",
        "x": points["x"],
        "y": points["y"],
        "customdata": [[n, v] for n, v in zip(points["number"], points["value"], strict=True)],
        "hovertemplate": "trial %{customdata[0]}: %{customdata[1]:.4g}<extra></extra>",
        "marker": {"color": "white", "size": 5, "line": {"color": "black", "width": 0.6}},
    }
    best = _best_last(points["value"], target["direction"])[-1]
    star = {
        "type": "scatter",
        "mode": "markers",
        "name": f"best (trial {points['number'][best]})",
        "x": [points["x"][best]],
        "y": [points["y"][best]],
        "marker": {"color": "red", "size": 14, "symbol": "star"},
    }
    layout = _layout(
        record,
        xaxis={"title": {"text": plotly_text(data["x"]["name"])}, **_category_axis(data["x"])},
        yaxis={"title": {"text": plotly_text(data["y"]["name"])}, **_category_axis(data["y"])},
        legend={"orientation": "h", "y": -0.15},
    )
    return {"data": [surface, dots, star], "layout": layout}


def importance(record: PlotRecord) -> _Figure:
    """A horizontal bar per parameter, the most important on top."""
    data = record.data
    if not data["params"]:
        return _empty(record, "No parameter to rank.")
    shares = [0.0 if s is None else s for s in data["importances"]][::-1]
    bar = {
        "type": "bar",
        "orientation": "h",
        "x": shares,
        "y": [plotly_text(name) for name in data["params"][::-1]],
        "text": [f"{s:.1%}" for s in shares],
        "textposition": "auto",
        "marker": {"color": "#3b6ea8"},
        "hovertemplate": "%{y}: %{x:.1%}<extra></extra>",
    }
    layout = _layout(
        record,
        height=140 + 28 * len(shares),
        xaxis={
            "title": {"text": plotly_text(f"importance ({data['method_label']})")},
            "tickformat": ".0%",
        },
        yaxis={"automargin": True},
    )
    return {"data": [bar], "layout": layout}


#: The plotly drawing of each parameter record kind.
PLOTLY: dict[str, Callable[[PlotRecord], _Figure]] = {
    "parallel": parallel,
    "slice": slices,
    "contour": contour,
    "importance": importance,
}
