"""The cursor of ``/trials?after=``: which trials a polling client may not have seen final.

A cursor is the study's id, the next trial number the client has not seen, and the numbers
below it that were not finished at the last answer (running or waiting, or not yet visible).
Finished trials never change, so the next answer holds only the trials at or past that
number and those still pending; the client merges them by number. The text uses only
characters URLs leave alone: ``"<study_id>.<next>[.<ranges>]"`` with ranges such as
``3_12-15``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from dltune.trial import FrozenTrial

__all__ = ["Cursor", "changed_since"]

#: Longer cursors are refused, so a request cannot make the server parse megabytes.
MAX_CURSOR_CHARS = 20_000
_CURSOR = re.compile(r"([0-9]{1,12})\.([0-9]{1,12})(?:\.([0-9_\-]+))?")
_RANGE = re.compile(r"([0-9]{1,12})(?:-([0-9]{1,12}))?")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client's copy of a study's trials stands.

    Attributes:
        study_id: The storage's id of the study (a study deleted and created again under the
            same name gets a new one, and the client starts over).
        next_number: Every trial numbered below this was seen.
        pending: Sorted, disjoint, inclusive ranges of numbers below ``next_number`` that
            were not finished (or not visible) when the cursor was made.

    Example:
        >>> cursor = Cursor(1, 16, ((3, 3), (12, 15)))
        >>> cursor.encode()
        '1.16.3_12-15'
        >>> Cursor.decode('1.16.3_12-15') == cursor
        True
    """

    study_id: int
    next_number: int
    pending: tuple[tuple[int, int], ...] = ()

    def encode(self) -> str:
        """The cursor as URL-safe text."""
        text = f"{self.study_id}.{self.next_number}"
        if self.pending:
            parts = (str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.pending)
            text += "." + "_".join(parts)
        return text

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor made by :meth:`encode`.

        Raises:
            ValueError: Naming ``after`` and the bad text, if it is not such a cursor.
        """
        shown = text if len(text) <= 60 else text[:60] + "..."
        bad = (
            f"after={shown!r} is not a cursor this dashboard sent; leave it out to get every "
            "trial again"
        )
        match = _CURSOR.fullmatch(text) if len(text) <= MAX_CURSOR_CHARS else None
        if match is None:
            raise ValueError(bad)
        next_number = int(match.group(2))
        ranges: list[tuple[int, int]] = []
        for part in match.group(3).split("_") if match.group(3) else ():
            found = _RANGE.fullmatch(part)
            if found is None:
                raise ValueError(bad)
            lo = int(found.group(1))
            hi = lo if found.group(2) is None else int(found.group(2))
            if hi < lo or hi >= next_number or (ranges and lo <= ranges[-1][1] + 1):
                raise ValueError(bad)
            ranges.append((lo, hi))
        return cls(int(match.group(1)), next_number, tuple(ranges))

    def pending_test(self) -> Callable[[int], bool]:
        """A test of whether a trial number may still change for the client holding this."""
        starts = [lo for lo, _ in self.pending]
        ends = [hi for _, hi in self.pending]
        next_number = self.next_number

        def is_pending(number: int) -> bool:
            if number >= next_number:
                return True
            k = bisect.bisect_right(starts, number) - 1
            return k >= 0 and number <= ends[k]

        return is_pending


def _ranges(numbers: Sequence[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for number in sorted(numbers):
        if out and number == out[-1][1] + 1:
            out[-1] = (out[-1][0], number)
        else:
            out.append((number, number))
    return tuple(out)


def changed_since(
    study_id: int, trials: Sequence[FrozenTrial], after: Cursor | None
) -> tuple[list[FrozenTrial], Cursor, bool]:
    """The trials a client holding ``after`` must be sent, the next cursor, and whether the
    client must start over (no cursor, or one of another study).

    ``trials`` is the whole study in number order.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(0, 1, TrialState.COMPLETE, [1.0]),
        ...           FrozenTrial(1, 2, TrialState.RUNNING)]
        >>> sent, cursor, reset = changed_since(7, trials, None)
        >>> [t.number for t in sent], cursor.encode(), reset
        ([0, 1], '7.2.1', True)
        >>> sent, cursor, reset = changed_since(7, trials, cursor)
        >>> [t.number for t in sent], cursor.encode(), reset
        ([1], '7.2.1', False)
    """
    if after is None or after.study_id != study_id:
        sent, reset = list(trials), True
    else:
        is_pending = after.pending_test()
        sent, reset = [t for t in trials if is_pending(t.number)], False
    next_number = trials[-1].number + 1 if trials else 0
    pending = [t.number for t in trials if not t.state.is_finished()]
    if len(trials) != next_number:  # numbers not (yet) visible: check them again next time
        present = {t.number for t in trials}
        pending += [n for n in range(next_number) if n not in present]
    return sent, Cursor(study_id, next_number, _ranges(pending)), reset
