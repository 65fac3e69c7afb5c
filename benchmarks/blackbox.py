"""Black-box optimisation on BBOB: dltune's samplers against Optuna 5's, side by side.

Every optimizer gets the same problems (BBOB functions from ``coco-experiment``, instance 1, each
coordinate a ``suggest_float`` over the problem's box [-5, 5]^d), the same budgets and the same
seeds, in one run, through each library's ask/tell API on its own in-memory storage. Runs go
to a pool of worker processes (one numpy/torch thread each) and record their CPU and wall time.

Budget reuse: a sampler whose proposals do not depend on the total budget proposes the same
first 50 trials in a 200-trial run as in a 50-trial run, so one run of the largest budget gives
the regret at every budget (the best value among its first B trials). Only dltune's ``auto``,
which may be told the budget, runs once per budget (with ``n_trials=budget`` when its
constructor takes it).

The cost part times ask + suggests + tell per trial at fixed history sizes on a 10-D problem,
dltune against the same Optuna sampler.

``python -m benchmarks blackbox --help`` lists the options; the raw results are kept in
``benchmarks/_work/blackbox-*.json`` so the report can be rebuilt with
``--blackbox-report-only``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import inspect
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._blackbox_report import COST_POINTS
from benchmarks._blackbox_report import OPTUNA_CLASSES
from benchmarks._blackbox_report import report
from benchmarks._common import REPO_DIR
from benchmarks._common import WORK_DIR
from benchmarks._common import RunInfo

Log = Callable[[str], None]

FUNCTIONS = (1, 8, 10, 15, 17, 20, 21, 24)
DIMS = (2, 5, 10)
BUDGETS = (50, 100, 200)
N_SEEDS = 5
INSTANCE = 1
DLTUNE_SAMPLERS = ("tpe", "gp", "cmaes", "auto")
OPTUNA_SAMPLERS = ("tpe", "gp", "cmaes", "random")
BUDGET_AWARE = ("auto",)  # dltune samplers told the budget: one run per budget
AUTO_NOTE = "sampler:auto"  # where dltune's auto records its choices on the study
COST_FUNCTION, COST_DIM = 8, 10
COST_WINDOW = 5  # the cost at history size k: mean over trials k-5 .. k+5
COST_REPEATS = 2
JOBS = 2
QUICK_FUNCTIONS, QUICK_DIMS, QUICK_BUDGETS = (1, 8), (2,), (50,)
QUICK_COST_POINTS, QUICK_COST_WINDOW = (20, 40), 2
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Rough CPU seconds per trial, only to start the longest runs first (better packing).
_COST_GUESS = {("optuna", "gp"): 0.2, ("dltune", "gp"): 0.1, ("dltune", "auto"): 0.1}


# -- f_opt (a child process, in a scratch directory) -----------------------------------------


def _suite(functions: Sequence[int], dims: Sequence[int]) -> Any:
    import cocoex  # type: ignore[import-untyped]  # ships no type information

    cocoex.log_level("warning")  # no "COCO INFO: ..." lines
    ids = ",".join(map(str, functions))
    options = f"function_indices:{ids} dimensions:{','.join(map(str, dims))} "
    return cocoex.Suite("bbob", "", options + f"instance_indices:{INSTANCE}")


def fopt_main(spec_json: str) -> None:
    """Print f_opt of every problem as JSON, with f at the problem's known optimum as a check.

    f_opt is read from the header of the log that COCO's ``bbob`` observer writes ("best
    noise-free fitness - Fopt (…)"): cocoex 2.8 exposes no attribute for it. The check
    evaluates the problem (unobserved) at the optimum that ``Problem._best_parameter("print")``
    writes to ``._bbob_problem_best_parameter.txt`` in the working directory (a scratch one).
    """
    import cocoex
    import numpy as np

    spec = json.loads(spec_json)
    os.chdir(spec["dir"])
    observer = cocoex.Observer("bbob", f"result_folder: fopt outer_folder: {spec['dir']}")
    for problem in _suite(spec["functions"], spec["dims"]):
        problem.observe_with(observer)
        problem(np.zeros(problem.dimension))  # one evaluation makes the observer write its log
        problem.free()
    del observer
    out = []
    for problem in _suite(spec["functions"], spec["dims"]):
        f, d = problem.id_function, problem.dimension
        (path,) = glob.glob(f"{spec['dir']}/fopt/**/*_f{f}_DIM{d}.dat", recursive=True)
        with open(path) as log:
            match = re.search(r"Fopt \(([^)]+)\)", log.readline())
        if match is None:
            raise RuntimeError(f"no 'Fopt (…)' in the header of {path}")
        fopt = float(match.group(1))
        try:
            problem._best_parameter("print")
            x_opt = np.atleast_1d(np.loadtxt("._bbob_problem_best_parameter.txt"))
            f_at_opt: float | None = float(problem(x_opt))
        except Exception:  # a private API: the check is skipped (and says so) if it moved
            f_at_opt = None
        out.append({"function": f, "dim": d, "fopt": fopt, "f_at_optimum": f_at_opt})
    print(json.dumps(out))


def compute_fopt(functions: Sequence[int], dims: Sequence[int]) -> list[dict[str, Any]]:
    """f_opt of each (function, dim), from a child process working in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="dltune-bbob-fopt-") as scratch:
        spec = json.dumps({"functions": list(functions), "dims": list(dims), "dir": scratch})
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.blackbox", "--fopt", spec],
            capture_output=True,
            text=True,
            cwd=REPO_DIR,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"computing f_opt failed:\n{done.stderr[-3000:]}")
    table: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    for row in table:
        check = row["f_at_optimum"]
        if check is not None and abs(check - row["fopt"]) > 1e-9 * max(1.0, abs(row["fopt"])):
            raise RuntimeError(f"f_opt from the observer disagrees with f(x_opt): {row}")
    return table


