"""Plotly figure dicts of the optimizer comparison, timeline and Pareto records (no plotly import).

``_plotly_search.PLOTLY`` is the table users of these go through. Choices, parameter names and
worker names are the user's: they reach plotly only through :func:`plotly_text`, and the same
escaped string serves as a category value, its tick and its trace name.
"""

from __future__ import annotations

from typing import Any

from dltune.analysis._plots_search_common import BEST_COLOR
from dltune.analysis._plots_search_common import GL_THRESHOLD
from dltune.analysis._plots_search_common import OUTCOME_COLORS
from dltune.analysis._plots_search_common import OUTCOME_NAMES
from dltune.analysis._plots_search_common import base_layout
from dltune.analysis._plots_search_common import by_outcome
from dltune.analysis._plots_search_common import empty_message
from dltune.analysis._plots_search_common import pick
from dltune.analysis._plots_search_common import scatter_type
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import plotly_text

__all__ = ["optimizers_figure", "pareto_figure", "timeline_figure"]

#: Colours of the choices (distinct from the outcome colours where it matters).
CHOICE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def optimizers_figure(record: PlotRecord) -> dict[str, Any]:
    """Box (and points) of the values per choice, its best marked; outcome counts beside."""
    data = record.data
    choices = data["choices"]
    labels = [plotly_text(c["choice"]) for c in choices]
    n_points = sum(len(c["values"]) for c in choices)
    traces: list[dict[str, Any]] = []
    for k, choice in enumerate(choices):
        if not choice["values"]:
            continue
        traces.append(
            {
                "type": "box",
                "name": labels[k],
                "x": [labels[k]] * len(choice["values"]),
                "y": choice["values"],
                "text": [f"trial {n}" for n in choice["numbers"]],
                "hovertemplate": "%{text}<br>value %{y:.6g}<extra></extra>",
                "boxpoints": "all" if n_points <= GL_THRESHOLD else "outliers",
                "jitter": 0.4,
                "pointpos": 0,
                "marker": {"color": CHOICE_COLORS[k % len(CHOICE_COLORS)], "size": 4},
                "showlegend": False,
            }
        )
    best = [k for k, c in enumerate(choices) if c["best"] is not None]
    if best:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "best",
                "x": pick(labels, best),
                "y": [choices[k]["best"] for k in best],
                "text": [f"best: trial {choices[k]['best_number']}" for k in best],
                "hovertemplate": "%{text}<br>value %{y:.6g}<extra></extra>",
                "marker": {"color": BEST_COLOR, "symbol": "star", "size": 14},
            }
        )
    outcomes = list(choices[0]["counts"]) if choices else []
    for outcome in outcomes:
        counts = [c["counts"][outcome] for c in choices]
        if not any(counts):
            continue
        traces.append(
            {
                "type": "bar",
                "name": plotly_text(OUTCOME_NAMES.get(outcome, outcome)),
                "legendgroup": outcome,
                "x": labels,
                "y": counts,
                "xaxis": "x2",
                "yaxis": "y2",
                "marker": {"color": OUTCOME_COLORS.get(outcome, "#777777")},
                "hovertemplate": "%{x}: %{y} %{fullData.name}<extra></extra>",
            }
        )
    layout = base_layout(record, data["param"], data["label"])
    layout["xaxis"].update({"domain": [0.0, 0.62], "type": "category"})
    layout["xaxis2"] = {
        "domain": [0.72, 1.0],
        "anchor": "y2",
        "type": "category",
        "title": {"text": plotly_text(data["param"])},
    }
    layout["yaxis2"] = {"anchor": "x2", "title": {"text": "trials"}}
    layout["barmode"] = "stack"
    if not traces:
        empty_message(layout, f"No trial has used {data['param']!r} yet")
    return {"data": traces, "layout": layout}


def _worker_ticks(data: dict[str, Any]) -> dict[str, Any]:
    names = [plotly_text(w["name"]) for w in data["workers"]]
    text = []
    for name, worker in zip(names, data["workers"], strict=True):
        share = worker["utilisation"]
        busy = "" if share is None else f", {share:.0%} busy"
        text.append(f"{name}<br>{worker['n_trials']} trials{busy}")
    return {
        "title": {"text": "worker"},
        "type": "category",
        "categoryorder": "array",
        "categoryarray": names[::-1],
        "tickvals": names,
        "ticktext": text,
        "automargin": True,
    }


