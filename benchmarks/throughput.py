"""Throughput of independent worker processes sharing one study, dltune vs Optuna.

Each trial suggests a float and a categorical, reports 10 intermediate values and returns a
value, with no pruner (NopPruner in both tools, ``should_prune`` never called). Workers are
separate Python processes, as a cluster's workers would be: dltune's each run
``load_study(...).optimize(objective, n_trials=TOTAL)`` (a study-wide budget they share),
Optuna's each run ``optimize(objective, n_trials=TOTAL // WORKERS)``. Every worker imports and
loads its study first, then all start together on a signal; the wall time runs from that signal
to the last worker's end.

Targets (the issue): on SQLite, at least 5x Optuna's RDB storage and at least Optuna's journal
file, with 0 errors; on PostgreSQL, at least 3x Optuna's RDB storage.
"""

from __future__ import annotations

import argparse
import collections
import json
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
from benchmarks._common import children_cpu_seconds
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import spread
from benchmarks._common import sqlite_url
from benchmarks._common import start_postgres
from benchmarks._common import verdict
from benchmarks._common import work_dir

CHOICES = ("a", "b", "c")
STUDY = "throughput"
N_REPORTS = 10
# Stderr lines that betray a storage problem, whoever logs them.
_ERROR_LINE = re.compile(
    r"locked|deadlock|serializ|OperationalError|StorageError|Traceback|Error:", re.IGNORECASE
)
# name: (tool, backend, how its workers run)
CONFIGS = {
    "dltune-sqlite": ("dltune", "sqlite", "processes"),
    "dltune-sqlite-njobs": ("dltune", "sqlite", "n_jobs"),
    "optuna-sqlite": ("optuna", "sqlite", "processes"),
    "optuna-journal": ("optuna", "journal", "processes"),
    "dltune-postgres": ("dltune", "postgres", "processes"),
    "optuna-postgres": ("optuna", "postgres", "processes"),
}
LABELS = {
    "dltune-sqlite": "dltune SQLStorage, SQLite, 4 processes",
    "dltune-sqlite-njobs": "dltune SQLStorage, SQLite, optimize(n_jobs=4)",
    "optuna-sqlite": "Optuna RDBStorage, SQLite, 4 processes",
    "optuna-journal": "Optuna JournalFileBackend, 4 processes",
    "dltune-postgres": "dltune SQLStorage, PostgreSQL, 4 processes",
    "optuna-postgres": "Optuna RDBStorage, PostgreSQL, 4 processes",
}
# What the issue measured for Optuna 5.0 (trials/s), for context only.
ISSUE_TRIALS_PER_SECOND = {"optuna-sqlite": 9.9, "optuna-journal": 54.8, "optuna-postgres": 10.2}


def objective(trial: Any) -> float:
    """The same trivial objective for both tools."""
    x = trial.suggest_float("x", -10.0, 10.0)
    c = trial.suggest_categorical("c", CHOICES)
    value = x * x + CHOICES.index(c)
    for step in range(N_REPORTS):
        trial.report(value / (step + 1), step)
    return value


# -- workers (child processes) ---------------------------------------------------------------


def _open(spec: dict[str, Any]) -> Any:
    """Load the study the spec names, as a worker would."""
    if spec["tool"] == "dltune":
        import dltune
        from dltune.pruners import NopPruner
        from dltune.samplers import RandomSampler

        return dltune.load_study(
            STUDY, storage=spec["url"], sampler=RandomSampler(), pruner=NopPruner()
        )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial
    return optuna.load_study(
        study_name=STUDY,
        storage=_optuna_storage(spec["url"]),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),
    )


def _optuna_storage(url: str) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal import JournalStorage

    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    return optuna.storages.RDBStorage(url)


