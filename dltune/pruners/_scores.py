"""What the pruners compare, in one place: signed scores per objective, non-dominated ranks,
reported curves merged along a lineage of continued trials, and values at a rung.

Every score is "lower is better": an objective's value times +1 when it is minimized and -1
when it is maximized. With ``objective="rank"`` the score of a trial at a step is the index of
its non-dominated front (0 the best) among the vectors the compared trials reported there.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dltune.pruners._checks import objective_hint
from dltune.storage._base import REPORTED_VALUES_KEY
from dltune.storage._base import STOPPED_BY_KEY
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = [
    "RUNG_STATES",
    "Curve",
    "Scorer",
    "chain",
    "is_guard_stopped",
    "lineages",
    "nondominated_ranks",
    "worst_if_not_finite",
]

#: The states whose trials count in rung statistics.
RUNG_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)

Point = tuple[float, ...]


class Curve:
    """The values (and vectors) one trial, or a lineage of continued trials, reported by step.

    A later member of a lineage overrides an earlier one's value at the same step (a
    continuation re-reports what it resumed, so the values agree anyway).

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> trial = FrozenTrial(0, 0, TrialState.RUNNING, intermediate_values={1: 0.5, 4: 0.2})
        >>> Curve([trial]).first_step_at_least(2)
        4
    """

    __slots__ = ("_attrs", "_steps", "values")

    def __init__(self, trials: Sequence[FrozenTrial]) -> None:
        if len(trials) == 1:
            self.values: Mapping[int, float] = trials[0].intermediate_values
        else:
            merged: dict[int, float] = {}
            for trial in trials:
                merged.update(trial.intermediate_values)
            self.values = merged
        self._attrs = [t.system_attrs for t in trials]
        self._steps: list[int] | None = None

    @property
    def steps(self) -> list[int]:
        """The reported steps, ascending."""
        if self._steps is None:
            self._steps = sorted(self.values)
        return self._steps

    @property
    def last_step(self) -> int | None:
        """The highest reported step, or ``None``."""
        return self.steps[-1] if self.steps else None

    def first_step_at_least(self, resource: int) -> int | None:
        """The first reported step ``>= resource`` (a trial's step at that rung), or ``None``."""
        steps = self.steps
        i = bisect.bisect_left(steps, resource)
        return steps[i] if i < len(steps) else None

    def vector(self, step: int) -> list[float] | None:
        """The vector reported at ``step`` in a multi-objective study, or ``None``.

        The latest trial of a lineage that reported one there wins; a malformed entry is
        ignored.
        """
        key = str(step)
        for attrs in reversed(self._attrs):
            reported = attrs.get(REPORTED_VALUES_KEY)
            if isinstance(reported, Mapping) and key in reported:
                vector = reported[key]
                if isinstance(vector, list | tuple) and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in vector
                ):
                    return [float(v) for v in vector]
        return None


class Scorer:
    """Scores trials of one study for one ``objective`` (lower is better).

    Args:
        signs: +1.0 per minimized objective, -1.0 per maximized one.
        index: The objective compared, or ``None`` to compare by non-dominated rank.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> scorer = Scorer((-1.0,), 0)  # one objective, maximized
        >>> trial = FrozenTrial(0, 0, TrialState.RUNNING, intermediate_values={1: 0.5})
        >>> scorer.value(Curve([trial]), 1)
        -0.5
    """

    __slots__ = ("index", "signs")

    def __init__(self, signs: tuple[float, ...], index: int | None) -> None:
        self.signs = signs
        self.index = index

    @classmethod
    def of(cls, study: StudyView, objective: int | str, *, allow_rank: bool = True) -> Scorer:
        """The scorer of ``objective`` (checked by the pruner's constructor) in ``study``.

        Raises:
            ValueError: If the index is not an objective of the study.
        """
        directions = study.directions
        signs = tuple(1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions)
        if isinstance(objective, str):
            return cls(signs, None)
        if objective >= len(signs):
            noun = "objective" if len(signs) == 1 else "objectives"
            hint = objective_hint(len(signs), allow_rank=allow_rank)
            raise ValueError(
                f"objective={objective!r} is out of range: the study has {len(signs)} {noun}; "
                f"{hint}"
            )
        return cls(signs, objective)

    @property
    def is_rank(self) -> bool:
        """Whether trials are compared by non-dominated rank."""
        return self.index is None

    def raw(self, curve: Curve, step: int) -> float | None:
        """The compared objective's value as reported at ``step`` (``None`` if missing)."""
        index = self.index or 0
        if index == 0:
            return curve.values.get(step)
        vector = curve.vector(step)
        if vector is None or len(vector) != len(self.signs):
            return None
        return vector[index]

    def value(self, curve: Curve, step: int) -> float | None:
        """The signed value at ``step`` (lower is better; NaN stays NaN), or ``None``."""
        raw = self.raw(curve, step)
        return None if raw is None else self.signs[self.index or 0] * raw

    def point(self, curve: Curve, step: int) -> Point | None:
        """What is compared at ``step``: ``(value,)`` for one objective, the signed vector for
        ``"rank"``; ``None`` if the trial did not report it."""
        if self.index is not None:
            value = self.value(curve, step)
            return None if value is None else (value,)
        if len(self.signs) == 1:
            raw = curve.values.get(step)
            return None if raw is None else (self.signs[0] * raw,)
        vector = curve.vector(step)
        if vector is None or len(vector) != len(self.signs):
            return None
        return tuple(s * v for s, v in zip(self.signs, vector, strict=True))

    def scores(
        self, entries: Iterable[tuple[Curve, int]], *, worst: bool = False
    ) -> list[float | None]:
        """The score of each ``(curve, step)`` compared with the others (``None``: missing).

        By value, a signed value; by ``"rank"``, a front index among the entries present.
        With ``worst``, a point holding NaN or an infinity scores worst (``inf`` by value, all
        its components ``inf`` by rank).
        """
        points = [self.point(curve, step) for curve, step in entries]
        if worst:
            points = [None if p is None else worst_if_not_finite(p) for p in points]
        if self.index is not None:
            return [None if p is None else p[0] for p in points]
        present = [p for p in points if p is not None]
        ranks = iter(nondominated_ranks(present))
        return [None if p is None else float(next(ranks)) for p in points]


