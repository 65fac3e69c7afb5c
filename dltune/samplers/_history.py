"""What the model-based samplers learn from: the study's trials as points of the unit cube.

TPE, the Gaussian process and CMA-ES all read the same history and must agree on three things,
so they are decided here once:

* **Which trials count, and how well they did.** COMPLETE trials by their value. PRUNED trials
  by how far they got, then their last reported value (a trial stopped at epoch 3 ranks below
  every finished one, above one stopped at epoch 1). Trials that *diverged* (a guard stopped them:
  NaN or exploding loss) or *failed* with an error are **bad**: they rank below everything, so a
  region where the learning rate is too high for the optimizer is learned as bad rather than
  forgotten. A FAIL that says nothing about its parameters (a worker died: ``stale``; the user
  pressed Ctrl-C: ``interrupted``) is ignored.
* **Which space is modelled jointly:** the parameters every counted trial shares with the same
  distribution (:func:`intersection_space`).
* **What is pending:** RUNNING trials' points, which parallel-aware samplers treat as if their
  results were known (a constant liar, fantasies) so k workers do not propose the same point.

Finished trials never change, so their unit-cube coordinates are cached per sampler
(:class:`UnitCache`): reading 1,000 trials costs one dictionary lookup per trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune.storage._base import STOPPED_BY_KEY
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import continued_numbers

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = [
    "History",
    "UnitCache",
    "collect",
    "intersection_space",
    "is_bad",
    "order_key",
    "point_key",
    "top_rung",
]

#: FAIL reasons that say nothing about the parameters: the trial is ignored, not learned as bad.
UNINFORMATIVE_FAIL_REASONS = frozenset({"stale", "interrupted"})

_GROUP_COMPLETE, _GROUP_PRUNED, _GROUP_BAD = 0, 1, 2


def is_bad(trial: FrozenTrial) -> bool:
    """Whether ``trial`` diverged (a guard stopped it) or failed with an error of its own."""
    if trial.state == TrialState.PRUNED:
        return trial.system_attrs.get(STOPPED_BY_KEY) == "diverged"
    if trial.state == TrialState.FAIL:
        return bool(trial.params) and trial.reason not in UNINFORMATIVE_FAIL_REASONS
    return False


def is_counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial says anything about its parameters (see the module doc)."""
    if trial.state == TrialState.COMPLETE:
        return trial.values is not None
    if trial.state == TrialState.PRUNED:
        return is_bad(trial) or any(math.isfinite(v) for v in trial.intermediate_values.values())
    return is_bad(trial)


def _last_finite(trial: FrozenTrial) -> float:
    for step in sorted(trial.intermediate_values, reverse=True):
        value = trial.intermediate_values[step]
        if math.isfinite(value):
            return value
    return math.inf


def order_key(trial: FrozenTrial, sign: float, objective: int = 0) -> tuple[int, float, float]:
    """A sort key, smaller is better, over counted trials of a study.

    ``sign`` is ``1.0`` for a minimized objective and ``-1.0`` for a maximized one. Complete
    trials come first by value, then pruned ones by the step they reached (further is better)
    and their last reported value, then bad ones.
    """
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        return (_GROUP_COMPLETE, 0.0, sign * trial.values[objective])
    if is_bad(trial):
        return (_GROUP_BAD, 0.0, 0.0)
    step = float(trial.last_step if trial.last_step is not None else -1)
    return (_GROUP_PRUNED, -step, sign * _last_finite(trial))


def intersection_space(
    trials: Iterable[FrozenTrial], cache: UnitCache | None = None
) -> dict[str, BaseDistribution]:
    """The parameters every trial of ``trials`` has, with the same distribution, sorted by
    name; single-valued distributions are left out (there is nothing to learn about them).
    With ``cache``, finished trials' parameter sets are hashed once per process."""
    common: frozenset[tuple[str, BaseDistribution]] | None = None
    for trial in trials:
        items = cache.items(trial) if cache is not None else frozenset(trial.distributions.items())
        if items is not common:
            common = items if common is None else common & items
        if not common:
            return {}
    if common is None:
        return {}
    space = dict(common)
    return {name: space[name] for name in sorted(space) if not space[name].is_single()}


def point_key(values: Sequence[float]) -> tuple[float, ...]:
    """A hashable key for a point of internal values (rounded, so float noise is no new point)."""
    return tuple(float(f"{v:.12g}") for v in values)


