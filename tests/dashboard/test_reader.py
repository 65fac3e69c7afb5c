"""The dashboard's reading of the storage: opening it read-only, caching the plots."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import dltune
from dltune.dashboard._reader import PLOT_COST_FACTOR
from dltune.dashboard._reader import StudyReader
from dltune.dashboard._reader import open_read_only
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import StorageError
from dltune.storage import SQLStorage


class FakeClock:
    """Seconds that move only when told, and by a fixed step on each reading."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5  # each plot computation "takes" 0.5 s
        return self.now


def finish_one(url: str) -> None:
    storage = SQLStorage(url)
    try:
        study = dltune.load_study("demo", storage)
        study.tell(5, 0.0625)
    finally:
        storage.close()


def test_plots_are_cached_until_a_trial_finishes(study_db: str) -> None:
    clock = FakeClock()
    reader = StudyReader(study_db, clock=clock)
    try:
        first, n_first = reader.plots("demo")
        again, _ = reader.plots("demo")
        assert again is first and n_first == 5
        finish_one(study_db)
        # Within PLOT_COST_FACTOR times the last computation (0.5 s): the old plots.
        stale, n_stale = reader.plots("demo")
        assert stale is first and n_stale == 5
        clock.now += PLOT_COST_FACTOR * 0.5
        fresh, n_fresh = reader.plots("demo")
        assert fresh is not first and n_fresh == 6
        assert b"0.0625" in fresh.body
    finally:
        reader.close()


def test_warm_up_reads_every_study_and_stops_when_told(study_db: str) -> None:
    reader = StudyReader(study_db)
    try:
        stop = threading.Event()
        stop.set()
        reader.warm_up(stop)
        assert reader._plots == {}  # stopped before the first study
        reader.warm_up(threading.Event())
        payload, _ = reader.plots("demo")
        assert reader.plots("demo")[0] is payload  # already computed by the warm-up
        assert len(reader._plots) == 3
    finally:
        reader.close()


def test_open_read_only_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"storage=None must be a URL such as"):
        open_read_only(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"url='mysql://x/y' uses the unsupported driver"):
        open_read_only("mysql://x/y")
    missing = tmp_path / "sub" / "none.db"
    with pytest.raises(ValueError, match=rf"there is no database file '{missing}'; check"):
        open_read_only(f"sqlite:///{missing}")
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StorageError, match="holds no dltune schema yet"):
        open_read_only(f"sqlite:///{empty}")
    assert empty.stat().st_size == 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("2", TypeError, r"poll_seconds='2' must be a number of seconds"),
        (True, TypeError, r"poll_seconds=True must be a number of seconds"),
        (0.0, ValueError, r"poll_seconds=0.0 must be between 0.1 and 3600"),
        (float("nan"), ValueError, r"poll_seconds=nan must be between 0.1 and 3600"),
    ],
)
def test_poll_seconds_is_checked(
    study_db: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        StudyReader(study_db, poll_seconds=value)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_postgres_sessions_are_read_only(fresh_postgres_url: str) -> None:
    writer = SQLStorage(fresh_postgres_url)
    study = dltune.create_study("pg", writer)
    study.tell(study.ask(), 1.0)
    writer.close()
    reader = StudyReader(fresh_postgres_url)
    try:
        assert [s["n_trials"] for s in reader.studies()] == [1]
        with pytest.raises(ReadOnlyStorageError, match="opened with read_only=True"):
            reader.storage.set_study_attr(1, "k", 1, system=False)
        # The database itself refuses: the session is read-only.
        with pytest.raises(StorageError, match="read-only transaction"):
            reader.storage._db.run(
                lambda c: c.exec_driver_sql("CREATE TABLE t (x int)"), write=False
            )
    finally:
        reader.close()
