"""Count what a storage holds, to prove that a refused input wrote nothing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dltune.storage import BaseStorage

__all__ = ["CountedStorage", "copy_sqlite", "count_rows", "count_sql_rows"]

_KINDS = (
    "studies",
    "study_user_attrs",
    "study_system_attrs",
    "trials",
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_user_attrs",
    "trial_system_attrs",
)


def count_rows(storage: BaseStorage) -> dict[str, int]:
    """Count studies, trials and everything they hold, through the storage's public API.

    Works for any storage; compare two counts taken around a refused call to show that it
    wrote nothing.

    Example:
        >>> from dltune.storage import InMemoryStorage
        >>> count_rows(InMemoryStorage())["studies"]
        0
    """
    counts = dict.fromkeys(_KINDS, 0)
    for study in storage.get_all_studies():
        counts["studies"] += 1
        counts["study_user_attrs"] += len(study.user_attrs)
        counts["study_system_attrs"] += len(study.system_attrs)
        for trial in storage.get_all_trials(study.study_id):
            counts["trials"] += 1
            counts["trial_params"] += len(trial.params)
            counts["trial_values"] += len(trial.values or ())
            counts["trial_intermediate_values"] += len(trial.intermediate_values)
            counts["trial_user_attrs"] += len(trial.user_attrs)
            counts["trial_system_attrs"] += len(trial.system_attrs)
    return counts


def count_sql_rows(url: str) -> dict[str, int]:
    """Count the rows of every table of a SQL storage's database, bypassing the storage.

    Args:
        url: The database URL, as given to :class:`~dltune.storage.SQLStorage`.

    Returns:
        ``table name -> rows`` for every table but alembic's version stamp.
    """
    from sqlalchemy import create_engine
    from sqlalchemy import func
    from sqlalchemy import inspect
    from sqlalchemy import select
    from sqlalchemy import table

    from dltune.storage._sql_engine import parse_url

    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            names = sorted(inspect(connection).get_table_names())
            return {
                name: int(
                    connection.execute(select(func.count()).select_from(table(name))).one()[0]
                )
                for name in names
                if name != "alembic_version"
            }
    finally:
        engine.dispose()


@dataclass
class CountedStorage:
    """A storage, and how to count everything it holds (its tables too, for SQL), so a test can
    assert that a rejected input wrote nothing.

    Example:
        >>> from dltune.storage import InMemoryStorage
        >>> CountedStorage(InMemoryStorage()).rows()["studies"]
        0
    """

    storage: BaseStorage
    url: str | None = None

    def rows(self) -> dict[str, int]:
        """Counts by kind of record (and ``table NAME`` for each SQL table)."""
        counts = count_rows(self.storage)
        if self.url is not None:
            counts.update({f"table {k}": n for k, n in count_sql_rows(self.url).items()})
        return counts


def copy_sqlite(template: Path, directory: Path) -> str:
    """Copy an SQLite storage file (with its WAL files) into ``directory``; return its URL.

    Copying an empty database that already has its schema is about ten times faster than
    creating the schema again, which adds up over hundreds of tests.
    """
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, directory / ("storage.db" + suffix))
    return f"sqlite:///{directory / 'storage.db'}"
