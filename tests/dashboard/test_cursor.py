"""The ``after=`` cursor: its text form and which trials it lets through."""

from __future__ import annotations

import pytest

from dltune.dashboard._cursor import MAX_CURSOR_CHARS
from dltune.dashboard._cursor import Cursor
from dltune.dashboard._cursor import changed_since
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

DONE = TrialState.COMPLETE
RUN = TrialState.RUNNING


def trials(*states: tuple[int, TrialState]) -> list[FrozenTrial]:
    return [FrozenTrial(n, 100 + n, s, [1.0] if s == DONE else None) for n, s in states]


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(1, 0),
        Cursor(3, 10),
        Cursor(3, 10, ((0, 0),)),
        Cursor(7, 100, ((2, 5), (7, 7), (50, 99))),
    ],
)
def test_round_trip(cursor: Cursor) -> None:
    text = cursor.encode()
    assert all(c.isdigit() or c in "._-" for c in text)
    assert Cursor.decode(text) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1",
        "1.2.",
        "1.2.3-",
        "1.5.3-2",  # empty range
        "1.5.1-3_3",  # overlapping
        "1.5.1-2_3",  # adjacent ranges are one range
        "1.5.5",  # pending number at or past next
        "1.5.x",
        "-1.5",
        "1.5.2;drop",
        "1." + "9" * 13,
    ],
)
def test_decode_refuses_what_it_did_not_make(text: str) -> None:
    with pytest.raises(ValueError, match=r"after='.*' is not a cursor this dashboard sent"):
        Cursor.decode(text)


def test_decode_refuses_huge_cursors_quickly() -> None:
    text = "1.100000." + "_".join(str(n) for n in range(0, 100_000, 2))
    assert len(text) > MAX_CURSOR_CHARS
    with pytest.raises(ValueError, match=r"after='1\.100000\.0_2_4.*\.\.\.' is not a cursor"):
        Cursor.decode(text)


def test_first_call_sends_everything_and_remembers_the_unfinished() -> None:
    study = trials((0, DONE), (1, RUN), (2, DONE), (3, RUN))
    sent, cursor, reset = changed_since(5, study, None)
    assert [t.number for t in sent] == [0, 1, 2, 3] and reset
    assert cursor == Cursor(5, 4, ((1, 1), (3, 3)))


def test_later_calls_send_new_and_still_pending_trials_only() -> None:
    _, cursor, _ = changed_since(5, trials((0, DONE), (1, RUN), (2, DONE)), None)
    study = trials((0, DONE), (1, RUN), (2, DONE), (3, DONE))
    sent, cursor, reset = changed_since(5, study, cursor)
    assert [t.number for t in sent] == [1, 3] and not reset
    study = trials((0, DONE), (1, DONE), (2, DONE), (3, DONE))
    sent, cursor, _ = changed_since(5, study, cursor)
    assert [t.number for t in sent] == [1]
    sent, cursor, _ = changed_since(5, study, cursor)
    assert sent == [] and cursor == Cursor(5, 4)


def test_a_number_not_visible_yet_is_asked_for_again() -> None:
    # Trial 1's transaction has not committed when trial 2's has.
    _, cursor, _ = changed_since(5, trials((0, DONE), (2, DONE)), None)
    assert cursor == Cursor(5, 3, ((1, 1),))
    sent, _, _ = changed_since(5, trials((0, DONE), (1, DONE), (2, DONE)), cursor)
    assert [t.number for t in sent] == [1]


def test_an_empty_study_and_another_studys_cursor() -> None:
    sent, cursor, reset = changed_since(5, [], None)
    assert sent == [] and cursor == Cursor(5, 0) and reset
    sent, _, reset = changed_since(6, trials((0, DONE)), cursor)
    assert [t.number for t in sent] == [0] and reset


def test_pending_test_matches_the_ranges() -> None:
    is_pending = Cursor(1, 20, ((2, 4), (9, 9))).pending_test()
    assert [n for n in range(25) if is_pending(n)] == [2, 3, 4, 9, 20, 21, 22, 23, 24]
