"""Fault injection 6: a database that may only be read.

(a) A SQLite file on a read-only file system (a tmpfs remounted ``ro``, or a read-only bind
mount: as root, file permissions do not stop writes). Opening it works; every write fails on
its first attempt with an error naming the file, saying it is read-only and that it can be read
with ``read_only=True``; reading works: ``load_study``, the CLI's reading commands, ``dltune
report`` and the dashboard's API.

(b) A PostgreSQL role with CONNECT and SELECT only: writes fail on the first attempt with
'permission denied' (SQLSTATE 42501 is not retried); reading works the same way.

"At once" is asserted by the absence of the engine's 'retrying' log records (no backoff sleep
happened), not by a clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

import dltune
from dltune.cli import cli
from dltune.exceptions import ReadOnlyStorageError
from dltune.storage import SQLStorage
from dltune.storage import current_schema_version
from dltune.storage import upgrade_storage
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

ENGINE_LOGGER = "dltune.storage._sql_engine"
SKIPPED = "READ-ONLY MOUNT TESTS SKIPPED"
STUDY = "frozen"


def privileged(args: list[str]) -> list[str]:
    """``args`` as root: directly when we are root, else through passwordless sudo."""
    return args if os.geteuid() == 0 else ["sudo", "-n", *args]


def run_privileged(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(privileged(args), capture_output=True, text=True, check=False)


@contextlib.contextmanager
def mounted(args: list[str], target: Path) -> Iterator[Path]:
    """Run a ``mount`` command onto ``target`` for the block; skips loudly if it cannot."""
    target.mkdir(exist_ok=True)
    done = run_privileged(["mount", *args, str(target)])
    if done.returncode != 0:
        pytest.skip(
            f"{SKIPPED}: `mount {' '.join(args)}` failed ({done.stderr.strip()}); run the "
            "tests as root or with passwordless sudo"
        )
    try:
        yield target
    finally:
        run_privileged(["umount", "-l", str(target)])


def remount_read_only(target: Path) -> None:
    done = run_privileged(["mount", "-o", "remount,ro", str(target)])
    assert done.returncode == 0, done.stderr


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The engine's 'retrying' records: a write refused for good must have none."""
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def view(trials: list[FrozenTrial]) -> list[tuple[Any, ...]]:
    return [(t.number, t.state.name, t.values, t.params, t.user_attrs) for t in trials]


def populate(url: str) -> list[tuple[Any, ...]]:
    """Study STUDY: COMPLETE, PRUNED and FAIL trials and a live RUNNING one; its view."""
    storage = SQLStorage(url, grace_seconds=3600.0)
    try:
        study = dltune.create_study(storage=storage, study_name=STUDY, seed=0)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
        pruned = study.ask()
        pruned.report(0.5, 0)
        study.tell(pruned, state=TrialState.PRUNED)
        study.tell(study.ask(), state=TrialState.FAIL, reason="RuntimeError: boom")
        running = study.ask()  # alive for an hour: no reader may fail it as stale
        running.set_user_attr("note", "still running")
        study.set_user_attr("owner", "me")
        return view(study.get_trials())
    finally:
        storage.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[tuple[Path, list[tuple[Any, ...]]]]:
    """A study's SQLite file on a tmpfs remounted read-only; ``(path, the study's view)``."""
    options = f"size=8m,mode=0755,uid={os.getuid()},gid={os.getgid()}"
    with mounted(["-t", "tmpfs", "-o", options, "dltune-test"], tmp_path / "ro") as disk:
        path = disk / "study.db"
        expected = populate(f"sqlite:///{path}")
        remount_read_only(disk)
        yield path, expected


def read_only_error(path: Path) -> str:
    return (
        rf"^cannot write to the database file '{re.escape(str(path))}': it is read-only here "
        r"\(its file system is mounted read-only\)\. It can still be read: open it with "
        r"read_only=True \(the CLI's reading commands, `dltune report` and the dashboard do\)$"
    )


def write_calls(url: str) -> dict[str, Callable[[], object]]:
    """Every kind of write a user makes, each through a storage opened for writing."""

    def study() -> dltune.Study:
        return dltune.load_study(STUDY, url)

    return {
        "optimize": lambda: study().optimize(lambda t: 1.0, n_trials=10),
        "ask": lambda: study().ask(),
        "create_study": lambda: dltune.create_study(storage=url, study_name="another"),
        "create_study(load_if_exists)": lambda: dltune.create_study(
            storage=url, study_name=STUDY, load_if_exists=True
        ).ask(),
        "set_user_attr": lambda: study().set_user_attr("k", "v"),
        "delete_study": lambda: dltune.delete_study(STUDY, url),
        "upgrade_storage": lambda: upgrade_storage(url),
    }


