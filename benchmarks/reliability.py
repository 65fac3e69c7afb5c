"""Parallel efficiency against Optuna, and the figures of the fault-injection suite.

Scenario 9 of the issue: k = 1, 2, 4, 8 workers on trials that sleep 1 s, n_trials = 4k (each
worker runs several), on one SQLite file (and PostgreSQL). Efficiency = (COMPLETE trials x 1 s)
/ (k x wall). Two pairings, each tool at its best for that shape:

- k processes started beforehand, each loading the study, all released by one signal; the wall
  runs from the signal to the last one's return from ``optimize``. dltune's each call
  ``optimize(n_trials=4k)`` (a budget they share); Optuna's each call
  ``optimize(callbacks=[MaxTrialsCallback(4k, states=None)])``, the shared budget Optuna offers
  (it may overshoot by a trial or two).
- one call in one process: dltune's ``optimize(n_trials=4k, n_jobs=k)`` (k fresh child
  processes, their start-up inside the wall) against Optuna's ``optimize(n_trials=4k,
  n_jobs=k)`` (k threads; the objective sleeps, so the GIL is no bottleneck).

The steady-state efficiency replaces the wall by the span from the first trial's start to the
last one's end (as stored), which leaves out start-up (of the child processes too) and
shutdown. Then scenarios 1-3 of tests/reliability run at full size (the tests assert them;
this records their figures).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_DIR
from benchmarks._common import PostgresServer
from benchmarks._common import RunInfo
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import spread
from benchmarks._common import sqlite_url
from benchmarks._common import start_postgres
from benchmarks._common import verdict
from benchmarks._common import work_dir

STUDY = "efficiency"
TARGET = 0.95
HELPERS_DIR = REPO_DIR / "tests" / "reliability"
SCENARIOS = ("efficiency", "kill", "create", "restart")
# name: (tool, backend, how its k workers run)
CONFIGS = {
    "dltune-processes": ("dltune", "sqlite", "processes"),
    "optuna-processes": ("optuna", "sqlite", "processes"),
    "dltune-njobs": ("dltune", "sqlite", "n_jobs"),
    "optuna-threads": ("optuna", "sqlite", "threads"),
    "dltune-pg-processes": ("dltune", "postgres", "processes"),
    "optuna-pg-processes": ("optuna", "postgres", "processes"),
}
LABELS = {
    "dltune-processes": "dltune, SQLite, k processes",
    "optuna-processes": "Optuna RDB, SQLite, k processes",
    "dltune-njobs": "dltune, SQLite, optimize(n_jobs=k)",
    "optuna-threads": "Optuna RDB, SQLite, optimize(n_jobs=k) threads",
    "dltune-pg-processes": "dltune, PostgreSQL, k processes",
    "optuna-pg-processes": "Optuna RDB, PostgreSQL, k processes",
}
# (dltune, Optuna, what the pair compares)
PAIRS = (
    ("dltune-processes", "optuna-processes", "SQLite, k processes"),
    ("dltune-njobs", "optuna-threads", "SQLite, one optimize(n_jobs=k)"),
    ("dltune-pg-processes", "optuna-pg-processes", "PostgreSQL, k processes"),
)
_ERROR_LINE = re.compile(
    r"locked|deadlock|serializ|OperationalError|StorageError|Traceback|Error:", re.IGNORECASE
)
SLEEP_ENV = "DLTUNE_BENCH_SLEEP_SECONDS"


def sleep_seconds() -> float:
    """How long a trial sleeps: ``$DLTUNE_BENCH_SLEEP_SECONDS`` (inherited by every worker
    and by dltune's child processes), 1 s by default."""
    return float(os.environ.get(SLEEP_ENV, "1.0"))


def sleeper(trial: Any) -> float:
    """The same objective for both tools: one param, then a sleep of ``sleep_seconds()``."""
    x = float(trial.suggest_float("x", -1.0, 1.0))
    time.sleep(sleep_seconds())
    return x * x


# -- workers (child processes) -------------------------------------------------------------------


def _storage(tool: str, url: str) -> Any:
    if tool == "dltune":
        from dltune.storage import SQLStorage

        return SQLStorage(url)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.RDBStorage(url)


def _load(tool: str, url: str) -> Any:
    if tool == "dltune":
        import dltune
        from dltune.pruners import NopPruner
        from dltune.samplers import RandomSampler

        return dltune.load_study(
            STUDY, storage=_storage(tool, url), sampler=RandomSampler(), pruner=NopPruner()
        )
    import optuna

    return optuna.load_study(
        study_name=STUDY,
        storage=_storage(tool, url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),
    )


def _optimize(study: Any, spec: dict[str, Any]) -> None:
    from benchmarks.reliability import sleeper as func  # importable, not __main__'s copy

    total, k = spec["n_trials"], spec["k"]
    if spec["tool"] == "dltune":
        study.optimize(func, n_trials=total, n_jobs=k if spec["mode"] == "n_jobs" else 1)
    elif spec["mode"] == "threads":
        study.optimize(func, n_trials=total, n_jobs=k)
    else:
        import optuna

        budget = optuna.study.MaxTrialsCallback(total, states=None)
        study.optimize(func, callbacks=[budget])


def worker_main(spec_json: str) -> None:
    """Load the study, say 'ready', wait for 'go', optimize, print a JSON summary."""
    spec = json.loads(spec_json)
    study = _load(spec["tool"], spec["url"])
    print("ready", flush=True)
    sys.stdin.readline()
    error = None
    try:
        _optimize(study, spec)
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"end": time.time(), "error": error}), flush=True)


