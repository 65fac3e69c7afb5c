"""Multi-fidelity search on MNIST-1D: dltune's pruners, BOHB-style preset and PBT vs Optuna 5.

Issue #5: dltune random+no pruning, TPE+ASHA, BOHB-style and PBT against Optuna 5's TPE+Hyperband
and TPE+SuccessiveHalving, same trainer, budget, 2 workers, 5 seeds, 30 epochs max. Targets:
dltune's best method reaches the target validation accuracy >= 2x faster than Optuna TPE+Hyperband
and >= 5x faster than random search without pruning, with equal or better final test accuracy.

Every search trains the 1-D CNN of :mod:`benchmarks.mnist1d` (its space, data, fixed values and
per-trial seeds) in fresh processes, one method at a time, for the same wall-clock budget. A
wrapper around each trial logs every reported validation accuracy with its wall time (time to
target is read from that log) and, at the deadline, answers ``should_prune()`` with yes, so the
running trials stop after their current epoch and nothing runs past the budget. Raw records stay
in ``benchmarks/_work/multifidelity-last.json``; ``--mf-report-only`` rebuilds the section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import mnist1d
from benchmarks._common import REPO_DIR
from benchmarks._common import WORK_DIR
from benchmarks._common import RunInfo
from benchmarks._common import sqlite_url
from benchmarks._common import work_dir
from benchmarks._multifidelity_report import LABELS
from benchmarks._multifidelity_report import Search
from benchmarks._multifidelity_report import pilot_target
from benchmarks._multifidelity_report import report

Log = Callable[[str], None]

NAME = "multifidelity"
EPOCHS = 30
BUDGET_SECONDS = 90.0
N_SEEDS = 5
N_RETRAIN = 3  # retraining seeds per pick: the first of mnist1d's mnist1d.RETRAIN_SEEDS
PILOT_SEEDS = (100, 101, 102)  # none of the benchmark's seeds (0, 1, ...)
PILOT_FRACTION = 0.75  # the target: random search's median best by this share of the budget
PBT_POPULATION = 8
PBT_INTERVAL = 3
ETA = 3  # reduction factor of every successive-halving method
METHODS = tuple(LABELS)
OPTUNA_METHODS = ("optuna-hyperband", "optuna-sha")
QUICK = {"budget": 20.0, "epochs": 3, "seeds": 1, "retrain": 1, "target": 0.5, "population": 4}
QUICK |= {"interval": 1}
GRACE_SECONDS = 300.0  # past budget + grace, a search's processes are killed


# -- the trial wrapper (runs in the workers) ------------------------------------------------


class TimedTrial:
    """A trial that logs each report with its wall time and prunes once the deadline passed.

    Everything else goes to the wrapped trial (a dltune or an Optuna one).
    """

    def __init__(self, trial: Any, log_path: str, deadline: float, restored: int) -> None:
        self._trial = trial
        self._log_path = log_path
        self._deadline = deadline
        self._restored = restored

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def report(self, value: Any, step: int) -> None:
        """Log ``[time, trial number, step, value, restored]``, then report."""
        first = value if isinstance(value, int | float) else list(value)[0]
        restored = int(step <= self._restored)  # re-reported from a checkpoint, not trained
        _append(self._log_path, [time.time(), self._trial.number, step, float(first), restored])
        self._trial.report(value, step)

    def should_prune(self) -> bool:
        """Yes once the budget is spent (the trainer then stops after this epoch)."""
        return time.time() >= self._deadline or bool(self._trial.should_prune())


class TimedObjective:
    """Wraps an objective: passes it a :class:`TimedTrial`; logs what a resume restored."""

    def __init__(self, objective: Any, log_dir: str, deadline: float, task: Any = None) -> None:
        self.objective = objective
        self.log_dir = log_dir
        self.deadline = deadline
        self.task = task  # the dltune task, whose checkpoints a continuation resumes from

    def __call__(self, trial: Any) -> float:
        path = os.path.join(self.log_dir, f"reports-{os.getpid()}.jsonl")
        restored = self._log_resume(trial)
        return float(self.objective(TimedTrial(trial, path, self.deadline, restored)))

    def _log_resume(self, trial: Any) -> int:
        """Epochs in the checkpoint a continuation (``resume_of``) will resume from."""
        from dltune.torch import checkpoint_path
        from dltune.torch import load_checkpoint

        if self.task is None:  # an Optuna trial: nothing is ever resumed
            return 0
        paused = trial.system_attrs.get("resume_of")
        if paused is None:
            return 0
        path = checkpoint_path(self.task, trial.study.study_name, int(paused))
        state = load_checkpoint(path) if path is not None and path.exists() else None
        history = [] if state is None else list(state["history"])
        _append(
            os.path.join(self.log_dir, f"resumes-{os.getpid()}.jsonl"),
            {
                "t": time.time(),
                "number": trial.number,
                "resume_of": int(paused),
                "epochs": len(history),
                "seconds": sum(float(h["seconds"]) for h in history),
            },
        )
        return len(history)


def _append(path: str, record: Any) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


# -- the searches (child processes) ----------------------------------------------------------


def _dltune_study(method: str, seed: int, epochs: int) -> dict[str, Any]:
    """The sampler and pruner of a dltune method, for ``create_study(**...)``."""
    if method == "bohb":
        from dltune.presets import bohb

        return bohb(
            max_resource=epochs, min_resource=1, reduction_factor=ETA, sampler="tpe", seed=seed
        )
    from dltune.pruners import NopPruner
    from dltune.pruners import SuccessiveHalvingPruner
    from dltune.samplers import RandomSampler
    from dltune.samplers import TPESampler

    if method == "random":
        return {"sampler": RandomSampler(seed=seed), "pruner": NopPruner()}
    return {
        "sampler": TPESampler(seed=seed),
        "pruner": SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA),
    }


def _dltune_task(spec: dict[str, Any]) -> Any:
    """mnist1d's task with the guards on, and checkpoints where a method resumes from them."""
    task = mnist1d.make_task(spec["epochs"], spec["data_dir"], guards=True)
    if spec["method"] == "random":
        return task  # nothing is ever resumed: no checkpoint files to write
    return dataclasses.replace(task, checkpoint_dir=Path(spec["ckpt"]))


