"""Asynchronous successive halving (ASHA): keep the top 1/eta of each rung, never wait."""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dltune.pruners._base import BasePruner
from dltune.pruners._checks import check_int
from dltune.pruners._checks import check_objective
from dltune.pruners._scores import RUNG_STATES
from dltune.pruners._scores import Curve
from dltune.pruners._scores import Scorer
from dltune.pruners._scores import chain
from dltune.pruners._scores import is_guard_stopped
from dltune.pruners._scores import lineages
from dltune.trial import TrialState
from dltune.trial import continued_numbers

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["SuccessiveHalvingPruner"]

#: Whether a lineage (by its root's number) takes part; Hyperband keeps one bracket.
Member = Callable[[int], bool]


class _Lineage:
    """A paused trial and its continuations, counted once: their merged curve."""

    __slots__ = ("curve", "latest", "root")

    def __init__(self, root: int, members: Sequence[FrozenTrial]) -> None:
        self.root = root
        self.latest = members[-1]
        self.curve = Curve(members)


class SuccessiveHalvingPruner(BasePruner):
    """Asynchronous successive halving (ASHA, Li et al. 2018), decided from storage alone.

    Rung ``k`` sits at resource ``r_k = min_resource * reduction_factor ** (
    min_early_stopping_rate + k)``, and the resource is the reported step (the trainer reports
    epochs 1, 2, ...). When a trial first reports a step ``>= r_k``, its value there is its
    value at rung ``k``; it goes on if that value is in the top ``floor(n / reduction_factor)``
    of the ``n`` trials with a value at rung ``k`` (running, complete or pruned; itself
    included), or, while ``n < reduction_factor``, if it is the best so far. Nobody waits for
    stragglers. Otherwise it is pruned, which *pauses* it at rung ``k``: :meth:`promote` hands it
    to a new trial to continue once it has climbed into the top of its rung.

    A continuation (a trial whose system attribute ``resume_of`` names the trial it continues)
    and the trials it continues count once, with their merged curve; while it re-reports the
    steps it resumed it is not judged again. A value that is NaN or infinite ranks worst and is
    pruned. Ties go to the older lineage (the lower root number). In a multi-objective study,
    ``objective`` picks an objective by index, or ``"rank"`` compares non-dominated fronts
    among the vectors reported at the rung (ties within a front by age, as above); a trial
    without the compared value at its rung is not judged there.

    Args:
        min_resource: The first rung's resource (before ``min_early_stopping_rate``).
        reduction_factor: ``eta``: keep the top ``1/eta`` of each rung (>= 2).
        min_early_stopping_rate: ``s``: the first rung is at ``min_resource * eta**s``.
        bootstrap_count: Prune nobody at a rung until this many trials have a value there.
        max_resource: If given, no rung at or above it (a trial at the full budget is
            finished, so judging it would only throw its result away).
        objective: The objective index compared, or ``"rank"``.

    Raises:
        TypeError: For a count that is not an int, or an ``objective`` of another type.
        ValueError: For ``min_resource < 1``, ``reduction_factor < 2``, a negative rate or
            ``bootstrap_count``, ``max_resource < min_resource``, or a bad ``objective``.

    Example:
        >>> pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        >>> pruner.rungs(up_to=30)
        [1, 3, 9, 27]
    """

    def __init__(
        self,
        min_resource: int = 1,
        reduction_factor: int = 3,
        min_early_stopping_rate: int = 0,
        *,
        bootstrap_count: int = 0,
        max_resource: int | None = None,
        objective: int | str = 0,
    ) -> None:
        self._min_resource = check_int("min_resource", min_resource, 1)
        self._eta = check_int("reduction_factor", reduction_factor, 2)
        self._rate = check_int("min_early_stopping_rate", min_early_stopping_rate, 0)
        self._bootstrap_count = check_int("bootstrap_count", bootstrap_count, 0)
        self._max_resource = None
        if max_resource is not None:
            self._max_resource = check_int("max_resource", max_resource, 1)
            if max_resource < min_resource:
                raise ValueError(
                    f"max_resource={max_resource!r} must be >= min_resource={min_resource!r}"
                )
        self._objective = check_objective(objective)

    @property
    def reduction_factor(self) -> int:
        """``eta``."""
        return self._eta

    def rungs(self, up_to: int | None = None) -> list[int]:
        """The rungs' resources, ascending: below ``max_resource``, and ``<= up_to`` if given.

        Raises:
            ValueError: Without ``up_to`` when the pruner has no ``max_resource`` (the rungs
                go on forever).
        """
        if up_to is None and self._max_resource is None:
            raise ValueError("up_to=None needs a max_resource; the rungs go on forever")
        out: list[int] = []
        resource = self._min_resource * self._eta**self._rate
        while (up_to is None or resource <= up_to) and (
            self._max_resource is None or resource < self._max_resource
        ):
            out.append(resource)
            resource *= self._eta
        return out

    # -- pruning -------------------------------------------------------------------------------

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        if trial.last_step is None:
            return False
        return self._prune(study, trial, study.get_trials(), None)

    def _prune(
        self,
        study: StudyView,
        trial: FrozenTrial,
        everyone: Sequence[FrozenTrial],
        member: Member | None,
    ) -> bool:
        """The decision for ``trial`` among the lineages ``member`` keeps (all if ``None``)."""
        last = trial.last_step
        if last is None:
            return False
        scorer = Scorer.of(study, self._objective)
        by_number = {t.number: t for t in everyone}
        by_number[trial.number] = trial
        own_chain = chain(trial, by_number)
        if len(own_chain) > 1:
            resumed_last = Curve(own_chain[:-1]).last_step
            if resumed_last is not None and last <= resumed_last:
                return False  # re-reporting what the paused trial already passed
        own = Curve(own_chain)
        decided = [r for r in self.rungs(up_to=last) if own.first_step_at_least(r) == last]
        if not decided:
            return False
        own_root = own_chain[0].number
        peers = [
            lin for lin in self._lineages(everyone, by_number, member) if lin.root != own_root
        ]
        return not all(self._keeps(scorer, own_root, own, peers, r) for r in decided)

    def _keeps(
        self,
        scorer: Scorer,
        root: int,
        curve: Curve,
        peers: Sequence[_Lineage],
        resource: int,
    ) -> bool:
        """Whether the lineage ``root`` with ``curve`` goes on past the rung at ``resource``."""
        step = curve.first_step_at_least(resource)
        assert step is not None  # the caller decides only rungs the trial reached
        at_rung = [(lin, lin.curve.first_step_at_least(resource)) for lin in peers]
        present = [(lin, s) for lin, s in at_rung if s is not None]
        entries = [(curve, step)] + [(lin.curve, s) for lin, s in present]
        own, *scores = scorer.scores(entries, worst=True)
        if own is None:
            return True  # not comparable: never prune on missing data
        others = [
            (score, lin.root)
            for score, (lin, _) in zip(scores, present, strict=True)
            if score is not None
        ]
        if len(others) + 1 < self._bootstrap_count:
            return True
        if not _is_finite(scorer.point(curve, step)):
            return False
        return _in_top(sum(1 for o in others if o < (own, root)), len(others) + 1, self._eta)

    def _lineages(
        self,
        everyone: Sequence[FrozenTrial],
        by_number: dict[int, FrozenTrial],
        member: Member | None,
    ) -> list[_Lineage]:
        counted = [t for t in everyone if t.state in RUNG_STATES]
        return [
            _Lineage(root, members)
            for root, members in lineages(counted, by_number).items()
            if member is None or member(root)
        ]

    # -- promotion -----------------------------------------------------------------------------

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        """The best paused trial that is now in the top of its rung, the highest rung first.

        A candidate is a PRUNED trial not stopped by a guard and not continued yet, whose last
        step is its step at rung ``k`` with a finite value there; it is promoted when that
        value is in the top ``floor(n_k / reduction_factor)`` of rung ``k``. ``None`` if there
        is none (so the new trial samples as usual).

        Example:
            >>> from dltune.storage import InMemoryStorage
            >>> from dltune.trial import StudyDirection
            >>> from dltune.view import StudyView
            >>> storage = InMemoryStorage()
            >>> view = StudyView(storage, storage.create_new_study([StudyDirection.MINIMIZE], "s"))
            >>> SuccessiveHalvingPruner().promote(view, storage.create_new_trial(view.study_id))
        """
        return self._promote(study, study.get_trials(), None)

    def _promote(
        self, study: StudyView, everyone: Sequence[FrozenTrial], member: Member | None
    ) -> FrozenTrial | None:
        scorer = Scorer.of(study, self._objective)
        by_number = {t.number: t for t in everyone}
        population = self._lineages(everyone, by_number, member)
        continued = continued_numbers(everyone)
        candidates: dict[int, set[int]] = {}  # resource -> roots paused there
        for lin in population:
            latest, last = lin.latest, lin.curve.last_step
            if (
                last is None
                or latest.state != TrialState.PRUNED
                or is_guard_stopped(latest)
                or latest.number in continued
            ):
                continue
            paused_at = [
                r for r in self.rungs(up_to=last) if lin.curve.first_step_at_least(r) == last
            ]
            if paused_at and _is_finite(scorer.point(lin.curve, last)):
                candidates.setdefault(paused_at[-1], set()).add(lin.root)
        if not candidates:
            return None
        latest_of = {lin.root: lin.latest for lin in population}
        for resource in sorted(candidates, reverse=True):
            at_rung = [
                (lin, s)
                for lin in population
                if (s := lin.curve.first_step_at_least(resource)) is not None
            ]
            scores = scorer.scores([(lin.curve, s) for lin, s in at_rung], worst=True)
            ranked = sorted(
                (score, lin.root)
                for score, (lin, _) in zip(scores, at_rung, strict=True)
                if score is not None
            )
            for _, root in ranked[: len(ranked) // self._eta]:
                if root in candidates[resource]:
                    return latest_of[root].copy()
        return None


def _is_finite(point: tuple[float, ...] | None) -> bool:
    return point is not None and all(math.isfinite(v) for v in point)


def _in_top(position: int, n: int, eta: int) -> bool:
    """Whether 0-based ``position`` of ``n`` is in the top ``floor(n / eta)`` (the best, while
    that is zero)."""
    top = n // eta
    return position == 0 if top == 0 else position < top
