"""Trial states, directions and the frozen trial record.

The frozen record is what storages return and what samplers, pruners and analyses read. The live,
define-by-run handle an objective receives is :class:`dltune.Trial` (in ``dltune._trial_handle``),
which writes through the study's storage.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from dltune.space import BaseDistribution

__all__ = [
    "PAUSED",
    "FrozenTrial",
    "StudyDirection",
    "TrialState",
    "continued_numbers",
    "pareto_trials",
    "resumed_numbers",
]


#: The reason of a trial failed by Ctrl-C (or SIGTERM) while it ran.
INTERRUPTED = "interrupted"
#: The reason of a RUNNING trial failed because its worker stopped sending heartbeats.
STALE = "stale"
#: How summaries count a paused (PRUNED) trial that a later trial continued: its lineage goes
#: on, and ends once, through the continuation (see :func:`resumed_numbers`).
PAUSED = "paused"


class TrialState(enum.Enum):
    """Where a trial is in its life.

    ``WAITING`` (enqueued, not yet claimed) -> ``RUNNING`` -> one of the finished states
    ``COMPLETE``, ``PRUNED`` or ``FAIL``.
    """

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    def is_finished(self) -> bool:
        """Whether the state is final (COMPLETE, PRUNED or FAIL)."""
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class StudyDirection(enum.Enum):
    """Whether an objective value is to be minimized or maximized."""

    MINIMIZE = "MINIMIZE"
    MAXIMIZE = "MAXIMIZE"

    @classmethod
    def parse(cls, value: str | StudyDirection) -> StudyDirection:
        """Accept ``"minimize"``/``"maximize"`` (any case) or a member.

        Raises:
            ValueError: Naming the bad value and the accepted ones.
        """
        if isinstance(value, StudyDirection):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValueError(f"direction={value!r} is not valid; use 'minimize' or 'maximize'")


def datetime_from_epoch(seconds: float | None) -> datetime | None:
    """Convert epoch seconds (as the storages keep them) to a naive local datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds)