def worker_main(spec_json: str) -> None:
    """Load the study, say 'ready', wait for 'go', optimize, print a JSON summary."""
    from benchmarks.throughput import objective as func  # importable, not __main__'s copy

    spec = json.loads(spec_json)
    study = _open(spec)
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu0 = time.time(), time.process_time() + children_cpu_seconds()
    error = None
    try:
        if spec["tool"] == "dltune":
            study.optimize(func, n_trials=spec["n_trials"], n_jobs=spec["n_jobs"])
        else:
            study.optimize(func, n_trials=spec["n_trials"])
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    cpu = time.process_time() + children_cpu_seconds() - cpu0
    print(json.dumps({"start": start, "end": time.time(), "cpu": cpu, "error": error}))


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One run of one configuration."""

    config: str
    wall_seconds: float
    cpu_seconds: float
    n_trials: int
    states: dict[str, int]
    worker_errors: list[str] = field(default_factory=list)
    stderr_errors: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)

    @property
    def trials_per_second(self) -> float:
        return self.states.get("COMPLETE", 0) / self.wall_seconds

    @property
    def n_errors(self) -> int:
        return (
            len(self.worker_errors)
            + len(self.stderr_errors)
            + self.states.get("FAIL", 0)
            + len(self.integrity)
        )


def _create_study(tool: str, url: str) -> None:
    if tool == "dltune":
        import dltune
        from dltune.storage import SQLStorage

        storage = SQLStorage(url)
        dltune.create_study(STUDY, storage=storage)
        storage.close()
    else:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(study_name=STUDY, storage=_optuna_storage(url))


def _check(tool: str, url: str, n_expected: int) -> tuple[dict[str, int], list[str]]:
    """The trials' state counts, and what is wrong with the study's trials."""
    problems = []
    if tool == "dltune":
        import dltune
        from dltune.storage import SQLStorage

        storage = SQLStorage(url)
        trials = dltune.load_study(STUDY, storage=storage).get_trials()
        storage.close()
        records = [(t.number, t.state.name, len(t.intermediate_values)) for t in trials]
    else:
        import optuna

        storage = _optuna_storage(url)
        found = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
        records = [(t.number, t.state.name, len(t.intermediate_values)) for t in found]
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()
    states = dict(collections.Counter(state for _, state, _ in records))
    numbers = sorted(number for number, _, _ in records)
    if numbers != list(range(len(numbers))):
        problems.append(f"trial numbers are not 0..{len(numbers) - 1} without duplicates")
    if len(records) != n_expected:
        problems.append(f"{len(records)} trials, expected {n_expected}")
    short = sum(1 for _, state, n in records if state == "COMPLETE" and n != N_REPORTS)
    if short:
        problems.append(f"{short} COMPLETE trials without {N_REPORTS} reports")
    return states, problems


def run_once(
    config: str, url: str, n_workers: int, n_total: int, work: Path, tag: str, log: Any
) -> Run:
    """Create the study, run the workers from a common start signal, check the trials."""
    tool, _, mode = CONFIGS[config]
    _create_study(tool, url)
    if mode == "n_jobs":
        specs = [{"tool": tool, "url": url, "n_trials": n_total, "n_jobs": n_workers}]
    elif tool == "dltune":
        specs = [{"tool": tool, "url": url, "n_trials": n_total, "n_jobs": 1}] * n_workers
    else:
        specs = [{"tool": tool, "url": url, "n_trials": n_total // n_workers}] * n_workers
    procs, stderr_paths = [], []
    for i, spec in enumerate(specs):
        path = work / f"{tag}-{i}.stderr"
        stderr_paths.append(path)
        with path.open("w") as err:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.throughput", "--worker", json.dumps(spec)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    cwd=REPO_DIR,
                )
            )
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.wait()
    go = time.time()
    for proc in procs:
        assert proc.stdin is not None
        try:
            proc.stdin.write("go\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass
    summaries, worker_errors = [], []
    for proc in procs:
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
        lines = out.strip().splitlines()
        summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if proc.returncode != 0 or summary is None:
            worker_errors.append(f"worker exited with code {proc.returncode}")
        elif summary["error"]:
            worker_errors.append(summary["error"])
        if summary is not None:
            summaries.append(summary)
    end = max((s["end"] for s in summaries), default=time.time())
    stderr_errors = [
        line.strip()
        for path in stderr_paths
        for line in path.read_text().splitlines()
        if _ERROR_LINE.search(line)
    ]
    states, integrity = _check(tool, url, n_total)
    run = Run(
        config,
        end - go,
        sum(s["cpu"] for s in summaries),
        n_total,
        states,
        worker_errors,
        stderr_errors,
        integrity,
    )
    log(
        f"throughput {config:20} {run.trials_per_second:8.1f} trials/s "
        f"wall {run.wall_seconds:7.2f} s  CPU {run.cpu_seconds:7.2f} s  states {states}  "
        f"errors {run.n_errors}"
        + (f" ({(worker_errors + stderr_errors + integrity)[:2]})" if run.n_errors else "")
    )
    return run


# -- running and reporting -------------------------------------------------------------------


def _url(config: str, work: Path, tag: str, server: PostgresServer | None) -> str:
    tool, backend, _ = CONFIGS[config]
    if backend == "sqlite":
        return sqlite_url(work / f"{tag}.db")
    if backend == "journal":
        return f"journal:{work / f'{tag}.log'}"
    assert server is not None
    return server.create_database(f"{tool}_bench")


def run_all(
    configs: list[str],
    n_workers: int,
    n_total: int,
    repeats: int,
    server: PostgresServer | None,
    log: Any,
) -> list[Run]:
    """Run every configuration ``repeats`` times, rotating the order each repetition."""
    runs = []
    with work_dir("throughput") as work:
        for rep in range(repeats):
            shift = rep % len(configs)
            for config in configs[shift:] + configs[:shift]:
                tag = f"{config}-{rep}"
                url = _url(config, work, tag, server)
                try:
                    runs.append(run_once(config, url, n_workers, n_total, work, tag, log))
                finally:
                    if CONFIGS[config][1] == "postgres" and server is not None:
                        server.drop_database(url)
    return runs


def _target_rows(runs: list[Run], configs: list[str]) -> list[list[str]]:
    def tps(config: str) -> list[float]:
        return [r.trials_per_second for r in runs if r.config == config]

    def ratio_row(name: str, mine: str, theirs: str, target: float) -> list[str]:
        if mine not in configs or theirs not in configs:
            return [name, "not run", "", f"≥ {target:g}", "—"]
        a, b = tps(mine), tps(theirs)
        ratio = median(a) / median(b)
        paired = [x / y for x, y in zip(a, b, strict=True)]
        result = verdict(ratio >= target)
        if ratio < target:
            result += f" (gap: {target / ratio:.2f}x short)"
        return [name, f"{ratio:.2f}", spread(paired), f"≥ {target:g}", result]

    rows = [
        ratio_row("SQLite: dltune / Optuna RDB", "dltune-sqlite", "optuna-sqlite", 5),
        ratio_row("SQLite: dltune / Optuna journal file", "dltune-sqlite", "optuna-journal", 1),
        ratio_row("PostgreSQL: dltune / Optuna RDB", "dltune-postgres", "optuna-postgres", 3),
        ratio_row(
            "extra: SQLite, optimize(n_jobs=4): dltune / Optuna RDB",
            "dltune-sqlite-njobs",
            "optuna-sqlite",
            5,
        ),
    ]
    for config in ("dltune-sqlite", "dltune-postgres", "dltune-sqlite-njobs"):
        if config in configs:
            n = sum(r.n_errors for r in runs if r.config == config)
            rows.append([f"{LABELS[config]}: errors", str(n), "", "0", verdict(n == 0)])
    return rows


def report(
    runs: list[Run],
    configs: list[str],
    n_workers: int,
    n_total: int,
    server_note: str,
    info: RunInfo,
) -> str:
    """The Markdown section: ratios and verdicts, then absolute throughput and errors."""
    repeats = max((sum(1 for r in runs if r.config == c) for c in configs), default=0)
    lines = [
        f"## Throughput: {n_workers} worker processes x {n_total // n_workers} trials "
        f"({n_total} in all), {N_REPORTS} reports per trial, no pruning",
        "",
    ]
    lines += info.lines()
    lines += [f"- PostgreSQL: {server_note}", "", "### Ratios of trials/s (higher is better)", ""]
    lines += md_table(
        ["Measure", "Ratio (of medians)", "paired range", "Target", "Result"],
        _target_rows(runs, configs),
    )
    lines += ["", f"### Absolute (median of {repeats} runs)", ""]
    rows = []
    for config in configs:
        mine = [r for r in runs if r.config == config]
        if not mine:
            continue
        states: collections.Counter[str] = collections.Counter()
        for r in mine:
            states.update(r.states)
        n_complete = states.get("COMPLETE", 0)
        rows.append(
            [
                LABELS[config],
                f"{median([r.trials_per_second for r in mine]):.1f}",
                spread([r.trials_per_second for r in mine], "{:.1f}"),
                str(ISSUE_TRIALS_PER_SECOND.get(config, "")),
                f"{median([r.wall_seconds for r in mine]):.1f}",
                f"{1000 * median([r.cpu_seconds / max(1, r.n_trials) for r in mine]):.1f}",
                f"{n_complete} / {sum(r.n_trials for r in mine)}",
                ", ".join(f"{k} {v}" for k, v in sorted(states.items()) if k != "COMPLETE") or "—",
                str(sum(len(r.worker_errors) for r in mine)),
                str(sum(len(r.stderr_errors) for r in mine)),
                "; ".join(sorted({p for r in mine for p in r.integrity})) or "ok",
            ]
        )
    lines += md_table(
        [
            "Configuration",
            "Trials/s",
            "Range",
            "Issue's Optuna",
            "Wall s",
            "Worker CPU ms/trial",
            "COMPLETE (all runs)",
            "Other states",
            "Worker exceptions",
            "Stderr error lines",
            "Trial numbers and reports",
        ],
        rows,
    )
    samples = sorted({e for r in runs for e in r.worker_errors + r.stderr_errors})[:5]
    if samples:
        lines += ["", "Error samples:", ""] + [f"- `{s[:200]}`" for s in samples]
    lines += [
        "",
        "Errors counted: exceptions out of a worker's optimize, FAIL trials, stderr lines "
        "naming a lock, deadlock, serialization failure, OperationalError, StorageError or "
        "traceback, and integrity problems (trial numbers not 0..N-1 unique, wrong trial "
        f"count, COMPLETE trials without {N_REPORTS} reports). Wall time runs from the common "
        "start signal (after every worker imported its tool and loaded the study) to the "
        "last worker's end; the n_jobs row's wall includes starting its child processes. "
        "Worker CPU is the workers' own CPU over that span (children included for the "
        "n_jobs row), not the database server's. SQLite: dltune's WAL + synchronous=NORMAL "
        "against Optuna's default rollback journal; PostgreSQL: the same server and "
        "settings for both, a fresh database per run. Optuna's per-trial INFO log is "
        "silenced.",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The throughput benchmark's options."""
    group = parser.add_argument_group("throughput")
    group.add_argument(
        "--throughput-workers", type=int, default=4, help="worker processes (default: 4)"
    )
    group.add_argument(
        "--throughput-trials",
        type=int,
        default=1000,
        help="trials in all, split evenly among Optuna's workers (default: %(default)s)",
    )
    group.add_argument(
        "--throughput-repeats", type=int, default=3, help="repetitions (default: %(default)s)"
    )
    group.add_argument(
        "--throughput-configs",
        default=",".join(CONFIGS),
        help=f"which configurations to run (default: all: {','.join(CONFIGS)})",
    )
    group.add_argument(
        "--no-postgres", action="store_true", help="skip the PostgreSQL configurations"
    )


