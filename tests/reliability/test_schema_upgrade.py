"""Fault injection 7: databases written at earlier schema revisions upgrade with their contents.

Each committed fixture (``fixtures/schema_<REV>.sqlite3``, made by ``make_schema_fixtures.py``
at revision REV) holds studies with trials in every state, params of every distribution,
non-finite values, attributes, heartbeats and a retry; ``schema_<REV>.json`` beside it is the
public view of those studies, which must read the same after the upgrade. On PostgreSQL the
test builds a database at REV and copies the fixture's rows into it.

Two processes upgrading one database at once must apply each migration once: an extra revision
on top of the head (as ``tests/storage/conftest.py``'s ``head_plus_one``) gives them something
to apply; it creates a table (a second run would fail) and logs the process that ran it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from make_schema_fixtures import FIXTURES
from make_schema_fixtures import copy_rows
from make_schema_fixtures import public_view
from make_schema_fixtures import table_rows
from sqlalchemy import create_engine
from sqlalchemy import text

import dltune
from dltune.exceptions import SchemaVersionError
from dltune.storage import SQLStorage
from dltune.storage import current_schema_version
from dltune.storage import upgrade_storage
from dltune.storage._sql_engine import Database
from dltune.storage._sql_engine import parse_url
from dltune.storage._sql_schema import head_revision
from dltune.storage._sql_schema import run_upgrade
from dltune.trial import TrialState

FIXTURE_FILES = sorted(FIXTURES.glob("schema_*.sqlite3"))
EXTRA = "9001"
#: How long the extra migration holds its transaction open, so that two upgraders overlap.
MIGRATION_SLEEP_VAR = "DLTUNE_TEST_MIGRATION_SLEEP"


def revision_of(path: Path) -> str:
    return path.stem.removeprefix("schema_")


def expected_view(revision: str) -> list[dict[str, Any]]:
    snapshot = json.loads((FIXTURES / f"schema_{revision}.json").read_text("utf-8"))
    assert snapshot["revision"] == revision
    studies: list[dict[str, Any]] = snapshot["studies"]
    return studies


def rows_of(url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return table_rows(connection, columns)
    finally:
        engine.dispose()


def columns_of(rows: dict[str, list[tuple[str, ...]]]) -> dict[str, list[str]]:
    """The column names of each table in ``table_rows`` output (of non-empty tables)."""
    return {t: [cell.split("=", 1)[0] for cell in r[0]] for t, r in rows.items() if r}


def check_preserved(url: str, revision: str, before: dict[str, list[Any]]) -> None:
    """The public view is the fixture's snapshot, and every old row is there unchanged."""
    storage = SQLStorage(url, read_only=True)
    try:
        assert public_view(storage) == expected_view(revision)
    finally:
        storage.close()
    after = rows_of(url, columns_of(before))
    assert after == {t: r for t, r in before.items() if r}


def check_usable(url: str) -> None:
    """Heartbeats kept their meaning, and new trials get fresh ids and numbers."""
    storage = SQLStorage(url, heartbeat_seconds=0.1, grace_seconds=1.0)
    try:
        single = storage.get_study_id_from_name("single")
        assert storage.fail_stale_trials(single) == [8]  # long dead; 5 and 6 live a century
        trials = storage.get_all_trials(single)
        assert [t.number for t in trials if t.state == TrialState.RUNNING] == [5, 6]
        assert trials[8].reason == "stale"
        retry = storage.claim_trial(single)  # the retry of 8 goes first
        assert retry is not None and retry.system_attrs["retry_of"] == 8
        assert retry.system_attrs["fixed_params"] == {"layers": 4}
        storage.set_trial_state_values(retry.trial_id, TrialState.COMPLETE, [0.5])
        study = dltune.load_study("single", storage)
        fresh = study.ask()
        assert fresh.number == retry.number + 1
        assert fresh._trial_id > max(t.trial_id for t in trials)
        study.tell(fresh, 1.0)
    finally:
        storage.close()


