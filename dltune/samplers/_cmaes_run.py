"""One CMA-ES run of :class:`~dltune.samplers._cmaes.CMAESSampler`, rebuilt from trial notes.

The sampler keeps nothing that another worker would need. Each trial it samples carries a note
(``sampler:cmaes``) saying which space, restart and generation the point was drawn for, and the
optimiser's own coordinates of the point. Any process rebuilds the optimiser by *replay*: create
it as the seed says, then, for every complete generation in order, ``tell`` it what its trials
scored. Telling involves no randomness, so every process replaying the same notes reaches the same
state; a process caches its optimiser and replays only generations that completed since.

Generations:
    A generation is complete once ``popsize`` of its trials have finished and count (a trial
    that died with its worker says nothing and is skipped). The members are the first
    ``popsize`` to finish (storage clock, then number), so a later reader picks the same ones.
    Trials asked while every point of the current generation is handed out but not all back
    (k parallel workers) get another point of that same generation: an extra candidate. It is
    evaluated and kept in the study, and it fills a member's place if it finishes first; the
    rest are left out of the update. Workers never wait, and no generation waits for a
    straggler.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

import numpy as np

from dltune._imports import require
from dltune.samplers._history import is_counted
from dltune.samplers._history import order_key
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = [
    "NOTE_KEY",
    "Generation",
    "Geometry",
    "Run",
    "RunSettings",
    "Scan",
    "Watermark",
    "first_unfinished",
    "scan_notes",
    "tell_values",
]

_logger = logging.getLogger(__name__)

#: The note key: trials carry the system attribute ``"sampler:" + NOTE_KEY``.
NOTE_KEY = "cmaes"


class _PlainOptimizer(Protocol):
    """What the sampler uses of ``cmaes.CMA``."""

    def ask(self) -> np.ndarray: ...

    def tell(self, solutions: list[tuple[np.ndarray, float]]) -> None: ...

    def should_stop(self) -> bool: ...

    def reseed_rng(self, seed: int) -> None: ...


class _MarginOptimizer(Protocol):
    """What the sampler uses of ``cmaes.CMAwM``: ``ask`` returns (encoded, raw)."""

    def ask(self) -> tuple[np.ndarray, np.ndarray]: ...

    def tell(self, solutions: list[tuple[np.ndarray, float]]) -> None: ...

    def should_stop(self) -> bool: ...

    def reseed_rng(self, seed: int) -> None: ...


def n_cells(dist: BaseDistribution) -> int | None:
    """How many equal cells ``dist`` has in the unit cube, or ``None`` if it is continuous.

    Ints and stepped floats map each value to a cell of width ``1 / n``; a log-scaled int's
    cells shrink towards the top, which the margin cannot express, so it counts as continuous
    (its values still snap through ``from_unit``).
    """
    if isinstance(dist, IntDistribution) and not dist.log:
        return (dist.high - dist.low) // dist.step + 1
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return round((dist.high - dist.low) / dist.step) + 1
    return None


@dataclass(frozen=True)
class Geometry:
    """The optimiser's box: the unit cube of a space, with the cells of its discrete axes.

    Attributes:
        names: The parameters, in column order.
        dists: Their distributions.
        bounds: ``(d, 2)``: ``[0, 1]`` for a continuous axis; the first and last cell centres,
            ``[0.5 / n, 1 - 0.5 / n]``, for a discrete one (the margin works on cell centres).
        steps: ``(d,)``: the cell width ``1 / n`` of a discrete axis, 0 for a continuous one.
        use_margin: Whether the optimiser is CMA-ES with margin (some axis is discrete).
        has_duplicates: Whether two proposals can give the same values (an int or a step).
    """

    names: tuple[str, ...]
    dists: tuple[BaseDistribution, ...]
    bounds: np.ndarray
    steps: np.ndarray
    use_margin: bool
    has_duplicates: bool

    @classmethod
    def of(cls, space: dict[str, BaseDistribution], use_margin: bool) -> Geometry:
        """The geometry of ``space`` (float and int distributions only)."""
        cells = [n_cells(dist) for dist in space.values()]
        steps = np.array([1.0 / n if n is not None and use_margin else 0.0 for n in cells])
        half = 0.5 * steps
        return cls(
            names=tuple(space),
            dists=tuple(space.values()),
            bounds=np.stack([half, 1.0 - half], axis=1),
            steps=steps,
            use_margin=bool(np.any(steps > 0.0)),
            has_duplicates=any(isinstance(d, IntDistribution) for d in space.values())
            or any(n is not None for n in cells),
        )

    @property
    def dim(self) -> int:
        """The number of axes."""
        return len(self.names)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` moved inside the box (the optimiser refuses a mean outside it)."""
        return np.asarray(np.clip(x, self.bounds[:, 0], self.bounds[:, 1]), dtype=float)

    def to_internal(self, unit: np.ndarray) -> list[float]:
        """The internal values of a point of the unit cube."""
        return [dist.from_unit(float(u)) for dist, u in zip(self.dists, unit, strict=True)]


