"""The learning-curve and timeline records: how each trial learned, and when each worker ran."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune.analysis._plots_search_common import direction_name
from dltune.analysis._plots_search_common import is_better
from dltune.analysis._plots_search_common import last_value
from dltune.analysis._plots_search_common import plain_params
from dltune.analysis._plots_search_common import plural
from dltune.analysis._plots_search_common import value_of
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import objective_values
from dltune.analysis._record import unpack
from dltune.analysis._record import worker_of
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import continued_numbers

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = ["learning_curves", "timeline"]


def _covered(trials: Sequence[FrozenTrial]) -> set[int]:
    """Paused trials whose continuation has re-reported them (reached their last step).

    A continuation that has not caught up yet (just promoted) leaves its parent drawn, so the
    parent's curve does not vanish for a moment.
    """
    continued = continued_numbers(trials)
    if not continued:
        return set()
    last = {t.number: t.last_step for t in trials if t.number in continued}
    out = set()
    for trial in trials:
        parent = trial.resume_of
        if parent is None or parent not in last:
            continue
        mine, theirs = trial.last_step, last[parent]
        if theirs is None or (mine is not None and mine >= theirs):
            out.add(parent)
    return out


def _spread(ranked: Sequence[FrozenTrial], k: int) -> list[FrozenTrial]:
    """``k`` trials evenly spaced over ``ranked`` (best to worst), both ends included."""
    m = len(ranked)
    if k >= m:
        return list(ranked)
    if k <= 0:
        return []
    if k == 1:
        return [ranked[m // 2]]
    return [ranked[i * (m - 1) // (k - 1)] for i in range(k)]


def _select(
    candidates: list[FrozenTrial], max_trials: int, maximize: bool, keep: set[int]
) -> tuple[list[FrozenTrial], str | None]:
    """The curves to draw: all when few, else the best, a spread of the rest, and ``keep``."""
    if len(candidates) <= max_trials:
        return candidates, None
    kept = [t for t in candidates if t.number in keep or t.state == TrialState.RUNNING]
    kept_numbers = {t.number for t in kept}
    finals = {t.number: last_value(t) for t in candidates}

    def rank(trial: FrozenTrial) -> tuple[bool, float, int]:
        value = finals[trial.number]
        if value is None:
            return True, 0.0, trial.number
        return False, -value if maximize else value, trial.number

    rest = sorted((t for t in candidates if t.number not in kept_numbers), key=rank)
    budget = max(max_trials - len(kept), 0)
    n_best = (budget + 1) // 2
    chosen = kept + rest[:n_best] + _spread(rest[n_best:], budget - n_best)
    n_running = sum(1 for t in kept if t.state == TrialState.RUNNING)
    best = "the best trial, " if len(kept) > n_running else ""
    note = (
        f"{len(candidates)} trials reported values; drawn: {best}the {n_best} with the best "
        f"last value, {len(chosen) - len(kept) - n_best} spread over the rest and all "
        f"{n_running} running (max_trials={max_trials})."
    )
    return sorted(chosen, key=lambda t: t.number), note


def _curve(trial: FrozenTrial) -> dict[str, Any]:
    steps = sorted(trial.intermediate_values)
    values: list[float | None] = []
    blowup_step: int | None = None
    blowup_value: float | None = None
    for step in steps:
        value = float(trial.intermediate_values[step])
        if math.isfinite(value):
            values.append(value)
            if blowup_step is None:
                blowup_value = value
        else:
            values.append(None)
            if blowup_step is None:
                blowup_step = step
    return {
        "number": trial.number,
        "outcome": trial.outcome,
        "steps": steps,
        "values": values,
        "final": last_value(trial),
        "blowup_step": blowup_step,
        "blowup_value": blowup_value if blowup_step is not None else None,
        "resume_of": trial.resume_of,
        "params": plain_params(trial),
    }


def learning_curves(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    max_trials: int = 300,
) -> PlotRecord:
    """Every trial's reported values by step, tagged with how the trial ended.

    Data keys: ``direction`` (of the first objective, which reported values follow),
    ``best_number`` (the best COMPLETE trial, drawn highlighted; ``None`` for several
    objectives or when it reported nothing), ``n_trials`` (trials that reported values),
    ``curves``: one mapping per drawn trial (by number) with ``number``, ``outcome``
    (``complete``, ``pruned``, ``diverged``, ``not_learning``, ``fail`` or ``running``),
    ``steps``, ``values`` (``None`` where NaN or infinite), ``final`` (the last value if
    finite), ``blowup_step`` and ``blowup_value`` (the first step whose value was NaN or
    infinite and the last finite value before it, to mark where the curve blew up; ``None``
    when it never did), ``resume_of`` and ``params``.

    A promoted continuation re-reports the paused trial's values, so such a lineage is drawn
    once, as the continuation's curve. With more than ``max_trials`` curves, the best ones by
    last value, a spread of the rest, the best trial and every running trial are drawn.

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        max_trials: The most curves to draw (running trials are drawn in any case).

    Raises:
        ValueError: If ``max_trials`` is below 1.
        TypeError: If ``max_trials`` is not an int.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> t = FrozenTrial(0, 0, TrialState.PRUNED, intermediate_values={0: 1.0, 1: float("nan")})
        >>> curve = learning_curves([t], ["minimize"]).data["curves"][0]
        >>> curve["values"], curve["blowup_step"], curve["blowup_value"]
        ([1.0, None], 1, 1.0)
    """
    trials, dirs = unpack(source, directions)
    if isinstance(max_trials, bool) or not isinstance(max_trials, int):
        raise TypeError(f"max_trials={max_trials!r} must be an int, 1 or more")
    if max_trials < 1:
        raise ValueError(f"max_trials={max_trials!r} must be 1 or more (the curves to draw)")
    maximize = dirs[0] == StudyDirection.MAXIMIZE
    covered = _covered(trials)
    candidates = sorted(
        (t for t in trials if t.intermediate_values and t.number not in covered),
        key=lambda t: t.number,
    )
    best_number = _best_number(trials, dirs) if len(dirs) == 1 else None
    keep = set() if best_number is None else {best_number}
    chosen, note = _select(candidates, max_trials, maximize, keep)
    notes = [] if note is None else [note]
    if covered:
        notes.append(
            f"{plural(len(covered), 'paused trial')} drawn through the trial that continued "
            "it (a continuation re-reports its values)."
        )
    if not candidates:
        notes.append("No trial has reported intermediate values yet.")
    drawn = {t.number for t in chosen}
    data: dict[str, Any] = {
        "direction": direction_name(dirs[0]),
        "best_number": best_number if best_number in drawn else None,
        "n_trials": len(candidates),
        "curves": [_curve(t) for t in chosen],
    }
    return PlotRecord("learning_curves", "Learning curves", data, tuple(notes))


def _best_number(trials: Sequence[FrozenTrial], dirs: Sequence[StudyDirection]) -> int | None:
    maximize = dirs[0] == StudyDirection.MAXIMIZE
    best: float | None = None
    number: int | None = None
    for trial in objective_values(trials, 0):
        value = value_of(trial, 0)
        if is_better(value, best, maximize):
            best, number = value, trial.number
    return number


def _busy_share(intervals: list[tuple[float, float]]) -> tuple[float, float | None]:
    """Seconds covered by the union of ``intervals``, and that share of their window."""
    intervals.sort()
    busy = 0.0
    cur_start, cur_end = intervals[0]
    for start, end in intervals[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    window = max(end for _, end in intervals) - intervals[0][0]
    return busy, (busy / window if window > 0 else None)


def timeline(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
    *,
    now: float | None = None,
) -> PlotRecord:
    """One bar per started trial, from its start to its end (or now), on its worker's row.

    Data keys: ``origin`` (epoch seconds of the first start; times are seconds after it),
    ``now``, ``span_seconds``, per bar (by number) ``number``, ``worker``, ``start``, ``end``,
    ``outcome``; per worker (by first start) ``workers`` with ``name``, ``n_trials``,
    ``busy_seconds`` and ``utilisation`` (the share of the worker's own window, first start
    to last end, in which it ran a trial; ``None`` for an empty window).

    Args:
        source: A study, or its trials (then pass ``directions``).
        directions: The study's directions, when ``source`` is a list of trials.
        now: The current time in epoch seconds, where running trials end (default: the clock).

    Raises:
        TypeError: If ``now`` is not a number.
        ValueError: If ``now`` is not finite.

    Example:
        >>> from datetime import datetime
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> t = FrozenTrial(0, 0, TrialState.COMPLETE, [1.0], datetime_start=datetime(2024, 1, 1),
        ...                 datetime_complete=datetime(2024, 1, 1, 0, 0, 5))
        >>> data = timeline([t], ["minimize"]).data
        >>> data["start"], data["end"], data["workers"][0]["name"]
        ([0.0], [5.0], '-')
    """
    trials, _ = unpack(source, directions)
    if now is None:
        now = time.time()
    elif isinstance(now, bool) or not isinstance(now, int | float):
        raise TypeError(f"now={now!r} must be epoch seconds (a float) or None for the clock")
    elif not math.isfinite(now):
        raise ValueError(f"now={now!r} must be finite epoch seconds")
    started = sorted(
        ((t, t.datetime_start.timestamp()) for t in trials if t.datetime_start is not None),
        key=lambda pair: pair[0].number,
    )
    origin = min((stamp for _, stamp in started), default=float(now))
    bars: dict[str, list[Any]] = {k: [] for k in ("number", "worker", "start", "end", "outcome")}
    per_worker: dict[str, list[tuple[float, float]]] = {}
    n_no_end = 0
    for trial, stamp in started:
        start = stamp - origin
        if trial.datetime_complete is not None:
            end = max(trial.datetime_complete.timestamp() - origin, start)
        elif trial.state == TrialState.RUNNING:
            end = max(now - origin, start)
        else:
            end, n_no_end = start, n_no_end + 1
        worker = worker_of(trial)
        for key, value in zip(
            bars, (trial.number, worker, start, end, trial.outcome), strict=True
        ):
            bars[key].append(value)
        per_worker.setdefault(worker, []).append((start, end))
    workers = []
    for name, intervals in sorted(per_worker.items(), key=lambda kv: min(kv[1])):
        busy, share = _busy_share(intervals)
        workers.append(
            {"name": name, "n_trials": len(intervals), "busy_seconds": busy, "utilisation": share}
        )
    notes = []
    n_waiting = len(trials) - len(started)
    if n_waiting:
        notes.append(f"{plural(n_waiting, 'trial')} not started yet (waiting) not drawn.")
    if n_no_end:
        notes.append(f"{plural(n_no_end, 'finished trial')} without an end time drawn as a tick.")
    if not started:
        notes.append("No trial has started yet.")
    data: dict[str, Any] = {
        "origin": origin,
        "now": now - origin,
        "span_seconds": max(bars["end"], default=0.0),
        **bars,
        "workers": workers,
    }
    return PlotRecord("timeline", "Timeline of trials per worker", data, tuple(notes))
