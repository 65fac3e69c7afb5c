"""Where studies and trials live: in memory, or in a SQLite or PostgreSQL database."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from dltune.storage._base import BaseStorage
from dltune.storage._base import FrozenStudy
from dltune.storage._memory import InMemoryStorage

if TYPE_CHECKING:
    from dltune.storage._sql import SQLStorage
    from dltune.storage._sql_engine import current_schema_version
    from dltune.storage._sql_engine import upgrade_storage

__all__ = [
    "BaseStorage",
    "FrozenStudy",
    "InMemoryStorage",
    "SQLStorage",
    "current_schema_version",
    "get_storage",
    "upgrade_storage",
]


_LAZY = {
    "SQLStorage": "dltune.storage._sql",
    "current_schema_version": "dltune.storage._sql_engine",
    "upgrade_storage": "dltune.storage._sql_engine",
}


def __getattr__(name: str) -> Any:
    """Load the SQL backend (SQLAlchemy, alembic) only when it is first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dltune.storage' has no attribute {name!r}")


def get_storage(storage: str | BaseStorage | None) -> BaseStorage:
    """Turn what a user passes as ``storage=`` into a storage.

    Args:
        storage: ``None`` for an in-memory storage, a database URL for :class:`SQLStorage`, or
            a storage, returned as it is.

    Raises:
        TypeError: If ``storage`` is of another type.

    Example:
        >>> get_storage(None)  # doctest: +ELLIPSIS
        <dltune.storage._memory.InMemoryStorage object at ...>
    """
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, str):
        from dltune.storage._sql import SQLStorage

        return SQLStorage(storage)
    if isinstance(storage, BaseStorage):
        return storage
    raise TypeError(
        f"storage={storage!r} of type {type(storage).__name__} is not supported; pass None "
        "(in memory), a database URL such as 'sqlite:///dltune.db', or a BaseStorage"
    )
