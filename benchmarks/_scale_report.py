"""The scale benchmark's RESULTS.md section: ratios and targets first, absolute numbers second."""

from __future__ import annotations

import math
from typing import Any

from benchmarks._common import RunInfo
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import verdict

TARGET_LOAD_SECONDS = 5.0
TARGET_BEST_MS = 200.0
TARGET_ASK_P99_MS = 100.0
BACKEND_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
SAMPLER_NAMES = {
    "random": "RandomSampler",
    "default": "default sampler (dltune AutoSampler -> TPE; Optuna TPESampler)",
}


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{1000 * seconds:.1f} ms"


def _ratio(mine: float, theirs: float) -> str:
    if not (mine > 0 and theirs > 0):
        return "n/a"
    ratio = mine / theirs
    return f"{ratio:.3f} (1/{1 / ratio:.0f})" if ratio < 0.1 else f"{ratio:.2f}"


def _find(runs: list[Any], tool: str, backend: str, n: int) -> Any:
    return next((r for r in runs if (r.tool, r.backend, r.n_trials) == (tool, backend, n)), None)


def _load_wall(run: Any) -> float:
    return median([x["wall"] for x in run.loads])


def _ask(run: Any, sampler: str, key: str, q: float) -> float:
    return percentile(run.asks.get(sampler, {}).get(key, []), q)


def _ratio_rows(runs: list[Any], settings: Any) -> list[list[str]]:
    rows = []
    n = settings.n_anchor
    for backend in settings.backends:
        mine, theirs = _find(runs, "dltune", backend, n), _find(runs, "optuna", backend, n)
        if mine is None or theirs is None:
            continue
        name = f"{BACKEND_NAMES[backend]}, {n:,} trials: dltune / Optuna"
        cpu = (median([x["cpu"] for x in mine.loads]), median([x["cpu"] for x in theirs.loads]))
        cold = (
            median([x["cold"] for x in mine.bests]),
            median([x["cold"] for x in theirs.bests]),
        )
        pairs = [
            ("load_study + trials, wall", _load_wall(mine), _load_wall(theirs)),
            ("load_study + trials, CPU", *cpu),
            ("best_trial, cold", *cold),
        ]
        for sampler in ("random", "default"):
            short = "random" if sampler == "random" else "default sampler"
            pairs.append(
                (
                    f"ask() p99, {short}",
                    _ask(mine, sampler, "asks", 99),
                    _ask(theirs, sampler, "asks", 99),
                )
            )
            pairs.append(
                (
                    f"whole trial p50, {short}",
                    _ask(mine, sampler, "cycles", 50),
                    _ask(theirs, sampler, "cycles", 50),
                )
            )
        for label, a, b in pairs:
            rows.append([f"{name}, {label}", _ratio(a, b), "none (context)", "—"])
    return rows


def _target_rows(runs: list[Any], settings: Any) -> list[list[str]]:
    rows = []
    n = settings.n_trials
    for backend in settings.backends:
        run = _find(runs, "dltune", backend, n)
        if run is None:
            continue
        name = f"{BACKEND_NAMES[backend]}, {n:,} trials"
        wall = _load_wall(run)
        worst = max(x["wall"] for x in run.loads)
        rows.append(
            [
                f"{name}: load_study + trials, wall (median of {len(run.loads)}; worst "
                f"{worst:.2f} s)",
                f"{wall:.2f} s",
                f"< {TARGET_LOAD_SECONDS:.0f} s",
                verdict(wall < TARGET_LOAD_SECONDS),
            ]
        )
        cold = max(x["cold"] for x in run.bests)
        warm = max(x["warm"] for x in run.bests)
        for label, value in (("cold (worst)", cold), ("warm (worst median)", warm)):
            rows.append(
                [
                    f"{name}: best_trial, {label}, by SQL on an index",
                    _ms(value),
                    f"< {TARGET_BEST_MS:.0f} ms",
                    verdict(1000 * value < TARGET_BEST_MS),
                ]
            )
        for sampler in ("random", "default"):
            for key, label in (("asks", "ask() p99"), ("cycles", "whole trial p99")):
                value = _ask(run, sampler, key, 99)
                timed = len(run.asks.get(sampler, {}).get(key, []))
                rows.append(
                    [
                        f"{name}: {label}, {SAMPLER_NAMES[sampler]} ({timed} trials)",
                        _ms(value),
                        f"< {TARGET_ASK_P99_MS:.0f} ms"
                        + ("" if key == "asks" else " (stricter reading)"),
                        verdict(1000 * value < TARGET_ASK_P99_MS),
                    ]
                )
    return rows


