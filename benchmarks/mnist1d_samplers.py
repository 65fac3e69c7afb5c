"""Sampler quality on MNIST-1D: a mixed, conditional space, a fixed trial budget, no pruning.

Issue #4: "A mixed, conditional space where GP-only methods struggle: the trainer's space on
MNIST-1D, with a fixed small epoch budget per trial." Every sampler tunes the 1-D CNN of
:mod:`benchmarks.mnist1d` over the same define-by-run space (its space plus ``momentum`` for SGD
and RMSprop only, ``label_smoothing`` for that loss only) for the same number of trials, one after
another, for several seeds. dltune's samplers get the trainer's guards (a diverged trial is PRUNED
with ``stopped_by``, learned as bad); Optuna's get a NaN for a non-finite loss, which fails the
trial. Each run's pick is retrained once with a fresh seed and scored on the test split. Runs go
two at a time to spawned processes; raw results stay in ``benchmarks/_work/samplers-mnist1d.json``
(``--samplers-mnist1d-report-only`` rebuilds the section from them).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from importlib.metadata import version
from itertools import takewhile
from pathlib import Path
from typing import Any

from benchmarks._common import WORK_DIR
from benchmarks._common import RunInfo
from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import work_dir
from benchmarks.mnist1d import FIXED as MNIST1D_FIXED
from benchmarks.mnist1d import RETRAIN_SEEDS
from benchmarks.mnist1d import TIE
from benchmarks.mnist1d import make_task
from benchmarks.mnist1d import space as base_space
from benchmarks.mnist1d import train_seed

Log = Callable[[str], None]

NAME = "samplers-mnist1d"
N_TRIALS = 40
N_SEEDS = 5
EPOCHS = 3
JOBS = 2
CHECKPOINTS = (10, 20)  # and the budget
RETRAIN_SEED = RETRAIN_SEEDS[0]  # one fresh seed, the same for every pick
#: dltune registry names, and ``optuna-<name>`` for Optuna's samplers.
SAMPLERS = ("tpe", "auto", "random", "optuna-tpe", "optuna-gp")
QUICK_SAMPLERS = ("tpe", "optuna-tpe")
QUICK_TRIALS, QUICK_EPOCHS = 6, 2
OPTUNA_CLASSES = {"tpe": "TPESampler", "gp": "GPSampler", "random": "RandomSampler"}
LABELS = {"tpe": "TPE", "auto": "Auto", "random": "Random", "gp": "GP", "cmaes": "CMA-ES"}
#: The parameters that exist only in some trials; they must not also be fixed.
CONDITIONAL = ("momentum", "label_smoothing")
#: What is not searched: mnist1d's fixed values minus the conditional ones (which the trainer
#: ignores when they do not apply: Adam has no momentum, cross-entropy no smoothing).
FIXED: dict[str, Any] = {k: v for k, v in MNIST1D_FIXED.items() if k not in CONDITIONAL}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def space(trial: Any) -> dict[str, Any]:
    """mnist1d's space plus ``momentum`` (SGD, RMSprop) and ``label_smoothing`` (that loss)."""
    params = base_space(trial)
    if params["optimizer"] in ("sgd", "rmsprop"):
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    if params["loss"] == "label_smoothing":
        params["label_smoothing"] = trial.suggest_float("label_smoothing", 0.01, 0.3)
    return params


def label(name: str) -> str:
    """``optuna-tpe`` -> ``Optuna TPE``, ``tpe`` -> ``dltune TPE``."""
    tool, _, short = name.rpartition("-") if name.startswith("optuna-") else ("", "", name)
    return f"{'Optuna' if tool else 'dltune'} {LABELS.get(short, short)}"


# -- one run (in a worker process) -----------------------------------------------------------


def _train(job: dict[str, Any], params: dict[str, Any], guards: bool, **kw: Any) -> Any:
    from dltune.torch import HParams
    from dltune.torch import train

    task = make_task(job["epochs"], job["data_dir"], guards=guards)
    return train(task, HParams.from_params(params, **FIXED), **kw)


