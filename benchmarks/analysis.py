"""Analysis at scale: the HTML report and the dashboard on a 10,000-trial study.

One SQLite study of 10,000 training-like trials (10 parameters: log-scaled floats, integers, a
categorical optimizer and momentum only for sgd; 50 reports each; complete, pruned, diverged
(NaN) and a few failed trials; 8 workers on 2 hosts with realistic start and end times) is
written with one transaction per trial. On it, in the same run:

(a) ``dltune report`` as a user runs it (a fresh process: imports, opening the storage, every
    plot, the tables, the file), CPU and wall;
(b) the anchor: Optuna 5.0.0's own plotting of the same trials (optimization history,
    intermediate values, parallel coordinates, slice, contour, importances with its default
    evaluator, PED-ANOVA), each figure built and serialised to JSON as its HTML export
    would, in a fresh process over an in-memory Optuna study holding the same trials (untimed
    to build);
(c) the dashboard: ``dltune dashboard`` started over the same file; its study page loaded in
    Chromium (Playwright driving Debian's; skipped, and said so, without one) on a cold
    server and on a warm one: when the summary and first table rows show, the first plot,
    every plot; and the requests of its first render timed over HTTP, cold and warm.

Targets (issue #6): the report builds in under 30 s; the dashboard's first page in under 2 s
(judged on the page usable in Chromium).

Memory: Optuna's contour of every parameter pair on 10,000 trials peaks near 16 GB (its JSON is
about 3 GB); ``--analysis-skip-contour`` leaves it out on a smaller machine.
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import json
import math
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._analysis_dashboard import DashboardRun
from benchmarks._analysis_dashboard import measure_dashboard
from benchmarks._analysis_dashboard_report import dashboard_lines
from benchmarks._analysis_dashboard_report import target_rows
from benchmarks._common import REPO_DIR
from benchmarks._common import RunInfo
from benchmarks._common import children_cpu_seconds
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import sqlite_url
from benchmarks._common import verdict
from benchmarks._common import work_dir

STUDY = "analysis-bench"
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_LIMIT = {"sgd": 1.0, "adam": 0.05, "rmsprop": 0.02}
BASE_ERROR = {"sgd": 0.30, "adam": 0.28, "rmsprop": 0.32}
TARGET_REPORT_SECONDS = 30.0
TARGET_DASHBOARD_SECONDS = 2.0
OPTUNA_PLOTS = (
    "plot_optimization_history",
    "plot_intermediate_values",
    "plot_parallel_coordinate",
    "plot_slice",
    "plot_contour",
    "plot_param_importances",
)
_STAGES = re.compile(
    r"report of (\d+) trials: read ([\d.]+) s, importance and records ([\d.]+) s, "
    r"figures ([\d.]+) s, tables ([\d.]+) s"
)


# -- the study -------------------------------------------------------------------------------


def distributions() -> dict[str, Any]:
    """The search space: 10 parameters (momentum only when the optimizer is sgd)."""
    from dltune.space import CategoricalDistribution
    from dltune.space import FloatDistribution
    from dltune.space import IntDistribution

    return {
        "optimizer": CategoricalDistribution(OPTIMIZERS),
        "lr": FloatDistribution(1e-5, 0.1, log=True),
        "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
        "momentum": FloatDistribution(0.0, 0.99),
        "batch_size": IntDistribution(16, 512, log=True),
        "n_layers": IntDistribution(1, 8),
        "width": IntDistribution(32, 1024, step=32),
        "dropout": FloatDistribution(0.0, 0.5),
        "label_smoothing": FloatDistribution(0.0, 0.2, step=0.01),
        "warmup_epochs": IntDistribution(0, 5),
    }


def _params(rng: np.random.Generator) -> dict[str, Any]:
    opt = str(rng.choice(OPTIMIZERS))
    params: dict[str, Any] = {
        "optimizer": opt,
        "lr": float(10 ** rng.uniform(-5, -1)),
        "weight_decay": float(10 ** rng.uniform(-6, -2)),
        "batch_size": int(round(2 ** rng.uniform(4, 9))),
        "n_layers": int(rng.integers(1, 9)),
        "width": int(32 * rng.integers(1, 33)),
        "dropout": float(rng.uniform(0, 0.5)),
        "label_smoothing": round(0.01 * int(rng.integers(0, 21)), 2),
        "warmup_epochs": int(rng.integers(0, 6)),
    }
    if opt == "sgd":
        params["momentum"] = float(rng.uniform(0, 0.99))
    return params


def _final_loss(p: dict[str, Any]) -> float | None:
    """Where training ends; ``None`` if this configuration diverges."""
    opt = p["optimizer"]
    limit = LR_LIMIT[opt] * math.sqrt(p["batch_size"] / 64)
    limit *= 1.0 - p.get("momentum", 0.0) if opt == "sgd" else 1.0
    if p["lr"] > limit:
        return None
    loss = BASE_ERROR[opt] + 0.08 * (math.log10(p["lr"]) - math.log10(limit / 4)) ** 2
    loss += 0.02 * (math.log10(p["weight_decay"]) + 4) ** 2 + 0.1 * (p["dropout"] - 0.2) ** 2
    loss += 0.01 * abs(p["n_layers"] - 4) + 0.05 * (p["width"] < 128)
    return float(loss)


def make_trials(n_trials: int, n_steps: int, n_workers: int, seed: int = 0) -> list[Any]:
    """The study's trials as finished FrozenTrial templates, deterministic for ``seed``."""
    from dltune.trial import FrozenTrial
    from dltune.trial import TrialState

    if n_steps < 2:
        raise ValueError(f"n_steps={n_steps!r} must be at least 2 (a trial can stop early)")
    rng = np.random.default_rng(seed)
    dists = distributions()
    drawn = [_params(rng) for _ in range(n_trials)]
    finals = [_final_loss(p) for p in drawn]
    cutoff = float(np.median([f for f in finals if f is not None]))
    workers = [f"gpu-node-{k % 2 + 1}:{40000 + 17 * k}" for k in range(n_workers)]
    free = [(0.0, k) for k in range(n_workers)]
    origin = datetime.datetime(2026, 1, 5, 9, 0, 0)
    out = []
    for number, (params, final) in enumerate(zip(drawn, finals, strict=True)):
        end_loss = final if final is not None else 0.5
        steps = np.arange(n_steps)
        curve = end_loss + (2.3 - end_loss) * np.exp(-4.0 * steps / n_steps)
        curve = curve + rng.normal(0, 0.01, n_steps)
        system: dict[str, Any] = {}
        state, n_run = TrialState.COMPLETE, n_steps
        if final is None:
            state, n_run = TrialState.PRUNED, int(rng.integers(1, min(6, n_steps)))
            curve[n_run - 1] = math.nan
            system = {"stopped_by": "diverged", "reason": f"diverged at step {n_run}: loss=nan"}
        elif rng.random() < 0.01:
            state, n_run = TrialState.FAIL, int(rng.integers(1, n_steps))
            system = {"reason": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"}
        elif final > cutoff and rng.random() < 0.8:
            state, n_run = TrialState.PRUNED, int(rng.integers(max(1, n_steps // 10), n_steps))
        start, k = heapq.heappop(free)
        step_seconds = 0.3 + 1.5 * params["width"] / 1024 * (64 / params["batch_size"]) ** 0.3
        end = start + n_run * step_seconds * rng.uniform(0.9, 1.1)
        heapq.heappush(free, (end + rng.uniform(0.2, 1.0), k))
        system["worker"] = workers[k]
        out.append(
            FrozenTrial(
                number,
                -1,
                state,
                values=[float(curve[-1])] if state == TrialState.COMPLETE else None,
                params=params,
                distributions={name: dists[name] for name in params},
                intermediate_values={s: float(curve[s]) for s in range(n_run)},
                system_attrs=system,
                datetime_start=origin + datetime.timedelta(seconds=start),
                datetime_complete=origin + datetime.timedelta(seconds=end),
            )
        )
    return out


def populate(url: str, trials: list[Any]) -> float:
    """Write the trials to a new study, one transaction per trial; the seconds it took."""
    import dltune
    from dltune.storage import SQLStorage

    storage = SQLStorage(url)
    try:
        dltune.create_study(study_name=STUDY, storage=storage, direction="minimize")
        study_id = storage.get_study_id_from_name(STUDY)
        started = time.perf_counter()
        for trial in trials:
            storage.create_new_trial(study_id, template=trial)
        return time.perf_counter() - started
    finally:
        storage.close()


# -- (a) dltune report -----------------------------------------------------------------------


@dataclass
class ReportRun:
    """One ``dltune report`` process."""

    wall: float
    cpu: float
    stages: dict[str, float]
    size_mb: float


def measure_report(url: str, out: Path) -> ReportRun:
    """Run ``dltune report`` in a fresh process; its wall and CPU, and its own stage times."""
    cmd = [sys.executable, "-m", "dltune", "report", STUDY, "--storage", url, "-o", str(out)]
    cpu0, wall0 = children_cpu_seconds(), time.perf_counter()
    done = subprocess.run([*cmd, "-v"], capture_output=True, text=True, cwd=REPO_DIR)
    wall, cpu = time.perf_counter() - wall0, children_cpu_seconds() - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"dltune report failed:\n{done.stderr[-3000:]}")
    stages: dict[str, float] = {}
    found = _STAGES.search(done.stderr)
    if found:
        names = ("read", "importance and records", "figures", "tables")
        stages = {n: float(v) for n, v in zip(names, found.groups()[1:], strict=True)}
    return ReportRun(wall, cpu, stages, out.stat().st_size / 1e6)


# -- (b) Optuna's plotting -------------------------------------------------------------------


def _to_optuna(trial: Any) -> Any:
    import optuna

    from dltune.space import CategoricalDistribution
    from dltune.space import FloatDistribution

    dists: dict[str, Any] = {}
    od = optuna.distributions
    for name, d in trial.distributions.items():
        if isinstance(d, CategoricalDistribution):
            dists[name] = od.CategoricalDistribution(list(d.choices))
        elif isinstance(d, FloatDistribution):
            dists[name] = od.FloatDistribution(d.low, d.high, log=d.log, step=d.step)
        else:
            dists[name] = od.IntDistribution(d.low, d.high, log=d.log, step=d.step)
    state = optuna.trial.TrialState[trial.state.name]
    return optuna.trial.FrozenTrial(
        number=trial.number,
        state=state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=dict(trial.params),
        distributions=dists,
        user_attrs={},
        system_attrs={},
        intermediate_values=dict(trial.intermediate_values),
        trial_id=trial.number,
    )


def optuna_child(url: str, names: list[str]) -> None:
    """Time Optuna's plots of the stored study (figure built, then serialised); print JSON."""
    import optuna
    import optuna.visualization as vis

    from dltune.storage import SQLStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = SQLStorage(url, read_only=True)
    trials = storage.get_all_trials(storage.get_study_id_from_name(STUDY))
    storage.close()
    study = optuna.create_study(study_name=STUDY, direction="minimize")
    study.add_trials([_to_optuna(t) for t in trials])
    out: dict[str, dict[str, float]] = {}
    for name in names:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        figure = getattr(vis, name)(study)
        built = time.perf_counter()
        text = figure.to_json()
        out[name] = {
            "build": built - wall0,
            "json": time.perf_counter() - built,
            "wall": time.perf_counter() - wall0,
            "cpu": time.process_time() - cpu0,
            "mb": len(text) / 1e6,
        }
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"plots": out, "peak_mb": peak_mb}))


