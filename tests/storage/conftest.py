"""Fixtures of the SQL storage tests: a storage URL per backend and storage openers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import BACKENDS
from sql_helpers import Opener

from dltune.storage import SQLStorage
from dltune.storage._sql_schema import head_revision


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


@pytest.fixture
def head_plus_one(tmp_path: Path) -> Iterator[str]:
    """Make this dltune's head a new revision ``'9001'`` on top of the real head.

    The real migrations are copied to a temporary directory with one more revision, and the
    schema module is pointed at it: a database stamped at the real head is then an older one.
    """
    from dltune.storage import _sql_schema

    real_head = head_revision()
    scripts = tmp_path / "migrations"
    shutil.copytree(
        _sql_schema.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    (scripts / "versions" / "rev_9001_test.py").write_text(
        "from alembic import op\n"
        "revision = '9001'\n"
        f"down_revision = {real_head!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n"
        "def upgrade() -> None:\n"
        "    op.create_index('ix_test_9001', 'studies', ['created_at'])\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql_schema, "MIGRATIONS_DIR", scripts)
        _sql_schema._script.cache_clear()
        try:
            yield "9001"
        finally:
            _sql_schema._script.cache_clear()
    _sql_schema._script.cache_clear()