@dataclass(frozen=True)
class RunSettings:
    """What fixes a run besides the space: the sampler's options and seed."""

    seed: int
    sigma0: float
    popsize: int | None
    restart_strategy: str | None
    inc_popsize: int

    def popsize_of(self, dim: int, restart: int) -> int:
        """The population of restart ``restart`` (IPOP multiplies it by ``inc_popsize``)."""
        base = self.popsize if self.popsize is not None else 4 + math.floor(3 * math.log(dim))
        return int(base * self.inc_popsize**restart)


@dataclass
class Generation:
    """The noted trials of one (restart, generation), with their optimiser coordinates."""

    trials: list[FrozenTrial] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)


def _note_position(note: Any, fingerprint: str) -> tuple[int, int] | None:
    """``(restart, generation)`` of a note of this space, or ``None``."""
    if not isinstance(note, dict) or note.get("space") != fingerprint:
        return None
    restart, generation = note.get("restart"), note.get("generation")
    if not isinstance(restart, int) or not isinstance(generation, int):
        return None
    return restart, generation


def _note_vector(note: dict[str, Any], key: str, dim: int) -> np.ndarray | None:
    """The finite vector of length ``dim`` a note holds under ``key``, or ``None``."""
    value = note.get(key)
    if not isinstance(value, list) or len(value) != dim:
        return None
    x = np.asarray(value, dtype=float)
    return x if np.all(np.isfinite(x)) else None


class Watermark:
    """How many leading trials a scan can skip: they are finished and were dealt with.

    Trials are listed in number order and only ever appended, so an index stays valid; the
    id of the trial just before it is kept to notice a list that is not the one expected.
    """

    __slots__ = ("_index", "_last_id")

    def __init__(self) -> None:
        self._index = 0
        self._last_id: int | None = None

    def begin(self, trials: Sequence[FrozenTrial]) -> int:
        """Where a scan of ``trials`` may begin (0 if the list is not the one expected)."""
        i = self._index
        if i == 0 or (i <= len(trials) and trials[i - 1].trial_id == self._last_id):
            return i
        return 0

    def advance(self, trials: Sequence[FrozenTrial], index: int) -> None:
        """Record that ``trials[:index]`` need no scan again."""
        self._index = index
        self._last_id = trials[index - 1].trial_id if index > 0 else None


def first_unfinished(trials: Sequence[FrozenTrial], begin: int) -> int:
    """The index of the first trial from ``begin`` on that is not finished (or the length)."""
    for index in range(begin, len(trials)):
        if not trials[index].state.is_finished():
            return index
    return len(trials)


@dataclass
class Scan:
    """What :func:`scan_notes` found.

    Attributes:
        groups: The trials noted for this space by (restart, generation), from ``start`` on.
        x0: The initial mean noted by the lowest-numbered trial of the first generation, if
            ``start`` is that generation and some trial has it.
        settled: An index of ``trials`` before which every trial is finished and noted for no
            generation from ``start`` on: later scans from ``start`` or later may begin there.
    """

    groups: dict[tuple[int, int], Generation]
    x0: np.ndarray | None
    settled: int


def scan_notes(
    view: StudyView,
    trials: Sequence[FrozenTrial],
    fingerprint: str,
    dim: int,
    start: tuple[int, int],
    begin: int = 0,
) -> Scan:
    """Read the notes of ``trials[begin:]`` for this space (see :class:`Scan`)."""
    groups: dict[tuple[int, int], Generation] = {}
    x0: np.ndarray | None = None
    settled = len(trials)
    for index in range(begin, len(trials)):
        trial = trials[index]
        note = view.get_note(NOTE_KEY, trial)
        position = None if note is None else _note_position(note, fingerprint)
        if position == (0, 0) and x0 is None and start == (0, 0):
            x0 = _note_vector(note, "x0", dim)
        if position is None or position < start:
            if index < settled and not trial.state.is_finished():
                settled = index
            continue
        raw = _note_vector(note, "x", dim)
        if raw is None:
            continue
        settled = min(settled, index)
        group = groups.setdefault(position, Generation())
        group.trials.append(trial)
        group.raw.append(raw)
    return Scan(groups, x0, settled)


def tell_values(
    trials: Sequence[FrozenTrial], sign: float, worst: float | None
) -> tuple[list[float], float | None]:
    """The values to tell for a generation's trials (to minimize), and the new running worst.

    A COMPLETE trial with a finite value gives its value. Every other one (pruned, diverged,
    failed, an infinite value) ranks below them all, in the order of
    :func:`~dltune.samplers._history.order_key` (pruned by how far they got, then bad ones):
    the k-th gets the worst finite value of the generation (else the worst so far, else 0) plus
    ``(1 + k)`` margins. CMA-ES uses only ranks and the spread of values, so a diverged region
    weighs as the worst of its generation and its negative weight pushes the search away.
    The values depend only on this generation and earlier ones, so every replay agrees.
    """
    finite = {
        t.trial_id: sign * t.values[0]
        for t in trials
        if t.state == TrialState.COMPLETE and t.values and math.isfinite(t.values[0])
    }
    base = max(finite.values()) if finite else (worst if worst is not None else 0.0)
    margin = 1.0 + abs(base)
    rest = sorted(
        (t for t in trials if t.trial_id not in finite),
        key=lambda t: (order_key(t, sign), t.number),
    )
    imputed = {t.trial_id: base + margin * (1 + k) for k, t in enumerate(rest)}
    values = [finite.get(t.trial_id, imputed.get(t.trial_id, math.nan)) for t in trials]
    if finite:
        worst = base if worst is None else max(worst, base)
    return values, worst


