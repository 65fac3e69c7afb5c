"""Scenarios 1-3 at the benchmark's size, as Markdown for benchmarks/RESULTS.md.

Used by ``benchmarks/reliability.py`` (kept here, beside the drivers it calls). Each function
runs one scenario and returns its lines: what was done, the counts, PASS or MISS.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from reliability_helpers import Census
from reliability_helpers import WorkerOptions
from reliability_pg import PgCluster
from reliability_pg import pg_unavailable
from reliability_scenarios import run_create_race
from reliability_scenarios import run_kill_scenario
from reliability_scenarios import run_restart_scenario

from benchmarks._common import md_table  # type: ignore[import-untyped]  # no py.typed
from benchmarks._common import median
from benchmarks._common import sqlite_url
from benchmarks._common import verdict
from benchmarks._common import work_dir


def _census_cells(found: Census) -> list[str]:
    return [
        str(found.count("COMPLETE")),
        f"{found.n_stale} / {found.n_retries}",
        f"{found.count('RUNNING')} / {found.count('WAITING')}",
        "none"
        if not (found.duplicate_numbers or found.missing_numbers)
        else f"dup {found.duplicate_numbers[:5]} missing {found.missing_numbers[:5]}",
        str(found.unretried[:5]) if found.unretried else "none",
    ]


_CENSUS_HEADERS = [
    "COMPLETE",
    "stale / retries",
    "RUNNING / WAITING after grace",
    "duplicate or missing numbers",
    "stale without a COMPLETE retry",
]


def _exact(found: Census, n_trials: int, report: Any) -> bool:
    return bool(
        found.count("COMPLETE") == n_trials
        and found.count("RUNNING") == found.count("WAITING") == 0
        and not (found.duplicate_numbers or found.missing_numbers or found.unretried)
        and not report.problems
        and set(report.exit_codes) <= {0}
    )


def _liveness(options: WorkerOptions, quick: bool) -> WorkerOptions:
    """The tests' heartbeat and grace period (0.5 s, 5 s), or shorter ones when quick (the
    run waits out one grace period at its end)."""
    return replace(options, heartbeat_seconds=0.25, grace_seconds=2.0) if quick else options


def _median_max(values: list[float]) -> str:
    return f"{median(values):.2f}, {max(values, default=math.nan):.2f}"


def _problem_lines(problems: list[str]) -> list[str]:
    if not problems:
        return []
    return ["", "Stderr error lines (first 5):", ""] + [f"- `{p[:240]}`" for p in problems[:5]]


def scenario_kill(quick: bool, log: Any) -> list[str]:
    """Scenario 1: 8 workers x 200 trials, one SIGKILLed every 5 s and restarted."""
    n_workers, n_trials, every = (3, 60, 2.0) if quick else (8, 1600, 5.0)
    lines = [
        f"### 1. {n_workers} `dltune worker` processes, a shared budget of {n_trials} on one "
        f"SQLite file, one SIGKILLed every {every:g} s and restarted",
        "",
    ]
    with work_dir("reliability-kill") as work:
        options = WorkerOptions(
            url=sqlite_url(work / "kill.db"), study_name="kill", n_trials=n_trials
        )
        options = _liveness(options, quick)
        try:
            report = run_kill_scenario(options, n_workers, every, work)
        except Exception as exc:
            log(f"reliability kill: FAILED {exc!r}")
            return lines + [f"**FAILED**: `{exc!r}`"]
    found = report.census
    log(f"reliability kill: kills {report.kills} census {found}")
    lines += md_table(
        ["Kills", "Wall s", *_CENSUS_HEADERS, "stderr error lines", "Result"],
        [
            [
                str(len(report.kills)),
                f"{report.wall_seconds:.1f}",
                *_census_cells(found),
                str(len(report.problems)),
                verdict(_exact(found, n_trials, report)),
            ]
        ],
    )
    lines += [
        "",
        "Kill times (s from the first start, trials then): "
        + ", ".join(f"{t:g} ({n})" for t, n in report.kills)
        + f". Workers: heartbeat {options.heartbeat_seconds:g} s, grace "
        f"{options.grace_seconds:g} s, max_retries {options.max_retries}; trials sleep "
        "0.05-0.2 s. The first kill comes one period after the first trial; the last as the final "
        "wave of the budget is claimed. A kill that lands before the victim claimed a trial "
        "leaves no stale trial, so stale ≤ kills.",
    ]
    return lines + _problem_lines(report.problems)


def scenario_create(quick: bool, log: Any) -> list[str]:
    """Scenario 2: 32 processes create one study on a new SQLite file at once."""
    n = 4 if quick else 32
    lines = [
        f"### 2. {n} processes call `create_study(load_if_exists=True)` at once on a new "
        "SQLite file, then run 2 trials each",
        "",
    ]
    with work_dir("reliability-create") as work:
        try:
            report = run_create_race(sqlite_url(work / "race.db"), "race", n, 2, work)
        except Exception as exc:
            log(f"reliability create: FAILED {exc!r}")
            return lines + [f"**FAILED**: `{exc!r}`"]
    ok = (
        report.n_studies == 1
        and len(set(report.study_ids)) == 1
        and len(report.study_ids) == n
        and report.numbers == list(range(2 * n))
        and not report.problems
        and set(report.exit_codes) == {0}
    )
    log(f"reliability create: {report.n_studies} studies, census {report.census}")
    lines += md_table(
        [
            "Studies",
            "Distinct study ids",
            "Trials stored / run",
            "Non-zero exits",
            "stderr error lines",
            "Barrier to last exit s",
            "create_study s (median, max)",
            "2 trials s (median, max)",
            "Result",
        ],
        [
            [
                str(report.n_studies),
                str(len(set(report.study_ids))),
                f"{report.census.count('COMPLETE')} / {2 * n}",
                str(sum(1 for c in report.exit_codes if c != 0)),
                str(len(report.problems)),
                f"{report.spread_seconds:.1f}",
                _median_max(report.create_seconds),
                _median_max(report.trials_seconds),
                verdict(ok),
            ]
        ],
    )
    return lines + _problem_lines(report.problems)


def scenario_restart(quick: bool, log: Any) -> list[str]:
    """Scenario 3: PostgreSQL restarted mid-study under 4 workers."""
    n_workers, n_trials = (2, 60) if quick else (4, 300)
    lines = [
        f"### 3. PostgreSQL stopped (fast) for 2 s and started again under {n_workers} "
        f"workers, a shared budget of {n_trials}",
        "",
    ]
    reason = pg_unavailable()
    if reason is not None:
        return lines + [f"**NOT RUN**: {reason}"]
    cluster = PgCluster()
    try:
        with work_dir("reliability-restart") as work:
            options = WorkerOptions(url=cluster.url, study_name="restart", n_trials=n_trials)
            options = _liveness(options, quick)
            report = run_restart_scenario(cluster, options, n_workers, work)
    except Exception as exc:
        log(f"reliability restart: FAILED {exc!r}")
        return lines + [f"**FAILED**: `{exc!r}`"]
    finally:
        cluster.close()
    found = report.census
    log(f"reliability restart: down {report.down_seconds:.1f} s census {found}")
    lines += md_table(
        [
            "Trials at stop",
            "Server down s",
            "Wall s",
            *_CENSUS_HEADERS,
            "Non-zero exits",
            "stderr error lines",
            "Result",
        ],
        [
            [
                str(report.trials_at_stop),
                f"{report.down_seconds:.1f}",
                f"{report.wall_seconds:.1f}",
                *_census_cells(found),
                str(sum(1 for c in report.exit_codes if c != 0)),
                str(len(report.problems)),
                verdict(_exact(found, n_trials, report)),
            ]
        ],
    )
    return lines + _problem_lines(report.problems)