def _timed(job: dict[str, Any], trial: Any, guards: bool, seconds: dict[int, float]) -> float:
    """Train trial's params; keep the seconds the training took in ``seconds``."""
    t0 = time.perf_counter()
    try:
        seed = train_seed(job["seed"], trial.number)
        return float(_train(job, space(trial), guards, seed=seed).value)
    finally:
        seconds[trial.number] = time.perf_counter() - t0


def _dltune_search(job: dict[str, Any], out: dict[str, Any]) -> None:
    import dltune
    from dltune.pruners import NopPruner
    from dltune.samplers import SAMPLERS as REGISTRY

    factory = REGISTRY.get(job["sampler"])
    kwargs = {"n_trials": job["n_trials"]} if job["sampler"] == "auto" else {}
    study = dltune.create_study(
        sampler=factory(seed=job["seed"], **kwargs), pruner=NopPruner(), direction="maximize"
    )
    seconds: dict[int, float] = {}

    def objective(trial: dltune.Trial) -> float:
        return _timed(job, trial, True, seconds)  # TrialStopped: PRUNED with stopped_by

    try:
        study.optimize(objective, n_trials=job["n_trials"])
    finally:
        out["trials"] = [
            _record(t.number, t.outcome, t.value, t.params, seconds.get(t.number))
            for t in study.trials
        ]
        out["notes"] = {k: v for k, v in study.system_attrs.items() if k.startswith("sampler:")}


def _optuna_search(job: dict[str, Any], out: dict[str, Any]) -> None:
    import optuna

    from dltune import TrialStopped

    cls = getattr(optuna.samplers, OPTUNA_CLASSES[job["sampler"].removeprefix("optuna-")])
    study = optuna.create_study(sampler=cls(seed=job["seed"]), direction="maximize")
    seconds: dict[int, float] = {}

    def objective(trial: optuna.Trial) -> float:
        try:
            return _timed(job, trial, False, seconds)
        except TrialStopped as exc:
            # The guards are off, but the trainer still stops at a non-finite loss; a plain
            # trainer's user gets a NaN metric, which Optuna fails the trial for.
            trial.set_user_attr("diverged", str(exc))
            return float("nan")

    try:
        study.optimize(objective, n_trials=job["n_trials"], catch=(Exception,))
    finally:
        out["trials"] = [
            _record(
                t.number,
                "diverged" if "diverged" in t.user_attrs else t.state.name.lower(),
                t.value,
                t.params,
                seconds.get(t.number),
            )
            for t in study.get_trials(deepcopy=False)
        ]


def _record(
    number: int, outcome: str, value: float | None, params: dict[str, Any], seconds: float | None
) -> dict[str, Any]:
    keys = ("number", "outcome", "value", "params", "train_seconds")
    return dict(zip(keys, (number, outcome, value, dict(params), seconds), strict=True))


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One sampler's search for one seed, then its pick retrained once; JSON-ready."""
    from dltune import TrialStopped

    out: dict[str, Any] = {**job, "trials": [], "notes": {}, "error": None, "test": None}
    wall0 = time.perf_counter()
    try:
        if job["sampler"].startswith("optuna-"):
            _optuna_search(job, out)
        else:
            _dltune_search(job, out)
    except Exception as exc:  # reported with the run; the benchmark goes on
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    out["search_seconds"] = time.perf_counter() - wall0
    pick = best_trial(out["trials"], job["n_trials"])
    if pick is not None:
        try:
            result = _train(job, pick["params"], False, seed=RETRAIN_SEED, evaluate_test=True)
            out["test"] = result.test_accuracy
        except TrialStopped:
            out["test"] = None  # the pick diverged with the fresh seed
    out["wall_seconds"] = time.perf_counter() - wall0
    return out


def _init_worker() -> None:
    """One thread for torch and BLAS; Optuna quiet (its per-trial INFO and warnings)."""
    for var in THREAD_VARS:
        os.environ[var] = "1"
    import optuna
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", module="optuna")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# -- planning and running (the parent) -------------------------------------------------------


