"""Fault injection 5: the disk holding the storage fills up.

A SQLite file lives on a small tmpfs (mounted by the test: root, or passwordless sudo) that is
then filled to the last byte. A write must fail at once (disk full is not transient: no retries
with backoff) with an error naming the file and the cause; what was stored stays intact; and
once space is freed the study resumes to its budget with nothing COMPLETE lost. The trial whose
finish write failed stays RUNNING, is failed as stale after its grace period and, with
``max_retries``, rerun with the same params.

On PostgreSQL the database lives in a tablespace on such a tmpfs; a full disk there is SQLSTATE
53100 (disk_full).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

import dltune
from dltune import Trial
from dltune.exceptions import StorageError
from dltune.storage import SQLStorage
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

ENGINE_LOGGER = "dltune.storage._sql_engine"
SKIPPED = "DISK-FULL TESTS SKIPPED"


def privileged(args: list[str]) -> list[str]:
    """``args`` as root: directly when we are root, else through passwordless sudo."""
    return args if os.geteuid() == 0 else ["sudo", "-n", *args]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted on a fresh directory, owned by this user."""
    with mount_tmpfs(tmp_path / "disk", "2m") as disk:
        yield disk


@contextlib.contextmanager
def mount_tmpfs(target: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``target`` (created) for the block; skips loudly if it
    cannot."""
    target.mkdir()
    options = f"size={size},mode=0755,uid={os.getuid()},gid={os.getgid()}"
    command = privileged(["mount", "-t", "tmpfs", "-o", options, "dltune-test", str(target)])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(
            f"{SKIPPED}: cannot mount a {size} tmpfs ({' '.join(command)}: "
            f"{done.stderr.strip() or done.returncode}); run the tests as root or with "
            "passwordless sudo"
        )
    try:
        yield target
    finally:
        subprocess.run(privileged(["umount", "-l", str(target)]), capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory`` to the last byte, with one file."""
    filler = directory / f"filler-{uuid.uuid4().hex[:8]}"
    with open(filler, "ab", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            chunk = b"\0" * size
            while True:
                try:
                    out.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The engine's 'retrying' records: a non-transient failure must have none."""
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def full_disk_error(path: Path) -> str:
    return (
        rf"^cannot write to the database file '{re.escape(str(path))}': its disk is full "
        r"\(database or disk is full\)\. Nothing stored was lost: free some space, then run "
        r"the study again to resume it \(a trial left RUNNING is failed as stale after its "
        r"grace period, and rerun if the storage's max_retries allows\)$"
    )


def integrity(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def summary(trials: list[FrozenTrial]) -> dict[int, tuple[str, Any, Any]]:
    return {t.number: (t.state.name, t.values, t.params) for t in trials}


def test_finish_write_on_a_full_disk_fails_once_and_the_study_resumes(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    path = small_disk / "study.db"
    storage = SQLStorage(
        f"sqlite:///{path}", heartbeat_seconds=0.1, grace_seconds=0.5, max_retries=1
    )
    study = dltune.create_study(storage=storage, study_name="full", seed=0)
    filled: list[Path] = []

    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, step=0)
        if trial.number == 4 and not filled:
            filled.append(fill(small_disk))  # the disk fills while trial 4 runs
        return x

    with pytest.raises(StorageError, match=full_disk_error(path)) as info:
        study.optimize(objective, n_trials=8)
    assert isinstance(info.value.__cause__, OperationalError)
    assert retries(caplog) == []  # raised by the first attempt of the finish write

    # What was stored is intact: four COMPLETE trials, trial 4 RUNNING with its param.
    assert integrity(path) == "ok"
    before = study.get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE] * 4 + [TrialState.RUNNING]
    stuck = before[4]
    assert set(stuck.params) == {"x"}

    filled[0].unlink()  # free the space
    deadline = time.monotonic() + 30.0
    while storage.fail_stale_trials(study._study_id) != [4]:  # after its grace period
        assert time.monotonic() < deadline, "trial 4 never went stale"
        time.sleep(0.1)
    study.optimize(objective, n_trials=8)

    after = study.get_trials()
    assert {n: summary(after)[n] for n in range(4)} == summary(before[:4])
    failed = after[4]
    assert (failed.state, failed.reason) == (TrialState.FAIL, "stale")
    retry = next(t for t in after if t.system_attrs.get("retry_of") == 4)
    assert (retry.state, retry.params) == (TrialState.COMPLETE, stuck.params)
    states = [t.state for t in after]
    assert states.count(TrialState.COMPLETE) == 8  # the retry takes the stale trial's place
    assert TrialState.RUNNING not in states
    assert integrity(path) == "ok"
    storage.close()


def test_every_write_to_a_full_disk_fails_at_once_and_works_after(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    path = small_disk / "study.db"
    url = f"sqlite:///{path}"
    filler = fill(small_disk)
    # Not even the schema fits: creating the storage fails the same way, creating nothing.
    with pytest.raises(StorageError, match=full_disk_error(path)):
        SQLStorage(url)
    filler.unlink()
    storage = SQLStorage(url)
    study = dltune.create_study(storage=storage, study_name="full", seed=0)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
    done = summary(study.get_trials())

    filler = fill(small_disk)
    writes: dict[str, Callable[[], object]] = {
        "ask": study.ask,
        "create_study": lambda: dltune.create_study(storage=storage, study_name="other"),
        "set_user_attr": lambda: study.set_user_attr("k", "v" * 10_000),
        "optimize": lambda: study.optimize(lambda trial: 1.0, n_trials=4),
    }
    for name, write in writes.items():
        with pytest.raises(StorageError, match=full_disk_error(path)):
            write()
        assert summary(study.get_trials()) == done, name
    assert retries(caplog) == []
    assert integrity(path) == "ok"

    filler.unlink()
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=4)
    after = study.get_trials()
    assert [t.state for t in after] == [TrialState.COMPLETE] * 4
    assert {n: summary(after)[n] for n in done} == done
    storage.close()


# -- PostgreSQL ------------------------------------------------------------------------------


def _admin(url: str) -> dict[str, Any]:
    return dict(make_url(url).translate_connect_args(username="user", database="dbname"))


@contextlib.contextmanager
def database_in_tablespace(postgres_url: str, location: Path) -> Iterator[str]:
    """A new database (its URL) in a new tablespace at ``location``; both dropped after."""
    import psycopg
    from psycopg import sql

    admin = _admin(postgres_url)
    suffix = uuid.uuid4().hex[:12]
    space, name = f"dltune_full_{suffix}", f"dltune_full_{suffix}"
    try:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                    sql.Identifier(space), sql.Literal(str(location))
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} TABLESPACE {}").format(
                    sql.Identifier(name), sql.Identifier(space)
                )
            )
        url = make_url(postgres_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(space)))


