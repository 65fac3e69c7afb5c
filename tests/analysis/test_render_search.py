"""Drawing the "how the search went" records: plotly figure dicts and matplotlib PNGs."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dltune.analysis._mpl_search import MATPLOTLIB
from dltune.analysis._plotly_search import PLOTLY
from dltune.analysis._plots_search import learning_curves
from dltune.analysis._plots_search import optimization_history
from dltune.analysis._plots_search import optimizer_comparison
from dltune.analysis._plots_search import pareto_front
from dltune.analysis._plots_search import timeline
from dltune.analysis._record import PlotRecord
from dltune.exceptions import MissingDependencyError
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

go = pytest.importorskip("plotly.graph_objects")
pytest.importorskip("matplotlib")

KINDS = {"history", "learning_curves", "optimizers", "timeline", "pareto"}
T0 = datetime(2024, 5, 1, 12, 0, 0)
DIRS = ["minimize", "maximize"]
OPTIMIZER: dict[str, BaseDistribution] = {
    "optimizer": CategoricalDistribution(("adam", "rmsprop", "sgd"))
}


def _trial(number: int, state: TrialState, values: list[float] | None, **kw: Any) -> FrozenTrial:
    attrs = {"worker": f"host:{number % 2}", **kw.pop("attrs", {})}
    return FrozenTrial(
        number,
        number,
        state,
        values,
        {"optimizer": ("adam", "rmsprop", "sgd")[number % 3], "lr": 0.01 * (number + 1)},
        dict(OPTIMIZER),
        kw.pop("iv", {}),
        {},
        attrs,
        T0 + timedelta(seconds=3 * number),
        None if state == TrialState.RUNNING else T0 + timedelta(seconds=3 * number + 2),
    )


def _study_trials() -> list[FrozenTrial]:
    c, p, f, r = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING
    nan = float("nan")
    return [
        _trial(0, c, [1.0, 2.0], iv={0: 3.0, 1: 2.0, 2: 1.0}),
        _trial(1, c, [0.5, 1.0], iv={0: 3.0, 1: 1.5, 2: 0.5}),
        _trial(2, p, None, iv={0: 3.5, 1: 3.0}),
        _trial(3, p, None, iv={0: 3.0, 1: nan}, attrs={"stopped_by": "diverged"}),
        _trial(4, p, None, iv={0: 3.0, 1: 3.0}, attrs={"stopped_by": "not_learning"}),
        _trial(5, f, None),
        _trial(6, c, [2.0, 3.0], iv={0: 2.5, 1: 2.0}),
        _trial(7, r, None, iv={0: 2.8}),
    ]


def _records() -> list[PlotRecord]:
    trials = _study_trials()
    return [
        optimization_history(trials, DIRS),
        learning_curves(trials, DIRS),
        optimizer_comparison(trials, DIRS),
        timeline(trials, DIRS, now=(T0 + timedelta(seconds=30)).timestamp()),
        pareto_front(trials, DIRS),
    ]


def _empty_records() -> list[PlotRecord]:
    trials = [FrozenTrial(0, 0, TrialState.WAITING, distributions=dict(OPTIMIZER))]
    return [
        optimization_history(trials, DIRS),
        learning_curves(trials, DIRS),
        optimizer_comparison(trials, DIRS),
        timeline(trials, DIRS, now=0.0),
        pareto_front(trials, DIRS),
    ]


def _points(trace: dict[str, Any]) -> int:
    return max(len(trace.get(axis) or []) for axis in ("x", "y"))


def test_both_renderers_know_every_kind() -> None:
    assert set(PLOTLY) == KINDS
    assert set(MATPLOTLIB) == KINDS


@pytest.mark.parametrize("record", _records(), ids=lambda r: r.kind)
def test_plotly_dicts_validate_and_every_trace_has_points(record: PlotRecord) -> None:
    figure = PLOTLY[record.kind](record)
    assert set(figure) == {"data", "layout"}
    json.dumps(figure, allow_nan=False)
    go.Figure(figure)  # validates every trace and layout property
    assert figure["data"], record.kind
    assert all(_points(trace) > 0 for trace in figure["data"])
    assert figure["layout"]["title"]["text"] == record.title
    assert "annotations" not in figure["layout"]


@pytest.mark.parametrize("record", _empty_records(), ids=lambda r: r.kind)
def test_plotly_dicts_of_empty_records_say_so(record: PlotRecord) -> None:
    figure = PLOTLY[record.kind](record)
    go.Figure(figure)
    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"].startswith("No ")


def _by_name(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {trace["name"]: trace for trace in figure["data"]}


def test_plotly_history_groups_outcomes_with_fixed_colours() -> None:
    traces = _by_name(PLOTLY["history"](_records()[0]))
    assert traces["complete"]["marker"]["color"] == "#1f77b4"
    assert traces["complete"]["text"] == ["trial 0", "trial 1", "trial 6"]
    assert traces["best so far"]["y"] == [1.0, 0.5, 0.5]
    assert traces["pruned (last reported)"]["marker"]["color"] == "#9e9e9e"
    assert traces["not learning (last reported)"]["x"] == [4]
    diverged = traces["diverged (no value)"]  # its last value was NaN: a tick at the bottom
    assert (diverged["x"], diverged["yaxis"], diverged["marker"]["color"]) == (
        [3],
        "y2",
        "#d62728",
    )
    assert traces["failed (no value)"]["marker"]["color"] == "#000000"
    assert {t["type"] for t in traces.values()} == {"scatter"}


def test_plotly_learning_curves_mark_outcomes_the_best_and_the_blowup() -> None:
    traces = _by_name(PLOTLY["learning_curves"](_records()[1]))
    assert traces["running"]["line"]["color"] == "#ff7f0e"
    assert traces["diverged"]["line"]["color"] == "#d62728"
    assert traces["complete"]["x"] == [0, 1, 2, None, 0, 1, 2, None, 0, 1, None]
    assert traces["blew up (NaN/inf)"]["x"] == [1]
    assert traces["blew up (NaN/inf)"]["y"] == [3.0]
    assert "best (trial 1)" not in traces  # several objectives: no single best
    ends = [
        t for t in PLOTLY["learning_curves"](_records()[1])["data"] if t.get("showlegend") is False
    ]
    assert any("lr=0.02" in text for trace in ends for text in trace["text"])


def test_plotly_uses_webgl_only_above_two_thousand_points() -> None:
    many = [FrozenTrial(n, n, TrialState.COMPLETE, [float(n)]) for n in range(2001)]
    big = PLOTLY["history"](optimization_history(many, ["minimize"]))
    small = PLOTLY["history"](optimization_history(many[:2000], ["minimize"]))
    assert {t["type"] for t in big["data"]} == {"scattergl"}
    assert {t["type"] for t in small["data"]} == {"scatter"}


def test_plotly_timeline_switches_from_bars_to_webgl_lines() -> None:
    start = T0.timestamp()
    few = PLOTLY["timeline"](_records()[3])
    assert {t["type"] for t in few["data"]} == {"bar"}
    assert few["layout"]["yaxis"]["tickvals"] == ["host:0", "host:1"]
    many = [
        FrozenTrial(
            n,
            n,
            TrialState.COMPLETE,
            [1.0],
            datetime_start=T0 + timedelta(seconds=n),
            datetime_complete=T0 + timedelta(seconds=n + 1),
        )
        for n in range(2001)
    ]
    figure = PLOTLY["timeline"](timeline(many, ["minimize"], now=start))
    go.Figure(figure)
    (trace,) = figure["data"]
    assert (trace["type"], trace["x"][:3], trace["y"][:3]) == (
        "scattergl",
        [0.0, 1.0, None],
        ["-", "-", None],
    )


@pytest.mark.parametrize("record", _records() + _empty_records(), ids=lambda r: r.kind)
def test_matplotlib_figures_save_as_png(record: PlotRecord, tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    figure = MATPLOTLIB[record.kind](record)
    assert isinstance(figure, Figure)
    path = tmp_path / f"{record.kind}.png"
    figure.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_matplotlib_leaves_pyplot_alone() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for record in _records():
        MATPLOTLIB[record.kind](record)
    assert plt.get_fignums() == before


def test_matplotlib_figure_shows_the_notes() -> None:
    record = learning_curves(_study_trials(), DIRS, max_trials=2)
    figure = MATPLOTLIB["learning_curves"](record)
    texts = [text.get_text() for text in figure.texts]
    assert any("max_trials=2" in text for text in texts)


def test_matplotlib_without_the_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'dltune\[plots\]'"):
        MATPLOTLIB["history"](_records()[0])
