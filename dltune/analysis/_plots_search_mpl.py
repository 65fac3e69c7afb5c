"""Matplotlib drawings of the optimizer comparison, timeline and Pareto records, and helpers.

``_mpl_search.MATPLOTLIB`` is the table users of these go through. Figures are made with
``matplotlib.figure.Figure`` (no pyplot global state); matplotlib is imported inside functions.
User strings (titles, notes, choices, worker names) go through :func:`mpl_text`, so a ``$`` in
them is drawn as written, never as mathtext.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune._imports import require
from dltune.analysis._plots_search_common import BEST_COLOR
from dltune.analysis._plots_search_common import OUTCOME_COLORS
from dltune.analysis._plots_search_common import OUTCOME_NAMES
from dltune.analysis._plots_search_common import by_outcome
from dltune.analysis._plots_search_common import pick
from dltune.analysis._plots_search_plotly import CHOICE_COLORS
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import mpl_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_figure", "optimizers_png", "pareto_png", "show_empty", "timeline_png"]

#: Most jittered points a strip plot draws per choice (the box summarizes the rest).
MAX_STRIP_POINTS = 2000


def new_figure(record: PlotRecord, *, n_axes: int = 1, width: float = 8.0) -> Figure:
    """A figure with ``n_axes`` side by side, the record's title on top, its notes below."""
    require("matplotlib", extra="plots", feature="matplotlib plots")
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    notes = [textwrap.fill(mpl_text(note), 110) for note in record.notes]
    n_lines = sum(note.count("\n") + 1 for note in notes)
    height = 4.6 + 0.16 * n_lines
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.suptitle(mpl_text(record.title))
    if notes:
        bottom = (0.16 * n_lines + 0.1) / height
        figure.text(0.01, 0.01, "\n".join(notes), fontsize=7, va="bottom", color="#444444")
        engine = figure.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):  # leave the notes' strip free
            engine.set(rect=(0.0, bottom, 1.0, 1.0 - bottom))
    figure.subplots(1, n_axes, squeeze=False)
    return figure


def show_empty(ax: Axes, text: str) -> None:
    """Write ``text`` in the middle of an empty axes, so the PNG does not look broken."""
    ax.text(
        0.5, 0.5, mpl_text(text), transform=ax.transAxes, ha="center", va="center", fontsize=12
    )
    ax.set_xticks([])
    ax.set_yticks([])


def optimizers_png(record: PlotRecord) -> Figure:
    """Box and points of the values per choice with the best starred; outcome counts beside."""
    data = record.data
    figure = new_figure(record, n_axes=2, width=10.0)
    ax, counts_ax = figure.axes
    choices = data["choices"]
    if not choices:
        show_empty(ax, f"No trial has used {data['param']!r} yet")
        counts_ax.set_visible(False)
        return figure
    labels = [mpl_text(c["choice"]) for c in choices]
    filled = [k for k, c in enumerate(choices) if c["values"]]
    if filled:
        ax.boxplot(
            [choices[k]["values"] for k in filled],
            positions=filled,
            widths=0.5,
            showfliers=False,
            medianprops={"color": "#333333"},
        )
    jitter = random.Random(0)  # fixed: the same record draws the same PNG
    for k in filled:
        values = choices[k]["values"][:MAX_STRIP_POINTS]
        xs = [k + jitter.uniform(-0.18, 0.18) for _ in values]
        ax.scatter(xs, values, s=6, alpha=0.5, color=CHOICE_COLORS[k % len(CHOICE_COLORS)])
    best = [k for k, c in enumerate(choices) if c["best"] is not None]
    if best:
        bests = [choices[k]["best"] for k in best]
        ax.scatter(best, bests, marker="*", s=180, color=BEST_COLOR, zorder=3, label="best")
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(mpl_text(data["param"]))
    ax.set_ylabel(mpl_text(data["label"]))
    bottom = [0] * len(choices)
    for outcome in choices[0]["counts"]:
        heights = [c["counts"][outcome] for c in choices]
        if any(heights):
            color = OUTCOME_COLORS.get(outcome, "#777777")
            name = OUTCOME_NAMES.get(outcome, outcome)
            counts_ax.bar(range(len(labels)), heights, bottom=bottom, color=color, label=name)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    counts_ax.set_xticks(range(len(labels)), labels)
    counts_ax.set_xlabel(mpl_text(data["param"]))
    counts_ax.set_ylabel("trials")
    if any(bottom):
        counts_ax.legend(fontsize=8)
    return figure


def _bars(starts: Sequence[float], ends: Sequence[float], rows: Sequence[int]) -> list[Any]:
    """The rectangles (as vertex lists) of bars from start to end on rows."""
    return [
        [(s, r - 0.4), (e, r - 0.4), (e, r + 0.4), (s, r + 0.4)]
        for s, e, r in zip(starts, ends, rows, strict=True)
    ]


def timeline_png(record: PlotRecord) -> Figure:
    """Bars per trial on its worker's row, coloured by outcome (one collection per outcome)."""
    from matplotlib.collections import PolyCollection

    data = record.data
    figure = new_figure(record, width=10.0)
    ax = figure.axes[0]
    workers = data["workers"]
    if not workers:
        show_empty(ax, "No trial has started yet")
        return figure
    row = {w["name"]: len(workers) - 1 - k for k, w in enumerate(workers)}
    for outcome, idx in by_outcome(data["outcome"]).items():
        rows = [row[w] for w in pick(data["worker"], idx)]
        verts = _bars(pick(data["start"], idx), pick(data["end"], idx), rows)
        color = OUTCOME_COLORS.get(outcome, "#777777")
        bars = PolyCollection(verts, facecolors=color, edgecolors=color, linewidths=0.3)
        bars.set_label(OUTCOME_NAMES.get(outcome, outcome))
        ax.add_collection(bars)
    ax.set_xlim(0.0, max(data["span_seconds"], 1e-9) * 1.01)
    ax.set_ylim(-0.6, len(workers) - 0.4)
    ticks = []
    for worker in workers:
        share = worker["utilisation"]
        busy = "" if share is None else f", {share:.0%} busy"
        ticks.append(mpl_text(f"{worker['name']}\n{worker['n_trials']} trials{busy}"))
    ax.set_yticks([row[w["name"]] for w in workers], ticks, fontsize=7)
    ax.set_xlabel("seconds since the first trial started")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def pareto_png(record: PlotRecord) -> Figure:
    """The trials on two objectives, the front drawn as the staircase it dominates from."""
    data = record.data
    figure = new_figure(record)
    ax = figure.axes[0]
    behind = [i for i, on in enumerate(data["on_front"]) if not on]
    front = data["front"]
    if not front["number"]:
        show_empty(ax, "No trial has completed yet")
        return figure
    if behind:
        xs, ys = pick(data["x"], behind), pick(data["y"], behind)
        color = OUTCOME_COLORS["complete"]
        ax.scatter(xs, ys, s=10, alpha=0.5, color=color, label="dominated")
    step = "steps-post" if data["directions"][0] == "minimize" else "steps-pre"
    ax.plot(front["x"], front["y"], drawstyle=step, color=BEST_COLOR, linewidth=1.5)
    ax.scatter(front["x"], front["y"], s=30, color=BEST_COLOR, zorder=3, label="Pareto front")
    ax.set_xlabel(mpl_text(data["x_label"]))
    ax.set_ylabel(mpl_text(data["y_label"]))
    ax.legend(fontsize=8)
    return figure
