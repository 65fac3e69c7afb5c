"""Do diverged trials help the sampler? A training-like surface where a region diverges.

A stand-in for tuning a network: the optimizer (sgd, adam, rmsprop), a log-scaled learning rate,
momentum (sgd only: a conditional space), weight decay and batch size. Each optimizer diverges
above its own learning-rate limit (higher with larger batches, lower with more momentum), and its
best learning rate sits a factor 4 below that limit: the good region borders the diverging one,
as in real training. A diverged trial is what each tool's user gets:

* dltune: the trainer's guard raises ``TrialStopped(kind="diverged")``; the sampler learns the
  region as bad (``learn_from_bad=True``, the default) or, for the comparison, ignores it.
* Optuna: the loss is NaN, so the objective returns NaN and the trial FAILs (Optuna's samplers
  ignore failed trials); or, more carefully, the user raises ``TrialPruned`` (a pruned trial
  with no reports, which Optuna's TPE ranks last).

Reported: the share of trials that diverged (compute thrown away) and the median best error at
30, 60 and 100 trials over the seeds. Seconds per run are in the thousandths: the surface costs
nothing, so this measures only where the samplers look.
"""

from __future__ import annotations

import argparse
import logging
import math
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._common import RunInfo
from benchmarks._common import md_table
from benchmarks._common import verdict

CHECKPOINTS = (30, 60, 100)
#: The learning-rate limit of each optimizer at batch size 64 (and no momentum for sgd).
LR_LIMIT = {"sgd": 1.0, "adam": 0.02, "rmsprop": 0.005}
#: The error each optimizer reaches at its best settings.
BASE_ERROR = {"sgd": 0.040, "adam": 0.050, "rmsprop": 0.060}


class Diverged(Exception):
    """The surface's 'loss is NaN'."""


def surface(params: dict[str, Any]) -> float:
    """The validation error of a configuration, or :class:`Diverged`."""
    opt = params["optimizer"]
    lr, wd, bs = params["lr"], params["weight_decay"], params["batch_size"]
    momentum = params.get("momentum", 0.0)
    limit = LR_LIMIT[opt] * math.sqrt(bs / 64) * (1.0 - momentum if opt == "sgd" else 1.0)
    if lr > limit:
        raise Diverged
    error = BASE_ERROR[opt]
    error += 0.03 * (math.log10(lr) - math.log10(limit / 4)) ** 2
    error += 0.01 * (math.log10(wd) + 4.0) ** 2
    error += 0.004 * (math.log2(bs) - 6.0) ** 2
    if opt == "sgd":
        error += 0.2 * (momentum - 0.9) ** 2
    # a little evaluation noise, fixed per configuration
    key = zlib.crc32(repr(sorted(params.items())).encode())
    return error + 0.002 * np.random.default_rng(key).standard_normal()


def suggest_all(trial: Any) -> dict[str, Any]:
    """The space, through an Optuna-compatible ``trial`` (dltune's and Optuna's agree)."""
    params: dict[str, Any] = {
        "optimizer": trial.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop"]),
        "lr": trial.suggest_float("lr", 1e-5, 10.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
        "batch_size": trial.suggest_int("batch_size", 16, 512, log=True),
    }
    if params["optimizer"] == "sgd":
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    return params


def _run_dltune(name: str, seed: int, n_trials: int) -> list[float | None]:
    import dltune
    from dltune.samplers import SAMPLERS

    kwargs: dict[str, Any] = {}
    kind = name
    if name == "tpe (ignores diverged)":
        kind, kwargs = "tpe", {"learn_from_bad": False}
    sampler = SAMPLERS.get(kind)(seed=seed, **kwargs)

    def objective(trial: dltune.Trial) -> float:
        try:
            return surface(suggest_all(trial))
        except Diverged:
            raise dltune.TrialStopped("loss is NaN", kind="diverged") from None

    study = dltune.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return [t.value for t in study.trials]


def _run_optuna(name: str, seed: int, n_trials: int) -> list[float | None]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if name == "Optuna Random"
        else optuna.samplers.TPESampler(seed=seed)
    )
    prune = name.endswith("(prunes)")

    def objective(trial: optuna.Trial) -> float:
        try:
            return surface(suggest_all(trial))
        except Diverged:
            if prune:
                raise optuna.TrialPruned() from None
            return math.nan

    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("optuna").setLevel(logging.ERROR)
        study.optimize(objective, n_trials=n_trials)
    return [t.value for t in study.trials]