@pytest.fixture(params=FIXTURE_FILES, ids=revision_of)
def fixture_copy(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """``(revision, a copy of that revision's fixture)``."""
    source: Path = request.param
    copy = tmp_path / "storage.db"
    shutil.copyfile(source, copy)
    return revision_of(source), copy


@pytest.fixture
def extra_revision(tmp_path: Path) -> Iterator[Path]:
    """Make this dltune's head a revision EXTRA on top of the real head; its scripts folder."""
    from dltune.storage import _sql_schema

    scripts = tmp_path / "migrations"
    shutil.copytree(
        _sql_schema.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    (scripts / "versions" / f"rev_{EXTRA}_test.py").write_text(
        "import os\n"
        "import time\n"
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        f"revision = {EXTRA!r}\n"
        f"down_revision = {head_revision()!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n"
        "def upgrade() -> None:\n"
        "    op.create_table('upgrade_log', sa.Column('pid', sa.Integer, nullable=False))\n"
        f"    time.sleep(float(os.environ.get({MIGRATION_SLEEP_VAR!r}, '0')))\n"
        "    op.execute(f'INSERT INTO upgrade_log (pid) VALUES ({os.getpid()})')\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql_schema, "MIGRATIONS_DIR", scripts)
        _sql_schema._script.cache_clear()
        try:
            yield scripts
        finally:
            _sql_schema._script.cache_clear()
    _sql_schema._script.cache_clear()


def test_every_earlier_revision_has_a_fixture() -> None:
    from dltune.storage._sql_schema import _script

    revisions = {r.revision for r in _script().walk_revisions()}
    fixtures = {revision_of(p) for p in FIXTURE_FILES}
    missing = sorted(revisions - {head_revision()} - fixtures)
    assert not missing, (
        f"no upgrade fixture for revisions {missing}: run "
        "tests/reliability/make_schema_fixtures.py REVISION and commit the two files"
    )
    assert fixtures and fixtures <= revisions
    for revision in fixtures:
        assert expected_view(revision)  # the snapshot is there, for the right revision


def test_fixture_upgrades_to_head_with_contents_preserved(fixture_copy: tuple[str, Path]) -> None:
    revision, path = fixture_copy
    url = f"sqlite:///{path}"
    before = rows_of(url)
    assert current_schema_version(url) == revision
    assert upgrade_storage(url) == (revision, head_revision())
    assert current_schema_version(url) == head_revision()
    check_preserved(url, revision, before)
    check_usable(url)


def test_older_fixture_is_refused_until_upgraded(
    fixture_copy: tuple[str, Path], extra_revision: Path
) -> None:
    revision, path = fixture_copy
    url = f"sqlite:///{path}"
    before = rows_of(url)
    older = (
        rf"^the database at {re.escape(url)} has the older schema revision '{revision}' \(this "
        rf"dltune uses '{EXTRA}'\); back it up, then run `dltune storage upgrade --storage "
        rf"{re.escape(url)}`$"
    )
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match=older):
            SQLStorage(url, read_only=read_only)
    assert rows_of(url) == before  # refusing changed nothing
    assert upgrade_storage(url) == (revision, EXTRA)
    check_preserved(url, revision, before)
    assert upgrade_log(url) == 1
    check_usable(url)


def upgrade_log(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [v[0] for v in versions] == [EXTRA]
            return int(connection.execute(text("SELECT count(*) FROM upgrade_log")).scalar_one())
    finally:
        engine.dispose()


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_at(revision: str, fixture: Path, url: str) -> None:
    """Bring the empty database at ``url`` to ``revision`` and copy the fixture's rows in."""
    db = Database(parse_url(url), read_only=False, engine_kwargs={})
    source_engine = create_engine(f"sqlite:///{fixture}")
    try:
        db.run(lambda connection: run_upgrade(connection, revision), write=True)
        with source_engine.connect() as source:

            def fill(connection: Any) -> None:
                copy_rows(source, connection)
                for table, column in (("studies", "study_id"), ("trials", "trial_id")):
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                            f"(SELECT max({column}) FROM {table}))"
                        )
                    )

            db.run(fill, write=True)
    finally:
        source_engine.dispose()
        db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=revision_of)
def test_postgresql_fixture_upgrades_with_contents_preserved(
    fixture: Path, fresh_postgres_url: str
) -> None:
    revision = revision_of(fixture)
    postgres_at(revision, fixture, fresh_postgres_url)
    before = rows_of(f"sqlite:///{fixture}")
    assert rows_of(fresh_postgres_url) == rows_of(f"sqlite:///{fixture}")  # a faithful copy
    assert current_schema_version(fresh_postgres_url) == revision
    assert upgrade_storage(fresh_postgres_url) == (revision, head_revision())
    check_preserved(fresh_postgres_url, revision, before)
    check_usable(fresh_postgres_url)


# -- two processes upgrading at once ---------------------------------------------------------

_UPGRADER = """
import json, os, sys, time
from pathlib import Path
from dltune.storage import _sql_schema
_sql_schema.MIGRATIONS_DIR = Path(sys.argv[1])
from dltune.storage import upgrade_storage
sync = Path(sys.argv[3])
(sync / f"ready-{os.getpid()}").touch()
while not (sync / "go").exists():
    time.sleep(0.005)
print(json.dumps(upgrade_storage(sys.argv[2])))
"""


def upgrade_twice_at_once(url: str, scripts: Path, sync: Path) -> list[list[str | None]]:
    """Two processes call ``upgrade_storage(url)`` at the same moment; their answers."""
    sync.mkdir()
    env = {**os.environ, MIGRATION_SLEEP_VAR: "0.5"}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADER, str(scripts), url, str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60.0
        while len(list(sync.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline, "the upgraders never got ready"
            assert all(child.poll() is None for child in children), "an upgrader died early"
            time.sleep(0.01)
        (sync / "go").touch()
        answers = []
        for child in children:
            out, err = child.communicate(timeout=60.0)
            assert child.returncode == 0, err
            assert "Error" not in err and "Traceback" not in err, err
            answers.append(json.loads(out))
        return sorted(answers, key=lambda a: (a[0] == EXTRA, a))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_two_processes_upgrading_sqlite_at_once_apply_one_migration(
    fixture_copy: tuple[str, Path], extra_revision: Path, tmp_path: Path
) -> None:
    revision, path = fixture_copy
    url = f"sqlite:///{path}"
    before = rows_of(url)
    answers = upgrade_twice_at_once(url, extra_revision, tmp_path / "sync")
    assert answers == [[revision, EXTRA], [EXTRA, EXTRA]]
    assert upgrade_log(url) == 1
    check_preserved(url, revision, before)


@pytest.mark.postgres
@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=revision_of)
def test_two_processes_upgrading_postgresql_at_once_apply_one_migration(
    fixture: Path, fresh_postgres_url: str, extra_revision: Path, tmp_path: Path
) -> None:
    revision = revision_of(fixture)
    postgres_at(revision, fixture, fresh_postgres_url)
    before = rows_of(f"sqlite:///{fixture}")
    answers = upgrade_twice_at_once(fresh_postgres_url, extra_revision, tmp_path / "sync")
    assert answers == [[revision, EXTRA], [EXTRA, EXTRA]]
    assert upgrade_log(fresh_postgres_url) == 1
    check_preserved(fresh_postgres_url, revision, before)
