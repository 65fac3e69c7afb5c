"""The cursor of ``/trials?after=``: which trials a polling client may not have seen final.

A cursor is the study's fingerprint, the next trial number the client has not seen, and the
numbers below it that were not finished at the last answer (running or waiting, or not yet
visible). Finished trials never change, so the next answer holds only the trials at or past
that number and those still pending; the client merges them by number. The text uses only
characters URLs leave alone: ``"<fingerprint>.<next>[.<ranges>]"`` with ranges such as
``3_12-15``.

The fingerprint (:func:`study_fingerprint`) hashes the storage URL, the study's id and its
first trial, not the id alone: ids start at 1 in every database, so after a dashboard
restarted on the same port over another storage (or over a database file made anew) an open
tab's cursor would otherwise pass for one of the new study and keep stale rows. It depends
only on what is stored, so it stays valid across a restart over the same storage.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from dltune.trial import FrozenTrial

__all__ = ["Cursor", "changed_since", "study_fingerprint"]

#: Longer cursors are refused, so a request cannot make the server parse megabytes.
MAX_CURSOR_CHARS = 20_000
_CURSOR = re.compile(r"([0-9a-f]{1,32})\.([0-9]{1,12})(?:\.([0-9_\-]+))?")
_FINGERPRINT = re.compile(r"[0-9a-f]{1,32}")
#: Hex digits of the fingerprint: a clash between two studies a tab could mix up is a 1 in
#: 2**48 chance.
FINGERPRINT_CHARS = 12
_RANGE = re.compile(r"([0-9]{1,12})(?:-([0-9]{1,12}))?")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client's copy of a study's trials stands.

    Attributes:
        fingerprint: The study's :func:`study_fingerprint` (lower-case hex): a cursor of
            another study, storage or database starts the client over.
        next_number: Every trial numbered below this was seen.
        pending: Sorted, disjoint, inclusive ranges of numbers below ``next_number`` that
            were not finished (or not visible) when the cursor was made.

    Raises:
        ValueError: If ``fingerprint`` is not 1 to 32 lower-case hex digits.

    Example:
        >>> cursor = Cursor("5eed", 16, ((3, 3), (12, 15)))
        >>> cursor.encode()
        '5eed.16.3_12-15'
        >>> Cursor.decode('5eed.16.3_12-15') == cursor
        True
    """

    fingerprint: str
    next_number: int
    pending: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.fingerprint, str) or not _FINGERPRINT.fullmatch(self.fingerprint):
            raise ValueError(
                f"fingerprint={self.fingerprint!r} must be 1 to 32 lower-case hex digits, as "
                "study_fingerprint makes"
            )

    def encode(self) -> str:
        """The cursor as URL-safe text.

        Returns:
            ``"<fingerprint>.<next>[.<ranges>]"``, which :meth:`decode` reads back.
        """
        text = f"{self.fingerprint}.{self.next_number}"
        if self.pending:
            parts = (str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.pending)
            text += "." + "_".join(parts)
        return text

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor made by :meth:`encode`.

        Args:
            text: The ``after`` query parameter, as the client sent it.

        Returns:
            The cursor.

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
        return cls(match.group(1), next_number, tuple(ranges))

    def pending_test(self) -> Callable[[int], bool]:
        """A test of whether a trial number may still change for the client holding this.

        Returns:
            A function of a trial number: ``True`` for numbers at or past ``next_number`` and
            those in ``pending``.
        """
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


def study_fingerprint(storage_url: str, study_id: int, trials: Sequence[FrozenTrial]) -> str:
    """A short hash telling this study apart from any other a dashboard could have served.

    It hashes ``storage_url`` (normalised by the caller), ``study_id`` and the id and start of
    the study's trial number 0: ids alone start at 1 in every database. The fingerprint
    changes once when trial 0 first becomes visible or starts (the client then reloads a
    study it barely holds), and never otherwise.

    Args:
        storage_url: The storage's URL, as the dashboard was given it (normalised).
        study_id: The storage's id of the study.
        trials: The study's trials in number order.

    Returns:
        :data:`FINGERPRINT_CHARS` lower-case hex digits.

    Example:
        >>> from dltune.trial import TrialState
        >>> first = [FrozenTrial(0, 1, TrialState.RUNNING)]
        >>> a = study_fingerprint("sqlite:////a.db", 1, first)
        >>> a == study_fingerprint("sqlite:////a.db", 1, first), len(a)
        (True, 12)
        >>> a == study_fingerprint("sqlite:////b.db", 1, first)
        False
    """
    first = trials[0] if trials and trials[0].number == 0 else None
    if first is None:
        anchor = "-"
    else:
        start = first.datetime_start
        anchor = f"{first.trial_id}@{'-' if start is None else start.isoformat()}"
    text = f"{storage_url}\n{study_id}\n{anchor}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_CHARS]


def changed_since(
    fingerprint: str, trials: Sequence[FrozenTrial], after: Cursor | None
) -> tuple[list[FrozenTrial], Cursor, bool]:
    """The trials a client holding ``after`` must be sent, the next cursor, and whether the
    client must start over.

    It starts over without a cursor, with one of another study (another fingerprint), or
    with one that saw more trials than the study holds (the study is not the one the cursor
    was made for).

    Args:
        fingerprint: The study's :func:`study_fingerprint`.
        trials: The whole study in number order.
        after: The client's cursor, or ``None`` on its first request.

    Returns:
        ``(trials to send, the next cursor, whether the client must drop what it holds)``.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(0, 1, TrialState.COMPLETE, [1.0]),
        ...           FrozenTrial(1, 2, TrialState.RUNNING)]
        >>> sent, cursor, reset = changed_since("ab12", trials, None)
        >>> [t.number for t in sent], cursor.encode(), reset
        ([0, 1], 'ab12.2.1', True)
        >>> sent, cursor, reset = changed_since("ab12", trials, cursor)
        >>> [t.number for t in sent], cursor.encode(), reset
        ([1], 'ab12.2.1', False)
    """
    next_number = trials[-1].number + 1 if trials else 0
    if after is None or after.fingerprint != fingerprint or after.next_number > next_number:
        sent, reset = list(trials), True
    else:
        is_pending = after.pending_test()
        sent, reset = [t for t in trials if is_pending(t.number)], False
    pending = [t.number for t in trials if not t.state.is_finished()]
    if len(trials) != next_number:  # numbers not (yet) visible: check them again next time
        present = {t.number for t in trials}
        pending += [n for n in range(next_number) if n not in present]
    return sent, Cursor(fingerprint, next_number, _ranges(pending)), reset