def _dltune_child(spec: dict[str, Any]) -> None:
    import dltune
    from benchmarks.multifidelity import TimedObjective as Timed  # importable, not __main__'s
    from dltune.torch import TorchObjective

    # One of N_WORKERS processes joining the study the parent created, as Optuna's workers
    # do (and as `dltune worker` does on other machines): both tools start the same way.
    study = dltune.load_study(
        study_name=mnist1d.STUDY,
        storage=sqlite_url(Path(spec["db"])),
        **_dltune_study(spec["method"], spec["seed"], spec["epochs"]),
    )
    task = _dltune_task(spec)
    inner = TorchObjective(
        task, mnist1d.space, fixed=mnist1d.FIXED, seed=mnist1d.train_seed(spec["seed"], 0)
    )
    objective = Timed(inner, spec["logs"], spec["t0"] + spec["budget"], task)
    study.optimize(objective, timeout=mnist1d._remaining(spec))


def _pbt_api() -> tuple[Any, Any]:
    """``PBT`` and ``replay_schedule``, from ``dltune.torch`` once it exports them."""
    import dltune.torch

    api: Any = dltune.torch
    if hasattr(api, "PBT"):
        return api.PBT, api.replay_schedule
    # TODO(lead, #5): drop the private modules once dltune.torch exports the PBT API.
    from dltune.torch._pbt import PBT
    from dltune.torch._pbt_replay import replay_schedule

    return PBT, replay_schedule


def _pbt_child(spec: dict[str, Any]) -> None:
    pbt_class, _ = _pbt_api()
    task = _dltune_task(spec)
    pbt = pbt_class(
        task,
        mnist1d.space,
        population=spec["population"],
        interval=spec["interval"],
        fixed=mnist1d.FIXED,
        seed=spec["seed"],
    )
    result = pbt.run(
        storage=sqlite_url(Path(spec["db"])),
        study_name=mnist1d.STUDY,
        n_jobs=mnist1d.N_WORKERS,
        timeout=mnist1d._remaining(spec),
    )
    summary = {k: getattr(result, k) for k in ("best_trial", "best_member", "best_value")}
    Path(spec["logs"], "pbt.json").write_text(json.dumps(summary))  # + the study's schedule


