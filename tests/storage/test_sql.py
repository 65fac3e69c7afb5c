"""What only the SQL storage promises: schema versions, read-only opening, locking, URLs,
options, heartbeats and retries across storage objects, pickling and many processes.

The behaviour every storage shares is in the conformance suite (``test_storages.py``); the best
trial with infinities and ties is covered there too.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import FUTURE_REVISION
from sql_helpers import MIN
from sql_helpers import Opener
from sql_helpers import execute_raw
from sql_helpers import file_state
from sql_helpers import masked
from sql_helpers import populate
from sql_helpers import snapshot
from sql_helpers import template
from sql_helpers import write_calls
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

import dltune
from dltune.exceptions import DLTuneError
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import SchemaVersionError
from dltune.exceptions import StorageError
from dltune.storage import SQLStorage
from dltune.storage import current_schema_version
from dltune.storage import upgrade_storage
from dltune.storage._sql_engine import ACCEPTED_URLS
from dltune.storage._sql_schema import head_revision
from dltune.testing import count_sql_rows
from dltune.trial import TrialState

# -- 1. schema versions ------------------------------------------------------------------------


def test_fresh_database_is_stamped_at_head(url: str, open_storage: Opener) -> None:
    assert current_schema_version(url) is None
    storage = open_storage()
    assert current_schema_version(url) == head_revision()
    assert storage.get_all_studies() == []


def test_concurrent_openers_of_an_empty_database_create_one_schema(url: str) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_and_write(i: int) -> None:
        try:
            barrier.wait()
            storage = SQLStorage(url)
            storage.create_new_study([MIN], f"study {i}")
            storage.close()
        except BaseException as exc:  # reported below, with its traceback
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, "".join(traceback.format_exception(errors[0]))
    assert current_schema_version(url) == head_revision()
    assert count_sql_rows(url)["studies"] == 6


def test_upgrade_storage_creates_then_keeps_the_schema(url: str) -> None:
    head = head_revision()
    assert upgrade_storage(url) == (None, head)
    assert upgrade_storage(url) == (head, head)
    storage = SQLStorage(url)
    try:
        assert storage.create_new_study([MIN], "after upgrade") == 1
    finally:
        storage.close()
    assert upgrade_storage(url) == (head, head)


def test_current_schema_version_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.db", tmp_path / "no" / "such" / "dir" / "missing.db"):
        assert current_schema_version(f"sqlite:///{path}") is None
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_older_schema_is_refused_until_upgraded(url: str, request: pytest.FixtureRequest) -> None:
    old_head = head_revision()
    storage = SQLStorage(url)
    study_id = storage.create_new_study([MIN], "kept")
    storage.create_new_trial(study_id, template(TrialState.COMPLETE, [1.5]))
    storage.close()

    new_head = request.getfixturevalue("head_plus_one")
    assert head_revision() == new_head
    assert current_schema_version(url) == old_head
    expected = (
        rf"the database at {re.escape(masked(url))} has the older schema revision "
        rf"'{old_head}' \(this dltune uses '{new_head}'\); back it up, then run "
        rf"`dltune storage upgrade --storage {re.escape(masked(url))}`"
    )
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match=expected):
            SQLStorage(url, read_only=read_only)

    assert upgrade_storage(url) == (old_head, new_head)
    assert current_schema_version(url) == new_head
    storage = SQLStorage(url)
    try:
        (trial,) = storage.get_all_trials(storage.get_study_id_from_name("kept"))
        assert trial.values == [1.5]
        storage.create_new_trial(study_id)
    finally:
        storage.close()


def test_database_from_a_newer_dltune_is_read_only(
    url: str, open_storage: Opener, subtests: pytest.Subtests
) -> None:
    study_id, trial_id = populate(open_storage())
    expected_view = snapshot(open_storage())
    execute_raw(url, f"UPDATE alembic_version SET version_num = '{FUTURE_REVISION}'")
    assert current_schema_version(url) == FUTURE_REVISION
    rows = count_sql_rows(url)

    storage = open_storage()
    assert snapshot(storage) == expected_view
    newer = (
        rf"the database at {re.escape(masked(url))} was written by a newer dltune "
        rf"\(schema revision '{FUTURE_REVISION}'; this dltune knows up to "
        rf"'{head_revision()}'\); it is open read-only: upgrade dltune "
        r"\(pip install -U dltune\) to write to it"
    )
    for name, call in write_calls(storage, study_id, trial_id).items():
        with subtests.test(name), pytest.raises(ReadOnlyStorageError, match=newer):
            call()
    assert count_sql_rows(url) == rows
    assert current_schema_version(url) == FUTURE_REVISION

    with pytest.raises(
        SchemaVersionError,
        match=rf"was written by a newer dltune \(schema revision '{FUTURE_REVISION}'.*\); "
        r"upgrade dltune to use it",
    ):
        upgrade_storage(url)
    assert current_schema_version(url) == FUTURE_REVISION


def test_tables_without_a_version_stamp_are_refused(url: str) -> None:
    execute_raw(url, "CREATE TABLE trials (trial_id INTEGER PRIMARY KEY)")
    expected = (
        r"the database holds a 'studies' or 'trials' table but no 'alembic_version' table, so "
        r"it was not created by dltune; use an empty database"
    )
    with pytest.raises(SchemaVersionError, match=expected):
        SQLStorage(url)
    with pytest.raises(SchemaVersionError, match=expected):
        current_schema_version(url)
    with pytest.raises(SchemaVersionError, match=expected):
        upgrade_storage(url)


def test_several_version_stamps_are_refused(url: str) -> None:
    SQLStorage(url).close()
    execute_raw(url, "INSERT INTO alembic_version (version_num) VALUES ('0042')")
    with pytest.raises(
        SchemaVersionError,
        match=rf"the database has several schema revisions \[.*'{head_revision()}'.*\]; "
        r"it was not created by dltune",
    ):
        SQLStorage(url)


# -- 2. read_only=True -------------------------------------------------------------------------
# That a read-only storage never reaps stale trials is in test_each_trial_goes_stale_after_...


def test_read_only_reads_and_refuses_every_write(
    url: str, open_storage: Opener, subtests: pytest.Subtests
) -> None:
    study_id, trial_id = populate(open_storage())
    rows = count_sql_rows(url)
    reader = open_storage(read_only=True)
    assert snapshot(reader) == snapshot(open_storage())
    expected = (
        rf"the storage {re.escape(masked(url))} was opened with read_only=True; "
        "open it without read_only to write"
    )
    for name, call in write_calls(reader, study_id, trial_id).items():
        with subtests.test(name), pytest.raises(ReadOnlyStorageError, match=expected):
            call()
    assert count_sql_rows(url) == rows


def test_read_only_on_an_empty_database_is_refused(url: str) -> None:
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").touch()  # an empty file is an empty database
    with pytest.raises(
        StorageError,
        match=rf"the database at {re.escape(masked(url))} holds no dltune schema yet; open it "
        r"once without read_only=True to create it",
    ):
        SQLStorage(url, read_only=True)
    assert current_schema_version(url) is None


@pytest.mark.parametrize(
    ("relative", "read_only"),
    [("missing.db", True), ("no/such/dir/storage.db", True), ("no/such/dir/storage.db", False)],
)
def test_sqlite_file_that_cannot_be_opened(relative: str, read_only: bool, tmp_path: Path) -> None:
    path = tmp_path / relative
    with pytest.raises(
        StorageError,
        match=rf"^cannot open the database at sqlite:///{re.escape(str(path))}: "
        r"unable to open database file$",
    ) as info:
        SQLStorage(f"sqlite:///{path}", read_only=read_only)
    assert isinstance(info.value.__cause__, OperationalError)
    assert list(tmp_path.iterdir()) == []  # a read-only open never creates the file


def test_sqlite_read_only_leaves_the_file_untouched(tmp_path: Path) -> None:
    # Also a path that must be quoted in the read-only 'file:' URI.
    directory = tmp_path / "a dir#with%odd chars"
    directory.mkdir()
    path = directory / "storage.db"
    url = f"sqlite:///{path}"
    writer = SQLStorage(url)
    study_id, _ = populate(writer)
    expected_view = snapshot(writer)
    writer.close()  # the last connection checkpoints the WAL into the file
    before = file_state(path)

    reader = SQLStorage(url, read_only=True)
    try:
        for _ in range(5):
            assert snapshot(reader) == expected_view
            reader.get_all_trials(study_id)
    finally:
        reader.close()
    assert file_state(path) == before
    wal = path.with_name(path.name + "-wal")
    # SQLite may create an empty WAL for a read-only WAL-mode connection; it holds no frames.
    assert not wal.exists() or wal.stat().st_size == 0


def test_reader_never_blocks_a_writer(open_storage: Opener) -> None:
    writer = open_storage()
    study_id, _ = populate(writer)
    n_before = writer.get_n_trials(study_id)
    n_waiting = writer.get_n_trials(study_id, (TrialState.WAITING,))  # claimed first
    reader = open_storage(read_only=True)
    stop = threading.Event()
    reads: list[int] = []
    errors: list[BaseException] = []

    def read_in_a_loop() -> None:
        try:
            while not stop.is_set():
                reads.append(len(reader.get_all_trials(study_id)))
        except BaseException as exc:  # reported below, with its traceback
            errors.append(exc)

    thread = threading.Thread(target=read_in_a_loop)
    thread.start()
    slowest = 0.0
    n_writes = 0
    try:
        while not reads:
            time.sleep(0.001)
        reads_before = len(reads)
        for _ in range(60):
            started = time.monotonic()
            trial = writer.claim_trial(study_id)
            assert trial is not None
            writer.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
            slowest = max(slowest, time.monotonic() - started)
            n_writes += 1
        reads_during = len(reads) - reads_before
    finally:
        stop.set()
        thread.join()
    assert not errors, "".join(traceback.format_exception(errors[0]))
    assert n_writes == 60
    assert reads_during >= 10, f"only {reads_during} reads ran while 60 claims were written"
    assert slowest < 2.0, f"a claim took {slowest:.2f} s while a reader was reading"
    assert reads == sorted(reads)  # the reader saw the trials appear, never a torn state
    assert writer.get_n_trials(study_id) == n_before - n_waiting + 60


# -- 3. lock handling on SQLite ----------------------------------------------------------------


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """A raw connection holding SQLite's write lock until it commits."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    return connection


