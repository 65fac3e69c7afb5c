"""Opening the storage read-only, and the errors the reader raises.

``parse_url`` comes from the private ``dltune.storage._sql_engine``: the storage package has
no public function that validates a URL without opening it, and a SQLite path must be
checked to exist *before* :class:`~dltune.storage.SQLStorage` would create the file.
"""

from __future__ import annotations

import os
from typing import Any

from dltune.exceptions import DLTuneError
from dltune.storage import SQLStorage

__all__ = ["NotFoundError", "ReaderClosedError", "open_read_only", "public_storage_name"]

_PG_CONNECT_TIMEOUT_SECONDS = 10


class NotFoundError(DLTuneError, LookupError):
    """No study (or trial) of that name (or number); the message lists the studies.

    Args:
        message: What was not found, and the study names.
        names: Up to :data:`MAX_LISTED_NAMES` study names, for the page to offer.

    Example:
        >>> NotFoundError("no study named 'x'", ["demo"]).names
        ['demo']
    """

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


class ReaderClosedError(DLTuneError, RuntimeError):
    """The reader was closed (the dashboard is shutting down): it reads nothing more.

    Example:
        >>> str(ReaderClosedError())
        'the dashboard is shutting down: its storage reader is closed'
    """

    def __init__(self) -> None:
        super().__init__("the dashboard is shutting down: its storage reader is closed")


def public_storage_name(url: str) -> str:
    """What a dashboard served to other machines shows of its storage: the scheme and the
    database's (file) name, never a path, host or user.

    Args:
        url: The storage URL.

    Returns:
        Such as ``"sqlite:///…/runs.db"`` or ``"postgresql+psycopg://…/runs"``.

    Example:
        >>> public_storage_name("sqlite:////home/me/secret-project/runs.db")
        'sqlite:///…/runs.db'
        >>> public_storage_name("postgresql://me:pw@db.internal:5432/runs")
        'postgresql://…/runs'
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(storage)"
    name = os.path.basename((parsed.database or "").rstrip("/"))
    slashes = "///" if parsed.drivername.startswith("sqlite") else "//"
    return f"{parsed.drivername}:{slashes}…/{name}"


def open_read_only(url: str) -> SQLStorage:
    """Open a storage for reading only; a SQLite file must exist (it is never created).

    On PostgreSQL the sessions themselves are read-only
    (``default_transaction_read_only``), so not even a bug could write.

    Args:
        url: The storage URL (``sqlite:///path.db``, ``postgresql+psycopg://...``).

    Returns:
        The storage, opened with ``read_only=True``.

    Raises:
        TypeError: If ``url`` is not a str.
        ValueError: If the URL is malformed or names a SQLite file that does not exist.
        StorageError: If the database cannot be read or holds no dltune schema.
    """
    if not isinstance(url, str):
        raise TypeError(f"storage={url!r} must be a URL such as 'sqlite:///dltune.db'")
    from dltune.storage._sql_engine import parse_url

    parsed = parse_url(url)
    options: dict[str, Any] = {}
    if parsed.drivername == "sqlite":
        path = os.path.abspath(parsed.database or "")
        if not os.path.isfile(path):
            raise ValueError(
                f"storage={url!r}: there is no database file {path!r}; check the path (three "
                "slashes for a relative one, four for an absolute one)"
            )
    else:
        connect_args = {
            "connect_timeout": _PG_CONNECT_TIMEOUT_SECONDS,
            "options": "-c default_transaction_read_only=on",
        }
        options["engine_kwargs"] = {"connect_args": connect_args, "pool_pre_ping": True}
    return SQLStorage(url, read_only=True, **options)