#: What :meth:`UnitCache.summary` keeps per finished trial: its sort key (order_key and
#: number), whether it is complete and bad, and its score to minimize.
_Summary = tuple[tuple[int, float, float, int], bool, bool, float]


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


class UnitCache:
    """What the samplers compute per finished trial, computed once per process: its parameter
    set (hashed), and per modelled space its unit-cube point and :func:`point_key`.

    Finished trials never change, so the entries never go stale; a copy starts empty.
    """

    __slots__ = ("_interned", "_items", "_points", "_summaries")

    def __init__(self) -> None:
        self._items: dict[int, frozenset[tuple[str, BaseDistribution]]] = {}
        self._interned: dict[
            frozenset[tuple[str, BaseDistribution]], frozenset[tuple[str, BaseDistribution]]
        ] = {}
        self._points: dict[tuple[int, int], tuple[np.ndarray, tuple[float, ...]] | None] = {}
        self._summaries: dict[tuple[int, float, int], _Summary | None] = {}

    def __getstate__(self) -> dict[str, object]:
        return {}  # a cache: a copy starts empty

    def __setstate__(self, state: dict[str, object]) -> None:
        self._items = {}
        self._interned = {}
        self._points = {}
        self._summaries = {}

    def items(self, trial: FrozenTrial) -> frozenset[tuple[str, BaseDistribution]]:
        """The trial's ``(name, distribution)`` pairs; equal sets are the same object (so
        intersecting the sets of a study whose trials share one space is nearly free)."""
        if not trial.state.is_finished():
            return frozenset(trial.distributions.items())
        cached = self._items.get(trial.trial_id)
        if cached is None:
            items = frozenset(trial.distributions.items())
            cached = self._items[trial.trial_id] = self._interned.setdefault(items, items)
        return cached

    def point(
        self, trial: FrozenTrial, space: dict[str, BaseDistribution], space_id: int
    ) -> tuple[np.ndarray, tuple[float, ...]] | None:
        """The trial's unit-cube point over ``space`` and its :func:`point_key`, or ``None``
        if it lacks a parameter of ``space`` (or has it with another distribution).
        ``space_id`` identifies ``space`` among the spaces this process models (its hash)."""
        finished = trial.state is not TrialState.RUNNING and trial.state is not TrialState.WAITING
        key = (trial.trial_id, space_id)
        if finished and key in self._points:
            return self._points[key]
        dists = trial.distributions
        out: tuple[np.ndarray, tuple[float, ...]] | None = None
        if all(dists.get(name) == dist for name, dist in space.items()):
            internal = [dist.to_internal(trial.params[name]) for name, dist in space.items()]
            row = np.array(
                [dist.to_unit(x) for dist, x in zip(space.values(), internal, strict=True)],
                dtype=float,
            )
            out = (row, point_key(internal))
        if finished:
            if len(self._points) > 1_000_000:  # many spaces over a long study: start over
                self._points.clear()
            self._points[key] = out
        return out

    def summary(self, trial: FrozenTrial, sign: float, objective: int) -> _Summary | None:
        """How a finished trial ranks (:func:`order_key`, then its number), whether it is
        complete and bad, and its score to minimize; ``None`` if it is not counted."""
        key = (trial.trial_id, sign, objective)
        if key in self._summaries:
            return self._summaries[key]
        out: _Summary | None = None
        if is_counted(trial):
            complete = trial.state == TrialState.COMPLETE and trial.values is not None
            score = sign * trial.values[objective] if complete and trial.values else math.nan
            out = (
                (*order_key(trial, sign, objective), trial.number),
                complete,
                is_bad(trial),
                score,
            )
        self._summaries[key] = out
        return out

    def row(self, trial: FrozenTrial, space: dict[str, BaseDistribution]) -> np.ndarray:
        """The trial's point in the unit cube of ``space`` (its params must include it)."""
        point = self.point(trial, space, _space_id(space))
        if point is None:
            raise ValueError(f"trial {trial.number} lacks a parameter of {sorted(space)}")
        return point[0]

    def rows(
        self, trials: Sequence[FrozenTrial], space: dict[str, BaseDistribution]
    ) -> np.ndarray:
        """:meth:`row` of each trial, stacked into an ``(n, d)`` array."""
        if not trials:
            return np.empty((0, len(space)))
        return np.stack([self.row(t, space) for t in trials])


def _space_id(space: dict[str, BaseDistribution]) -> int:
    return hash(tuple(space.items()))