# -- one efficiency run --------------------------------------------------------------------------


@dataclass
class Run:
    """One run of one configuration with k workers."""

    config: str
    k: int
    n_trials: int
    sleep: float
    wall_seconds: float
    span_seconds: float
    states: dict[str, int]
    errors: list[str] = field(default_factory=list)

    @property
    def n_complete(self) -> int:
        return self.states.get("COMPLETE", 0)

    @property
    def efficiency(self) -> float:
        """Useful work over worker-time, from the start signal to the last exit."""
        return self.n_complete * self.sleep / (self.k * self.wall_seconds)

    @property
    def steady(self) -> float:
        """The same over the first trial's start to the last trial's end."""
        return self.n_complete * self.sleep / (self.k * self.span_seconds)


def _create(tool: str, url: str) -> None:
    if tool == "dltune":
        import dltune

        storage = _storage(tool, url)
        dltune.create_study(STUDY, storage=storage)
        storage.close()
    else:
        import optuna

        storage = _storage(tool, url)
        optuna.create_study(study_name=STUDY, storage=storage)
        storage.engine.dispose()


def _trial_times(tool: str, url: str) -> tuple[dict[str, int], float]:
    """The trials' state counts and the span from the first start to the last end."""
    if tool == "dltune":
        storage = _storage(tool, url)
        trials = storage.get_all_trials(storage.get_study_id_from_name(STUDY))
        storage.close()
        states = [t.state.name for t in trials]
    else:
        import optuna

        storage = _storage(tool, url)
        trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
        storage.engine.dispose()
        states = [t.state.name for t in trials]
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    span = max(ends) - min(starts) if starts and ends else float("nan")
    return dict(collections.Counter(states)), span


def run_once(config: str, url: str, k: int, n_trials: int, sleep: float, work: Path) -> Run:
    """Create the study, start the workers, release them together, read the trials back."""
    tool, _, mode = CONFIGS[config]
    _create(tool, url)
    spec = {"tool": tool, "url": url, "n_trials": n_trials, "k": k, "mode": mode}
    n_procs = k if mode == "processes" else 1
    env = {**os.environ, SLEEP_ENV: repr(sleep)}
    procs, paths = [], []
    for i in range(n_procs):
        path = work / f"{config}-{k}-{i}-{time.monotonic_ns()}.stderr"
        paths.append(path)
        with path.open("w") as err:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.reliability", "--worker", json.dumps(spec)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    cwd=REPO_DIR,
                    env=env,
                )
            )
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready"
    go = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    errors, ends = [], []
    for proc in procs:
        out, _ = proc.communicate()
        lines = out.strip().splitlines()
        summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if proc.returncode != 0 or summary is None:
            errors.append(f"worker exited with code {proc.returncode}")
        else:
            ends.append(summary["end"])
            if summary["error"]:
                errors.append(summary["error"])
    errors += [
        line.strip()
        for path in paths
        for line in path.read_text(errors="replace").splitlines()
        if _ERROR_LINE.search(line)
    ]
    states, span = _trial_times(tool, url)
    wall = max(ends, default=time.time()) - go
    return Run(config, k, n_trials, sleep, wall, span, states, errors)