def test_write_waits_for_a_briefly_held_lock(tmp_path: Path) -> None:
    path = tmp_path / "storage.db"
    storage = SQLStorage(f"sqlite:///{path}")
    try:
        study_id = storage.create_new_study([MIN], "locked")
        holder = hold_write_lock(path)
        release = threading.Timer(1.0, holder.commit)
        release.start()
        try:
            started = time.monotonic()
            assert storage.get_all_trials(study_id) == []  # reads are not blocked
            assert time.monotonic() - started < 0.9
            trial = storage.claim_trial(study_id)
            waited = time.monotonic() - started
        finally:
            release.join()
            holder.close()
        assert trial is not None
        assert trial.number == 0
        assert waited >= 0.8
        assert [t.number for t in storage.get_all_trials(study_id)] == [0]
    finally:
        storage.close()


def test_lock_held_past_the_retry_budget_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No constructor option bounds the wait (the busy timeout is a PRAGMA set on connect, which
    # overrides engine_kwargs' connect_args timeout), and the default budget is 12 attempts of
    # up to 30 s each: shrink the module's constants instead.
    from dltune.storage import _sql_engine

    monkeypatch.setattr(_sql_engine, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(_sql_engine, "MAX_ATTEMPTS", 3)
    path = tmp_path / "storage.db"
    url = f"sqlite:///{path}"
    storage = SQLStorage(url)
    try:
        study_id = storage.create_new_study([MIN], "locked")
        holder = hold_write_lock(path)
        try:
            with pytest.raises(
                StorageError,
                match=rf"the database at {re.escape(url)} failed after 3 attempts over "
                r"\d+\.\d s: database is locked",
            ) as info:
                storage.claim_trial(study_id)
        finally:
            holder.commit()
            holder.close()
        assert isinstance(info.value, DLTuneError)
        assert not isinstance(info.value, sqlite3.Error | OperationalError)
        assert isinstance(info.value.__cause__, OperationalError)
        assert isinstance(info.value.__cause__.orig, sqlite3.OperationalError)
        # Nothing was half-written, and the storage works once the lock is gone.
        assert storage.get_n_trials(study_id) == 0
        trial = storage.claim_trial(study_id)
        assert trial is not None
        assert trial.number == 0
    finally:
        storage.close()


@pytest.mark.postgres
def test_postgres_claim_waits_for_a_briefly_held_row_lock(fresh_postgres_url: str) -> None:
    import psycopg

    storage = SQLStorage(fresh_postgres_url)
    try:
        study_id = storage.create_new_study([MIN], "locked")
        libpq_url = make_url(fresh_postgres_url).set(drivername="postgresql")
        with psycopg.connect(libpq_url.render_as_string(hide_password=False)) as holder:
            holder.execute("SELECT * FROM studies WHERE study_id = %s FOR UPDATE", [study_id])
            release = threading.Timer(1.0, holder.commit)
            release.start()
            started = time.monotonic()
            try:
                trial = storage.claim_trial(study_id)
            finally:
                release.join()
            waited = time.monotonic() - started
        assert trial is not None
        assert trial.number == 0
        assert waited >= 0.8
    finally:
        storage.close()


# -- 4. URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_url", "why"),
    [
        ("mysql://x", "uses the unsupported driver 'mysql'"),
        ("mysql+pymysql://u@h/db", "uses the unsupported driver 'mysql+pymysql'"),
        ("sqlite://", "does not name a database file"),
        ("sqlite:///:memory:", "does not name a database file"),
        ("sqlite:///file:x?mode=memory&uri=true", "does not name a database file"),
        ("not a url", "is not a database URL"),
        ("", "is not a database URL"),
    ],
)
def test_bad_url_is_refused(bad_url: str, why: str, tmp_path: Path) -> None:
    expected = (
        rf"url={re.escape(repr(bad_url))} {re.escape(why)}.*; use {re.escape(ACCEPTED_URLS)}"
    )
    with pytest.raises(ValueError, match=expected):
        SQLStorage(bad_url)
    with pytest.raises(ValueError, match=expected):
        current_schema_version(bad_url)
    with pytest.raises(ValueError, match=expected):
        upgrade_storage(bad_url)
    with pytest.raises(ValueError, match=expected):
        dltune.create_study(storage=bad_url)


def test_memory_url_points_to_storage_none() -> None:
    with pytest.raises(ValueError, match=r"or storage=None for a study kept in this process's"):
        SQLStorage("sqlite:///:memory:")


def test_bad_url_message_masks_the_password() -> None:
    with pytest.raises(
        ValueError, match=r"url='mysql://u:\*\*\*@h/db' uses the unsupported"
    ) as info:
        SQLStorage("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)


def test_url_that_is_not_a_str_is_refused() -> None:
    not_a_str: Any = Path("storage.db")
    with pytest.raises(TypeError, match=r"url=PosixPath\('storage.db'\) must be a str such as"):
        SQLStorage(not_a_str)


def _unreachable_url(scheme: str) -> str:
    return f"{scheme}://u:secret@127.0.0.1:1/db"


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql"])
def test_unreachable_postgres_fails_fast_without_the_password(scheme: str) -> None:
    pytest.importorskip("psycopg")
    shown = re.escape("postgresql+psycopg://u:***@127.0.0.1:1/db")
    calls: list[tuple[Callable[[str], object], str]] = [
        (SQLStorage, rf"^cannot open the database at {shown}: .*127\.0\.0\.1.*port 1"),
        (current_schema_version, rf"^the database at {shown} failed: .*127\.0\.0\.1.*port 1"),
        (upgrade_storage, rf"^the database at {shown} failed: .*127\.0\.0\.1.*port 1"),
    ]
    for call, expected in calls:
        started = time.monotonic()
        with pytest.raises(StorageError, match=expected) as info:
            call(_unreachable_url(scheme))
        assert time.monotonic() - started < 5.0
        whole_chain = "".join(traceback.format_exception(info.value))
        assert "secret" not in whole_chain


@pytest.mark.postgres
def test_postgresql_scheme_means_psycopg(fresh_postgres_url: str) -> None:
    plain = make_url(fresh_postgres_url).set(drivername="postgresql")
    plain_url = plain.render_as_string(hide_password=False)
    assert plain_url.startswith("postgresql://")
    storage = SQLStorage(plain_url)
    other = SQLStorage(fresh_postgres_url)
    try:
        assert storage.url.startswith("postgresql+psycopg://")
        study_id = storage.create_new_study([MIN], "plain")
        assert other.get_study_id_from_name("plain") == study_id
        assert current_schema_version(plain_url) == head_revision()
        assert upgrade_storage(plain_url) == (head_revision(), head_revision())
    finally:
        storage.close()
        other.close()


@pytest.mark.postgres
def test_password_is_masked_in_url_and_repr(fresh_postgres_url: str) -> None:
    # The throwaway server trusts every connection, so any password is accepted.
    with_password = make_url(fresh_postgres_url).set(password="secret")
    storage = SQLStorage(with_password.render_as_string(hide_password=False))
    try:
        assert "secret" not in storage.url
        assert "secret" not in repr(storage)
        assert storage.url == with_password.render_as_string(hide_password=True)
        assert repr(storage) == f"SQLStorage({storage.url!r})"
    finally:
        storage.close()


def test_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    writer = SQLStorage("sqlite:///relative.db")
    reader = SQLStorage("sqlite:///relative.db", read_only=True)
    try:
        writer.create_new_study([MIN], "here")
        assert [s.study_name for s in reader.get_all_studies()] == ["here"]
    finally:
        writer.close()
        reader.close()
    assert (tmp_path / "relative.db").exists()


# -- 5. constructor options --------------------------------------------------------------------

NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    ("options", "error", "expected"),
    [
        ({"heartbeat_seconds": 0}, ValueError, r"heartbeat_seconds=0 must be a finite number"),
        ({"heartbeat_seconds": -1.0}, ValueError, r"heartbeat_seconds=-1\.0 must be a finite"),
        ({"heartbeat_seconds": NAN}, ValueError, r"heartbeat_seconds=nan must be a finite"),
        ({"heartbeat_seconds": INF}, ValueError, r"heartbeat_seconds=inf must be a finite"),
        ({"heartbeat_seconds": True}, TypeError, r"heartbeat_seconds=True must be a number of"),
        ({"heartbeat_seconds": "10"}, TypeError, r"heartbeat_seconds='10' must be a number of"),
        ({"heartbeat_seconds": None}, TypeError, r"heartbeat_seconds=None must be a number of"),
        ({"grace_seconds": 0}, ValueError, r"grace_seconds=0 must be a finite number of seconds"),
        ({"grace_seconds": -60}, ValueError, r"grace_seconds=-60 must be a finite number"),
        ({"grace_seconds": False}, TypeError, r"grace_seconds=False must be a number of seconds"),
        ({"grace_seconds": "60"}, TypeError, r"grace_seconds='60' must be a number of seconds"),
        (
            {"heartbeat_seconds": 10, "grace_seconds": 10},
            ValueError,
            r"grace_seconds=10 must be greater than heartbeat_seconds=10, or live trials would "
            r"be failed as stale; use e\.g\. grace_seconds=60\.0",
        ),
        (
            {"heartbeat_seconds": 2.0, "grace_seconds": 1.0},
            ValueError,
            r"grace_seconds=1\.0 must be greater than heartbeat_seconds=2\.0.*"
            r"grace_seconds=12\.0",
        ),
        (
            {"grace_seconds": 5},  # the default heartbeat is 10 s
            ValueError,
            r"grace_seconds=5 must be greater than heartbeat_seconds=10\.0",
        ),
        ({"max_retries": -1}, ValueError, r"max_retries=-1 must be an integer >= 0"),
        ({"max_retries": True}, ValueError, r"max_retries=True must be an integer >= 0"),
        ({"max_retries": "2"}, ValueError, r"max_retries='2' must be an integer >= 0"),
        ({"max_retries": 1.0}, ValueError, r"max_retries=1\.0 must be an integer >= 0"),
        ({"max_retries": None}, ValueError, r"max_retries=None must be an integer >= 0"),
        ({"read_only": 1}, TypeError, r"read_only=1 must be True or False"),
        ({"read_only": "yes"}, TypeError, r"read_only='yes' must be True or False"),
        ({"engine_kwargs": [("echo", True)]}, TypeError, r"engine_kwargs=\[.*\] must be a dict"),
    ],
)
def test_bad_option_is_refused_before_touching_the_database(
    options: dict[str, Any], error: type[Exception], expected: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=expected):
        SQLStorage(f"sqlite:///{tmp_path / 'storage.db'}", **options)
    assert list(tmp_path.iterdir()) == []


def test_good_options_are_kept(sqlite_url: str) -> None:
    storage = SQLStorage(sqlite_url, heartbeat_seconds=1, grace_seconds=2.5, max_retries=3)
    try:
        assert (storage.heartbeat_seconds, storage.grace_seconds) == (1.0, 2.5)
        assert isinstance(storage.heartbeat_seconds, float)
        assert storage.max_retries == 3
    finally:
        storage.close()
