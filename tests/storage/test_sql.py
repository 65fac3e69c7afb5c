"""What only the SQL storage promises: schema versions, read-only opening, locking, URLs,
options, heartbeats and retries across storage objects, pickling and many processes.

The behaviour every storage shares is in the conformance suite (``test_storages.py``); the best
trial with infinities and ties is covered there too.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import dltune
from dltune.exceptions import DLTuneError
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import SchemaVersionError
from dltune.exceptions import StorageError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import FloatDistribution
from dltune.storage import SQLStorage
from dltune.storage import current_schema_version
from dltune.storage import upgrade_storage
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._sql_engine import ACCEPTED_URLS
from dltune.storage._sql_schema import head_revision
from dltune.testing import count_sql_rows
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

MIN = StudyDirection.MINIMIZE
#: Liveness settings short enough for tests: a trial goes stale 0.3 s after its last heartbeat.
HEARTBEAT = 0.1
GRACE = 0.3
PAST_GRACE = GRACE + 0.2
#: A revision no dltune has: the stamp of a database written by a future dltune.
FUTURE_REVISION = "9999_from_the_future"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file not created yet, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storage.db'}"
    fresh: str = request.getfixturevalue("fresh_postgres_url")
    return fresh


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'storage.db'}"


Opener = Callable[..., SQLStorage]


@pytest.fixture
def open_storage(url: str) -> Iterator[Opener]:
    """Open storages on ``url`` (keyword options as for ``SQLStorage``); closed after the test."""
    opened: list[SQLStorage] = []

    def open_(**options: Any) -> SQLStorage:
        storage = SQLStorage(url, **options)
        opened.append(storage)
        return storage

    yield open_
    for storage in opened:
        storage.close()


def execute_raw(url: str, *statements: str) -> None:
    """Run SQL on the storage's database behind the storage's back, in one transaction."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def template(state: TrialState, values: list[float] | None = None) -> FrozenTrial:
    return FrozenTrial(-1, -1, state, values)