def _optuna_child(spec: dict[str, Any]) -> None:
    import optuna

    from benchmarks.multifidelity import TimedObjective as Timed

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial
    pruner: Any
    if spec["method"] == "optuna-hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=spec["epochs"], reduction_factor=ETA
        )
    else:
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA)
    # Distinct sampler seeds per worker process, as in benchmarks.mnist1d.
    study = optuna.load_study(
        study_name=mnist1d.STUDY,
        storage=mnist1d._optuna_storage(spec["journal"]),
        sampler=optuna.samplers.TPESampler(seed=spec["seed"] * 1000 + spec["worker"]),
        pruner=pruner,
    )
    inner = mnist1d.OptunaObjective(spec["epochs"], spec["data_dir"], spec["seed"])
    objective = Timed(inner, spec["logs"], spec["t0"] + spec["budget"])
    study.optimize(objective, timeout=mnist1d._remaining(spec))


def child_main(spec_json: str) -> None:
    """Run one search process as ``spec_json`` says."""
    spec = json.loads(spec_json)
    if spec["method"] in OPTUNA_METHODS:
        _optuna_child(spec)
    elif spec["method"] == "pbt":
        _pbt_child(spec)
    else:
        _dltune_child(spec)


# -- one search, seen from the parent --------------------------------------------------------