def _finish_order(trial: FrozenTrial) -> tuple[float, int]:
    """Sorts finished trials by when they finished (storage clock), then by number."""
    finished = trial.datetime_complete
    return (math.inf if finished is None else finished.timestamp(), trial.number)


class Run:
    """One CMA-ES chain over one space: restarts, the current generation and its optimiser."""

    def __init__(
        self,
        settings: RunSettings,
        geometry: Geometry,
        fingerprint: str,
        x0: np.ndarray,
    ) -> None:
        self.settings = settings
        self.geometry = geometry
        self.fingerprint = fingerprint
        self.x0 = geometry.clip(np.asarray(x0, dtype=float))
        self.restart = 0
        self.generation = 0
        self.worst: float | None = None
        self._plain: _PlainOptimizer | None = None
        self._margin: _MarginOptimizer | None = None
        self._start(self.x0)
        #: Where the next scan of the notes may begin.
        self.scanned = Watermark()
        #: Keys of the points of the finished trials before ``seen_until`` (they never change).
        self.seen_keys: set[tuple[float, ...]] = set()
        self.seen_until = Watermark()

    @property
    def popsize(self) -> int:
        """The population of the current restart."""
        return self.settings.popsize_of(self.geometry.dim, self.restart)

    @property
    def position(self) -> tuple[int, int]:
        """(restart, generation) of the points handed out now."""
        return self.restart, self.generation

    def _start(self, mean: np.ndarray) -> None:
        """Create the optimiser of the current restart around ``mean``."""
        cmaes = require("cmaes", extra="cmaes", feature="CMAESSampler")
        geometry = self.geometry
        # The constructor's seed is irrelevant: the rng is reseeded before every ask.
        if geometry.use_margin:
            self._margin = cmaes.CMAwM(
                mean=geometry.clip(mean),
                sigma=self.settings.sigma0,
                bounds=geometry.bounds.copy(),
                steps=geometry.steps.copy(),
                seed=0,
                population_size=self.popsize,
            )
        else:
            self._plain = cmaes.CMA(
                mean=geometry.clip(mean),
                sigma=self.settings.sigma0,
                bounds=geometry.bounds.copy(),
                seed=0,
                population_size=self.popsize,
            )

    def _restart_mean(self) -> np.ndarray:
        """A uniform point of the box for restart ``self.restart`` (IPOP), from the seed."""
        rng = np.random.default_rng([self.settings.seed, self.restart, 0x434D4145])
        return self.geometry.clip(rng.random(self.geometry.dim))

    def reseed(self, seed: int) -> None:
        """Reseed the optimiser's generator through its public ``reseed_rng``.

        Called before each trial's first point with a seed derived from the sampler's seed
        and the trial number, so a point depends only on those and the optimiser's state, not
        on how many points this process drew before: a replayed copy proposes the same point.
        """
        if self._margin is not None:
            self._margin.reseed_rng(seed)
        elif self._plain is not None:
            self._plain.reseed_rng(seed)

    def ask(self) -> tuple[np.ndarray, np.ndarray]:
        """A point of the current generation: (unit-cube point, optimiser coordinates)."""
        if self._margin is not None:
            return self._margin.ask()
        assert self._plain is not None
        raw = self._plain.ask()
        return raw, raw

    def replay(self, groups: dict[tuple[int, int], Generation], sign: float) -> None:
        """Tell every generation that is complete in ``groups``, in order, restarting (IPOP)
        when the optimiser says it should stop."""
        while True:
            group = groups.get(self.position)
            if group is None:
                return
            done = [
                (t, raw)
                for t, raw in zip(group.trials, group.raw, strict=True)
                if t.state.is_finished() and is_counted(t)
            ]
            popsize = self.popsize
            if len(done) < popsize:
                return
            done.sort(key=lambda pair: _finish_order(pair[0]))
            members = sorted(done[:popsize], key=lambda pair: pair[0].number)
            values, self.worst = tell_values([t for t, _ in members], sign, self.worst)
            self._tell(
                [(raw.copy(), value) for (_, raw), value in zip(members, values, strict=True)]
            )

    def _tell(self, solutions: list[tuple[np.ndarray, float]]) -> None:
        optimizer = self._margin if self._margin is not None else self._plain
        assert optimizer is not None
        optimizer.tell(solutions)
        if self.settings.restart_strategy == "ipop" and optimizer.should_stop():
            self.restart += 1
            self.generation = 0
            _logger.debug("CMA-ES restart %d with a population of %d", self.restart, self.popsize)
            self._start(self._restart_mean())
        else:
            self.generation += 1