def populate(storage: SQLStorage) -> tuple[int, int]:
    """A study with finished, running and waiting trials; ``(study_id, running trial id)``."""
    study_id = storage.create_new_study([MIN], "populated")
    storage.set_study_attr(study_id, "owner", "me", system=False)
    for value in (3.0, 1.0, 2.0):
        storage.create_new_trial(study_id, template(TrialState.COMPLETE, [value]))
    running = storage.claim_trial(study_id)
    assert running is not None
    storage.set_trial_param(running.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
    storage.create_new_trial(study_id, template(TrialState.WAITING))
    return study_id, running.trial_id


def claim(storage: SQLStorage, study_id: int) -> FrozenTrial:
    trial = storage.claim_trial(study_id)
    assert trial is not None
    return trial


def write_calls(
    storage: SQLStorage, study_id: int, trial_id: int
) -> dict[str, Callable[[], object]]:
    """One call of every write method of the storage."""
    dist = FloatDistribution(0.0, 1.0)
    return {
        "create_new_study": lambda: storage.create_new_study([MIN], "another"),
        "delete_study": lambda: storage.delete_study(study_id),
        "set_study_attr": lambda: storage.set_study_attr(study_id, "k", 1, system=False),
        "claim_trial": lambda: storage.claim_trial(study_id),
        "create_new_trial": lambda: storage.create_new_trial(study_id),
        "create_new_trial(template)": lambda: storage.create_new_trial(
            study_id, template(TrialState.COMPLETE, [0.0])
        ),
        "set_trial_param": lambda: storage.set_trial_param(trial_id, "y", 0.5, dist),
        "set_trial_state_values": lambda: storage.set_trial_state_values(
            trial_id, TrialState.COMPLETE, [1.0]
        ),
        "set_trial_intermediate_value": lambda: storage.set_trial_intermediate_value(
            trial_id, 0, 1.0
        ),
        "set_trial_attr": lambda: storage.set_trial_attr(trial_id, "k", 1, system=True),
        "record_heartbeat": lambda: storage.record_heartbeat(trial_id),
        "fail_stale_trials": lambda: storage.fail_stale_trials(study_id),
    }


def snapshot(storage: SQLStorage) -> list[Any]:
    """Everything the storage's read methods return, to compare two storages' views."""
    out: list[Any] = [storage.get_all_studies()]
    for study in storage.get_all_studies():
        sid = study.study_id
        out += [
            storage.get_study_id_from_name(study.study_name),
            storage.get_study_name_from_id(sid),
            storage.get_study_directions(sid),
            storage.get_study_attrs(sid, system=False),
            storage.get_study_attrs(sid, system=True),
            storage.get_all_trials(sid),
            storage.get_all_trials(sid, (TrialState.RUNNING,)),
            storage.get_n_trials(sid),
            storage.get_n_trials(sid, (TrialState.COMPLETE,)),
            storage.get_best_trial(sid),
        ]
        out += [storage.get_trial(t.trial_id) for t in storage.get_all_trials(sid)]
    return out


def file_state(path: Path) -> tuple[str, int, int]:
    """The content hash, size and modification time of a file."""
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


@pytest.fixture
def head_plus_one(tmp_path: Path) -> Iterator[str]:
    """Make this dltune's head a new revision ``'0002'`` on top of the real head.

    The real migrations are copied to a temporary directory with one more revision, and the
    schema module is pointed at it: a database stamped at the real head is then an older one.
    """
    from dltune.storage import _sql_schema

    real_head = head_revision()
    scripts = tmp_path / "migrations"
    shutil.copytree(
        _sql_schema.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    (scripts / "versions" / "rev_0002_test.py").write_text(
        "from alembic import op\n"
        "revision = '0002'\n"
        f"down_revision = {real_head!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n"
        "def upgrade() -> None:\n"
        "    op.create_index('ix_test_0002', 'studies', ['created_at'])\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql_schema, "MIGRATIONS_DIR", scripts)
        _sql_schema._script.cache_clear()
        try:
            yield "0002"
        finally:
            _sql_schema._script.cache_clear()
    _sql_schema._script.cache_clear()


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


# -- 6. heartbeats and retries -----------------------------------------------------------------


def test_each_trial_goes_stale_after_its_own_deadline(open_storage: Opener) -> None:
    # One timeline for several promises, so that they share a single wait.
    short = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE, max_retries=0)
    long = open_storage(max_retries=5)  # a 60 s grace
    short_reaper = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    reader = open_storage(read_only=True, heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    study_id = short.create_new_study([MIN], "liveness")
    stale = claim(short, study_id)  # number 0: its worker never beats again
    short.set_trial_intermediate_value(stale.trial_id, 0, 1.0)
    claim(long, study_id)  # number 1: a 60 s deadline
    handed = claim(short, study_id)  # number 2: beaten through a 60 s storage
    long.record_heartbeat(handed.trial_id)
    assert long.fail_stale_trials(study_id) == []
    assert short_reaper.fail_stale_trials(study_id) == []

    time.sleep(PAST_GRACE)
    running = [TrialState.RUNNING] * 3
    # A read-only storage never reaps, however often it reads.
    for _ in range(3):
        assert [t.state for t in reader.get_all_trials(study_id)] == running
        assert reader.get_n_trials(study_id, (TrialState.RUNNING,)) == 3
    with pytest.raises(ReadOnlyStorageError, match=r"was opened with read_only=True"):
        reader.fail_stale_trials(study_id)
    # A reaper with a long grace fails trial 0 at its own (short) deadline, without enqueueing
    # a retry: the claimer's max_retries=0 counts, not the reaper's 5.
    assert long.fail_stale_trials(study_id) == [0]
    # A reaper with a short grace leaves the trials whose deadlines are 60 s away.
    assert short_reaper.fail_stale_trials(study_id) == []
    assert long.fail_stale_trials(study_id) == []
    trials = short_reaper.get_all_trials(study_id)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    failed = trials[0]
    assert failed.system_attrs[REASON_KEY] == "stale"
    assert failed.datetime_complete is not None
    assert failed.intermediate_values == {0: 1.0}
    assert short.get_trial(stale.trial_id) == failed

    # The worker wakes up: its outcome is refused, saying why; its heartbeat is a no-op.
    why = (
        r"trial 0 is already FAIL and cannot be changed; it was failed as stale because its "
        r"worker sent no heartbeat within its grace period \(the earlier outcome stands\)"
    )
    tid = stale.trial_id
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_state_values(tid, TrialState.COMPLETE, [0.5])
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_param(tid, "x", 0.5, FloatDistribution(0.0, 1.0))
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_attr(tid, "k", 1, system=False)
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_intermediate_value(tid, 1, 0.5)
    short.record_heartbeat(tid)
    assert short.fail_stale_trials(study_id) == []
    assert short.get_trial(tid) == failed
    assert short_reaper.get_n_trials(study_id) == 3


def test_heartbeats_keep_a_trial_alive(open_storage: Opener) -> None:
    worker = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    reaper = open_storage()
    study_id = worker.create_new_study([MIN], "beating")
    claimed = claim(worker, study_id)
    deadline = time.monotonic() + GRACE + 0.2
    while time.monotonic() < deadline:
        time.sleep(HEARTBEAT)
        worker.record_heartbeat(claimed.trial_id)
        assert reaper.fail_stale_trials(study_id) == []
    time.sleep(PAST_GRACE)
    # Readers reap too: a read through the reaper fails the trial now its heartbeats stopped.
    assert [t.state for t in reaper.get_all_trials(study_id)] == [TrialState.FAIL]


def test_stale_trial_is_retried_by_the_claimers_max_retries(open_storage: Opener) -> None:
    worker = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE, max_retries=2)
    reaper = open_storage(max_retries=0)
    study_id = worker.create_new_study([MIN], "retried")
    first = claim(worker, study_id)
    worker.set_trial_param(first.trial_id, "x", 0.25, FloatDistribution(0.0, 1.0))
    worker.set_trial_param(first.trial_id, "y", 0.75, FloatDistribution(0.0, 1.0))
    fixed = {"x": 0.25, "y": 0.75}

    for number in range(3):  # the trial, its retry, and the retry's retry
        time.sleep(PAST_GRACE)
        assert reaper.fail_stale_trials(study_id) == [number]
        trials = reaper.get_all_trials(study_id)
        assert trials[number].state == TrialState.FAIL
        assert trials[number].system_attrs[REASON_KEY] == "stale"
        if number == 2:
            assert len(trials) == 3, "a third retry was enqueued"
            break
        retry = trials[-1]
        assert (retry.number, retry.state) == (number + 1, TrialState.WAITING)
        assert retry.system_attrs[RETRY_OF_KEY] == number
        assert retry.system_attrs[FIXED_PARAMS_KEY] == fixed
        # Claimed with max_trials=1: a retry replaces a counted trial, so the budget allows it.
        claimed = worker.claim_trial(study_id, max_trials=1)
        assert claimed is not None
        assert (claimed.trial_id, claimed.state) == (retry.trial_id, TrialState.RUNNING)
        assert claimed.system_attrs[FIXED_PARAMS_KEY] == fixed

    assert [t.state for t in worker.get_all_trials(study_id)] == [TrialState.FAIL] * 3
    assert worker.claim_trial(study_id, max_trials=1) is None


# -- 7. pickling and processes -----------------------------------------------------------------


def test_pickled_copy_shares_the_database_and_options(open_storage: Opener) -> None:
    storage = open_storage(heartbeat_seconds=1.5, grace_seconds=9, max_retries=2)
    study_id, trial_id = populate(storage)
    copy = pickle.loads(pickle.dumps(storage))
    try:
        assert isinstance(copy, SQLStorage)
        assert (copy.heartbeat_seconds, copy.grace_seconds, copy.max_retries) == (1.5, 9.0, 2)
        assert copy.url == storage.url
        assert snapshot(copy) == snapshot(storage)
        copy.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.5])
        assert storage.get_trial(trial_id).values == [0.5]
        best = storage.get_best_trial(study_id)
        assert best is not None
        assert best.trial_id == trial_id
    finally:
        copy.close()

    reader = pickle.loads(pickle.dumps(open_storage(read_only=True)))
    try:
        assert snapshot(reader) == snapshot(storage)
        with pytest.raises(ReadOnlyStorageError, match=r"was opened with read_only=True"):
            reader.create_new_study([MIN], "copy")
    finally:
        reader.close()