def _read_jsonl(folder: Path, prefix: str) -> list[Any]:
    out = []
    for path in sorted(folder.glob(f"{prefix}-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def _pbt_reports(db: Path, t0: float) -> list[list[float]]:
    """Each PBT segment's reports, their times interpolated between its start and finish.

    PBT builds its own objective, so no wrapper sees its reports: epoch ``e`` of a segment that
    trained epochs ``a+1..b`` from ``start`` to ``finish`` is put at
    ``start + (finish - start) * (e - a) / (b - a)`` (off by less than one epoch's time).
    """
    import dltune

    out: list[list[float]] = []
    for t in dltune.load_study(mnist1d.STUDY, storage=sqlite_url(db)).get_trials():
        info = t.system_attrs.get("pbt")
        if t.datetime_start is None or t.datetime_complete is None or not isinstance(info, dict):
            continue
        start, finish = t.datetime_start.timestamp() - t0, t.datetime_complete.timestamp() - t0
        first = int(info.get("start_epoch", min(t.intermediate_values, default=1) - 1))
        last = max(int(info.get("end_epoch", first + 1)), first + 1)
        for step, value in sorted(t.intermediate_values.items()):
            share = min(1.0, max(0.0, (step - first) / (last - first)))
            restored = int(step <= first)  # handed over from the parent's checkpoint
            out.append([start + (finish - start) * share, t.number, step, value, restored])
    return out


def _study_attr(db: Path, key: str) -> Any:
    import dltune

    return dltune.load_study(mnist1d.STUDY, storage=sqlite_url(db)).system_attrs.get(key)


def _spawn(spec: dict[str, Any], stderr: Path) -> subprocess.Popen[str]:
    with stderr.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.multifidelity", "--child", json.dumps(spec)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            cwd=REPO_DIR,
        )


def run_search(
    method: str, seed: int, settings: dict[str, Any], data_dir: Path, work: Path
) -> Search:
    """One method's search for the budget; the clock starts before any process does."""
    budget = settings["budget"]
    tag = f"{method}-{seed}-{time.monotonic_ns()}"
    logs = work / f"{tag}-logs"
    logs.mkdir()
    spec: dict[str, Any] = dict(method=method, seed=seed, epochs=settings["epochs"])
    spec |= dict(budget=budget, data_dir=str(data_dir), logs=str(logs), ckpt=str(logs / "ckpt"))
    spec |= dict(db=str(work / f"{tag}.db"), journal=str(work / f"{tag}.log"))
    spec |= dict(population=settings["pbt_population"], interval=settings["pbt_interval"])
    n_procs = 1  # PBT.run(n_jobs=2) starts its workers
    if method not in OPTUNA_METHODS and method != "pbt":
        import dltune

        dltune.create_study(
            study_name=mnist1d.STUDY, storage=sqlite_url(Path(spec["db"])), direction="maximize"
        )
        n_procs = mnist1d.N_WORKERS
    if method in OPTUNA_METHODS:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(
            study_name=mnist1d.STUDY,
            storage=mnist1d._optuna_storage(spec["journal"]),
            direction="maximize",
        )
        n_procs = mnist1d.N_WORKERS
    spec["t0"] = t0 = time.time()
    stderrs = [work / f"{tag}-{i}.stderr" for i in range(n_procs)]
    procs = [_spawn({**spec, "worker": i}, stderrs[i]) for i in range(n_procs)]
    errors = []
    for proc, path in zip(procs, stderrs, strict=True):
        try:
            code = proc.wait(timeout=max(1.0, t0 + budget + GRACE_SECONDS - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            code = proc.wait()
            errors.append(f"{method} process killed {GRACE_SECONDS:.0f} s after the budget")
        if code != 0:
            errors.append(
                f"{method} process exited with code {code}: "
                + (path.read_text().strip().splitlines() or [""])[-1][:300]
            )
    wall = time.time() - t0
    db = Path(spec["db"])
    trials = []
    try:
        if method in OPTUNA_METHODS:
            trials = mnist1d._optuna_trials(Path(spec["journal"]), t0)
        else:
            trials = mnist1d._dltune_trials(db, t0)
    except Exception as exc:  # a search that never created its study: say so, go on
        errors.append(f"{method}: reading the study failed: {exc!r}"[:300])
    reports: list[list[float]] = []
    resumes = []
    if method == "pbt":
        if trials:
            reports = _pbt_reports(db, t0)
    else:
        reports = [[r[0] - t0, *r[1:]] for r in _read_jsonl(logs, "reports")]
        resumes = [{**r, "t": r["t"] - t0} for r in _read_jsonl(logs, "resumes")]
    pbt_path = logs / "pbt.json"
    pbt = json.loads(pbt_path.read_text()) if pbt_path.exists() else None
    if pbt is not None:  # PBT.run records the best member's schedule in the study
        pbt["schedule"] = _study_attr(db, "pbt_schedule")
    load = os.getloadavg()[0]
    search = Search(method, seed, budget, wall, load, trials, sorted(reports), resumes, errors)
    search.pick = search.choose_pick(pbt)
    return search


# -- retraining ------------------------------------------------------------------------------


def replay_one(job: tuple[list[dict[str, Any]], int, int, str]) -> float | None:
    """Replay a PBT schedule from scratch with ``seed``; the test accuracy (``None``: diverged)."""
    import torch

    from dltune import TrialStopped

    schedule, seed, epochs, data_dir = job
    torch.set_num_threads(1)
    _, replay_schedule = _pbt_api()
    task = mnist1d.make_task(epochs, data_dir, guards=False)
    try:
        result = replay_schedule(task, schedule, seed=seed, evaluate_test=True)
    except TrialStopped:
        return None
    return None if result.test_accuracy is None else float(result.test_accuracy)


def _retrain_job(pick: dict[str, Any], seed: int, epochs: int, data_dir: str) -> tuple[Any, ...]:
    if "schedule" in pick:
        return ("replay", (pick["schedule"], seed, epochs, data_dir))
    return ("train", (pick["params"], seed, epochs, data_dir))


def _run_job(job: tuple[str, Any]) -> float | None:
    kind, args = job
    return replay_one(args) if kind == "replay" else mnist1d.retrain_one(args)


def retrain(searches: list[Search], settings: dict[str, Any], data_dir: Path, log: Log) -> None:
    """Retrain every pick from scratch (PBT: replay its schedule), two processes at a time."""
    seeds, epochs = mnist1d.RETRAIN_SEEDS[: settings["retrain"]], settings["epochs"]
    keys = {
        id(s): [_retrain_job(s.pick, seed, epochs, str(data_dir)) for seed in seeds]
        for s in searches
        if s.pick is not None
    }
    jobs = {json.dumps(job, sort_keys=True): job for group in keys.values() for job in group}
    log(f"{NAME}: retraining {len(jobs)} runs ({len(seeds)} seeds per pick)")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=mnist1d.N_WORKERS, mp_context=context) as pool:
        results = dict(zip(jobs, pool.map(_run_job, jobs.values()), strict=True))
    for s in searches:
        s.test = [results[json.dumps(job, sort_keys=True)] for job in keys.get(id(s), [])]


# -- running ---------------------------------------------------------------------------------


def available(methods: Sequence[str], log: Log) -> list[str]:
    """The methods whose dltune API exists; each missing one is skipped, loudly."""
    out = []
    for method in methods:
        try:
            if method == "asha":
                from dltune.pruners import SuccessiveHalvingPruner  # noqa: F401
            elif method == "bohb":
                from dltune.presets import bohb  # noqa: F401
            elif method == "pbt":
                _pbt_api()
        except ImportError as exc:
            log(f"{NAME}: ***** SKIPPING {method!r}: its dltune API is missing: {exc} *****")
            continue
        out.append(method)
    return out


def rotation(methods: Sequence[str], index: int) -> list[str]:
    """The order for the ``index``-th seed: the list rotated by ``index`` (fair to drift)."""
    k = index % len(methods) if methods else 0
    return list(methods[k:]) + list(methods[:k])


def run_all(settings: dict[str, Any], log: Log) -> tuple[list[Search], list[Search], float]:
    """Pilot (without --mf-target), every method on every seed, the retraining."""
    searches: list[Search] = []
    pilot: list[Search] = []
    target: float | None = settings["target"]
    with work_dir(NAME) as work:
        data_dir = work / "data"
        mnist1d._prepare_data(data_dir)
        if target is None:
            for seed in PILOT_SEEDS:
                log(f"{NAME} pilot: random search, seed {seed}, {settings['budget']:.0f} s")
                pilot.append(run_search("random", seed, settings, data_dir, work))
                log(f"{NAME} pilot: {pilot[-1].summary(None)}")
            target = pilot_target(pilot, PILOT_FRACTION)
            log(f"{NAME} pilot: target validation accuracy {target:.4f}")
        for i in range(settings["seeds"]):
            for place, method in enumerate(rotation(settings["methods"], i)):
                log(f"{NAME} {method:16} seed {i}: searching for {settings['budget']:.0f} s")
                searches.append(run_search(method, i, settings, data_dir, work))
                searches[-1].order = place
                log(f"{NAME} {searches[-1].summary(target)}")
        retrain(searches, settings, data_dir, log)
    return searches, pilot, target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The multi-fidelity benchmark's options."""
    group = parser.add_argument_group("multifidelity")
    q = QUICK
    for option, kind, text in (
        ("budget", float, f"wall seconds per search (default: {BUDGET_SECONDS:.0f}; --quick: "
         f"{q['budget']:.0f})"),
        ("epochs", int, f"max epochs per trial (default: {EPOCHS}; --quick: {q['epochs']})"),
        ("seeds", int, f"seeds per method (default: {N_SEEDS}; --quick: 1)"),
        ("methods", str, f"comma-separated subset of {', '.join(METHODS)} (default: all)"),
        ("retrain-seeds", int, f"retraining seeds per pick, 1-3 (default: {N_RETRAIN}; "
         "--quick: 1)"),
        ("target", float, "validation accuracy for time to target (default: a pilot of random "
         f"search on 3 other seeds; --quick: {q['target']})"),
        ("pbt-population", int, f"PBT members (default: {PBT_POPULATION}; --quick: "
         f"{q['population']})"),
        ("pbt-interval", int, f"PBT epochs between exploit/explore steps (default: "
         f"{PBT_INTERVAL}; --quick: {q['interval']}; at most epochs - 1)"),
    ):  # fmt: skip
        group.add_argument(f"--mf-{option}", type=kind, help=text)
    group.add_argument(
        "--mf-report-only",
        action="store_true",
        help="rebuild the section from the saved raw results, running nothing",
    )
    group.add_argument(
        "--mf-work-dir",
        type=Path,
        default=WORK_DIR,
        help="where the raw results (JSON) go (default: benchmarks/_work)",
    )


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """What to run: the options, else the ``--quick`` values, else the full run's."""
    quick = bool(args.quick)

    def pick(value: Any, full: Any, key: str) -> Any:
        return value if value is not None else QUICK[key] if quick else full

    text = args.mf_methods or ",".join(METHODS)
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise SystemExit(f"--mf-methods={text!r}: unknown {unknown}; valid: {', '.join(METHODS)}")
    epochs = pick(args.mf_epochs, EPOCHS, "epochs")
    settings = {
        "budget": float(pick(args.mf_budget, BUDGET_SECONDS, "budget")),
        "epochs": epochs,
        "seeds": pick(args.mf_seeds, N_SEEDS, "seeds"),
        "retrain": pick(args.mf_retrain_seeds, N_RETRAIN, "retrain"),
        "target": args.mf_target if args.mf_target is not None or not quick else QUICK["target"],
        "methods": methods,
        "pbt_population": pick(args.mf_pbt_population, PBT_POPULATION, "population"),
        # PBT needs an exploit step before the end: shorter intervals for short runs.
        "pbt_interval": max(
            1, min(pick(args.mf_pbt_interval, PBT_INTERVAL, "interval"), epochs - 1)
        ),
        "quick": quick,
    }
    checks = {
        "--mf-budget": settings["budget"] > 0,
        "--mf-epochs": epochs >= 2,
        "--mf-seeds": settings["seeds"] >= 1,
        "--mf-retrain-seeds": 1 <= settings["retrain"] <= len(mnist1d.RETRAIN_SEEDS),
        "--mf-target": settings["target"] is None or 0 < settings["target"] <= 1,
        "--mf-pbt-population": settings["pbt_population"] >= 2,
        "--mf-pbt-interval": args.mf_pbt_interval is None or args.mf_pbt_interval >= 1,
    }
    if bad := [name for name, ok in checks.items() if not ok]:
        shown = {k: v for k, v in settings.items() if k not in ("methods", "quick")}
        raise SystemExit(
            f"{', '.join(bad)}: out of range in {shown}; accepted: budget > 0, epochs >= 2, "
            "seeds >= 1, retrain seeds 1-3, target in (0, 1], population >= 2, interval >= 1"
        )
    return settings


def run(args: argparse.Namespace, command: str, log: Log) -> str:
    """Run the benchmark as ``args`` say (or reload its results); return its section."""
    path = Path(args.mf_work_dir) / f"{NAME}-{'quick' if args.quick else 'last'}.json"
    if args.mf_report_only:
        if not path.exists():
            raise SystemExit(f"no saved results at {path}")
        return report(json.loads(path.read_text()), rebuilt=command)
    info = RunInfo(command)
    settings = settings_from(args)
    requested = settings["methods"]
    settings["methods"] = available(requested, log)
    if not settings["methods"]:
        raise SystemExit(f"{NAME}: none of {requested} can run")
    wall0 = time.perf_counter()
    searches, pilot, target = run_all(settings, log)
    data = {
        "settings": settings,
        "skipped": [m for m in requested if m not in settings["methods"]],
        "target": target,
        "target_origin": "given" if settings["target"] is not None else "pilot",
        "pilot_seeds": list(PILOT_SEEDS),
        "pilot_fraction": PILOT_FRACTION,
        "pilot": [dataclasses.asdict(s) for s in pilot],
        "searches": [dataclasses.asdict(s) for s in searches],
        "retrain_seeds": list(mnist1d.RETRAIN_SEEDS[: settings["retrain"]]),
        "wall_seconds": time.perf_counter() - wall0,
        "optuna": mnist1d._optuna_version(),
        "info": info.lines(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    log(f"{NAME}: raw results in {path}")
    return report(data)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        sys.exit(f"internal entry point; run: python -m benchmarks {NAME}")