def _absolute(runs: list[Any]) -> list[str]:
    lines = ["### Absolute numbers", "", "Reading (fresh processes; times of each repeat):", ""]
    rows = []
    for r in runs:
        best = r.bests[0] if r.bests else {}
        rows.append(
            [
                r.tool,
                BACKEND_NAMES[r.backend],
                f"{r.n_trials:,}",
                f"{median([x['import'] for x in r.loads]):.2f}",
                ", ".join(f"{x['wall']:.2f}" for x in r.loads),
                ", ".join(f"{x['cpu']:.2f}" for x in r.loads),
                f"{max(x['rss_mb'] for x in r.loads):.0f}",
                ", ".join(_ms(x["cold"]) for x in r.bests),
                ", ".join(_ms(x["warm"]) for x in r.bests),
                f"{best.get('number')} ({best.get('value', math.nan):.6g})",
            ]
        )
    headers = [
        "Tool",
        "Backend",
        "Trials",
        "import s",
        "load + trials, wall s",
        "CPU s",
        "peak RSS MB",
        "best_trial cold",
        "warm (median of 20)",
        "best trial (value)",
    ]
    lines += md_table(headers, rows)
    lines += ["", "Trials on the loaded study (ask, 20 suggest_* calls, tell):", ""]
    rows = []
    for r in runs:
        for sampler, a in r.asks.items():
            rows.append(
                [
                    r.tool,
                    BACKEND_NAMES[r.backend],
                    f"{r.n_trials:,}",
                    sampler,
                    str(len(a["asks"])),
                    _ms(a["first_ask"]),
                    _ms(a["first_cycle"]),
                    f"{_ms(percentile(a['asks'], 50))} / {_ms(percentile(a['asks'], 99))}",
                    f"{_ms(percentile(a['cycles'], 50))} / {_ms(percentile(a['cycles'], 99))}",
                    _ms(a["cpu_per_cycle"]),
                ]
            )
    headers = [
        "Tool",
        "Backend",
        "Trials",
        "Sampler",
        "timed",
        "first ask()",
        "first trial",
        "ask() p50 / p99",
        "trial p50 / p99",
        "CPU per trial",
    ]
    return lines + md_table(headers, rows)


def report(runs: list[Any], settings: Any, info: RunInfo, where: str) -> str:
    """The RESULTS.md section."""
    first = runs[0] if runs else None
    outcomes = getattr(first, "outcomes", {}) if first is not None else {}
    outcome_text = ", ".join(f"{n:,} {k}" for k, n in sorted(outcomes.items()))
    studies = "; ".join(
        f"{r.tool} {BACKEND_NAMES[r.backend]} {r.n_trials:,}: {r.db_mb:.0f} MB written in "
        f"{r.write_seconds:.0f} s, twin check "
        + ("ok" if not r.twins else f"**{len(r.twins)} differences**: {r.twins[0]}")
        for r in runs
    )
    lines = [
        f"## Large studies: {settings.n_trials:,} trials x 20 parameters x {settings.n_steps} "
        "reports",
        "",
        *info.lines(),
        f"- PostgreSQL: {where}",
        f"- Study: {outcome_text} ({settings.n_trials:,} trials); 20 parameters (4 log floats, 6 "
        "floats, 5 ints, 5 categoricals; momentum only with sgd); up to "
        f"{settings.n_steps} reports each; 8 workers' interleaved write order. Bulk-inserted "
        f"({studies})",
        "",
        "### Ratios and targets",
        "",
        *md_table(
            ["Measure", "Value", "Target", "Result"],
            _ratio_rows(runs, settings) + _target_rows(runs, settings),
        ),
        "",
        "Ratios compare the two tools on the same study and database server, each in fresh "
        "processes (below 1: dltune takes less). A 'whole trial' is ask(), the 20 suggest_* "
        "calls (each a write) and tell(); the issue's target is on ask(), the whole trial is the "
        "stricter reading. The first trial of each process is shown apart (it reads the study "
        "when the sampler learns from it). Wall times depend on the load of the machine; CPU "
        "times less so.",
        "",
        *_absolute(runs),
    ]
    return "\n".join(lines)