def test_storage_works_in_a_forked_child(open_storage: Opener, tmp_path: Path) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "forked")
    assert storage.claim_trial(study_id) is not None  # the parent's pool holds a connection
    report = tmp_path / "child-error.txt"
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            for _ in range(5):
                trial = storage.claim_trial(study_id)
                assert trial is not None
                storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
            storage.close()
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, report.read_text() if report.exists() else f"the child exited with {code}"
    # The parent's connections were not disturbed by the child.
    trials = storage.get_all_trials(study_id)
    assert [t.number for t in trials] == list(range(6))
    assert [t.state for t in trials] == [TrialState.RUNNING] + [TrialState.COMPLETE] * 5
    assert storage.claim_trial(study_id) is not None


_PICKLED_CHILD = """
import pickle
import sys

from dltune.trial import TrialState

storage = pickle.loads(sys.stdin.buffer.read())
study_id = storage.get_study_id_from_name("pickled")
trial = storage.claim_trial(study_id)
storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [float(trial.number)])
storage.close()
print(trial.number)
"""


@pytest.mark.parametrize(
    "url",
    ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
def test_storage_pickled_to_a_new_process(open_storage: Opener) -> None:
    storage = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    study_id = storage.create_new_study([MIN], "pickled")
    child = subprocess.run(
        [sys.executable, "-c", _PICKLED_CHILD],
        input=pickle.dumps(storage),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()
    assert child.stdout.decode().strip() == "0"
    (trial,) = storage.get_all_trials(study_id)
    assert (trial.state, trial.values) == (TrialState.COMPLETE, [0.0])


def test_storage_closed_in_one_thread_reconnects_in_every_thread(open_storage: Opener) -> None:
    # close() releases the connections; the next use, in any thread, opens new ones.
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "closed")
    jobs: queue.Queue[Callable[[], object] | None] = queue.Queue()
    results: queue.Queue[object] = queue.Queue()

    def serve() -> None:  # a long-lived thread, as in a pool of workers
        while (job := jobs.get()) is not None:
            try:
                results.put(job())
            except Exception as exc:  # handed to the test thread
                results.put(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        jobs.put(lambda: claim(storage, study_id).number)
        assert results.get(timeout=30) == 0
        storage.close()
        jobs.put(lambda: claim(storage, study_id).number)
        outcome = results.get(timeout=30)
    finally:
        jobs.put(None)
        thread.join()
    if isinstance(outcome, BaseException):
        raise AssertionError(f"the thread's next call failed: {outcome!r}") from outcome
    assert outcome == 1
    assert claim(storage, study_id).number == 2


@pytest.mark.postgres
def test_lost_postgres_connections_are_replaced(fresh_postgres_url: str) -> None:
    import psycopg

    storage = SQLStorage(fresh_postgres_url)
    libpq_url = make_url(fresh_postgres_url).set(drivername="postgresql")
    kill_others = (
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        study_id = storage.create_new_study([MIN], "reconnect")
        assert claim(storage, study_id).number == 0
        with psycopg.connect(libpq_url.render_as_string(hide_password=False)) as admin:
            admin.autocommit = True
            row = admin.execute(kill_others).fetchone()
            assert row is not None
            assert row[0] >= 1  # the storage's connection is gone
            assert claim(storage, study_id).number == 1  # a write, first
            admin.execute(kill_others)
            assert [t.number for t in storage.get_all_trials(study_id)] == [0, 1]  # a read
    finally:
        storage.close()


def test_storages_left_open_leave_no_open_connection(url: str) -> None:
    # Drivers warn (ResourceWarning) about a connection garbage-collected while open.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = SQLStorage(url)
        study_id, _ = populate(storage)
        thread = threading.Thread(target=storage.get_all_trials, args=(study_id,))
        thread.start()
        thread.join()
        del storage, thread
        gc.collect()
        execute_raw(url, f"UPDATE alembic_version SET version_num = '{FUTURE_REVISION}'")
        SQLStorage(url).get_all_studies()  # opened, used and dropped at once
        execute_raw(url, "INSERT INTO alembic_version (version_num) VALUES ('0042')")
        try:
            SQLStorage(url)
        except SchemaVersionError:
            pass
        else:
            raise AssertionError("a database with two version stamps was opened")
        gc.collect()
    assert [str(w.message) for w in caught] == []


# -- 8. many processes at once -----------------------------------------------------------------

_WORKER = """
import os
import sys
import time

import dltune

url, ready, go = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
study = dltune.create_study(study_name="s", storage=url, load_if_exists=True)
study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0) ** 2, n_trials=64)
"""
N_PROCESSES = 32
N_TRIALS = 64


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_32_processes_create_and_optimize_one_study(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{i}" for i in range(N_PROCESSES)]
    logs = [tmp_path / f"stderr-{i}.txt" for i in range(N_PROCESSES)]
    processes = []
    for ready, log in zip(readies, logs, strict=True):
        with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall a worker
            command = [sys.executable, "-c", _WORKER, url, str(ready), str(go)]
            processes.append(subprocess.Popen(command, stdout=stderr, stderr=stderr))
    try:
        deadline = time.monotonic() + 300
        while not all(ready.exists() for ready in readies):
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(p.poll() is None for p in processes), "a worker died before starting"
            time.sleep(0.05)
        go.touch()  # all 32 open the empty database at once
        for process in processes:
            process.wait(timeout=300)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for i, (process, log) in enumerate(zip(processes, logs, strict=True)):
        output = log.read_text()
        assert process.returncode == 0, f"worker {i} exited with {process.returncode}:\n{output}"
        assert "locked" not in output.lower(), output
        assert "Traceback" not in output, output
        assert output == "", f"worker {i} wrote:\n{output}"

    storage = SQLStorage(url, read_only=True)
    try:
        (study,) = storage.get_all_studies()
        assert study.study_name == "s"
        trials = storage.get_all_trials(study.study_id)
    finally:
        storage.close()
    assert [t.number for t in trials] == list(range(N_TRIALS))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