def _timeline_bars(data: dict[str, Any], idx: list[int], outcome: str) -> dict[str, Any]:
    """One outcome's trials as horizontal bars (SVG; few trials)."""
    name = plotly_text(OUTCOME_NAMES.get(outcome, outcome))
    starts, ends = pick(data["start"], idx), pick(data["end"], idx)
    return {
        "type": "bar",
        "orientation": "h",
        "name": name,
        "legendgroup": outcome,
        "base": starts,
        "x": [e - s for s, e in zip(starts, ends, strict=True)],
        "y": [plotly_text(worker) for worker in pick(data["worker"], idx)],
        "text": [
            f"trial {data['number'][i]} ({name})<br>{s:.1f} s to {e:.1f} s"
            for i, s, e in zip(idx, starts, ends, strict=True)
        ],
        "textposition": "none",
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {
            "color": OUTCOME_COLORS.get(outcome, "#777777"),
            "line": {"color": "white", "width": 0.5},
        },
    }


def _timeline_lines(data: dict[str, Any], idx: list[int], outcome: str) -> dict[str, Any]:
    """One outcome's trials as thick WebGL line pieces (many trials; bars would be slow)."""
    name = plotly_text(OUTCOME_NAMES.get(outcome, outcome))
    xs: list[float | None] = []
    ys: list[str | None] = []
    text: list[str] = []
    for i in idx:
        worker, label = plotly_text(data["worker"][i]), f"trial {data['number'][i]} ({name})"
        xs += [data["start"][i], data["end"][i], None]
        ys += [worker, worker, None]
        text += [label, label, ""]
    return {
        "type": "scattergl",
        "mode": "lines",
        "name": name,
        "legendgroup": outcome,
        "x": xs,
        "y": ys,
        "text": text,
        "hovertemplate": "%{text}<br>%{x:.1f} s<extra></extra>",
        "line": {"color": OUTCOME_COLORS.get(outcome, "#777777"), "width": 10},
    }


def timeline_figure(record: PlotRecord) -> dict[str, Any]:
    """Horizontal bars per trial on its worker's row (lines in WebGL for many trials)."""
    data = record.data
    draw = _timeline_bars if len(data["number"]) <= GL_THRESHOLD else _timeline_lines
    traces = [draw(data, idx, outcome) for outcome, idx in by_outcome(data["outcome"]).items()]
    layout = base_layout(record, "seconds since the first trial started", "worker")
    layout["yaxis"] = _worker_ticks(data)
    layout["barmode"] = "overlay"
    if not traces:
        empty_message(layout, "No trial has started yet")
    return {"data": traces, "layout": layout}


def _front_shape(data: dict[str, Any]) -> str:
    """``"hv"`` when x is minimized, else ``"vh"``: the step that hugs the dominated side."""
    return "hv" if data["directions"][0] == "minimize" else "vh"


def pareto_figure(record: PlotRecord) -> dict[str, Any]:
    """The trials on two objectives, the non-dominated ones joined by the front line."""
    data = record.data
    behind = [i for i, on in enumerate(data["on_front"]) if not on]
    traces: list[dict[str, Any]] = []
    if behind:
        traces.append(
            {
                "type": scatter_type(len(behind)),
                "mode": "markers",
                "name": "dominated",
                "x": pick(data["x"], behind),
                "y": pick(data["y"], behind),
                "text": [f"trial {data['number'][i]}" for i in behind],
                "hovertemplate": "%{text}<br>(%{x:.6g}, %{y:.6g})<extra></extra>",
                "marker": {"color": OUTCOME_COLORS["complete"], "size": 6, "opacity": 0.5},
            }
        )
    front = data["front"]
    if front["number"]:
        text = []
        for number, params in zip(front["number"], front["params"], strict=True):
            shown = "<br>".join(
                f"{plotly_text(k)}={plotly_text(repr(v))}" for k, v in list(params.items())[:12]
            )
            text.append(f"trial {number}<br>{shown}")
        traces.append(
            {
                "type": scatter_type(len(text)),
                "mode": "lines+markers",
                "name": "Pareto front",
                "x": front["x"],
                "y": front["y"],
                "text": text,
                "hovertemplate": "%{text}<br>(%{x:.6g}, %{y:.6g})<extra></extra>",
                # the staircase bounding what the front dominates
                "line": {"color": BEST_COLOR, "width": 2, "shape": _front_shape(data)},
                "marker": {"color": BEST_COLOR, "size": 9},
            }
        )
    layout = base_layout(record, data["x_label"], data["y_label"])
    if not traces:
        empty_message(layout, "No trial has completed yet")
    return {"data": traces, "layout": layout}
