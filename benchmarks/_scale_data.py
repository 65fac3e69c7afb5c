"""The scale benchmark's study: generated fast, bulk-inserted into dltune's and Optuna's tables.

A 100,000-trial study written one API call at a time would take hours, so the benchmark writes
the rows straight into each tool's tables (SQLAlchemy executemany on SQLite, COPY on
PostgreSQL), encoded with the tools' own codecs, in the order a real run would have written
them (8 workers: trials interleave, reports land as they happen). :func:`check_dltune_twins`
and :func:`check_optuna_twins` then prove that what was inserted is what the public API would
have stored: a sample of trials is also written through each tool's API, and the two copies
must match row for row (dltune) and trial for trial, read back through the public API.
"""

from __future__ import annotations

import datetime
import heapq
import json
import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_LIMIT = {"adam": 0.05, "sgd": 1.0, "rmsprop": 0.02}
#: (name, kind, low, high, log, step) of the 20 parameters; momentum only when the optimizer is
#: sgd (the conditional parameter).
PARAMS: tuple[tuple[str, str, Any, Any, bool, Any], ...] = (
    ("optimizer", "cat", OPTIMIZERS, None, False, None),
    ("lr", "float", 1e-5, 1e-1, True, None),
    ("weight_decay", "float", 1e-6, 1e-2, True, None),
    ("momentum", "float", 0.0, 0.99, False, None),
    ("batch_size", "int", 16, 512, True, 1),
    ("n_layers", "int", 1, 8, False, 1),
    ("width", "int", 32, 1024, False, 32),
    ("dropout", "float", 0.0, 0.5, False, None),
    ("label_smoothing", "float", 0.0, 0.2, False, 0.01),
    ("warmup_epochs", "int", 0, 5, False, 1),
    ("activation", "cat", ("relu", "gelu", "silu", "tanh"), None, False, None),
    ("norm", "cat", ("batch", "layer", "none"), None, False, None),
    ("scheduler", "cat", ("cosine", "step", "plateau"), None, False, None),
    ("use_bias", "cat", (True, False), None, False, None),
    ("beta1", "float", 0.8, 0.99, False, None),
    ("beta2", "float", 0.9, 0.9999, False, None),
    ("grad_clip", "float", 0.1, 10.0, True, None),
    ("init_scale", "float", 0.01, 10.0, True, None),
    ("ema_decay", "float", 0.9, 0.9999, False, None),
    ("kernel_size", "int", 3, 7, False, 2),
)
N_WORKERS = 8
_ORIGIN = datetime.datetime(2026, 1, 5, 9, 0, 0).timestamp()


def distributions() -> dict[str, Any]:
    """dltune's distributions of the 20 parameters."""
    from dltune.space import CategoricalDistribution
    from dltune.space import FloatDistribution
    from dltune.space import IntDistribution

    out: dict[str, Any] = {}
    for name, kind, low, high, log, step in PARAMS:
        if kind == "cat":
            out[name] = CategoricalDistribution(low)
        elif kind == "float":
            out[name] = FloatDistribution(low, high, log=log, step=step)
        else:
            out[name] = IntDistribution(low, high, log=log, step=step)
    return out


@dataclass
class ScaleStudy:
    """A generated study, column by column (trial ``i`` has number ``i``).

    Attributes:
        internal: ``(n, 20)`` internal parameter values (NaN: the parameter is absent).
        curves: ``(n, n_steps)`` reported values (NaN where a diverged trial blew up).
        n_run: Steps each trial reported.
        states: ``'COMPLETE'``, ``'PRUNED'`` or ``'FAIL'`` per trial.
        start, complete: Epoch seconds, as dltune stores them.
        step_seconds: Seconds per step of each trial (for the order rows are written in).
        reasons, stopped_by, workers: System attributes per trial (``None``: not set).
    """

    n_steps: int
    internal: np.ndarray
    curves: np.ndarray
    n_run: np.ndarray
    states: list[str]
    start: list[float]
    complete: list[float]
    step_seconds: np.ndarray
    reasons: list[str | None]
    stopped_by: list[str | None]
    workers: list[str]

    @property
    def n_trials(self) -> int:
        """How many trials the study has."""
        return len(self.states)

    def value(self, i: int) -> float | None:
        """Trial ``i``'s objective value (its last report) if it is COMPLETE."""
        return float(self.curves[i, self.n_run[i] - 1]) if self.states[i] == "COMPLETE" else None

    def outcomes(self) -> dict[str, int]:
        """Trials per outcome (complete, pruned, diverged, fail)."""
        out: dict[str, int] = {}
        for state, stopped in zip(self.states, self.stopped_by, strict=True):
            key = "diverged" if stopped == "diverged" else state.lower()
            out[key] = out.get(key, 0) + 1
        return out


def _api_epoch(seconds: float) -> float:
    """What dltune stores for a datetime made from ``seconds`` (microsecond resolution)."""
    return datetime.datetime.fromtimestamp(seconds).timestamp()