def available(names: Sequence[str], log: Log) -> list[str]:
    """The names that can run; each dltune name not registered (yet) is skipped, loudly."""
    from dltune.samplers import SAMPLERS as REGISTRY

    out = []
    for name in names:
        if name.startswith("optuna-"):
            if name.removeprefix("optuna-") not in OPTUNA_CLASSES:
                raise SystemExit(
                    f"--samplers-mnist1d-samplers: unknown Optuna sampler {name!r}; valid: "
                    + ", ".join(f"optuna-{k}" for k in OPTUNA_CLASSES)
                )
        elif name not in REGISTRY:
            log(
                f"{NAME}: ***** SKIPPING dltune sampler {name!r}: not registered in "
                f"dltune.samplers.SAMPLERS (registered: {REGISTRY.describe()}) *****"
            )
            continue
        out.append(name)
    return out


def run_all(settings: dict[str, Any], log: Log) -> list[dict[str, Any]]:
    """Every sampler on every seed (seed-major, so load drift hits all alike), 2 at a time."""
    from dltune.torch import load_dataset

    results = []
    with work_dir(NAME) as work:
        data_dir = work / "data"
        load_dataset("mnist1d", data_dir, download=False)  # once, before any run
        common = {k: settings[k] for k in ("n_trials", "epochs")} | {"data_dir": str(data_dir)}
        jobs = [
            {"sampler": name, "seed": seed, **common}
            for seed in range(settings["seeds"])
            for name in settings["samplers"]
        ]
        log(
            f"{NAME}: {len(jobs)} runs of {settings['n_trials']} trials, {settings['epochs']} "
            f"epochs each, on {settings['jobs']} processes"
        )
        wall0 = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(settings["jobs"], initializer=_init_worker) as pool:
            for i, run in enumerate(pool.imap_unordered(run_one, jobs), 1):
                results.append(run)
                elapsed = time.perf_counter() - wall0
                log(f"{NAME} {i}/{len(jobs)} {_run_line(run)} ({elapsed:.0f} s elapsed)")
    return results


def _run_line(run: dict[str, Any]) -> str:
    counts = {o: _count(run, o) for o in ("complete", "diverged", "not_learning", "fail")}
    error = f", ERROR {run['error']}" if run["error"] else ""
    return (
        f"{label(run['sampler'])} seed {run['seed']}: {counts}, {run['wall_seconds']:.0f} s{error}"
    )


# -- statistics ------------------------------------------------------------------------------