# -- (a) SQLite on a read-only file system -----------------------------------------------------


def test_sqlite_on_a_read_only_mount_refuses_every_write_at_once(
    read_only_db: tuple[Path, list[tuple[Any, ...]]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    path, expected = read_only_db
    url = f"sqlite:///{path}"
    before = digest(path)
    for name, write in write_calls(url).items():
        with pytest.raises(ReadOnlyStorageError, match=read_only_error(path)):
            write()
        assert retries(caplog) == [], name
    assert digest(path) == before
    assert view(dltune.load_study(STUDY, url).get_trials()) == expected


def test_sqlite_on_a_read_only_mount_can_be_read(
    read_only_db: tuple[Path, list[tuple[Any, ...]]],
) -> None:
    path, expected = read_only_db
    url = f"sqlite:///{path}"
    assert current_schema_version(url) is not None
    for storage in (url, SQLStorage(url), SQLStorage(url, read_only=True)):
        study = dltune.load_study(STUDY, storage)
        assert view(study.get_trials()) == expected
        assert study.best_trial.number == min(range(3), key=lambda n: float(expected[n][2][0]))
        assert study.user_attrs == {"owner": "me"}
    assert [s.study_name for s in dltune.list_studies(url)] == [STUDY]
    # Below dltune's own checks SQLite refuses a write too, as a read-only error at once.
    storage = SQLStorage(url, read_only=True)
    with pytest.raises(ReadOnlyStorageError, match=r"it is read-only \(attempt to write a"):
        storage._db.run(lambda c: c.exec_driver_sql("CREATE TABLE t (x)"), write=False)
    storage.close()


def check_cli_reads(url: str, tmp_path: Path, expected: list[tuple[Any, ...]]) -> None:
    """``dltune studies``, ``trials``, ``best``, ``storage version`` and ``report`` work."""
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--storage", url], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    studies = json.loads(run("studies", "--format", "json"))
    assert [(s["name"], s["n_trials"]) for s in studies] == [(STUDY, len(expected))]
    trials = json.loads(run("trials", STUDY, "--format", "json"))
    assert [t["number"] for t in trials] == [row[0] for row in expected]
    assert json.loads(run("best", STUDY, "--format", "json"))["number"] in (0, 1, 2)
    if url.startswith("sqlite"):
        assert run("storage", "version").strip() != "none"
    report = tmp_path / "report.html"
    assert run("report", STUDY, "-o", str(report)).strip() == str(report)
    assert STUDY in report.read_text(encoding="utf-8")


def check_dashboard_reads(url: str, expected: list[tuple[Any, ...]]) -> None:
    pytest.importorskip("starlette")
    from dltune.dashboard import create_app

    with warnings.catch_warnings():
        # starlette asks for httpx2 instead of httpx (our dev dependency), once, on import.
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    with TestClient(create_app(url), base_url="http://127.0.0.1:8080") as client:
        studies = client.get("/api/studies")
        assert studies.status_code == 200
        assert [(s["name"], s["n_trials"]) for s in studies.json()] == [(STUDY, len(expected))]
        trials = client.get(f"/api/studies/{STUDY}/trials")
        assert trials.status_code == 200
        assert [row["number"] for row in trials.json()["trials"]] == [r[0] for r in expected]
        assert client.get(f"/api/studies/{STUDY}/trials/0").status_code == 200
        assert client.get(f"/api/studies/{STUDY}").json()["counts"]["complete"] == 3


def test_sqlite_on_a_read_only_mount_cli_report_and_dashboard_read(
    read_only_db: tuple[Path, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    path, expected = read_only_db
    url = f"sqlite:///{path}"
    check_cli_reads(url, tmp_path, expected)
    check_dashboard_reads(url, expected)


def test_a_stale_trial_does_not_stop_reading_a_read_only_mount(tmp_path: Path) -> None:
    options = f"size=8m,mode=0755,uid={os.getuid()},gid={os.getgid()}"
    with mounted(["-t", "tmpfs", "-o", options, "dltune-test"], tmp_path / "ro") as disk:
        url = f"sqlite:///{disk / 'study.db'}"
        storage = SQLStorage(url, heartbeat_seconds=0.01, grace_seconds=0.02)
        study = dltune.create_study(storage=storage, study_name=STUDY)
        study.ask()  # its worker died: stale 0.02 s later
        storage.close()
        time.sleep(0.2)  # well past its grace period
        remount_read_only(disk)
        trials = dltune.load_study(STUDY, url).get_trials()
        assert [t.state for t in trials] == [TrialState.RUNNING]


def test_read_only_bind_mount_of_a_live_database_sees_the_writer(tmp_path: Path) -> None:
    source, target = tmp_path / "rw", tmp_path / "view"
    source.mkdir()
    writer = SQLStorage(f"sqlite:///{source / 'study.db'}")
    study = dltune.create_study(storage=writer, study_name=STUDY)
    study.optimize(lambda t: 1.0, n_trials=1)
    try:
        with mounted(["--bind", str(source)], target):
            remount = run_privileged(["mount", "-o", "remount,bind,ro", str(target)])
            assert remount.returncode == 0, remount.stderr
            url = f"sqlite:///{target / 'study.db'}"
            reader = dltune.load_study(STUDY, url)
            assert len(reader.get_trials()) == 1
            study.optimize(lambda t: 2.0, n_trials=2)  # the writer goes on, beside the reader
            assert [t.value for t in reader.get_trials()] == [1.0, 2.0]
            with pytest.raises(ReadOnlyStorageError, match=read_only_error(target / "study.db")):
                reader.ask()
            reader._storage.close()
    finally:
        writer.close()


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes whatever the file permissions say (see the mounts)"
)
def test_sqlite_file_without_write_permission_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    expected = populate(f"sqlite:///{path}")
    path.chmod(0o444)
    url = f"sqlite:///{path}"
    with pytest.raises(ReadOnlyStorageError, match=r"\(this user may not write to the file\)"):
        dltune.load_study(STUDY, url).ask()
    assert view(dltune.load_study(STUDY, url).get_trials()) == expected


# -- (b) a PostgreSQL role that may only read --------------------------------------------------


@pytest.fixture
def reader_role_url(fresh_postgres_url: str) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The study in a new database, and the URL of a role with CONNECT and SELECT only."""
    import psycopg
    from psycopg import sql

    expected = populate(fresh_postgres_url)
    url = make_url(fresh_postgres_url)
    admin = url.translate_connect_args(username="user", database="dbname")
    name = f"dltune_reader_{uuid.uuid4().hex[:12]}"
    role = sql.Identifier(name)
    database = sql.Identifier(str(url.database))
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'reader'").format(role))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
    try:
        role_url = url.set(username=name, password="reader")
        yield role_url.render_as_string(hide_password=False), expected
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))


def permission_error(url: str) -> str:
    shown = re.escape(make_url(url).render_as_string(hide_password=True))
    return (
        rf"^cannot write to the database at {shown}: permission denied \(SQLSTATE 42501: "
        r"permission denied for (table|sequence) \w+\); this role may only read\. It can still "
        r"be read: open it with read_only=True .*, or grant the role INSERT, UPDATE and "
        r"DELETE on the dltune tables to write$"
    )


@pytest.mark.postgres
def test_postgresql_read_only_role_refuses_every_write_at_once(
    reader_role_url: tuple[str, list[tuple[Any, ...]]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    url, expected = reader_role_url
    for name, write in write_calls(url).items():
        if name == "upgrade_storage":
            continue  # at head already: nothing to write
        with pytest.raises(ReadOnlyStorageError, match=permission_error(url)):
            write()
        assert retries(caplog) == [], name
    assert view(dltune.load_study(STUDY, url).get_trials()) == expected


@pytest.mark.postgres
def test_postgresql_read_only_role_can_be_read(
    reader_role_url: tuple[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    url, expected = reader_role_url
    for storage in (url, SQLStorage(url, read_only=True)):
        study = dltune.load_study(STUDY, storage)
        assert view(study.get_trials()) == expected
        assert study.user_attrs == {"owner": "me"}
    check_cli_reads(url, tmp_path, expected)
    check_dashboard_reads(url, expected)


@pytest.mark.postgres
def test_postgresql_read_only_session_refuses_writes_at_once(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A hot standby, or sessions made read-only: SQLSTATE 25006, not retried either.
    caplog.set_level(logging.DEBUG, logger=ENGINE_LOGGER)
    expected = populate(fresh_postgres_url)
    options = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
    storage = SQLStorage(fresh_postgres_url, engine_kwargs=options)
    study = dltune.load_study(STUDY, storage)
    shown = re.escape(make_url(fresh_postgres_url).render_as_string(hide_password=True))
    with pytest.raises(
        ReadOnlyStorageError,
        match=rf"^cannot write to the database at {shown}: the server accepts only reads here "
        r"\(SQLSTATE 25006: cannot execute [A-Z ]+ in a read-only transaction\)\. It can still be "
        r"read: open it with read_only=True",
    ):
        study.ask()
    assert retries(caplog) == []
    assert view(study.get_trials()) == expected
    storage.close()