def _draw(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 20)`` internal values: category indices, floats, ints on their grids."""
    x = np.full((n, len(PARAMS)), np.nan)
    for j, (_, kind, low, high, log, step) in enumerate(PARAMS):
        if kind == "cat":
            x[:, j] = rng.integers(0, len(low), n)
        elif kind == "int":
            if log:
                x[:, j] = np.clip(
                    np.round(np.exp(rng.uniform(np.log(low), np.log(high), n))), low, high
                )
            else:
                x[:, j] = low + step * rng.integers(0, (high - low) // step + 1, n)
        elif log:
            x[:, j] = np.exp(rng.uniform(np.log(low), np.log(high), n))
        elif step is not None:
            x[:, j] = np.round(step * rng.integers(0, round((high - low) / step) + 1, n), 10)
        else:
            x[:, j] = rng.uniform(low, high, n)
    x[:, 3] = np.where(x[:, 0] == 1.0, x[:, 3], np.nan)  # momentum only with sgd
    return x


def generate(n_trials: int, n_steps: int = 50, seed: int = 0) -> ScaleStudy:
    """A training-like study: complete, pruned, diverged (NaN) and failed trials."""
    if n_steps < 10:
        raise ValueError(f"n_steps={n_steps!r} must be at least 10")
    rng = np.random.default_rng(seed)
    x = _draw(rng, n_trials)
    col = {name: j for j, (name, *_) in enumerate(PARAMS)}
    opt = x[:, col["optimizer"]].astype(int)
    limit = np.array([LR_LIMIT[o] for o in OPTIMIZERS])[opt]
    limit = limit * np.sqrt(x[:, col["batch_size"]] / 64)
    limit = np.where(opt == 1, limit * (1 - np.nan_to_num(x[:, col["momentum"]])), limit)
    lr = x[:, col["lr"]]
    diverged = lr > limit
    final = 0.28 + 0.08 * (np.log10(lr) - np.log10(limit / 4)) ** 2
    final += 0.02 * (np.log10(x[:, col["weight_decay"]]) + 4) ** 2
    final += 0.1 * (x[:, col["dropout"]] - 0.2) ** 2 + 0.01 * np.abs(x[:, col["n_layers"]] - 4)
    steps = np.arange(n_steps)
    curves = final[:, None] + (2.3 - final[:, None]) * np.exp(-4.0 * steps / n_steps)
    curves += rng.normal(0, 0.01, (n_trials, n_steps))
    cutoff = float(np.median(final[~diverged]))
    n_run = np.full(n_trials, n_steps)
    states = ["COMPLETE"] * n_trials
    reasons: list[str | None] = [None] * n_trials
    stopped: list[str | None] = [None] * n_trials
    u = rng.random(n_trials)
    early = rng.integers(1, 6, n_trials)
    late = rng.integers(n_steps // 10, n_steps, n_trials)
    for i in range(n_trials):
        if diverged[i]:
            states[i], n_run[i] = "PRUNED", early[i]
            curves[i, early[i] - 1] = math.nan
            stopped[i] = "diverged"
            reasons[i] = f"diverged at step {early[i]}: loss=nan"
        elif u[i] < 0.02:
            states[i], n_run[i] = "FAIL", late[i]
            reasons[i] = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
        elif final[i] > cutoff and u[i] < 0.8:
            states[i], n_run[i] = "PRUNED", late[i]
    step_seconds = 0.3 + 1.5 * x[:, col["width"]] / 1024 * (64 / x[:, col["batch_size"]]) ** 0.3
    start, complete, workers = _schedule(rng, n_run, step_seconds)
    return ScaleStudy(
        n_steps, x, curves, n_run, states, start, complete, step_seconds, reasons, stopped,
        workers,
    )  # fmt: skip


def _schedule(
    rng: np.random.Generator, n_run: np.ndarray, step_seconds: np.ndarray
) -> tuple[list[float], list[float], list[str]]:
    """Start and end times of trials run by 8 workers, in number order of their starts."""
    names = [f"gpu-node-{k % 2 + 1}:{40000 + 17 * k}" for k in range(N_WORKERS)]
    free = [(0.0, k) for k in range(N_WORKERS)]
    start, end, workers = [], [], []
    jitter = rng.uniform(0.9, 1.1, len(n_run))
    gap = rng.uniform(0.2, 1.0, len(n_run))
    for i in range(len(n_run)):
        t0, k = heapq.heappop(free)
        t1 = t0 + n_run[i] * step_seconds[i] * jitter[i]
        heapq.heappush(free, (t1 + gap[i], k))
        start.append(_api_epoch(_ORIGIN + t0))
        end.append(_api_epoch(_ORIGIN + t1))
        workers.append(names[k])
    return start, end, workers


def template(study: ScaleStudy, i: int) -> Any:
    """Trial ``i`` as the finished FrozenTrial an API user would add."""
    from dltune.trial import FrozenTrial
    from dltune.trial import TrialState
    from dltune.trial import datetime_from_epoch

    dists = distributions()
    params, used = {}, {}
    for j, (name, *_) in enumerate(PARAMS):
        if not math.isnan(study.internal[i, j]):
            params[name] = dists[name].to_external(float(study.internal[i, j]))
            used[name] = dists[name]
    system: dict[str, Any] = {"worker": study.workers[i]}
    if study.stopped_by[i] is not None:
        system["stopped_by"] = study.stopped_by[i]
    if study.reasons[i] is not None:
        system["reason"] = study.reasons[i]
    value = study.value(i)
    return FrozenTrial(
        i,
        -1,
        TrialState(study.states[i]),
        values=None if value is None else [value],
        params=params,
        distributions=used,
        intermediate_values={s: float(study.curves[i, s]) for s in range(study.n_run[i])},
        user_attrs={"checkpoint": f"ckpt/trial-{i}.pt"} if value is not None else {},
        system_attrs=system,
        datetime_start=datetime_from_epoch(study.start[i]),
        datetime_complete=datetime_from_epoch(study.complete[i]),
    )


# -- rows in write order ---------------------------------------------------------------------


def _in_time_order(times: np.ndarray, columns: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows (one element of each column) sorted by when a real run would have written them."""
    order = np.argsort(times, kind="stable").tolist()
    rows = list(zip(*columns, strict=True))
    return [rows[k] for k in order]


