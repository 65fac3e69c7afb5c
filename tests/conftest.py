"""Fixtures shared by the whole test suite.

PostgreSQL tests get their server from ``scripts/test.sh`` (run by ``make test``), which
starts a throwaway cluster and exports ``DLTUNE_TEST_POSTGRES_URL``, or exports
``DLTUNE_TEST_POSTGRES_SKIP_REASON`` when no server can be had.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dltune.storage import InMemoryStorage
from dltune.testing import CountedStorage
from dltune.testing import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import Iterator

_URL_VAR = "DLTUNE_TEST_POSTGRES_URL"
_SKIP_REASON_VAR = "DLTUNE_TEST_POSTGRES_SKIP_REASON"
_DEFAULT_SKIP_REASON = f"{_URL_VAR} not set; run tests through `make test`"


def _postgres_skip_reason() -> str | None:
    """Return why PostgreSQL tests are skipped, or None when they run."""
    if os.environ.get(_URL_VAR):
        return None
    return os.environ.get(_SKIP_REASON_VAR) or _DEFAULT_SKIP_REASON


def pytest_report_header(config: pytest.Config) -> str:
    reason = _postgres_skip_reason()
    if reason is None:
        return f"postgresql: tests run against {os.environ[_URL_VAR]}"
    return f"postgresql: TESTS SKIPPED: {reason}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the test server's ``dltune_test`` database; skips without one."""
    reason = _postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return os.environ[_URL_VAR]


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database, dropped after the test."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    connect_args = url.translate_connect_args(username="user", database="dbname")
    connect_args["dbname"] = "postgres"
    name = f"dltune_t_{uuid.uuid4().hex}"
    with psycopg.connect(**connect_args, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(**connect_args, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty storage database with its schema, made once; tests copy it (copy_sqlite)."""
    from dltune.storage import SQLStorage

    path = tmp_path_factory.mktemp("template") / "empty.db"
    SQLStorage(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=["memory", "sqlite"])
def backend(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[CountedStorage]:
    """Each test runs on an in-memory storage and on a fresh SQLite storage."""
    if request.param == "memory":
        yield CountedStorage(InMemoryStorage())
        return
    from dltune.storage import SQLStorage

    url = copy_sqlite(sqlite_template, tmp_path)
    storage = SQLStorage(url)
    try:
        yield CountedStorage(storage, url)
    finally:
        storage.close()
