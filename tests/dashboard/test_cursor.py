"""The ``after=`` cursor: its text form and which trials it lets through."""

from __future__ import annotations

from datetime import datetime

import pytest

from dltune.dashboard._cursor import MAX_CURSOR_CHARS
from dltune.dashboard._cursor import Cursor
from dltune.dashboard._cursor import changed_since
from dltune.dashboard._cursor import study_fingerprint
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

DONE = TrialState.COMPLETE
RUN = TrialState.RUNNING


def trials(*states: tuple[int, TrialState]) -> list[FrozenTrial]:
    return [FrozenTrial(n, 100 + n, s, [1.0] if s == DONE else None) for n, s in states]


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor("1", 0),
        Cursor("3", 10),
        Cursor("0a9f", 10, ((0, 0),)),
        Cursor("7" * 32, 100, ((2, 5), (7, 7), (50, 99))),
    ],
)
def test_round_trip(cursor: Cursor) -> None:
    text = cursor.encode()
    assert all(c in "0123456789abcdef._-" for c in text)
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
        "AB.5",  # upper case
        "g1.5",
        "1" * 33 + ".5",
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
    sent, cursor, reset = changed_since("5", study, None)
    assert [t.number for t in sent] == [0, 1, 2, 3] and reset
    assert cursor == Cursor("5", 4, ((1, 1), (3, 3)))


def test_later_calls_send_new_and_still_pending_trials_only() -> None:
    _, cursor, _ = changed_since("5", trials((0, DONE), (1, RUN), (2, DONE)), None)
    study = trials((0, DONE), (1, RUN), (2, DONE), (3, DONE))
    sent, cursor, reset = changed_since("5", study, cursor)
    assert [t.number for t in sent] == [1, 3] and not reset
    study = trials((0, DONE), (1, DONE), (2, DONE), (3, DONE))
    sent, cursor, _ = changed_since("5", study, cursor)
    assert [t.number for t in sent] == [1]
    sent, cursor, _ = changed_since("5", study, cursor)
    assert sent == [] and cursor == Cursor("5", 4)


def test_a_number_not_visible_yet_is_asked_for_again() -> None:
    # Trial 1's transaction has not committed when trial 2's has.
    _, cursor, _ = changed_since("5", trials((0, DONE), (2, DONE)), None)
    assert cursor == Cursor("5", 3, ((1, 1),))
    sent, _, _ = changed_since("5", trials((0, DONE), (1, DONE), (2, DONE)), cursor)
    assert [t.number for t in sent] == [1]


def test_an_empty_study_and_another_studys_cursor() -> None:
    sent, cursor, reset = changed_since("5", [], None)
    assert sent == [] and cursor == Cursor("5", 0) and reset
    sent, _, reset = changed_since("6", trials((0, DONE)), cursor)
    assert [t.number for t in sent] == [0] and reset


def test_pending_test_matches_the_ranges() -> None:
    is_pending = Cursor("1", 20, ((2, 4), (9, 9))).pending_test()
    assert [n for n in range(25) if is_pending(n)] == [2, 3, 4, 9, 20, 21, 22, 23, 24]


@pytest.mark.parametrize("fingerprint", ["", "ABC", "x1", "1" * 33, 5])
def test_a_cursor_refuses_a_bad_fingerprint(fingerprint: object) -> None:
    with pytest.raises(ValueError, match=r"fingerprint=.* must be 1 to 32 lower-case hex digits"):
        Cursor(fingerprint, 0)  # type: ignore[arg-type]


def test_a_cursor_that_saw_more_trials_than_the_study_holds_starts_over() -> None:
    # The same fingerprint, but the client saw 10 trials of a study that holds 2 (another
    # study that happens to hash alike, or a database replaced under the dashboard).
    study = trials((0, DONE), (1, DONE))
    sent, cursor, reset = changed_since("5", study, Cursor("5", 10))
    assert [t.number for t in sent] == [0, 1] and reset
    assert cursor == Cursor("5", 2)
    sent, _, reset = changed_since("5", study, Cursor("5", 2))
    assert sent == [] and not reset


def started(number: int, trial_id: int, when: datetime | None) -> FrozenTrial:
    return FrozenTrial(number, trial_id, TrialState.RUNNING, datetime_start=when)


def test_fingerprints_tell_storages_studies_and_databases_apart() -> None:
    noon = datetime(2024, 5, 1, 12, 0, 0, 123456)
    study = [started(0, 1, noon), started(1, 2, noon)]
    base = study_fingerprint("sqlite:////a.db", 1, study)
    assert len(base) == 12 and all(c in "0123456789abcdef" for c in base)
    # Stable: the same storage, study and first trial (a dashboard restarted over them).
    assert study_fingerprint("sqlite:////a.db", 1, list(study)) == base
    assert study_fingerprint("sqlite:////a.db", 1, study[:1]) == base  # later trials: no matter
    others = {
        study_fingerprint("sqlite:////b.db", 1, study),  # another storage, same study id
        study_fingerprint("sqlite:////a.db", 2, study),  # another study
        study_fingerprint("sqlite:////a.db", 1, [started(0, 7, noon)]),  # a database made anew
        study_fingerprint("sqlite:////a.db", 1, [started(0, 1, noon.replace(second=1))]),
        study_fingerprint("sqlite:////a.db", 1, []),  # an empty study
    }
    assert base not in others and len(others) == 5
    # Trial 0 not visible yet: the fingerprint of an empty study.
    assert study_fingerprint("u", 1, [started(1, 2, noon)]) == study_fingerprint("u", 1, [])


def test_a_cursor_of_another_storage_with_the_same_study_id_starts_over() -> None:
    noon = datetime(2024, 5, 1, 12, 0)
    old = [started(0, 1, noon), started(1, 2, noon)]
    new = [started(0, 1, noon.replace(hour=13)), started(1, 2, noon)]
    _, cursor, _ = changed_since(study_fingerprint("sqlite:////a.db", 1, old), old, None)
    # The dashboard restarts on the same port over another database: an open tab's cursor.
    fingerprint = study_fingerprint("sqlite:////b.db", 1, new)
    sent, _, reset = changed_since(fingerprint, new, cursor)
    assert reset and [t.number for t in sent] == [0, 1]
    # Over the same database again, the tab goes on where it was.
    fingerprint = study_fingerprint("sqlite:////a.db", 1, old)
    sent, _, reset = changed_since(fingerprint, old, cursor)
    assert not reset and [t.number for t in sent] == [0, 1]  # both still running