@dataclass(frozen=True)
class History:
    """The counted trials over one space, best first, and the pending points.

    Attributes:
        space: The parameters modelled, in column order.
        trials: Counted trials that have every parameter of ``space``, best first.
        x: ``(n, d)`` unit-cube points of ``trials``.
        score: ``(n,)`` values to *minimize*: a complete trial's value (sign-flipped for a
            maximized objective); ``nan`` for pruned and bad trials (they have no final value;
            use :attr:`is_bad` and :attr:`is_complete`, or :meth:`imputed_score`).
        is_complete: ``(n,)`` which trials are COMPLETE.
        is_bad: ``(n,)`` which trials diverged or failed.
        pending: ``(m, d)`` unit-cube points of RUNNING trials (other than the asking one) that
            already have every parameter of ``space``.
        seen: Keys (:func:`point_key` of internal values) of every trial with the whole space,
            whatever its state: a sampler avoids proposing these again.
        rung: The step whose values score the trials (multi-fidelity), or ``None`` when
            trials are scored by their final value.
    """

    space: dict[str, BaseDistribution]
    trials: list[FrozenTrial]
    x: np.ndarray
    score: np.ndarray
    is_complete: np.ndarray
    is_bad: np.ndarray
    pending: np.ndarray
    seen: frozenset[tuple[float, ...]]
    rung: int | None = None

    @property
    def n_complete(self) -> int:
        """How many trials are COMPLETE."""
        return int(self.is_complete.sum())

    def imputed_score(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` for a numeric model: complete trials with their score, and bad trials
        with the worst finite complete score (a diverged region looks as bad as the worst
        result; so does a complete trial with an infinite value). Pruned trials, whose final value
        is unknown, are left out. Empty without a finite complete trial."""
        finite = self.is_complete & np.isfinite(self.score)
        if not finite.any():
            return np.empty((0, len(self.space))), np.empty(0)
        worst = float(np.max(self.score[finite]))
        # A complete trial with an infinite value is as uninformative numerically as a bad one.
        bad = self.is_bad | (self.is_complete & ~finite)
        keep = finite | bad
        y = np.where(bad, worst, self.score)[keep]
        return self.x[keep], y

    def is_seen(self, internal: Sequence[float]) -> bool:
        """Whether a point (internal values in space order) was already proposed."""
        return point_key(internal) in self.seen


def objective_sign(view: StudyView, objective: int = 0) -> float:
    """``1.0`` if objective ``objective`` is minimized, ``-1.0`` if maximized."""
    return 1.0 if view.directions[objective] == StudyDirection.MINIMIZE else -1.0


def top_rung(
    trials: Sequence[FrozenTrial], min_points: int, *, continued: set[int] | None = None
) -> int | None:
    """The highest step at which at least ``min_points`` trials reported a finite value.

    This is the budget a multi-fidelity sampler fits its model on (BOHB, Falkner et al. 2018):
    the largest one with enough results. Running trials count (a trial a successive-halving
    pruner promoted is still running, and is the best of its rung); bad trials and paused
    trials that another continues (``continued``, computed if not given) do not. ``None`` if no
    step has enough.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> curves = [{1: 0.5, 3: 0.7}, {1: 0.4, 3: 0.6}, {1: 0.2}]
        >>> trials = [
        ...     FrozenTrial(i, i, TrialState.PRUNED, intermediate_values=c)
        ...     for i, c in enumerate(curves)
        ... ]
        >>> top_rung(trials, 2), top_rung(trials, 3), top_rung(trials, 4)
        (3, 1, None)
    """
    if continued is None:
        continued = continued_numbers(trials)
    counts: dict[int, int] = {}
    for trial in trials:
        if trial.state is TrialState.WAITING or trial.number in continued or is_bad(trial):
            continue
        for step, value in trial.intermediate_values.items():
            if math.isfinite(value):
                counts[step] = counts.get(step, 0) + 1
    rungs = [step for step, count in counts.items() if count >= min_points]
    return max(rungs) if rungs else None


def _at_rung(trial: FrozenTrial, sign: float, step: int) -> _Summary | None:
    """A trial's summary when the model is fitted on ``step``'s values: trials that reported a
    finite value there are 'complete' with that value; others rank as pruned or bad."""
    value = trial.intermediate_values.get(step)
    if value is not None and math.isfinite(value) and not is_bad(trial):
        key = (_GROUP_COMPLETE, 0.0, sign * value, trial.number)
        return key, True, False, sign * value
    if trial.state is TrialState.RUNNING or not is_counted(trial):
        return None
    if is_bad(trial):
        return (_GROUP_BAD, 0.0, 0.0, trial.number), False, True, math.nan
    reached = float(trial.last_step if trial.last_step is not None else -1)
    key = (_GROUP_PRUNED, -reached, sign * _last_finite(trial), trial.number)
    return key, False, False, math.nan


def collect(
    view: StudyView,
    space: dict[str, BaseDistribution],
    cache: UnitCache,
    *,
    current: FrozenTrial | None = None,
    trials: Sequence[FrozenTrial] | None = None,
    objective: int = 0,
    rung_points: int | None = None,
) -> History:
    """Read the study's history over ``space``.

    Args:
        view: The study.
        space: The parameters to model; trials lacking any of them (or with another
            distribution for one) are left out.
        cache: The sampler's cache of unit-cube points.
        current: The trial asking, left out of the pending points.
        trials: The study's trials if the caller has read them already.
        objective: Which objective scores complete trials (multi-objective studies).
        rung_points: Multi-fidelity: score trials by their value at :func:`top_rung` with
            this many points (running trials that reached it included), not by their final
            value. ``None`` (or no such step yet) scores by final values.
    """
    all_trials = view.get_trials() if trials is None else trials
    sign = objective_sign(view, objective)
    if rung_points is not None and not view.is_multi_objective:
        continued = continued_numbers(all_trials)
        rung = top_rung(all_trials, rung_points, continued=continued)
        if rung is not None:
            return _collect_at_rung(all_trials, space, cache, sign, rung, current, continued)
    space_id = _space_id(space)
    rows: list[tuple[tuple[int, float, float, int], FrozenTrial, np.ndarray, _Summary]] = []
    running: list[np.ndarray] = []
    seen: set[tuple[float, ...]] = set()
    is_running, is_waiting = TrialState.RUNNING, TrialState.WAITING
    for trial in all_trials:
        point = cache.point(trial, space, space_id)
        if point is None:
            continue
        seen.add(point[1])
        state = trial.state
        if state is is_running:
            if current is None or trial.trial_id != current.trial_id:
                running.append(point[0])
        elif state is not is_waiting:
            summary = cache.summary(trial, sign, objective)
            if summary is not None:
                rows.append((summary[0], trial, point[0], summary))
    rows.sort(key=_first)
    finished = [row[1] for row in rows]
    complete = np.array([row[3][1] for row in rows], dtype=bool)
    bad = np.array([row[3][2] for row in rows], dtype=bool)
    score = np.array([row[3][3] for row in rows], dtype=float)
    d = len(space)
    return History(
        space=dict(space),
        trials=finished,
        x=np.stack([row[2] for row in rows]) if rows else np.empty((0, d)),
        score=score,
        is_complete=complete,
        is_bad=bad,
        pending=np.stack(running) if running else np.empty((0, d)),
        seen=frozenset(seen),
    )


def _collect_at_rung(
    all_trials: Sequence[FrozenTrial],
    space: dict[str, BaseDistribution],
    cache: UnitCache,
    sign: float,
    rung: int,
    current: FrozenTrial | None,
    continued: set[int],
) -> History:
    """:func:`collect` with every trial scored at step ``rung`` (see :func:`_at_rung`); the
    paused trials in ``continued`` count through their continuations."""
    space_id = _space_id(space)
    rows: list[tuple[tuple[int, float, float, int], FrozenTrial, np.ndarray, _Summary]] = []
    running: list[np.ndarray] = []
    seen: set[tuple[float, ...]] = set()
    for trial in all_trials:
        point = cache.point(trial, space, space_id)
        if point is None:
            continue
        seen.add(point[1])
        if trial.state is TrialState.WAITING or trial.number in continued:
            continue
        if current is not None and trial.trial_id == current.trial_id:
            continue
        summary = _at_rung(trial, sign, rung)
        if summary is None:
            if trial.state is TrialState.RUNNING:
                running.append(point[0])
            continue
        rows.append((summary[0], trial, point[0], summary))
    rows.sort(key=_first)
    d = len(space)
    return History(
        space=dict(space),
        trials=[row[1] for row in rows],
        x=np.stack([row[2] for row in rows]) if rows else np.empty((0, d)),
        score=np.array([row[3][3] for row in rows], dtype=float),
        is_complete=np.array([row[3][1] for row in rows], dtype=bool),
        is_bad=np.array([row[3][2] for row in rows], dtype=bool),
        pending=np.stack(running) if running else np.empty((0, d)),
        seen=frozenset(seen),
        rung=rung,
    )