@pytest.fixture
def postgres_on_small_disk(postgres_url: str) -> Iterator[tuple[str, Path]]:
    """A new database whose tablespace is on a 24 MiB tmpfs; ``(url, the mount)``.

    Needs the test server on this machine and a superuser (CREATE TABLESPACE), and root or
    passwordless sudo to mount; skips loudly otherwise.
    """
    import psycopg

    with psycopg.connect(**_admin(postgres_url), autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        is_super = bool((row.fetchone() or (False,))[0])
        shown = conn.execute("SHOW data_directory").fetchone() if is_super else None
        data_dir = "" if shown is None else str(shown[0])
    if not data_dir or not os.path.isdir(data_dir):
        pytest.skip(
            f"{SKIPPED} on PostgreSQL: the test server must run on this machine with a "
            f"superuser (data directory {data_dir!r} not found here)"
        )
    server_uid, server_gid = os.stat(data_dir).st_uid, os.stat(data_dir).st_gid
    # Not under tmp_path: the server's user must reach the directory, and pytest's are private.
    parent = Path(tempfile.mkdtemp(prefix="dltune-pgdisk-"))
    parent.chmod(0o755)
    try:
        with mount_tmpfs(parent / "disk", "24m") as disk:
            location = disk / "tablespace"
            location.mkdir()
            owner = f"{server_uid}:{server_gid}"
            subprocess.run(privileged(["chown", owner, str(location)]), check=True)
            with database_in_tablespace(postgres_url, location) as url:
                yield url, disk
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.postgres
def test_postgresql_disk_full_fails_at_once_and_the_study_resumes(
    postgres_on_small_disk: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    url, disk = postgres_on_small_disk
    storage = SQLStorage(url)
    study = dltune.create_study(storage=storage, study_name="full", seed=0)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
    done = summary(study.get_trials())

    filler = fill(disk)
    masked = re.escape(make_url(url).render_as_string(hide_password=True))
    expected = (
        rf"^cannot write to the database at {masked}: its disk is full \(SQLSTATE 53100: "
        r"could not extend file .*No space left on device.*\)\. Nothing stored was lost"
    )
    with pytest.raises(StorageError, match=expected):
        # Long attrs and many params fill pages until the table must grow.
        for _ in range(200):
            trial = study.ask()
            for i in range(20):
                trial.suggest_float(f"p{i}", 0.0, 1.0)
            trial.set_user_attr("blob", secrets.token_hex(25_000))  # incompressible
    assert retries(caplog) == []

    filler.unlink()
    storage.fail_stale_trials(study._study_id)
    n_before = len(study.get_trials())
    study.optimize(lambda trial: 1.0, n_trials=n_before + 2)
    after = study.get_trials()
    assert {n: summary(after)[n] for n in done} == done
    assert [t.state for t in after[n_before:]] == [TrialState.COMPLETE] * 2
    storage.close()