def measure_optuna(url: str, names: list[str]) -> tuple[dict[str, dict[str, float]], float]:
    """Optuna's plotting in a fresh process (see :func:`optuna_child`); its peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.analysis", "--child-optuna", url, ",".join(names)],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"Optuna's plotting failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["plots"], float(result["peak_mb"])


# -- running and reporting -------------------------------------------------------------------


@dataclass
class Results:
    """Everything one run measured."""

    n_trials: int
    n_steps: int
    n_workers: int
    outcomes: dict[str, int]
    generate_seconds: float
    write_seconds: float
    db_mb: float
    reports: list[ReportRun]
    report_peak_mb: float
    optuna: dict[str, dict[str, float]] | None
    optuna_peak_mb: float
    optuna_error: str | None
    dashboard: DashboardRun


def run_all(
    n_trials: int,
    n_steps: int,
    repeats: int,
    log: Any,
    *,
    skip_contour: bool = False,
    browser_warm: bool = True,
) -> Results:
    """Generate and store the study, then measure (a), (b) and (c) on it."""
    n_workers = 8
    with work_dir("analysis") as work:
        db = work / "analysis.db"
        url = sqlite_url(db)
        started = time.perf_counter()
        trials = make_trials(n_trials, n_steps, n_workers)
        generated = time.perf_counter() - started
        outcomes: dict[str, int] = {}
        for t in trials:
            outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
        log(f"analysis: writing {n_trials} trials x {n_steps} reports to SQLite")
        written = populate(url, trials)
        log(f"analysis: written in {written:.1f} s; timing dltune report x {repeats}")
        reports = []
        for rep in range(repeats):
            reports.append(measure_report(url, work / f"report-{rep}.html"))
            log(f"analysis: dltune report {reports[-1].wall:.2f} s wall")
        # the largest child so far: the report processes (Optuna's child reports its own)
        report_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        log("analysis: timing Optuna's plots")
        optuna, optuna_error, optuna_peak_mb = None, None, math.nan
        try:
            names = [n for n in OPTUNA_PLOTS if not (skip_contour and n == "plot_contour")]
            optuna, optuna_peak_mb = measure_optuna(url, names)
        except RuntimeError as exc:
            optuna_error = " ".join(str(exc).split())[-600:]
        log("analysis: timing the dashboard's first page")
        dashboard = measure_dashboard(
            url, STUDY, work, n_warm=max(1, repeats), browser_warm=browser_warm
        )
        db_mb = sum(p.stat().st_size for p in work.glob("analysis.db*")) / 1e6
    return Results(
        n_trials,
        n_steps,
        n_workers,
        outcomes,
        generated,
        written,
        db_mb,
        reports,
        report_peak_mb,
        optuna,
        optuna_peak_mb,
        optuna_error,
        dashboard,
    )


def _ratio_rows(r: Results) -> list[list[str]]:
    wall = median([x.wall for x in r.reports])
    cpu = median([x.cpu for x in r.reports])
    rows = []
    if r.optuna is not None:
        # Optuna's contour draws every pair of parameters (dltune's: the top two), so the
        # ratio is also shown without it.
        groups = [(f"{len(r.optuna)} figures", list(r.optuna))]
        if "plot_contour" in r.optuna:
            others = [n for n in r.optuna if n != "plot_contour"]
            groups.append((f"{len(others)} figures without the contour", others))
        for which, names in groups:
            o_wall = sum(r.optuna[n]["wall"] for n in names)
            o_cpu = sum(r.optuna[n]["cpu"] for n in names)
            for label, mine, theirs in (("wall", wall, o_wall), ("CPU", cpu, o_cpu)):
                ratio = mine / theirs
                rows.append(
                    [
                        f"`dltune report` (whole command) / Optuna's {which}, {label}",
                        f"{ratio:.2f} (1/{1 / ratio:.1f})" if ratio < 1 else f"{ratio:.2f}",
                        "none (context)",
                        "—",
                    ]
                )
    else:
        rows.append(["dltune / Optuna", "not measured", "none", r.optuna_error or "—"])
    ok = wall < TARGET_REPORT_SECONDS
    rows.append(
        [
            f"`dltune report` of {r.n_trials} trials, wall (median of {len(r.reports)})",
            f"{wall:.2f} s",
            f"< {TARGET_REPORT_SECONDS:.0f} s",
            verdict(ok),
        ]
    )
    return rows + target_rows(r.dashboard, TARGET_DASHBOARD_SECONDS)


def _absolute(r: Results) -> list[str]:
    lines = ["### Absolute times", "", "`dltune report` (a fresh process each time):", ""]
    stage_names = list(r.reports[0].stages) if r.reports and r.reports[0].stages else []
    rows = [
        [
            str(i + 1),
            f"{x.wall:.2f}",
            f"{x.cpu:.2f}",
            *(f"{x.stages.get(n, math.nan):.2f}" for n in stage_names),
            f"{x.size_mb:.1f}",
        ]
        for i, x in enumerate(r.reports)
    ]
    headers = ["Run", "Wall s", "CPU s", *(f"{n} s" for n in stage_names), "HTML MB"]
    lines += md_table(headers, rows)
    lines += [
        "",
        "Wall and CPU cover the whole command (interpreter start, imports, opening the storage "
        "read-only, importance, every plot, the tables, writing the file); the stage columns "
        f"are the report's own log of its work inside that. Peak memory (RSS): "
        f"{r.report_peak_mb:.0f} MB.",
        "",
    ]
    if r.optuna is not None:
        lines += [
            "Optuna 5.0.0 (one fresh process; building the in-memory study untimed; peak "
            f"memory (RSS) {r.optuna_peak_mb:.0f} MB):",
            "",
        ]
        rows = [
            [
                f"`{name}`",
                f"{v['build']:.2f}",
                f"{v['json']:.2f}",
                f"{v['wall']:.2f}",
                f"{v['cpu']:.2f}",
                f"{v['mb']:.1f}",
            ]
            for name, v in r.optuna.items()
        ]
        totals = [sum(v[k] for v in r.optuna.values()) for k in ("build", "json", "wall", "cpu")]
        mb = sum(v["mb"] for v in r.optuna.values())
        rows.append(["**total**", *(f"{t:.2f}" for t in totals), f"{mb:.1f}"])
        lines += md_table(["Figure", "Build s", "to_json s", "Wall s", "CPU s", "JSON MB"], rows)
        lines.append("")
    return lines + dashboard_lines(r.dashboard)


def report(r: Results, info: RunInfo) -> str:
    """The RESULTS.md section: ratios and verdicts, then absolute times."""
    outcome_text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(r.outcomes.items()))
    lines = [
        f"## Analysis at scale: `dltune report` and the dashboard on {r.n_trials} trials",
        "",
        *info.lines(),
        f"- Study: {r.n_trials} trials ({outcome_text}), 10 parameters (log floats, ints, a "
        f"categorical optimizer, momentum only for sgd), {r.n_steps} reports each, "
        f"{r.n_workers} workers; SQLite {r.db_mb:.0f} MB, written one transaction per trial in "
        f"{r.write_seconds:.1f} s ({1000 * r.write_seconds / r.n_trials:.1f} ms/trial; "
        f"generating took {r.generate_seconds:.1f} s)",
        "",
        "### Ratios and targets",
        "",
        *md_table(["Measure", "Value", "Target", "Result"], _ratio_rows(r)),
        "",
        "Optuna's figures are its six `optuna.visualization` functions with their defaults "
        "(all parameters; importances with its default evaluator, PED-ANOVA in 5.0), each "
        "built and serialised with `to_json()`: the work of writing them to HTML, without the "
        "storage reads, importance table, trial table and file that `dltune report` also does. "
        "Its contour draws every pair of parameters (dltune's the two most important; "
        "dltune's learning curves, slices and parallel coordinates also cap the trials they "
        "draw and say so in the report), hence the second ratio without it. The report's "
        "target is judged on the whole command's wall time; the dashboard's (first page in "
        "under 2 s) on the study page becoming usable in Chromium, its summary and first table "
        "rows shown, on a cold and on a warm server; when the first and all plots are drawn is "
        "held to 2 s too, and the sum of the first render's HTTP requests is kept for "
        "reference (details below).",
        "",
        *_absolute(r),
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The analysis benchmark's options."""
    group = parser.add_argument_group("analysis")
    group.add_argument(
        "--analysis-trials",
        type=int,
        default=10_000,
        help="trials in the study (default: %(default)s, the issue's)",
    )
    group.add_argument(
        "--analysis-steps", type=int, default=50, help="reports per trial (default: %(default)s)"
    )
    group.add_argument(
        "--analysis-skip-contour",
        action="store_true",
        help="leave Optuna's plot_contour out of the anchor: on 10,000 trials it takes ~2 min "
        "and ~16 GB of memory (its figure's JSON is ~3 GB)",
    )
    group.add_argument(
        "--analysis-repeats",
        type=int,
        default=3,
        help="runs of dltune report, warm dashboard renders over HTTP, and cold and warm loads "
        "of the study page in Chromium (default: %(default)s)",
    )


def run(args: argparse.Namespace, command: str, log: Any) -> str:
    """Run the benchmark as ``args`` say; return its RESULTS.md section."""
    info = RunInfo(command)
    n_trials, n_steps, repeats = args.analysis_trials, args.analysis_steps, args.analysis_repeats
    if args.quick:
        n_trials, n_steps, repeats = 200, 10, 1
    results = run_all(
        n_trials,
        n_steps,
        repeats,
        log,
        skip_contour=args.analysis_skip_contour,
        browser_warm=not args.quick,  # a cold load runs the browser's code in half the time
    )
    return report(results, info)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child-optuna":
        optuna_child(sys.argv[2], sys.argv[3].split(","))
    else:
        sys.exit("internal entry point; run: python -m benchmarks analysis")