def worst_if_not_finite(point: Point) -> Point:
    """``point``, or all ``inf`` if any component is NaN or infinite.

    Example:
        >>> worst_if_not_finite((1.0, float("nan")))
        (inf, inf)
    """
    if all(math.isfinite(v) for v in point):
        return point
    return (math.inf,) * len(point)


def nondominated_ranks(points: Sequence[Point]) -> list[int]:
    """The non-dominated front index of each point (0 the Pareto front), all minimized.

    NaN counts as ``inf``.

    Example:
        >>> nondominated_ranks([(1.0, 2.0), (2.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
        [0, 0, 1, 2]
    """
    if not points:
        return []
    array = np.nan_to_num(np.asarray(points, dtype=float), nan=np.inf, posinf=np.inf)
    le = (array[:, None, :] <= array[None, :, :]).all(axis=-1)
    lt = (array[:, None, :] < array[None, :, :]).any(axis=-1)
    dominates = le & lt  # [i, j]: point i dominates point j
    n_dominators = dominates.sum(axis=0)
    ranks = np.full(len(points), -1)
    current = np.flatnonzero(n_dominators == 0)
    front = 0
    while current.size:  # peel the fronts: each point's dominators are counted down once
        ranks[current] = front
        n_dominators = n_dominators - dominates[current].sum(axis=0)
        n_dominators[ranks >= 0] = -1
        current = np.flatnonzero(n_dominators == 0)
        front += 1
    return [int(r) for r in ranks]


# -- lineages ------------------------------------------------------------------------------


def is_guard_stopped(trial: FrozenTrial) -> bool:
    """Whether a divergence guard stopped ``trial`` (such a trial is never promoted)."""
    return bool(trial.system_attrs.get(STOPPED_BY_KEY))


def chain(trial: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> list[FrozenTrial]:
    """``trial`` and the paused trials it continues, the root first.

    Example:
        >>> from dltune.trial import FrozenTrial, TrialState
        >>> t0 = FrozenTrial(0, 0, TrialState.PRUNED)
        >>> t1 = FrozenTrial(1, 1, TrialState.RUNNING, system_attrs={"resume_of": 0})
        >>> [t.number for t in chain(t1, {0: t0, 1: t1})]
        [0, 1]
    """
    out = [trial]
    seen = {trial.number}
    number = trial.resume_of
    while number is not None and number not in seen and number in by_number:
        seen.add(number)
        out.append(by_number[number])
        number = by_number[number].resume_of
    out.reverse()
    return out


def lineages(
    trials: Iterable[FrozenTrial], by_number: Mapping[int, FrozenTrial]
) -> dict[int, list[FrozenTrial]]:
    """``trials`` grouped by the number of their lineage's root, each group in number order."""
    groups: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        root = chain(trial, by_number)[0].number
        groups.setdefault(root, []).append(trial)
    for members in groups.values():
        members.sort(key=lambda t: t.number)
    return groups
