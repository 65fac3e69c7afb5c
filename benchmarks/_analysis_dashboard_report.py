"""The dashboard part of the analysis benchmark's RESULTS.md section (measured by
:mod:`benchmarks._analysis_dashboard`): its rows of the targets table and its absolute times."""

from __future__ import annotations

import itertools
import math
from typing import Any

from benchmarks._analysis_dashboard import PAGE_TIMEOUT_SECONDS
from benchmarks._analysis_dashboard import BrowserRun
from benchmarks._analysis_dashboard import DashboardRun
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import verdict


def _worst_first_median(values: list[float]) -> float:
    """The median, a value never reached (NaN) counting as the slowest: +inf."""
    ordered = sorted(math.inf if math.isnan(v) else v for v in values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _seconds(value: float) -> str:
    if math.isinf(value):
        return f"not within {PAGE_TIMEOUT_SECONDS:.0f} s"
    return "—" if math.isnan(value) else f"{value:.2f} s"


def _browser_rows(b: BrowserRun, target: float) -> list[list[str]]:
    if b.skipped is not None:
        return [
            [
                "dashboard study page in Chromium: usable, first plot, all plots",
                "not measured",
                f"< {target:.0f} s (issue #6)",
                f"— (**{b.skipped.upper()}**)",
            ]
        ]
    n_rows = max((load.n_rows for load in b.loads), default=0)
    n_plots = max((load.n_plots for load in b.loads), default=0)
    rows = []
    for what, attr, goal in (
        (f"usable (summary + first {n_rows} table rows)", "usable", " (issue #6)"),
        ("first plot drawn", "first_plot", ""),
        (f"all {n_plots} plots drawn", "all_plots", ""),
    ):
        for server in ("cold", "warm"):
            loads = b.of(server)
            if not loads:
                rows.append(
                    [
                        f"dashboard study page in Chromium: {what}, {server} server",
                        "not measured",
                        f"< {target:.0f} s{goal}",
                        "— (not run: --quick loads the page cold only)",
                    ]
                )
                continue
            value = _worst_first_median([getattr(load, attr) for load in loads])
            not_cold = server == "cold" and any(load.warm_up_left <= 0 for load in loads)
            rows.append(
                [
                    f"dashboard study page in Chromium: {what}, {server} server, median of "
                    f"{len(loads)}"
                    + (" (**the warm-up was over: not cold**)" if not_cold else ""),
                    _seconds(value),
                    f"< {target:.0f} s{goal}",
                    verdict(value < target),
                ]
            )
    return rows


def target_rows(d: DashboardRun, target: float) -> list[list[str]]:
    """The rows of the targets table: the page in Chromium, then the HTTP requests' sums."""
    rows = _browser_rows(d.browser, target)
    if d.unavailable is not None:
        rows.append(
            ["dashboard first page over HTTP", "not measured", f"< {target:.0f} s", d.unavailable]
        )
        return rows
    cold = DashboardRun.total(d.cold)
    warm = median([DashboardRun.total(w) for w in d.warm])
    for label, value in (("cold server", cold), (f"warm, median of {len(d.warm)}", warm)):
        rows.append(
            [
                f"dashboard first page over HTTP ({len(d.cold)} requests, summed), {label}",
                f"{value:.3f} s",
                f"< {target:.0f} s",
                verdict(value < target),
            ]
        )
    return rows


def _finite_median(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    return f"{median(finite):.2f} s" if finite else "unknown"


def _browser_text(b: BrowserRun) -> str:
    cold = b.of("cold")
    if "swiftshader" in b.renderer.lower():
        renderer = (
            f"WebGL renderer: {b.renderer}, i.e. headless Chromium draws WebGL in software "
            "(SwiftShader) on this machine, not on a GPU: the WebGL plots (parallel "
            "coordinates, scattergl) are slower here than in a desktop browser"
        )
    else:
        renderer = (
            f"WebGL renderer: {b.renderer} (headless Chromium usually draws WebGL in software, "
            "SwiftShader, on these machines: WebGL plots are then slower than on a desktop GPU)"
        )
    return (
        f"Dashboard in {b.chromium}; {renderer}. The study page was loaded cold {len(cold)} "
        f"time(s) and warm {len(b.of('warm'))} time(s), in a fresh browser context each "
        "(empty cache), each cold load on a new server. Cold: navigating as soon as the server "
        f"answered (median {_finite_median([c.navigated_after for c in cold])} after), while its "
        "background warm-up went on reading the study and drawing its plots (for a median "
        f"{_finite_median([c.warm_up_left for c in cold])} after the navigation began, by its "
        "log). Warm: after the warm-up (the plots API answered), on the same server. Times are "
        "seconds from navigation start to the first frame (requestAnimationFrame) showing the "
        "summary and the table's first rows (the page usable: the issue's target), a plot's "
        "figure (a non-empty svg or a canvas), every plot's figure; also when plotly.js "
        "(loaded after the table; its size is in the HTTP table below) had run. Parallel "
        "coordinates draws its lines over several frames after its canvas appears: its time is "
        "when it started showing."
    )


def _per_plot_rows(b: BrowserRun) -> list[list[str]]:
    """Each plot (in the order a warm load drew them) and when it was shown, cold and warm."""
    plots: dict[str, dict[str, Any]] = {}
    for load in [*b.of("warm"), *b.of("cold")]:
        for plot in load.plots:
            plots.setdefault(plot["key"], plot)
    rows = []
    for key, plot in plots.items():
        shown = [
            _seconds(
                _worst_first_median(
                    [
                        next((p["seconds"] for p in load.plots if p["key"] == key), math.nan)
                        for load in b.of(server)
                    ]
                )
            )
            for server in ("cold", "warm")
        ]
        rows.append([f"`{key}`", "yes" if plot["webgl"] else "no", *shown])
    return rows


def _browser_lines(b: BrowserRun) -> list[str]:
    if b.skipped is not None:
        return [f"**{b.skipped.upper()}**: the dashboard was timed over HTTP only.", ""]
    lines = [_browser_text(b), ""]
    runs = itertools.accumulate(int(load.server == "cold") for load in b.loads)
    rows = [
        [
            str(run),
            load.server,
            "—" if load.server == "warm" else f"{load.navigated_after:.2f}",
            "—" if load.server == "warm" else f"{load.warm_up_left:.2f}",
            _seconds(_worst_first_median([load.usable])),
            str(load.n_rows),
            _seconds(_worst_first_median([load.plotly_ready])),
            _seconds(_worst_first_median([load.first_plot])),
            _seconds(_worst_first_median([load.all_plots])),
            str(load.n_plots),
        ]
        for run, load in zip(runs, b.loads, strict=True)
    ]
    headers = ["Run", "Server", "Navigated after answer s", "Warm-up left s", "Usable"]
    lines += md_table(
        [*headers, "Rows", "plotly.js run", "First plot", "All plots", "Plots"], rows
    )
    lines += ["", "Each plot shown, from navigation start (median over the loads):", ""]
    lines += md_table(["Plot", "Canvas (WebGL)", "Cold", "Warm"], _per_plot_rows(b))
    problems = sorted({f"{load.server}: {p}" for load in b.loads for p in load.problems})
    if problems:
        lines += ["", "**Problems seen in the page:** " + "; ".join(problems)[:2000]]
    return [*lines, ""]


def dashboard_lines(d: DashboardRun) -> list[str]:
    """The absolute times: the loads in Chromium, then each request of the HTTP render."""
    lines = _browser_lines(d.browser)
    if d.unavailable is not None:
        return lines
    launch = d.start_seconds + DashboardRun.total(d.cold)
    lines += [
        f"Dashboard over HTTP: the server answered {d.start_seconds:.2f} s after launch (not in "
        f"the target; launch to first render done: {launch:.2f} s). Each request of the study "
        "page's first render, on one keep-alive connection, in order (a browser overlaps "
        "some, so the sum is an upper bound):",
        "",
    ]
    warm = {req.path: [w[i].seconds for w in d.warm] for i, req in enumerate(d.warm[0])}
    rows = [
        [
            f"`{req.path}`",
            str(req.status),
            f"{req.n_bytes / 1e3:.1f}",
            f"{1000 * req.seconds:.1f}",
            f"{1000 * median(warm.get(req.path, [])):.1f}",
        ]
        for req in d.cold
    ]
    return lines + md_table(["Request", "Status", "kB", "Cold ms", "Warm ms (median)"], rows)