@dataclass(slots=True)
class FrozenTrial:
    """A snapshot of one trial, as the storage holds it.

    Attributes:
        number: The trial's number in its study, 0..N-1 in creation order.
        trial_id: The storage's identifier, unique across studies.
        state: The trial's state.
        values: The objective values of a COMPLETE trial (one per direction), else ``None``.
        params: Parameter values as the objective saw them.
        distributions: The distribution each parameter was drawn from.
        intermediate_values: ``step -> value`` as reported (NaN allowed here).
        user_attrs: Attributes set with ``Trial.set_user_attr``.
        system_attrs: Attributes dltune and its plug-ins keep (``reason``, ``retry_of``, ...).
        datetime_start: When it started running (storage clock), or ``None`` while WAITING.
        datetime_complete: When it finished, or ``None``.
    """

    number: int
    trial_id: int
    state: TrialState
    values: list[float] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None

    def copy(self) -> FrozenTrial:
        """A copy whose containers (values, params, attrs, ...) may be changed freely.

        Attribute values that are themselves lists or dicts are shared: treat them as read-only.
        Storages hand these out, so a caller cannot change what they keep.
        """
        return FrozenTrial(
            self.number,
            self.trial_id,
            self.state,
            None if self.values is None else list(self.values),
            dict(self.params),
            dict(self.distributions),
            dict(self.intermediate_values),
            dict(self.user_attrs),
            dict(self.system_attrs),
            self.datetime_start,
            self.datetime_complete,
        )

    @property
    def value(self) -> float | None:
        """The objective value of a single-objective trial (``None`` unless COMPLETE).

        Raises:
            RuntimeError: If the trial has several values (use ``values``).
        """
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise RuntimeError(
                f"trial {self.number} has {len(self.values)} values; use trial.values"
            )
        return self.values[0]

    @property
    def reason(self) -> str | None:
        """Why the trial ended as it did ('stale', 'interrupted', an error), if recorded."""
        reason = self.system_attrs.get("reason")
        return None if reason is None else str(reason)

    @property
    def outcome(self) -> str:
        """How the trial ended, in words a summary counts by.

        The state's name in lower case (``"complete"``, ``"pruned"``, ``"fail"``, ``"running"``,
        ``"waiting"``), except that a PRUNED trial a guard stopped reads ``"diverged"`` or
        ``"not_learning"`` (see :class:`dltune.TrialStopped`).
        """
        if self.state == TrialState.PRUNED:
            kind = self.system_attrs.get("stopped_by")
            if kind in ("diverged", "not_learning"):
                return str(kind)
        return self.state.name.lower()

    @property
    def resume_of(self) -> int | None:
        """The number of the paused trial this one continues (system attribute ``resume_of``,
        set when a pruner promoted a paused trial), or ``None``."""
        number = self.system_attrs.get("resume_of")
        if isinstance(number, bool) or not isinstance(number, int):
            return None
        return number

    @property
    def last_step(self) -> int | None:
        """The highest step reported, or ``None``."""
        return max(self.intermediate_values) if self.intermediate_values else None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to completion, or ``None`` while unfinished."""
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return (self.datetime_complete - self.datetime_start).total_seconds()


def check_value(value: Any) -> tuple[float | None, str | None]:
    """Validate an objective value: ``(float, None)`` if usable, else ``(None, reason)``.

    +inf and -inf are usable (a diverged loss is a legitimate, terrible value); NaN, ``None``,
    strings and other objects are not.
    """
    if isinstance(value, bool) or value is None:
        return None, f"the objective returned {value!r}, not a number"
    if isinstance(value, str | bytes):
        return None, (
            f"the objective returned {value!r} of type {type(value).__name__}, not a number"
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        return (
            None,
            f"the objective returned {value!r} of type {type(value).__name__}, not a number",
        )
    if math.isnan(number):
        return None, "the objective returned nan"
    return number, None


def continued_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """The numbers of the paused trials that some trial of ``trials`` continues.

    A continuation re-reports the values of the trial it continues, so pruners and samplers
    count such a lineage once, through the continuation.

    Example:
        >>> t1 = FrozenTrial(1, 1, TrialState.RUNNING, system_attrs={"resume_of": 0})
        >>> continued_numbers([FrozenTrial(0, 0, TrialState.PRUNED), t1])
        {0}
    """
    return {n for n in (t.resume_of for t in trials) if n is not None}


def resumed_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """The numbers of the paused (PRUNED) trials that a trial of ``trials`` continued.

    Summaries count such a trial as :data:`PAUSED`, not as pruned: the continuation carries
    the lineage's outcome.

    Example:
        >>> paused = FrozenTrial(0, 0, TrialState.PRUNED)
        >>> go_on = FrozenTrial(1, 1, TrialState.COMPLETE, [0.5], system_attrs={"resume_of": 0})
        >>> resumed_numbers([paused, go_on, FrozenTrial(2, 2, TrialState.PRUNED)])
        {0}
    """
    trials = list(trials)
    continued = continued_numbers(trials)
    return {t.number for t in trials if t.number in continued and t.state == TrialState.PRUNED}


def pareto_trials(
    trials: Iterable[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
    """The COMPLETE trials no other trial beats in every objective (the Pareto front).

    Infinities are legitimate values (``-inf`` is the best a minimized objective can get);
    equal points do not beat each other. Sorted lexicographically first, a point can only be
    beaten by one before it, and whatever beats a beaten point is itself beaten by a front
    point: checking each point against the front found so far suffices (O(n x front), not
    O(n^2)).

    Args:
        trials: Trials of the study (only COMPLETE ones with a value per objective count).
        directions: The study's directions.

    Returns:
        The front in number order (empty if no trial is COMPLETE).

    Example:
        >>> trials = [FrozenTrial(n, n, TrialState.COMPLETE, list(v))
        ...           for n, v in enumerate([(1, 3), (2, 2), (3, 3), (3, 1), (9, -math.inf)])]
        >>> [t.number for t in pareto_trials(trials, [StudyDirection.MINIMIZE] * 2)]
        [0, 1, 3, 4]
    """
    signs = [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions]
    points = sorted(
        (
            (tuple(s * v for s, v in zip(signs, t.values, strict=True)), t)
            for t in trials
            if t.state == TrialState.COMPLETE
            and t.values is not None
            and len(t.values) == len(signs)
        ),
        key=lambda pair: pair[0],
    )
    front: list[tuple[tuple[float, ...], FrozenTrial]] = []
    for point, trial in points:
        if not any(_beats(q, point) for q, _ in front):
            front.append((point, trial))
    return sorted((t for _, t in front), key=lambda t: t.number)


def _beats(q: tuple[float, ...], p: tuple[float, ...]) -> bool:
    """Whether ``q`` is at least as good as ``p`` in every (minimized) objective, and not equal."""
    return q != p and all(a <= b for a, b in zip(q, p, strict=True))