RUNNERS: dict[str, Callable[[str, int, int], list[float | None]]] = {
    "tpe": _run_dltune,
    "tpe (ignores diverged)": _run_dltune,
    "auto": _run_dltune,
    "random": _run_dltune,
    "Optuna TPE (NaN: FAIL)": _run_optuna,
    "Optuna TPE (prunes)": _run_optuna,
    "Optuna Random": _run_optuna,
}


def _best_at(values: list[float | None], n: int) -> float:
    done = [v for v in values[:n] if v is not None and math.isfinite(v)]
    return min(done) if done else math.inf


def run_all(seeds: int, n_trials: int, log: Any) -> dict[str, list[list[float | None]]]:
    """Every runner on every seed; the trials' values (``None`` or NaN: diverged)."""
    out: dict[str, list[list[float | None]]] = {}
    for name, runner in RUNNERS.items():
        log(f"divergence: {name}")
        out[name] = [runner(name, seed, n_trials) for seed in range(seeds)]
    return out


def report(results: dict[str, list[list[float | None]]], n_trials: int, info: RunInfo) -> str:
    """The RESULTS.md section."""
    points = [n for n in CHECKPOINTS if n <= n_trials]
    rows = []
    summary: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        diverged = [
            sum(v is None or not math.isfinite(v) for v in values) / len(values) for values in runs
        ]
        best = [float(np.median([_best_at(v, n) for v in runs])) for n in points]
        summary[name] = (float(np.mean(diverged)), best[-1])
        rows.append([name, f"{100 * np.mean(diverged):.0f}%", *[f"{b:.4f}" for b in best]])
    learn, ignore = summary["tpe"], summary["tpe (ignores diverged)"]
    helps = learn[0] < ignore[0] and learn[1] <= ignore[1]
    lines = [
        "## Diverged trials as information (`benchmarks/divergence.py`)",
        "",
        *info.lines(),
        f"- {len(next(iter(results.values())))} seeds x {n_trials} trials per sampler on a "
        "training-like surface (optimizer, lr, momentum for sgd, weight decay, batch size) "
        "whose best learning rate sits 4x below the rate where training diverges.",
        "",
        f"**Learning diverged trials as bad helps: {verdict(helps)}** — dltune TPE wasted "
        f"{100 * learn[0]:.0f}% of its trials on diverging configurations and reached a median "
        f"best error of {learn[1]:.4f}; the same sampler ignoring them wasted "
        f"{100 * ignore[0]:.0f}% and reached {ignore[1]:.4f}.",
        "",
        *md_table(
            ["sampler", "trials diverged", *[f"median best error @{n}" for n in points]], rows
        ),
        "",
        "Optuna (NaN: FAIL) is what the loss going NaN gives an Optuna user: the failed trial is "
        "ignored by the sampler. Optuna (prunes) raises TrialPruned instead, which Optuna's TPE "
        "ranks last: the same idea, left to the user.",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The divergence benchmark's options."""
    group = parser.add_argument_group("divergence")
    group.add_argument(
        "--divergence-seeds", type=int, default=10, help="seeds (default: %(default)s)"
    )
    group.add_argument(
        "--divergence-trials", type=int, default=100, help="trials per run (default: %(default)s)"
    )


def run(args: argparse.Namespace, command: str, log: Any) -> str:
    """Run the benchmark as ``args`` say; return its RESULTS.md section."""
    info = RunInfo(command)
    seeds, n_trials = args.divergence_seeds, args.divergence_trials
    if args.quick:
        seeds, n_trials = 2, 30
    return report(run_all(seeds, n_trials, log), n_trials, info)
