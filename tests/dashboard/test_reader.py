"""The dashboard's reading of the storage: opening it read-only, caching the plots."""

from __future__ import annotations

import logging
import math
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from dashboard_helpers import make_client

import dltune
from dltune.dashboard._app import build_app
from dltune.dashboard._open import ReaderClosedError
from dltune.dashboard._open import open_read_only
from dltune.dashboard._reader import PLOT_COST_FACTOR
from dltune.dashboard._reader import StudyReader
from dltune.dashboard._serve import LOOPBACK_HOSTS
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import StorageError
from dltune.storage import SQLStorage
from dltune.trial import TrialState


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
        first, key = reader.plots("demo")
        again, _ = reader.plots("demo")
        assert again is first and key.n_finished == 5 and key.encode() == "5.6.1"
        finish_one(study_db)
        # Within PLOT_COST_FACTOR times the last computation (0.5 s): the old plots.
        stale, stale_key = reader.plots("demo")
        assert stale is first and stale_key == key
        clock.now += PLOT_COST_FACTOR * 0.5
        fresh, fresh_key = reader.plots("demo")
        assert fresh is not first and fresh_key.encode() == "6.6.0"
        assert b"0.0625" in fresh.body
    finally:
        reader.close()


def report(url: str, number: int, step: int, value: float) -> None:
    """A worker reports ``value`` at ``step`` for the running trial ``number`` of demo."""
    storage = SQLStorage(url)
    try:
        study_id = storage.get_study_id_from_name("demo")
        trial = next(t for t in storage.get_all_trials(study_id) if t.number == number)
        storage.set_trial_intermediate_value(trial.trial_id, step, value)
    finally:
        storage.close()


def test_plots_follow_the_reports_of_running_trials(study_db: str) -> None:
    clock = FakeClock()
    reader = StudyReader(study_db, clock=clock)
    try:
        first, key = reader.plots("demo")
        report(study_db, 5, 1, 0.875)  # trial 5 runs on: its learning curve grows
        stale, _ = reader.plots("demo")
        assert stale is first  # the throttle holds
        clock.now += PLOT_COST_FACTOR * 0.5
        fresh, fresh_key = reader.plots("demo")
        assert fresh is not first
        assert (fresh_key.n_finished, fresh_key.n_reports) == (key.n_finished, 2)
        assert b"0.875" in fresh.body and b"0.875" not in first.body
        clock.now += PLOT_COST_FACTOR * 0.5
        assert reader.plots("demo")[0] is fresh  # nothing moved: the cached plots
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


def test_best_values_count_infinities_as_study_best_trial_does(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inf.db'}"
    storage = SQLStorage(url)
    for name, direction, values in (
        ("min", "minimize", (1.0, -math.inf, math.inf)),
        ("max", "maximize", (1.0, math.inf, -math.inf)),
        ("worst", "minimize", (math.inf,)),
    ):
        study = dltune.create_study(name, storage, direction=direction)
        for value in values:
            study.tell(study.ask(), value)
        assert study.best_value == values[1 if len(values) > 1 else 0]
    storage.close()
    reader = StudyReader(url)
    try:
        best = {s["name"]: s["best_values"] for s in reader.studies()}
        assert best == {"min": ["-inf"], "max": ["inf"], "worst": ["inf"]}
        assert reader.study("min")["best_values"] == ["-inf"]
    finally:
        reader.close()


def test_a_paused_trial_that_was_continued_counts_as_paused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paused.db'}"
    storage = SQLStorage(url)
    study = dltune.create_study("asha", storage)
    paused = study.ask()
    paused.report(0.5, 0)
    study.tell(paused, state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.PRUNED)  # pruned for good
    going_on = study.ask()
    going_on.set_system_attr("resume_of", paused.number)
    study.tell(going_on, 0.25)
    storage.close()
    reader = StudyReader(url)
    try:
        assert reader.study("asha")["counts"] == {"complete": 1, "paused": 1, "pruned": 1}
    finally:
        reader.close()


def test_a_closed_reader_refuses_reads_and_the_warm_up_stops_quietly(
    study_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = StudyReader(study_db)
    reader.close()
    reader.close()  # twice is fine
    assert reader.closed
    with pytest.raises(ReaderClosedError, match="the dashboard is shutting down"):
        reader.studies()
    with pytest.raises(ReaderClosedError, match="shutting down"):
        reader.trials("demo", None)
    with caplog.at_level(logging.WARNING, logger="dltune"):
        reader.warm_up(threading.Event())
    assert caplog.records == [] and reader._plots == {}


def warm_up_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dltune-dashboard-warm-up"]


def wait_until_reading(thread: threading.Thread) -> None:
    """Wait until ``thread`` waits for the lock of a study's read (``_read_trials``)."""
    deadline = time.monotonic() + 10
    while True:
        frame = sys._current_frames().get(thread.ident or -1)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        if "_read_trials" in names:
            return
        assert thread.is_alive() and time.monotonic() < deadline, names
        time.sleep(0.01)


def test_shutting_down_while_warming_up_closes_the_reader(
    study_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = StudyReader(study_db)
    # Hold the lock a read of "demo" takes, so the warm-up is stuck in that study when the
    # app shuts down, without waiting for it.
    study_lock = reader._study_locks.setdefault(reader.study_id("demo"), threading.Lock())
    app = build_app(reader, allowed_hosts=LOOPBACK_HOSTS, warm_up_join_seconds=0.0)
    with caplog.at_level(logging.WARNING, logger="dltune"):
        with study_lock:
            with make_client(app):  # the startup starts the warm-up
                wait_until_reading(warm_up_threads()[0])
            assert reader.closed  # closed although the warm-up thread still runs
            assert warm_up_threads()
        deadline = time.monotonic() + 10
        while warm_up_threads():  # its next read is refused: it stops, quietly
            assert time.monotonic() < deadline, "the warm-up thread did not stop"
            time.sleep(0.02)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert reader._plots == {}
    with pytest.raises(ReaderClosedError):
        reader.study("demo")


def test_info_of_a_public_dashboard_shows_only_the_file_name(study_db: str) -> None:
    public = StudyReader(study_db, is_public=True)
    private = StudyReader(study_db)
    try:
        assert public.info()["storage"] == "sqlite:///…/studies.db"
        assert private.info()["storage"] == study_db
    finally:
        public.close()
        private.close()
