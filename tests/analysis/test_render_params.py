"""The plotly dicts and matplotlib figures drawn from the parameter plot records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._mpl_params import MATPLOTLIB
from dltune.analysis._plotly_params import PLOTLY
from dltune.analysis._plots_params import importance_chart
from dltune.analysis._plots_params import parallel_coordinates
from dltune.analysis._plots_params import param_contour
from dltune.analysis._plots_params import param_slices
from dltune.analysis._record import PlotRecord
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

go = pytest.importorskip("plotly.graph_objects")  # the `plots` extra
pytest.importorskip("matplotlib")

DISTS: dict[str, BaseDistribution] = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "opt": CategoricalDistribution(("sgd", "adam", "rmsprop")),
    "momentum": FloatDistribution(0.0, 0.9),
    "layers": IntDistribution(1, 4),
}
PARAMS = [
    {"lr": 0.01, "opt": "sgd", "momentum": 0.5, "layers": 2},
    {"lr": 0.001, "opt": "adam", "layers": 3},
    {"lr": 0.1, "opt": "rmsprop", "layers": 1},
    {"lr": 0.0001, "opt": "sgd", "momentum": 0.0, "layers": 4},
    {"lr": 0.003, "opt": "adam", "layers": 2},
    {"lr": 0.03, "opt": "sgd", "momentum": 0.9, "layers": 1},
]
VALUES = [0.5, 0.2, 0.9, 0.1, 0.3, 0.6]


def study() -> list[FrozenTrial]:
    return [
        FrozenTrial(i, i, TrialState.COMPLETE, [v], p, {k: DISTS[k] for k in p})
        for i, (v, p) in enumerate(zip(VALUES, PARAMS, strict=True))
    ]


IMPORTANCE = ParamImportances("ped_anova", 0, {"lr": 0.5, "opt": 0.3, "layers": 0.2}, 6)
RECORDS = {
    "parallel": lambda: parallel_coordinates(study(), ["minimize"]),
    "slice": lambda: param_slices(study(), ["minimize"]),
    "contour": lambda: param_contour(study(), ["minimize"], params=["lr", "layers"], grid=8),
    "contour_categorical": lambda: param_contour(study(), ["minimize"], params=["lr", "opt"]),
    "importance": lambda: importance_chart(IMPORTANCE),
}
PENDING = [FrozenTrial(0, 0, TrialState.RUNNING, None, {"x": 1.0, "y": 2.0})]
EMPTY = {
    "parallel": lambda: parallel_coordinates([], ["minimize"]),
    "slice": lambda: param_slices(PENDING, ["minimize"]),
    "contour": lambda: param_contour(PENDING, ["minimize"]),
    "importance": lambda: importance_chart(ParamImportances("fanova", 0, {}, 0)),
}


def trace_size(trace: dict[str, Any]) -> int:
    if trace["type"] == "parcoords":
        return min(len(d["values"]) for d in trace["dimensions"])
    if trace["type"] in ("contour", "heatmap"):
        return len(trace["z"]) * len(trace["z"][0])
    return len(trace["x"])


def test_both_renderers_know_every_param_kind() -> None:
    kinds = {"parallel", "slice", "contour", "importance"}
    assert set(PLOTLY) == set(MATPLOTLIB) == kinds


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_plotly_figures_validate_and_every_trace_holds_data(name: str) -> None:
    record = RECORDS[name]()
    figure = PLOTLY[record.kind](record)
    json.dumps(figure, allow_nan=False)
    go.Figure(figure)  # plotly's own validation of every key
    assert figure["data"] and all(trace_size(trace) > 0 for trace in figure["data"])
    assert figure["layout"]["title"]["text"] == record.title


def test_plotly_parallel_places_log_categorical_and_absent_values() -> None:
    figure = PLOTLY["parallel"](RECORDS["parallel"]())
    (trace,) = figure["data"]
    lr, opt, momentum, layers, value = trace["dimensions"]
    assert [d["label"] for d in trace["dimensions"]][-1] == "value (minimize)"
    assert lr["tickvals"] == [-4.0, -3.0, -2.0, -1.0]
    assert lr["ticktext"] == ["0.0001", "0.001", "0.01", "0.1"]
    assert opt["ticktext"] == ["sgd", "adam", "rmsprop"] and opt["range"] == [0.0, 2.0]
    assert momentum["ticktext"][0] == "absent" and momentum["tickvals"][0] == momentum["range"][0]
    # the best trial is drawn last (on top); absent momentum values sit at the absent tick
    assert value["values"][-1] == 0.1 and trace["line"]["color"][-1] == 0.1
    absent = [v for v in momentum["values"] if v == momentum["range"][0]]
    assert len(absent) == 3
    assert trace["line"]["reversescale"] is True


def test_plotly_slices_build_one_subplot_per_param() -> None:
    figure = PLOTLY["slice"](RECORDS["slice"]())
    layout = figure["layout"]
    assert [t["xaxis"] for t in figure["data"]] == ["x", "x2", "x3", "x4"]
    assert layout["xaxis"]["type"] == "log" and layout["xaxis"]["title"]["text"] == "lr"
    assert layout["xaxis2"]["ticktext"] == ["sgd", "adam", "rmsprop"]
    assert layout["yaxis4"]["matches"] == "y"
    assert figure["data"][2]["x"] == [0.5, 0.0, 0.9]  # momentum: only the sgd trials
    domains = [layout[f"xaxis{s}"]["domain"] for s in ("", "2", "3", "4")]
    assert domains[0][0] == 0.0 and domains[-1][1] == 1.0
    assert all(a[1] < b[0] for a, b in zip(domains, domains[1:], strict=False))


def test_plotly_contour_draws_surface_points_and_best() -> None:
    numeric = PLOTLY["contour"](RECORDS["contour"]())
    assert [t["type"] for t in numeric["data"]] == ["contour", "scatter", "scatter"]
    assert numeric["layout"]["xaxis"]["type"] == "log"
    star = numeric["data"][2]
    assert star["x"] == [0.0001] and star["name"] == "best (trial 3)"
    categorical = PLOTLY["contour"](RECORDS["contour_categorical"]())
    assert categorical["data"][0]["type"] == "heatmap"
    assert categorical["layout"]["yaxis"]["ticktext"] == ["sgd", "adam", "rmsprop"]


def test_plotly_importance_is_a_horizontal_bar_most_important_on_top() -> None:
    (bar,) = PLOTLY["importance"](RECORDS["importance"]())["data"]
    assert bar["orientation"] == "h"
    assert bar["y"] == ["layers", "opt", "lr"] and bar["x"] == [0.2, 0.3, 0.5]


@pytest.mark.parametrize("kind", sorted(EMPTY))
def test_plotly_says_why_a_figure_is_empty(kind: str) -> None:
    record = EMPTY[kind]()
    figure = PLOTLY[kind](record)
    go.Figure(figure)
    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"].startswith("No ")


@pytest.mark.parametrize("name", sorted(RECORDS) + [f"empty_{k}" for k in sorted(EMPTY)])
def test_matplotlib_figures_save_as_png(name: str, tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    record: PlotRecord = (
        EMPTY[name.removeprefix("empty_")]() if name.startswith("empty_") else RECORDS[name]()
    )
    figure = MATPLOTLIB[record.kind](record)
    assert isinstance(figure, Figure)
    assert figure.canvas.manager is None  # built directly, not through pyplot
    path = tmp_path / f"{name}.png"
    figure.savefig(path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_matplotlib_parallel_has_an_axis_per_param_and_the_objective() -> None:
    from matplotlib.collections import LineCollection

    figure = MATPLOTLIB["parallel"](RECORDS["parallel"]())
    ax = figure.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["lr", "opt", "momentum", "layers", "value (minimize)"]
    texts = {t.get_text() for t in ax.texts}
    assert {"absent", "sgd", "rmsprop", "0.0001", "0.1"} <= texts
    (lines,) = ax.collections
    assert isinstance(lines, LineCollection)
    assert len(lines.get_segments()) == len(VALUES)


def test_matplotlib_slices_and_contour_keep_log_and_categorical_axes() -> None:
    panels = MATPLOTLIB["slice"](RECORDS["slice"]()).axes
    assert panels[0].get_xscale() == "log" and panels[2].get_xscale() == "linear"
    assert [t.get_text() for t in panels[1].get_xticklabels()] == ["sgd", "adam", "rmsprop"]
    ax = MATPLOTLIB["contour"](RECORDS["contour_categorical"]()).axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sgd", "adam", "rmsprop"]


def test_matplotlib_importance_draws_a_bar_per_param() -> None:
    from matplotlib.patches import Rectangle

    ax = MATPLOTLIB["importance"](RECORDS["importance"]()).axes[0]
    widths = [p.get_width() for p in ax.patches if isinstance(p, Rectangle)]
    assert widths == [0.2, 0.3, 0.5]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["layers", "opt", "lr"]
    assert "PED-ANOVA" in ax.get_xlabel()