def run(args: argparse.Namespace, command: str, log: Any) -> str:
    """Run the benchmark as ``args`` say; return its RESULTS.md section."""
    info = RunInfo(command)
    n_workers, n_total = args.throughput_workers, args.throughput_trials
    repeats = args.throughput_repeats
    if args.quick:
        n_total, repeats = 25 * n_workers, 1
    configs = [c for c in args.throughput_configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown --throughput-configs {unknown!r}; valid: {list(CONFIGS)}")
    server, server_note = None, "not used"
    wants_pg = any(CONFIGS[c][1] == "postgres" for c in configs)
    if wants_pg and args.no_postgres:
        server_note = "skipped (--no-postgres)"
    elif wants_pg:
        try:
            server = start_postgres()
            server_note = f"{server.description} ({server.settings()})"
        except Exception as exc:
            server_note = f"UNAVAILABLE, rows skipped: {exc}"
    if server is None:
        configs = [c for c in configs if CONFIGS[c][1] != "postgres"]
    log(f"throughput: PostgreSQL: {server_note}")
    try:
        runs = run_all(configs, n_workers, n_total, repeats, server, log)
    finally:
        if server is not None:
            server.close()
    return report(runs, configs, n_workers, n_total, server_note, info)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        sys.exit("internal entry point; run: python -m benchmarks throughput")