def param_rows(study: ScaleStudy, first_id: int, dist_text: list[str]) -> list[tuple[Any, ...]]:
    """``(trial_id, name, internal, distribution text)`` rows, as suggested at each start."""
    n, d = study.internal.shape
    flat = study.internal.ravel()
    present = ~np.isnan(flat)
    trial_idx = np.repeat(np.arange(n), d)[present]
    param_idx = np.tile(np.arange(d), n)[present]
    names = [name for name, *_ in PARAMS]
    times = np.asarray(study.start)[trial_idx] + 1e-3 * param_idx
    ids = (trial_idx + first_id).tolist()
    col_names = [names[k] for k in param_idx.tolist()]
    col_dists = [dist_text[k] for k in param_idx.tolist()]
    return _in_time_order(times, (ids, col_names, flat[present].tolist(), col_dists))


def report_arrays(study: ScaleStudy) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(trial index, step, value, time written)`` of every report, in write order."""
    n, s = study.curves.shape
    mask = np.arange(s)[None, :] < study.n_run[:, None]
    trial_idx, step = np.nonzero(mask)
    start = np.asarray(study.start)
    times = start[trial_idx] + (step + 1) * study.step_seconds[trial_idx]
    order = np.argsort(times, kind="stable")
    trial_idx, step = trial_idx[order], step[order]
    return trial_idx, step, study.curves[trial_idx, step], times[order]


def attr_rows(study: ScaleStudy) -> list[tuple[int, bool, str, str, float]]:
    """``(trial index, is_system, key, value_json, time written)`` of every attribute."""
    out: list[tuple[int, bool, str, str, float]] = []
    for i in range(study.n_trials):
        out.append((i, True, "worker", json.dumps(study.workers[i]), study.start[i]))
        end = study.complete[i]
        if study.states[i] == "COMPLETE":
            out.append((i, False, "checkpoint", json.dumps(f"ckpt/trial-{i}.pt"), end))
        if study.stopped_by[i] is not None:
            out.append((i, True, "stopped_by", json.dumps(study.stopped_by[i]), end))
        if study.reasons[i] is not None:
            out.append((i, True, "reason", json.dumps(study.reasons[i]), end))
    out.sort(key=lambda row: row[4])
    return out


# -- checking ---------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and -0.0 unequal to 0.0 (compared by repr of floats)."""
    return bool(_canon(a) == _canon(b))


def _canon(x: Any) -> Any:
    if isinstance(x, float):
        return ("float", repr(x))
    if isinstance(x, dict):
        return sorted((repr(k), _canon(v)) for k, v in x.items())
    if isinstance(x, list | tuple):
        return [_canon(v) for v in x]
    return x


def fields(trial: Any) -> dict[str, Any]:
    """What of a FrozenTrial (dltune's or Optuna's) must round-trip, without ids."""
    return {
        "state": trial.state.name,
        "values": trial.values,
        "params": trial.params,
        "distributions": {k: repr(v) for k, v in trial.distributions.items()},
        "intermediate_values": trial.intermediate_values,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }


def sample_numbers(study: ScaleStudy, k: int = 24) -> list[int]:
    """A few trials of every outcome (first ones of each), for the twin checks."""
    picked: dict[str, list[int]] = {}
    for i in range(study.n_trials):
        key = "diverged" if study.stopped_by[i] == "diverged" else study.states[i]
        if len(picked.setdefault(key, [])) < k // 4:
            picked[key].append(i)
    return sorted(n for numbers in picked.values() for n in numbers)


def mismatches(label: str, expected: Iterable[tuple[int, Any]], got: dict[int, Any]) -> list[str]:
    """Lines naming the trials whose two copies differ."""
    out = []
    for number, want in expected:
        if not same(want, got.get(number)):
            out.append(f"{label}: trial {number}: {want!r} != {got.get(number)!r}"[:400])
    return out