# -- one run (in a worker process) -----------------------------------------------------------

_PROBLEMS: dict[tuple[int, int], Any] = {}


def _problem(function: int, dim: int) -> Any:
    if (function, dim) not in _PROBLEMS:
        suite = _suite([function], [dim])
        _PROBLEMS[function, dim] = (suite, suite[0])  # the suite owns the problem: keep both
    return _PROBLEMS[function, dim][1]


def _dltune_study(name: str, seed: int, told_budget: int | None) -> Any:
    import dltune
    from dltune.pruners import NopPruner
    from dltune.samplers import SAMPLERS

    factory = SAMPLERS.get(name)
    sampler = (
        factory(seed=seed) if told_budget is None else factory(seed=seed, n_trials=told_budget)
    )
    return dltune.create_study(sampler=sampler, pruner=NopPruner(), direction="minimize")


def _optuna_study(name: str, seed: int) -> Any:
    import optuna

    sampler = getattr(optuna.samplers, OPTUNA_CLASSES[name])(seed=seed)
    return optuna.create_study(sampler=sampler, direction="minimize")


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """One optimizer run on one problem; the trial values and CPU time per ask + tell."""
    import numpy as np

    problem = _problem(task["function"], task["dim"])
    lower, upper = problem.lower_bounds.tolist(), problem.upper_bounds.tolist()
    values: list[float] = []
    trial_cpu: list[float] = []
    error = None
    study: Any = None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        if task["tool"] == "dltune":
            study = _dltune_study(task["sampler"], task["seed"], task["told_budget"])
        else:
            study = _optuna_study(task["sampler"], task["seed"])
        for _ in range(task["n_trials"]):
            t0 = time.process_time()
            trial = study.ask()
            x = [
                trial.suggest_float(f"x{i}", lo, hi)
                for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))
            ]
            t1 = time.process_time()
            value = float(problem(np.asarray(x)))  # not timed: the objective
            t2 = time.process_time()
            study.tell(trial, value)
            trial_cpu.append(round(time.process_time() - t2 + t1 - t0, 7))
            values.append(value)
    except Exception as exc:  # reported with the run; the benchmark goes on
        error = f"{type(exc).__name__}: {exc}"[:500]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    choices = _auto_choices(study) if task["tool"] == "dltune" and study is not None else None
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    return {
        **task,
        "values": values,
        "trial_cpu": trial_cpu,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "error": error,
        "torch_threads": torch_threads,
        "auto_choices": choices,
    }