def run_efficiency(
    configs: list[str],
    ks: list[int],
    per_worker: int,
    sleep: float,
    repeats: int,
    server: PostgresServer | None,
    log: Any,
) -> list[Run]:
    """Every configuration at every k, ``repeats`` times, the order rotating each time."""
    runs = []
    with work_dir("reliability") as work:
        for rep in range(repeats):
            shift = rep % len(configs)
            for config in configs[shift:] + configs[:shift]:
                for k in ks:
                    backend = CONFIGS[config][1]
                    if backend == "postgres":
                        assert server is not None
                        url = server.create_database(f"eff_{CONFIGS[config][0]}")
                    else:
                        url = sqlite_url(work / f"{config}-{k}-{rep}.db")
                    try:
                        run = run_once(config, url, k, per_worker * k, sleep, work)
                    except Exception as exc:  # recorded as a failed run; the others go on
                        run = Run(config, k, per_worker * k, sleep, math.nan, math.nan, {})
                        run.errors.append(f"the run failed: {exc!r}")
                    finally:
                        if backend == "postgres" and server is not None:
                            server.drop_database(url)
                    runs.append(run)
                    log(
                        f"reliability efficiency {config:20} k={k} wall {run.wall_seconds:6.2f} "
                        f"s eff {run.efficiency:.3f} steady {run.steady:.3f} "
                        f"states {run.states} errors {len(run.errors)}"
                    )
    return runs


# -- the efficiency report -----------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def _of(runs: list[Run], config: str, k: int) -> list[Run]:
    return [r for r in runs if r.config == config and r.k == k]


def _target_rows(runs: list[Run], configs: list[str], k: int) -> list[list[str]]:
    rows = []
    for config in configs:
        if CONFIGS[config][0] != "dltune" or not _of(runs, config, k):
            continue
        mine = _of(runs, config, k)
        for measure, values in (
            ("start signal to last exit", [r.efficiency for r in mine]),
            ("steady state (first trial start to last trial end)", [r.steady for r in mine]),
        ):
            value = median(values)
            result = verdict(value >= TARGET)
            if value < TARGET:
                result += f" (gap {100 * (TARGET - value):.1f} points)"
            rows.append([f"{LABELS[config]}: {measure}", _pct(value), f"≥ {_pct(TARGET)}", result])
    return rows


def _ratio_rows(runs: list[Run], ks: list[int]) -> list[list[str]]:
    rows = []
    for mine, theirs, what in PAIRS:
        for k in ks:
            a, b = _of(runs, mine, k), _of(runs, theirs, k)
            if not a or not b:
                continue
            eff_a, eff_b = median([r.efficiency for r in a]), median([r.efficiency for r in b])
            st_a, st_b = median([r.steady for r in a]), median([r.steady for r in b])
            rows.append(
                [what, str(k), f"{eff_a / eff_b:.3f}", _pct(eff_a), _pct(eff_b)]
                + [f"{st_a / st_b:.3f}", _pct(st_a), _pct(st_b)]
            )
    return rows


def _absolute_rows(runs: list[Run], configs: list[str], ks: list[int]) -> list[list[str]]:
    rows = []
    for config in configs:
        for k in ks:
            mine = _of(runs, config, k)
            if not mine:
                continue
            states: collections.Counter[str] = collections.Counter()
            for r in mine:
                states.update(r.states)
            rows.append(
                [
                    LABELS[config],
                    str(k),
                    str(mine[0].n_trials),
                    f"{median([r.wall_seconds for r in mine]):.2f}",
                    spread([r.wall_seconds for r in mine]),
                    _pct(median([r.efficiency for r in mine])),
                    _pct(median([r.steady for r in mine])),
                    f"{states.get('COMPLETE', 0)} / {sum(r.n_trials for r in mine)}",
                    ", ".join(f"{s} {n}" for s, n in sorted(states.items()) if s != "COMPLETE")
                    or "—",
                    str(sum(len(r.errors) for r in mine)),
                ]
            )
    return rows


def efficiency_report(
    runs: list[Run], configs: list[str], ks: list[int], per_worker: int, sleep: float, note: str
) -> list[str]:
    """The efficiency part of the section."""
    k_max = max(ks)
    repeats = max((len(_of(runs, c, k)) for c in configs for k in ks), default=0)
    lines = [
        f"### Parallel efficiency: k workers, {per_worker}k trials of {sleep:g} s sleep "
        f"(median of {repeats} runs)",
        "",
        f"- PostgreSQL: {note}",
        "",
        f"Target (the issue): efficiency ≥ {_pct(TARGET)} at {k_max} workers.",
        "",
    ]
    lines += md_table(
        ["dltune configuration", "Efficiency", "Target", "Result"],
        _target_rows(runs, configs, k_max),
    )
    lines += ["", "Ratios of efficiency, dltune / Optuna (higher is better for dltune):", ""]
    lines += md_table(
        [
            "Pairing",
            "k",
            "Ratio",
            "dltune",
            "Optuna",
            "Steady-state ratio",
            "dltune steady",
            "Optuna steady",
        ],
        _ratio_rows(runs, ks),
    )
    lines += ["", "Absolute:", ""]
    lines += md_table(
        [
            "Configuration",
            "k",
            "Trials",
            "Wall s",
            "Wall range",
            "Efficiency",
            "Steady state",
            "COMPLETE (all runs)",
            "Other states",
            "Errors",
        ],
        _absolute_rows(runs, configs, ks),
    )
    samples = sorted({e for r in runs for e in r.errors})[:5]
    if samples:
        lines += ["", "Error samples:", ""] + [f"- `{s[:200]}`" for s in samples]
    return lines


