"""The analysis benchmark (``python -m benchmarks analysis``): its study and its report."""

from __future__ import annotations

import datetime
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import analysis  # type: ignore[import-untyped]  # no py.typed
from benchmarks._analysis_dashboard import BrowserRun  # type: ignore[import-untyped]
from benchmarks._analysis_dashboard import DashboardRun
from benchmarks._analysis_dashboard import PageLoad
from benchmarks._analysis_dashboard import chromium_path
from benchmarks._analysis_dashboard import measure_browser
from benchmarks._analysis_dashboard_report import dashboard_lines  # type: ignore[import-untyped]
from benchmarks._analysis_dashboard_report import target_rows

REPO = Path(__file__).resolve().parents[2]


def test_the_generated_study_is_mixed_and_realistic() -> None:
    trials = analysis.make_trials(400, 12, n_workers=4, seed=1)
    outcomes = Counter(t.outcome for t in trials)
    assert set(outcomes) == {"complete", "pruned", "diverged", "fail"}
    assert outcomes["complete"] > outcomes["diverged"] > outcomes["fail"] > 0
    for t in trials:
        assert set(t.params) == set(t.distributions)
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert len(t.params) == (10 if "momentum" in t.params else 9)
        n = len(t.intermediate_values)
        assert n == 12 if t.outcome == "complete" else 1 <= n < 12
        assert t.datetime_start < t.datetime_complete
    diverged = next(t for t in trials if t.outcome == "diverged")
    assert math.isnan(diverged.intermediate_values[diverged.last_step])
    assert diverged.reason is not None and diverged.reason.startswith("diverged at step")
    by_worker: dict[str, list[tuple[datetime.datetime, datetime.datetime]]] = {}
    for t in trials:
        assert t.datetime_start is not None and t.datetime_complete is not None
        by_worker.setdefault(t.system_attrs["worker"], []).append(
            (t.datetime_start, t.datetime_complete)
        )
    assert len(by_worker) == 4
    for spans in by_worker.values():  # a worker runs one trial at a time
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_the_study_is_deterministic() -> None:
    first = analysis.make_trials(30, 5, n_workers=2, seed=4)
    again = analysis.make_trials(30, 5, n_workers=2, seed=4)
    assert [t.params for t in first] == [t.params for t in again]


def test_without_chromium_the_browser_timing_is_skipped_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DLTUNE_TEST_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium there
    run = DashboardRun(unavailable="not started", browser=measure_browser("", "s", tmp_path, 1))
    assert run.browser.skipped.startswith("browser timing skipped: no chromium")
    rows = target_rows(run, 2.0)
    assert rows[0][1:] == [
        "not measured",
        "< 2 s (issue #6)",
        f"— (**{run.browser.skipped.upper()}**)",
    ]
    assert dashboard_lines(run)[0].startswith("**BROWSER TIMING SKIPPED: NO CHROMIUM")


def test_a_plot_never_drawn_counts_as_the_slowest_load() -> None:
    def load(server: str, usable: float, all_plots: float) -> PageLoad:
        return PageLoad(server, usable=usable, first_plot=1.0, all_plots=all_plots, n_rows=100)

    browser = BrowserRun(
        loads=[load("cold", 0.5, 1.5), load("cold", 0.7, math.nan), load("cold", 0.6, math.nan)]
        + [load("warm", 0.3, 1.9)],
        renderer="SwiftShader",
    )
    rows = {
        row[0].split(": ", 1)[1]: row[1:]
        for row in target_rows(DashboardRun(unavailable="x", browser=browser), 2.0)[:6]
    }
    assert rows["usable (summary + first 100 table rows), cold server, median of 3"] == [
        "0.60 s",
        "< 2 s (issue #6)",
        "PASS",
    ]
    assert rows["all 0 plots drawn, cold server, median of 3"] == [
        "not within 300 s",
        "< 2 s",
        "**MISS**",
    ]
    assert rows["all 0 plots drawn, warm server, median of 1"][2] == "PASS"


@pytest.mark.slow
def test_quick_run_writes_its_section(tmp_path: Path) -> None:
    """~25 s: the report, Optuna's plots (its slow contour left out), the dashboard over HTTP
    and, when there is a Chromium, one cold load of its study page."""
    out = tmp_path / "RESULTS.md"
    command = ["-m", "benchmarks", "analysis", "--quick", "--analysis-skip-contour"]
    done = subprocess.run(
        [sys.executable, *command, "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "<!-- BEGIN analysis -->" in text and "<!-- END analysis -->" in text
    assert "`dltune report` of 200 trials, wall" in text
    assert "| `plot_slice` |" in text and "**total**" in text
    assert "`plot_contour`" not in text
    # the dashboard part runs when `dltune dashboard` exists, and says why not otherwise
    assert "dashboard first page over HTTP" in text
    # the page in Chromium, timed from a cold server only in --quick; loudly skipped without one
    if chromium_path() is None:
        assert "BROWSER TIMING SKIPPED: NO CHROMIUM" in text
    else:
        usable = re.search(
            r"\| dashboard study page in Chromium: usable \(summary \+ first 100 table rows\), "
            r"cold server, median of 1 \| ([\d.]+) s \| < 2 s \(issue #6\) \| "
            r"(PASS|\*\*MISS\*\*) \|",
            text,
        )
        assert usable is not None, text
        assert 0 < float(usable.group(1)) < 300
        assert re.search(r"all \d+ plots drawn, cold server, median of 1 \| [\d.]+ s", text)
        assert "warm server | not measured" in text
        assert "SwiftShader" in text  # the note on WebGL drawn in software
        assert "Problems seen in the page" not in text