def _auto_choices(study: Any) -> list[dict[str, Any]] | None:
    """The choices dltune's ``auto`` recorded on the study (``None`` for other samplers)."""
    try:
        log = study.system_attrs.get(AUTO_NOTE)
    except Exception:  # the samplers are young: the benchmark must not depend on this
        return None
    return log if isinstance(log, list) else None


def _init_worker(optimizers: list[tuple[str, str]]) -> None:
    """One thread per library; silence Optuna; warm every optimizer up so runs time no imports.

    Never raises: a pool whose initializer fails restarts its workers forever.
    """
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if ("optuna", "gp") in optimizers and importlib.util.find_spec("torch") is not None:
            import torch

            torch.set_num_threads(1)
            torch.set_num_interop_threads(1)
        for tool, name in optimizers:
            run_task(_task("regret", tool, name, 1, 2, 0, 12, None))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    except Exception as exc:  # the runs then fail (or not) on their own, and say why
        print(f"blackbox worker setup: {type(exc).__name__}: {exc}", file=sys.stderr)


def _task(
    kind: str, tool: str, name: str, function: int, dim: int, seed: int, n: int, told: int | None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "tool": tool,
        "sampler": name,
        "function": function,
        "dim": dim,
        "seed": seed,
        "n_trials": n,
        "told_budget": told,
    }


# -- planning and running --------------------------------------------------------------------


def accepts_n_trials(name: str) -> bool:
    """Whether dltune's sampler ``name`` takes ``n_trials`` (the budget) in its constructor."""
    from dltune.samplers import SAMPLERS

    try:
        return "n_trials" in inspect.signature(SAMPLERS.get(name)).parameters
    except (TypeError, ValueError):
        return False


def plan_regret(settings: dict[str, Any], told: dict[str, bool]) -> list[dict[str, Any]]:
    """The regret runs: one of the largest budget per optimizer, except budget-told samplers."""
    tasks = []
    top = max(settings["budgets"])
    for f in settings["functions"]:
        for d in settings["dims"]:
            for seed in range(settings["seeds"]):
                for tool, name in settings["optimizers"]:
                    if tool == "dltune" and told.get(name, False):
                        for b in settings["budgets"]:
                            tasks.append(_task("regret", tool, name, f, d, seed, b, b))
                    else:
                        tasks.append(_task("regret", tool, name, f, d, seed, top, None))
    return tasks