def best_trial(trials: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    """The best COMPLETE trial among the first ``n`` (ties: the earliest)."""
    done = [t for t in trials if t["number"] < n and t["outcome"] == "complete"]
    done = [t for t in done if t["value"] is not None and math.isfinite(t["value"])]
    return max(done, key=lambda t: (t["value"], -t["number"]), default=None)


def best_value(run: dict[str, Any], n: int | None = None) -> float:
    """The best validation accuracy within the first ``n`` trials (NaN: none complete)."""
    best = best_trial(run["trials"], run["n_trials"] if n is None else n)
    return float("nan") if best is None else float(best["value"])


def _count(run: dict[str, Any], *outcomes: str) -> int:
    return sum(1 for t in run["trials"] if t["outcome"] in outcomes)


def _overhead(run: dict[str, Any]) -> float:
    """Seconds per trial not spent training: ask, suggest, tell, the sampler's model."""
    trained = sum(t["train_seconds"] or 0.0 for t in run["trials"])
    return float(run["search_seconds"] - trained) / max(len(run["trials"]), 1)


def _finals(runs: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """Each run's best value at the budget by (sampler, seed); no complete trial: -1 (last)."""
    return {(r["sampler"], r["seed"]): _or_low(best_value(r)) for r in runs}


def mean_ranks(runs: list[dict[str, Any]], names: Sequence[str]) -> dict[str, float]:
    """Each sampler's mean over seeds of its rank by best value (1 = best; ties share)."""
    by = _finals(runs)
    seeds = sorted({s for _, s in by if all((n, s) in by for n in names)})
    ranks: dict[str, list[float]] = {n: [] for n in names}
    for seed in seeds:
        values = {n: by[n, seed] for n in names}
        for n in names:
            better = sum(1 for m in names if values[m] > values[n] + TIE)
            tied = sum(1 for m in names if abs(values[m] - values[n]) <= TIE)
            ranks[n].append(better + (tied + 1) / 2)
    return {n: sum(r) / len(r) if r else float("nan") for n, r in ranks.items()}


def _or_low(value: float) -> float:
    return -1.0 if value != value else value  # a run with no complete trial ranks last


def head_to_head(runs: list[dict[str, Any]], a: str, b: str) -> tuple[int, int, int]:
    """Seeds where ``a``'s best value beats, ties and loses to ``b``'s."""
    by = _finals(runs)
    w = t = lo = 0
    for seed in sorted({s for _, s in by}):
        if (a, seed) in by and (b, seed) in by:
            va, vb = by[a, seed], by[b, seed]
            if abs(va - vb) <= TIE:
                t += 1
            elif va > vb:
                w += 1
            else:
                lo += 1
    return w, t, lo


def sign_test(wins: int, losses: int) -> float:
    """The two-sided sign-test p-value of ``wins`` against ``losses`` (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / float(2**n)
    return min(1.0, 2 * tail)


# -- the report ------------------------------------------------------------------------------


def checkpoints(n_trials: int) -> list[int]:
    """The trial counts the best-so-far is shown at: 10, 20 and the budget."""
    return sorted({c for c in CHECKPOINTS if c < n_trials} | {n_trials})


def _med_range(values: list[float], fmt: str = "{:.4f}") -> str:
    done = [v for v in values if v == v]
    if not done:
        return "n/a"
    lost = f", {len(values) - len(done)} none" if len(done) < len(values) else ""
    return f"{fmt.format(median(done))} ({min(done):.3f}–{max(done):.3f}{lost})"


def _share(runs: list[dict[str, Any]], *outcomes: str) -> str:
    total = sum(len(r["trials"]) for r in runs)
    hits = sum(_count(r, *outcomes) for r in runs)
    return f"{100 * hits / total:.0f}% ({hits}/{total})" if total else "n/a"


def _summary_rows(
    runs: list[dict[str, Any]], names: Sequence[str], ranks: dict[str, float]
) -> list[list[str]]:
    rows = []
    for name in sorted(names, key=lambda n: ranks[n]):
        mine = [r for r in runs if r["sampler"] == name]
        n_trials = mine[0]["n_trials"]
        tests = [float("nan") if r["test"] is None else r["test"] for r in mine]
        rows.append(
            [
                label(name),
                f"{ranks[name]:.2f}",
                *(_med_range([best_value(r, c) for r in mine]) for c in checkpoints(n_trials)),
                _med_range(tests),
                _share(mine, "diverged", "fail"),
                _share(mine, "not_learning"),
                f"{median([_overhead(r) for r in mine]):.2f}",
            ]
        )
    return rows


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _median_best(runs: list[dict[str, Any]], name: str) -> float:
    return float(median([best_value(r) for r in runs if r["sampler"] == name]))


def _duel_text(runs: list[dict[str, Any]], a: str, b: str, ranks: dict[str, float]) -> str:
    w, t, lo = head_to_head(runs, a, b)
    diff = _median_best(runs, a) - _median_best(runs, b)
    if ranks[a] < ranks[b] and w > lo:
        word = "**beats**"
    elif ranks[a] > ranks[b] and lo > w:
        word = "**loses to**"
    else:
        word = "does not clearly beat (nor lose to)"
    return (
        f"{label(a)} {word} {label(b)}: mean rank {ranks[a]:.2f} vs {ranks[b]:.2f}, median "
        f"best validation accuracy {100 * diff:+.2f} points, seeds won-tied-lost {w}-{t}-{lo} "
        f"(sign test p = {sign_test(w, lo):.2f})."
    )


def verdict_text(runs: list[dict[str, Any]], names: Sequence[str]) -> str:
    """Which sampler is best, and how dltune's TPE and Auto fare against Optuna's TPE and GP."""
    ranks = mean_ranks(runs, names)
    if not names or all(r != r for r in ranks.values()):
        return "No verdict: no seed has a run of every sampler."
    n_trials = runs[0]["n_trials"]
    best = min(names, key=lambda n: (ranks[n], -_or_low(_median_best(runs, n))))
    lines = [
        f"**Best sampler here: {label(best)}** (mean rank {ranks[best]:.2f} of {len(names)} by "
        f"best validation accuracy after {n_trials} trials)."
    ]
    duels = [
        (a, b)
        for a in ("tpe", "auto")
        for b in ("optuna-tpe", "optuna-gp")
        if a in names and b in names
    ]
    lines += [f"- {_duel_text(runs, a, b, ranks)}" for a, b in duels]
    n = len({r["seed"] for r in runs})
    need = next((k for k in range((n + 1) // 2, n + 1) if sign_test(k, n - k) < 0.1), None)
    split = f"a {need}-{n - need} split of" if need is not None else "no split of"
    lines.append(
        f"Noise: validation accuracy moves in steps of 1/400 = 0.0025, and one seed's search "
        f"varies by more; {split} {_n(n, 'seed')} reaches sign-test p < 0.1, so smaller margins "
        f"are no evidence either way. 'Beats' means a better mean rank and more seeds won than "
        f"lost."
    )
    return "\n".join(lines)


def _auto_text(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for run in sorted((r for r in runs if r["sampler"] == "auto"), key=lambda r: r["seed"]):
        history = run["notes"].get("sampler:auto") or []
        steps = " → ".join(
            f"{h.get('sampler')} from trial {h.get('from_trial')} ({h.get('reason')})"
            for h in history
        )
        lines.append(f"- seed {run['seed']}: {steps or 'no choice recorded'}")
    return ["", "dltune Auto's choices (study system attribute `sampler:auto`):", "", *lines]


def shared_start(runs: list[dict[str, Any]], a: str, b: str) -> list[int]:
    """Per seed, how many first trials ``a``'s run proposed exactly as ``b``'s did."""
    by = {(r["sampler"], r["seed"]): [t["params"] for t in r["trials"]] for r in runs}
    same = [
        takewhile(lambda p: p[0] == p[1], zip(pa, by[b, seed], strict=False))
        for (name, seed), pa in sorted(by.items())
        if name == a and (b, seed) in by
    ]
    return [len(list(s)) for s in same]


def _shared_text(runs: list[dict[str, Any]], names: Sequence[str]) -> list[str]:
    lines = []
    for a, b in (("tpe", "random"), ("auto", "random"), ("auto", "tpe")):
        counts = shared_start(runs, a, b) if a in names and b in names else []
        if any(counts):
            lines.append(
                f"- {label(a)} proposed the same first trials as {label(b)} with the same seed "
                f"(per seed: {', '.join(map(str, counts))} trials): up to there their best-so-far "
                f"values are the same runs, not independent evidence."
            )
    return ["", "Shared starts:", "", *lines] if lines else []


def _pick(run: dict[str, Any]) -> str:
    best = best_trial(run["trials"], run["n_trials"])
    if best is None:
        return "—"
    p = best["params"]
    extra = "".join(f" {k}={p[k]:.2f}" for k in CONDITIONAL if k in p)
    return (
        f"#{best['number']} {p['optimizer']} lr={p['lr']:.2g} bs={p['batch_size']} "
        f"w={p['width']} {p['activation']} {p['init']} {p['loss']} wd={p['weight_decay']:.1g} "
        f"do={p['dropout']:.2f}{extra}"
    )


def _absolute_rows(runs: list[dict[str, Any]], names: Sequence[str]) -> list[list[str]]:
    order = {n: i for i, n in enumerate(names)}
    rows = []
    for r in sorted(runs, key=lambda r: (order.get(r["sampler"], 99), r["seed"])):
        values = [best_value(r, c) for c in checkpoints(r["n_trials"])]
        rows.append(
            [
                label(r["sampler"]),
                str(r["seed"]),
                " / ".join("none" if v != v else f"{v:.4f}" for v in values),
                "—" if r["test"] is None else f"{r['test']:.4f}",
                *(str(_count(r, o)) for o in ("complete", "diverged", "not_learning", "fail")),
                f"{sum(t['train_seconds'] or 0.0 for t in r['trials']):.0f}",
                f"{_overhead(r):.2f}",
                _pick(r) + (f" — ERROR `{r['error']}`" if r["error"] else ""),
            ]
        )
    return rows


def report(data: dict[str, Any], rebuilt: str | None = None) -> str:
    """The Markdown section: the verdict and ranks first, then every run."""
    s, runs = data["settings"], data["runs"]
    names = [n for n in s["samplers"] if any(r["sampler"] == n for r in runs)]
    ranks = mean_ranks(runs, names)
    cps = checkpoints(s["n_trials"])
    lines = [
        f"## Sampler quality on MNIST-1D (mixed, conditional space): {s['n_trials']} trials x "
        f"{_n(s['seeds'], 'seed')}, {_n(s['epochs'], 'epoch')} per trial",
        "",
        *data["info"],
    ]
    if rebuilt:
        lines.append(f"- Section rebuilt from the saved results with `{rebuilt}`")
    if data["skipped"]:
        lines.append(f"- **Skipped (not registered in dltune): {', '.join(data['skipped'])}**")
    lines += ["", "### Which sampler is best", "", verdict_text(runs, names), ""]
    lines += md_table(
        [
            "Sampler",
            "Mean rank (1 = best)",
            *(f"Best val @{c} trials, median (range)" for c in cps),
            "Retrained test of the pick, median (range)",
            "Diverged or failed",
            "Not learning (dltune's guard)",
            "Non-training s per trial",
        ],
        _summary_rows(runs, names, ranks),
    )
    if "auto" in names:
        lines += _auto_text(runs)
    lines += _shared_text(runs, names)
    lines += ["", "### Every run", ""]
    headers = "Sampler|Seed|Best val @{}|Test|Complete|Diverged|Not learning|Failed|Train s|"
    headers += "Other s/trial|Pick"
    cps_text = " / ".join(map(str, cps))
    lines += md_table(headers.format(cps_text).split("|"), _absolute_rows(runs, names))
    lines += ["", _setup_text(s, data["wall_seconds"])]
    return "\n".join(lines)


def _setup_text(s: dict[str, Any], wall: float) -> str:
    return (
        f"Setup: the MNIST-1D task of the `mnist1d` section (3,600 / 400 / 1,000 signals; the "
        f"trainer's 1-D CNN, depth 2, constant learning rate, one torch thread, CPU), "
        f"{_n(s['epochs'], 'epoch')} per trial, {s['n_trials']} trials per run one after "
        f"another, no pruner; seeds 0–{s['seeds'] - 1} (the sampler's seed; trial n trains "
        f"with seed 1000*seed+n whatever the sampler). Space: the `mnist1d` section's (lr log "
        f"[1e-4, 1]; optimizer {{sgd, adam, rmsprop}}; activation {{relu, tanh, gelu, elu, "
        f"leaky_relu}}; loss {{cross_entropy, label_smoothing}}; init {{kaiming, xavier, "
        f"orthogonal}}; batch size {{16, …, 256}}; weight decay log [1e-6, 1e-2]; width {{16, "
        f"32, 48, 64}}; dropout [0, 0.5]) plus momentum [0, 0.99] for sgd and rmsprop only and "
        f"label_smoothing [0.01, 0.3] for that loss only. dltune: `SAMPLERS.get(name)(seed=)` "
        f"(Auto also `n_trials={s['n_trials']}`), `NopPruner`, the trainer's guards on "
        f"(diverged / not learning: PRUNED with `stopped_by`, learned as bad). Optuna "
        f"{version('optuna')}: `TPESampler(seed=)`, `GPSampler(seed=)`, defaults, guards off: "
        f"a non-finite loss returns NaN and fails the trial (Diverged counts only those for "
        f"Optuna). Value: validation accuracy after the last epoch. Rank: per seed by best "
        f"value after {s['n_trials']} trials, averaged. Pick: the best complete trial, "
        f"retrained once with seed {RETRAIN_SEED} (guards off), scored on the test split. "
        f"'Non-training s per trial': the search's wall time minus the training calls "
        f"(sampler, storage, ask/tell). Runs: {s['jobs']} at a time in spawned processes, seed "
        f"by seed; all took {wall / 60:.1f} min. Raw results: `{_file_name(s['quick'])}` in "
        f"`benchmarks/_work`."
    )


# -- entry points ----------------------------------------------------------------------------


def _file_name(quick: bool) -> str:
    return f"{NAME}{'-quick' if quick else ''}.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this benchmark."""
    group = parser.add_argument_group(NAME)
    names = f"{','.join(SAMPLERS)}; --quick: {','.join(QUICK_SAMPLERS)}"
    group.add_argument(
        f"--{NAME}-samplers",
        default=None,
        help=f"dltune registry names and optuna-{{{','.join(OPTUNA_CLASSES)}}} (default: {names})",
    )
    for option, default, text in (
        ("trials", N_TRIALS, f"trials per run (default: %(default)s; --quick: {QUICK_TRIALS})"),
        ("seeds", N_SEEDS, "seeds per sampler (default: %(default)s; --quick: 1)"),
        ("epochs", EPOCHS, f"epochs per trial (default: %(default)s; --quick: {QUICK_EPOCHS})"),
        ("jobs", JOBS, "runs at a time, one process and thread each (default: %(default)s)"),
    ):
        group.add_argument(f"--{NAME}-{option}", type=int, default=default, help=text)
    group.add_argument(
        f"--{NAME}-report-only",
        action="store_true",
        help="rebuild the section from the saved results, running nothing",
    )
    group.add_argument(
        f"--{NAME}-work-dir",
        type=Path,
        default=WORK_DIR,
        help="where the raw results (JSON) are kept (default: benchmarks/_work)",
    )


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """What to run, from the options (``--quick``: 1 seed, 6 trials, 2 epochs, 2 samplers)."""
    quick = bool(args.quick)
    text = args.samplers_mnist1d_samplers
    if text is None:
        text = ",".join(QUICK_SAMPLERS if quick else SAMPLERS)
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    n_trials, seeds = args.samplers_mnist1d_trials, args.samplers_mnist1d_seeds
    epochs, jobs = args.samplers_mnist1d_epochs, args.samplers_mnist1d_jobs
    if quick:
        n_trials, seeds, epochs = QUICK_TRIALS, 1, QUICK_EPOCHS
    if not names or min(n_trials, seeds, epochs, jobs) < 1:
        bad = f"samplers={text!r}, trials={n_trials}, seeds={seeds}, epochs={epochs}, jobs={jobs}"
        raise SystemExit(f"--{NAME}-*: {bad}; a sampler and positive counts are needed")
    return dict(
        samplers=names, n_trials=n_trials, seeds=seeds, epochs=epochs, jobs=jobs, quick=quick
    )


def run(args: argparse.Namespace, command: str, log: Log) -> str:
    """Run the benchmark as ``args`` say (or reload its results); return its section."""
    path = args.samplers_mnist1d_work_dir / _file_name(bool(args.quick))
    if args.samplers_mnist1d_report_only:
        if not path.exists():
            raise SystemExit(f"no saved results at {path}")
        return report(json.loads(path.read_text()), rebuilt=command)
    info = RunInfo(command)
    settings = settings_from(args)
    names = available(settings["samplers"], log)
    skipped = [n for n in settings["samplers"] if n not in names]
    if not names:
        raise SystemExit(f"{NAME}: none of {settings['samplers']} can run")
    wall0 = time.perf_counter()
    runs = run_all({**settings, "samplers": names}, log)
    data = {
        "settings": settings,
        "skipped": skipped,
        "runs": runs,
        "wall_seconds": time.perf_counter() - wall0,
        "info": info.lines(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    log(f"{NAME}: raw results in {path}")
    return report(data)