# -- scenarios 1-3 -------------------------------------------------------------------------------


def _figures() -> Any:
    """tests/reliability/reliability_figures.py: runs scenarios 1-3 with the tests' drivers."""
    if str(HELPERS_DIR) not in sys.path:
        sys.path.insert(0, str(HELPERS_DIR))
    return importlib.import_module("reliability_figures")


# -- running and reporting -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The reliability benchmark's options."""
    group = parser.add_argument_group("reliability")
    group.add_argument(
        "--reliability-scenarios",
        default=",".join(SCENARIOS),
        help=f"what to run (default: all: {','.join(SCENARIOS)})",
    )
    group.add_argument(
        "--reliability-workers",
        default="1,2,4,8",
        help="the worker counts k of the efficiency runs (default: %(default)s)",
    )
    group.add_argument(
        "--reliability-trials-per-worker",
        type=int,
        default=4,
        help="trials per worker: n_trials = this x k (default: %(default)s)",
    )
    group.add_argument(
        "--reliability-repeats", type=int, default=2, help="repetitions (default: %(default)s)"
    )
    group.add_argument(
        "--reliability-configs",
        default=",".join(CONFIGS),
        help=f"efficiency configurations (default: all: {','.join(CONFIGS)})",
    )


def _server(configs: list[str], args: argparse.Namespace) -> tuple[PostgresServer | None, str]:
    if not any(CONFIGS[c][1] == "postgres" for c in configs):
        return None, "not used"
    if getattr(args, "no_postgres", False):
        return None, "skipped (--no-postgres)"
    try:
        server = start_postgres()
        return server, f"{server.description} ({server.settings()})"
    except Exception as exc:
        return None, f"UNAVAILABLE, rows skipped: {exc}"


def run(args: argparse.Namespace, command: str, log: Any) -> str:
    """Run the benchmark as ``args`` say; return its RESULTS.md section."""
    info = RunInfo(command)
    scenarios = [s for s in args.reliability_scenarios.split(",") if s]
    configs = [c for c in args.reliability_configs.split(",") if c]
    unknown = [s for s in scenarios if s not in SCENARIOS] + [
        c for c in configs if c not in CONFIGS
    ]
    if unknown:
        raise SystemExit(
            f"unknown scenarios or configs {unknown!r}; valid: {SCENARIOS}, {list(CONFIGS)}"
        )
    ks = [int(k) for k in args.reliability_workers.split(",") if k]
    per_worker, repeats, sleep = args.reliability_trials_per_worker, args.reliability_repeats, 1.0
    if args.quick:
        ks, per_worker, repeats, sleep = [1, 2], 2, 1, 0.2
        configs = [c for c in configs if CONFIGS[c][1] == "sqlite"]
    lines = ["## Reliability: parallel efficiency and fault injection", ""]
    body: list[str] = []
    if "efficiency" in scenarios:
        server, note = _server(configs, args)
        if server is None:
            configs = [c for c in configs if CONFIGS[c][1] != "postgres"]
        log(f"reliability: PostgreSQL: {note}")
        try:
            runs = run_efficiency(configs, ks, per_worker, sleep, repeats, server, log)
        finally:
            if server is not None:
                server.close()
        body += efficiency_report(runs, configs, ks, per_worker, sleep, note) + [""]
    for name in ("kill", "create", "restart"):
        if name in scenarios:
            body += getattr(_figures(), f"scenario_{name}")(args.quick, log) + [""]
    lines += info.lines() + [""] + body
    lines += [
        "Efficiency counts COMPLETE trials x the sleep over k x the wall; errors are worker "
        "exceptions and stderr lines naming a lock, deadlock, serialization failure, "
        "OperationalError, StorageError or traceback. The scenario tables are what "
        "tests/reliability asserts (they fail on any miss); figures here come from one run.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m benchmarks.reliability [--quick] [--output PATH]`` (until it is registered
    in ``python -m benchmarks``)."""
    from benchmarks._common import RESULTS_PATH
    from benchmarks._common import command_line
    from benchmarks._common import write_section

    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--output", type=Path, default=None, help="the results file to update")
    add_arguments(parser)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    section = run(args, command_line().replace("benchmarks", "benchmarks.reliability", 1), log)
    print(section)
    output = args.output if args.output is not None else None if args.quick else RESULTS_PATH
    if output is not None:
        write_section("reliability", section, output)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:]))
