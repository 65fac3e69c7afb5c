"""Hyperband: several successive-halving brackets, trials spread over them by number."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

from dltune.pruners._base import BasePruner
from dltune.pruners._checks import check_int
from dltune.pruners._checks import check_objective
from dltune.pruners._scores import chain
from dltune.pruners._successive_halving import SuccessiveHalvingPruner

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["HyperbandPruner"]

_MASK = (1 << 64) - 1


def _mix64(x: int) -> int:
    """The splitmix64 finalizer: a well-spread 64-bit hash, the same in every process."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class HyperbandPruner(BasePruner):
    """Hyperband (Li et al. 2017) over asynchronous successive halving.

    There are ``n_brackets = floor(log_eta(max_resource / min_resource)) + 1`` brackets;
    bracket ``b`` is a :class:`SuccessiveHalvingPruner` with ``min_early_stopping_rate=b``
    (bracket 0 prunes from ``min_resource`` on, the last one the least). A trial's bracket is a
    hash of ``(seed, number)``, weighted by the number of trials Hyperband's schedule starts in
    each bracket (``ceil(n_brackets / (s + 1) * eta**s)`` for the bracket ``s = n_brackets - 1
    - b`` rungs deep), so every process agrees without talking. A continuation belongs to the
    bracket of the trial its lineage started from, and each bracket's rungs count only its
    own trials.

    :meth:`promote` looks only in the bracket the new trial's number falls in: a continuation
    takes that bracket's turn, so the brackets keep Hyperband's shares of the trials.

    Args:
        min_resource: The first rung of bracket 0.
        max_resource: The full budget (the last epoch); no rung at or above it.
        reduction_factor: ``eta`` (>= 2).
        seed: Seeds the assignment to brackets; ``None`` is 0, so separate processes agree.
        bootstrap_count: As for :class:`SuccessiveHalvingPruner`, per bracket.
        objective: The objective index compared, or ``"rank"``.

    Raises:
        TypeError: For a count or seed that is not an int, or a bad ``objective`` type.
        ValueError: For ``min_resource < 1``, ``max_resource < min_resource``,
            ``reduction_factor < 2``, a negative seed or count, or a bad ``objective``.

    Example:
        >>> pruner = HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)
        >>> pruner.n_brackets, pruner.rungs(0), pruner.rungs(3)
        (4, [1, 3, 9], [])
        >>> pruner.bracket_of(5) == HyperbandPruner(max_resource=27).bracket_of(5)
        True
    """

    def __init__(
        self,
        min_resource: int = 1,
        *,
        max_resource: int,
        reduction_factor: int = 3,
        seed: int | None = None,
        bootstrap_count: int = 0,
        objective: int | str = 0,
    ) -> None:
        check_int("min_resource", min_resource, 1)
        check_int("max_resource", max_resource, 1)
        if max_resource < min_resource:
            raise ValueError(
                f"max_resource={max_resource!r} must be >= min_resource={min_resource!r}"
            )
        eta = check_int("reduction_factor", reduction_factor, 2)
        self._seed = 0 if seed is None else check_int("seed", seed, 0)
        check_objective(objective)
        depth = 0
        while min_resource * eta ** (depth + 1) <= max_resource:
            depth += 1
        n = depth + 1
        self._brackets = [
            SuccessiveHalvingPruner(
                min_resource,
                eta,
                b,
                bootstrap_count=bootstrap_count,
                max_resource=max_resource,
                objective=objective,
            )
            for b in range(n)
        ]
        # Bracket b runs s = n - 1 - b halvings; the schedule starts ceil(n / (s+1) * eta**s).
        self._weights = [-(-n * eta ** (n - 1 - b) // (n - b)) for b in range(n)]
        self._cumulative = list(accumulate(self._weights))

    @property
    def n_brackets(self) -> int:
        """How many brackets there are."""
        return len(self._brackets)

    @property
    def bracket_weights(self) -> list[int]:
        """The number of trials Hyperband's schedule starts in each bracket (the odds of the
        assignment)."""
        return list(self._weights)

    def rungs(self, bracket: int) -> list[int]:
        """The resources (steps) at which bracket ``bracket`` decides, ascending.

        Raises:
            ValueError: If there is no such bracket.
        """
        return self.bracket_pruner(bracket).rungs()

    def bracket_pruner(self, bracket: int) -> SuccessiveHalvingPruner:
        """The successive-halving pruner of bracket ``bracket``.

        Raises:
            ValueError: If there is no such bracket.
        """
        if isinstance(bracket, bool) or not isinstance(bracket, int):
            raise TypeError(f"bracket={bracket!r} must be an int")
        if not 0 <= bracket < self.n_brackets:
            raise ValueError(f"bracket={bracket!r} must be in 0..{self.n_brackets - 1}")
        return self._brackets[bracket]

    def bracket_of(self, number: int, study: StudyView | None = None) -> int:
        """The bracket of trial ``number``.

        With ``study``, a continuation's bracket is that of the trial its lineage started
        from (followed through ``resume_of``); without, the bracket of ``number`` itself.
        """
        if study is not None:
            trials = study.get_trials()
            by_number = {t.number: t for t in trials}
            if number in by_number:
                number = chain(by_number[number], by_number)[0].number
        ticket = _mix64(_mix64(self._seed) ^ (number & _MASK)) % self._cumulative[-1]
        return next(b for b, edge in enumerate(self._cumulative) if ticket < edge)

    def _member(self, bracket: int) -> _InBracket:
        return _InBracket(self, bracket)

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        if trial.last_step is None:
            return False
        everyone = study.get_trials()
        by_number = {t.number: t for t in everyone}
        by_number[trial.number] = trial
        bracket = self.bracket_of(chain(trial, by_number)[0].number)
        pruner = self._brackets[bracket]
        return pruner._prune(study, trial, everyone, self._member(bracket))

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        """The paused trial of the new ``trial``'s bracket that is now in the top of its rung
        (the highest rung first), as :meth:`SuccessiveHalvingPruner.promote`, or ``None``."""
        bracket = self.bracket_of(trial.number)
        everyone: Sequence[FrozenTrial] = study.get_trials()
        return self._brackets[bracket]._promote(study, everyone, self._member(bracket))


class _InBracket:
    """Whether a lineage's root number falls in one bracket (picklable, unlike a closure)."""

    __slots__ = ("_bracket", "_pruner")

    def __init__(self, pruner: HyperbandPruner, bracket: int) -> None:
        self._pruner = pruner
        self._bracket = bracket

    def __call__(self, root: int) -> bool:
        return self._pruner.bracket_of(root) == self._bracket
