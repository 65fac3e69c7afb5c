"""Matplotlib drawings of the parameter records (for PNG files).

Each function turns a record of ``_plots_params`` into a ``matplotlib.figure.Figure`` built
directly (no pyplot state, so it is safe in a server and in threads). The content matches the
plotly drawings of ``_plotly_params``: same axes, same ``absent`` position, the best objective
values bright (yellow) whatever the direction. User strings (parameter names, choices,
titles) go through :func:`mpl_text`, so a ``$`` in them is drawn as written, not as mathtext.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune._imports import require
from dltune.analysis._plots_params_scale import axis_scale
from dltune.analysis._record import PlotRecord
from dltune.analysis._text import mpl_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MATPLOTLIB"]

_SLICE_COLUMNS = 4


def _figure(width: float, height: float) -> Figure:
    """A new figure (not pyplot's); every drawing starts here, so matplotlib is required here
    before any other matplotlib import."""
    require("matplotlib", extra="plots", feature="matplotlib figures")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _empty(record: PlotRecord, message: str) -> Figure:
    figure = _figure(6.4, 3.0)
    ax = figure.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, mpl_text(message), ha="center", va="center", transform=ax.transAxes)
    figure.suptitle(mpl_text(record.title))
    return figure


def _cmap(direction: str) -> str:
    """Viridis with the best values bright (yellow)."""
    return "viridis_r" if direction == "minimize" else "viridis"


def _best_last(values: list[float], direction: str) -> np.ndarray:
    sign = -1.0 if direction == "minimize" else 1.0
    return np.argsort(sign * np.asarray(values, dtype=float), kind="stable")


def _own_scale(ax: Axes, axis: dict[str, Any], which: str) -> None:
    """Give ``ax``'s x or y axis the parameter's scale: log, categorical labels or linear."""
    if axis["type"] == "categorical":
        labels = [mpl_text(label) for label in axis["labels"]]
        if which == "x":
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            ax.set_yticks(range(len(labels)), labels)
            ax.set_ylim(-0.5, len(labels) - 0.5)
    elif axis["log"]:
        # Our own ticks: matplotlib labels minor ticks on short log ranges, and they overlap.
        from matplotlib.ticker import NullFormatter

        scale = axis_scale(axis)
        ticks = [10.0**v for v in scale.tickvals]
        target = ax.xaxis if which == "x" else ax.yaxis
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        target.set_ticks(ticks, scale.ticktext)
        target.set_minor_formatter(NullFormatter())


def parallel(record: PlotRecord) -> Figure:
    """Parallel coordinates: a line per trial across one vertical axis per parameter."""
    data = record.data
    target = data["objective"]
    if not data["number"]:
        return _empty(record, "No complete trial with a finite value yet.")
    axes = [*data["params"], target]
    order = _best_last(target["values"], target["direction"])
    columns = []
    figure = _figure(max(6.4, 1.2 * len(axes) + 2.0), 4.8)
    from matplotlib.collections import LineCollection

    ax = figure.add_subplot()
    for j, axis in enumerate(axes):
        scale = axis_scale(axis, axis["values"])
        columns.append([scale.unit(axis["values"][i]) for i in order])
        ax.axvline(j, color="0.35", linewidth=0.8, zorder=3)
        for value, text in zip(scale.tickvals, scale.ticktext, strict=True):
            y = (value - scale.low) / (scale.high - scale.low)
            ax.text(j - 0.04, y, mpl_text(text), fontsize=7, ha="right", va="center", zorder=4)
    ys = np.array(columns).T
    xs = np.broadcast_to(np.arange(len(axes), dtype=float), ys.shape)
    lines = LineCollection(
        list(np.stack([xs, ys], axis=-1)),
        array=np.asarray(target["values"], dtype=float)[order],
        cmap=_cmap(target["direction"]),
        linewidths=0.7,
        alpha=0.6,
    )
    ax.add_collection(lines)
    ax.set_xticks(range(len(axes)), [mpl_text(a["name"]) for a in axes], rotation=30, ha="right")
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(axes) - 0.7)
    ax.set_ylim(-0.04, 1.04)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    figure.colorbar(lines, ax=ax, label=mpl_text(target["name"]))
    ax.set_title(mpl_text(record.title))
    return figure


def slices(record: PlotRecord) -> Figure:
    """One scatter panel per parameter (up to four a row), coloured by trial number."""
    data = record.data
    panels = data["panels"]
    numbers = [n for panel in panels for n in panel["number"]]
    if not numbers:
        return _empty(record, "No complete trial with a finite value yet.")
    columns = min(len(panels), _SLICE_COLUMNS)
    rows = math.ceil(len(panels) / columns)
    figure = _figure(3.2 * columns + 1.2, 2.8 * rows + 0.6)
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    dots = None
    for i, ax in enumerate(grid.flat):
        if i >= len(panels):
            ax.set_visible(False)
            continue
        panel = panels[i]
        dots = ax.scatter(
            panel["x"], panel["y"], c=panel["number"], cmap="Blues", s=9,
            vmin=min(numbers), vmax=max(numbers), edgecolors="none",
        )  # fmt: skip
        _own_scale(ax, panel, "x")
        ax.set_xlabel(mpl_text(panel["name"]))
        if i % columns == 0:
            ax.set_ylabel(mpl_text(data["objective"]["name"]))
    assert dots is not None  # there is at least one panel
    figure.colorbar(dots, ax=grid, label="trial", shrink=0.8)
    figure.suptitle(mpl_text(record.title))
    return figure


def _surface(ax: Axes, record: PlotRecord) -> Any:
    """Draw the grid surface: filled contours, or cells when an axis is categorical or the
    surface is flat (filled contours need levels)."""
    data = record.data
    grid = data["grid"]
    z = np.array([[np.nan if v is None else v for v in row] for row in grid["z"]], dtype=float)
    finite = z[np.isfinite(z)]
    cmap = _cmap(data["objective"]["direction"])
    categorical = "categorical" in (data["x"]["type"], data["y"]["type"])
    if finite.size and not categorical and finite.max() > finite.min() and min(z.shape) >= 2:
        return ax.contourf(grid["x"], grid["y"], np.ma.masked_invalid(z), levels=14, cmap=cmap)
    masked = np.ma.masked_invalid(z)
    return ax.pcolormesh(grid["x"], grid["y"], masked, shading="nearest", cmap=cmap)


def contour(record: PlotRecord) -> Figure:
    """The smoothed surface of the objective over two parameters, the trials and the best."""
    data = record.data
    if data["grid"] is None:
        return _empty(record, "No trial with a finite value used both parameters yet.")
    figure = _figure(6.8, 5.2)
    ax = figure.add_subplot()
    surface = _surface(ax, record)
    points = data["points"]
    ax.scatter(points["x"], points["y"], s=7, c="white", edgecolors="black", linewidths=0.4)
    best = int(_best_last(points["value"], data["objective"]["direction"])[-1])
    ax.scatter(
        [points["x"][best]], [points["y"][best]], s=160, marker="*", c="red",
        label=f"best (trial {points['number'][best]})",
    )  # fmt: skip
    _own_scale(ax, data["x"], "x")
    _own_scale(ax, data["y"], "y")
    ax.set_xlabel(mpl_text(data["x"]["name"]))
    ax.set_ylabel(mpl_text(data["y"]["name"]))
    ax.legend(loc="upper right", fontsize=8)
    figure.colorbar(surface, ax=ax, label=mpl_text(data["objective"]["name"]))
    ax.set_title(mpl_text(record.title), fontsize=10)
    return figure


def importance(record: PlotRecord) -> Figure:
    """A horizontal bar per parameter, the most important on top."""
    data = record.data
    if not data["params"]:
        return _empty(record, "No parameter to rank.")
    shares = [0.0 if s is None else s for s in data["importances"]][::-1]
    names = [mpl_text(name) for name in data["params"][::-1]]
    figure = _figure(6.4, 1.2 + 0.35 * len(names))
    from matplotlib.ticker import PercentFormatter

    ax = figure.add_subplot()
    bars = ax.barh(range(len(names)), shares, color="#3b6ea8")
    ax.bar_label(bars, [f"{s:.1%}" for s in shares], padding=3, fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, max(max(shares), 1e-9) * 1.18)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(mpl_text(f"importance ({data['method_label']})"))
    ax.set_title(mpl_text(record.title), fontsize=10)
    return figure


#: The matplotlib drawing of each parameter record kind.
MATPLOTLIB: dict[str, Callable[[PlotRecord], Figure]] = {
    "parallel": parallel,
    "slice": slices,
    "contour": contour,
    "importance": importance,
}