def plan_cost(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The cost runs: each sampler both libraries have, long enough for its last window."""
    tasks = []
    for name, points in settings["cost_points"].items():
        n = max(points) + settings["cost_window"] + 1
        for seed in range(settings["cost_repeats"]):
            for tool in ("dltune", "optuna"):
                tasks.append(_task("cost", tool, name, COST_FUNCTION, COST_DIM, seed, n, None))
    return tasks


def _guess(task: dict[str, Any]) -> float:
    per_trial = _COST_GUESS.get((task["tool"], task["sampler"]), 0.005)
    return float(per_trial * task["n_trials"] * (1 + task["n_trials"] / 400) * task["dim"] ** 0.3)


def execute(
    tasks: list[dict[str, Any]], jobs: int, log: Log
) -> tuple[list[dict[str, Any]], float]:
    """Run the tasks in a pool of ``jobs`` spawned processes, longest first; results, wall s."""
    optimizers = sorted({(t["tool"], t["sampler"]) for t in tasks})
    ordered = sorted(tasks, key=_guess, reverse=True)
    results = []
    wall0 = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_init_worker, initargs=(optimizers,)) as pool:
        for i, result in enumerate(pool.imap_unordered(run_task, ordered), 1):
            results.append(result)
            status = f"ERROR {result['error']}" if result["error"] else "ok"
            log(
                f"blackbox {i}/{len(ordered)} {result['kind']} {result['tool']} "
                f"{result['sampler']} f{result['function']} {result['dim']}-D seed "
                f"{result['seed']} n={result['n_trials']}: {result['cpu_seconds']:.1f} s CPU, "
                f"{status} ({time.perf_counter() - wall0:.0f} s elapsed)"
            )
    return results, time.perf_counter() - wall0


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _ints(text: str, option: str, allowed: Sequence[int] | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise SystemExit(f"{option}={text!r} must be comma-separated integers") from None
    bad = [v for v in values if (v < 1 if allowed is None else v not in allowed)]
    if not values or bad:
        accepted = "positive integers" if allowed is None else f"some of {list(allowed)}"
        raise SystemExit(f"{option}={text!r}: {bad or 'empty'}; accepted: {accepted}")
    return values


def _names(text: str, option: str, valid: Callable[[str], str]) -> tuple[str, ...]:
    names = []
    for raw in (s.strip() for s in text.split(",")):
        if raw:
            try:
                names.append(valid(raw))
            except Exception as exc:
                raise SystemExit(f"{option}={text!r}: {exc}") from None
    return tuple(names)


def _optuna_name(name: str) -> str:
    key = name.lower()
    if key not in OPTUNA_CLASSES:
        raise ValueError(
            f"unknown Optuna sampler {name!r}; valid names: {', '.join(OPTUNA_CLASSES)}"
        )
    return key


def _dltune_name(name: str) -> str:
    from dltune.samplers import SAMPLERS

    try:
        return SAMPLERS.canonical(name)
    except Exception as exc:
        raise ValueError(
            f"{exc} (until the model-based samplers land: --blackbox-samplers random,qmc)"
        ) from None


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """What to run, from the options (``--quick`` shrinks the problems and budgets)."""
    dltune_names = _names(args.blackbox_samplers, "--blackbox-samplers", _dltune_name)
    optuna_names = _names(
        args.blackbox_optuna_samplers, "--blackbox-optuna-samplers", _optuna_name
    )
    if not dltune_names and not optuna_names:
        raise SystemExit("--blackbox-samplers and --blackbox-optuna-samplers are both empty")
    functions = _ints(args.blackbox_functions, "--blackbox-functions", range(1, 25))
    dims = _ints(args.blackbox_dims, "--blackbox-dims", (2, 3, 5, 10, 20, 40))
    budgets = tuple(sorted(_ints(args.blackbox_budgets, "--blackbox-budgets")))
    seeds, jobs, repeats = args.blackbox_seeds, args.blackbox_jobs, args.blackbox_cost_repeats
    if seeds < 1 or jobs < 1 or repeats < 1:
        raise SystemExit(
            f"--blackbox-seeds={seeds!r}, --blackbox-jobs={jobs!r} and "
            f"--blackbox-cost-repeats={repeats!r} must be positive"
        )
    points, window = dict(COST_POINTS), COST_WINDOW
    if args.quick:
        functions, dims, budgets, seeds = QUICK_FUNCTIONS, QUICK_DIMS, QUICK_BUDGETS, 1
        points = {name: QUICK_COST_POINTS for name in points}
        window, repeats = QUICK_COST_WINDOW, 1
    optimizers = [("dltune", n) for n in dltune_names] + [("optuna", n) for n in optuna_names]
    cost_points = {n: p for n, p in points.items() if n in dltune_names and n in optuna_names}
    return {
        "functions": list(functions),
        "dims": list(dims),
        "budgets": list(budgets),
        "seeds": seeds,
        "jobs": jobs,
        "optimizers": optimizers,
        "cost_points": {n: list(p) for n, p in cost_points.items()},
        "cost_window": window,
        "cost_repeats": repeats,
        "quick": bool(args.quick),
    }


def _part_path(work: Path, part: str, quick: bool) -> Path:
    return work / f"blackbox-{'quick-' if quick else ''}{part}.json"


def run_part(part: str, settings: dict[str, Any], command: str, log: Log) -> dict[str, Any]:
    """Run the regret or the cost part; everything its report needs, as JSON-ready data."""
    info = RunInfo(command)
    told = {
        name: accepts_n_trials(name)
        for tool, name in settings["optimizers"]
        if tool == "dltune" and name in BUDGET_AWARE
    }
    fopt: list[dict[str, Any]] = []
    if part == "regret":
        fopt = compute_fopt(settings["functions"], settings["dims"])
        tasks = plan_regret(settings, told)
    else:
        fopt = compute_fopt([COST_FUNCTION], [COST_DIM])
        tasks = plan_cost(settings)
    log(f"blackbox {part}: {len(tasks)} runs on {settings['jobs']} processes")
    cpu0 = time.process_time()
    runs, wall = execute(tasks, settings["jobs"], log) if tasks else ([], 0.0)
    return {
        "part": part,
        "settings": settings,
        "told_budget": told,
        "fopt": fopt,
        "runs": runs,
        "wall_seconds": wall,
        "parent_cpu_seconds": time.process_time() - cpu0,
        "greenlet": importlib.util.find_spec("greenlet") is not None,
        "info": info.lines(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The black-box benchmark's options."""
    group = parser.add_argument_group("blackbox")
    group.add_argument(
        "--blackbox-functions",
        default=",".join(map(str, FUNCTIONS)),
        help="BBOB function numbers (default: %(default)s; --quick: 1,8)",
    )
    group.add_argument(
        "--blackbox-dims",
        default=",".join(map(str, DIMS)),
        help="dimensions (default: %(default)s; --quick: 2)",
    )
    group.add_argument(
        "--blackbox-budgets",
        default=",".join(map(str, BUDGETS)),
        help="trial budgets (default: %(default)s; --quick: 50)",
    )
    group.add_argument(
        "--blackbox-seeds",
        type=int,
        default=N_SEEDS,
        help="seeds per optimizer and problem (default: %(default)s; --quick: 1)",
    )
    group.add_argument(
        "--blackbox-samplers",
        default=",".join(DLTUNE_SAMPLERS),
        help="dltune samplers by registry name, '' for none (default: %(default)s)",
    )
    group.add_argument(
        "--blackbox-optuna-samplers",
        default=",".join(OPTUNA_SAMPLERS),
        help=f"Optuna samplers, of {','.join(OPTUNA_CLASSES)}; '' for none (default: %(default)s)",
    )
    group.add_argument(
        "--blackbox-jobs",
        type=int,
        default=JOBS,
        help="worker processes, one thread each (default: %(default)s)",
    )
    group.add_argument(
        "--blackbox-part",
        choices=("both", "regret", "cost"),
        default="both",
        help="what to measure; the section shows the other part's last saved results "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--blackbox-cost-repeats",
        type=int,
        default=COST_REPEATS,
        help="seeds of each cost run (default: %(default)s; --quick: 1)",
    )
    group.add_argument(
        "--blackbox-report-only",
        action="store_true",
        help="rebuild the section from the saved results, running nothing",
    )
    group.add_argument(
        "--blackbox-work-dir",
        type=Path,
        default=WORK_DIR,
        help="where the raw results (JSON) are kept (default: benchmarks/_work)",
    )


def run(args: argparse.Namespace, command: str, log: Log) -> str:
    """Run the benchmark as ``args`` say; return its RESULTS.md section."""
    work: Path = args.blackbox_work_dir
    paths = {part: _part_path(work, part, bool(args.quick)) for part in ("regret", "cost")}
    if not args.blackbox_report_only:
        settings = settings_from(args)
        parts = ("regret", "cost") if args.blackbox_part == "both" else (args.blackbox_part,)
        for part in parts:
            data = run_part(part, settings, command, log)
            _save(paths[part], data)
            log(f"blackbox {part}: raw results in {paths[part]}")
    regret, cost = _load(paths["regret"]), _load(paths["cost"])
    if regret is None and cost is None:
        raise SystemExit(f"no saved results in {work} (looked for {paths['regret'].name})")
    rebuilt = command if args.blackbox_report_only else None
    return report(regret, cost, rebuilt)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fopt":
        fopt_main(sys.argv[2])
    else:
        sys.exit("internal entry point; run: python -m benchmarks blackbox")
