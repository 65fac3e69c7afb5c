"""Connecting to the SQL database: URLs, engines, locking transactions, retries and versions.

Every storage operation is one transaction function run by :meth:`Database.run`. On SQLite the
driver's own transaction handling is switched off and we emit ``BEGIN IMMEDIATE`` for writes
(taking the write lock up front, so a transaction never fails half-way on an upgrade from a read
lock) and ``BEGIN`` for reads, which in WAL mode never block writers. A transaction that fails
on a lock, a serialization conflict, a deadlock or a lost connection is rolled back and re-run
from scratch, with exponential backoff and jitter, so callers never see a transient failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy import URL
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import make_url
from sqlalchemy import text
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import SQLAlchemyError

from dltune.exceptions import MissingDependencyError
from dltune.exceptions import SchemaVersionError
from dltune.exceptions import StorageError
from dltune.storage._sql_schema import head_revision
from dltune.storage._sql_schema import is_known_revision
from dltune.storage._sql_schema import read_revision
from dltune.storage._sql_schema import run_upgrade

__all__ = ["Database", "current_schema_version", "open_schema", "parse_url", "upgrade_storage"]

_logger = logging.getLogger(__name__)
T = TypeVar("T")

ACCEPTED_URLS = (
    "'sqlite:///path/to/file.db' (a file; four slashes for an absolute path) or "
    "'postgresql+psycopg://user:password@host:port/dbname'"
)
BUSY_TIMEOUT_MS = 30_000
MAX_ATTEMPTS = 12
_BASE_DELAY_SECONDS = 0.02
_MAX_DELAY_SECONDS = 2.0
_WRITE_OPTION = "dltune_write"
# pg_advisory_xact_lock key serializing schema creation and upgrades ("dltune" in ASCII).
_SCHEMA_LOCK_KEY = 0x646C74756E65
_PG_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def mask(url: URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str) -> URL:
    """Validate a storage URL and normalize PostgreSQL URLs to the psycopg 3 driver.

    Raises:
        TypeError: If ``url`` is not a str.
        ValueError: Naming the URL (password masked) and the accepted forms.
    """
    if not isinstance(url, str):
        raise TypeError(f"url={url!r} must be a str such as {ACCEPTED_URLS}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"url={url!r} is not a database URL; use {ACCEPTED_URLS}") from None
    shown = url if parsed.password is None else mask(parsed)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ValueError(
                f"url={shown!r} does not name a database file; use {ACCEPTED_URLS}, or "
                "storage=None for a study kept in this process's memory"
            )
        return parsed.set(drivername="sqlite")
    if parsed.drivername in ("postgresql", "postgresql+psycopg"):
        if importlib.util.find_spec("psycopg") is None:
            raise MissingDependencyError(
                "a PostgreSQL storage needs the psycopg package; "
                "install it with: pip install 'dltune[postgres]'"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(
        f"url={shown!r} uses the unsupported driver {parsed.drivername!r}; use {ACCEPTED_URLS}"
    )


def _sqlite_engine(url: URL, read_only: bool, engine_kwargs: dict[str, Any]) -> Engine:
    connect_url = url
    if read_only:
        path = quote(os.path.abspath(url.database or ""))
        connect_url = URL.create(
            "sqlite", database=f"file:{path}", query={"mode": "ro", "uri": "true"}
        )
    kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}}
    kwargs.update(engine_kwargs)
    engine = create_engine(connect_url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The pysqlite recipe: the driver emits no BEGIN of its own; _on_begin does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        is_write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")

    return engine


def _dispose(engine: Engine, owner_pid: int, held: weakref.WeakSet[_HeldConnection]) -> None:
    # Kept connections go back to the pool first, or they would outlive it, unclosed.
    for connection in list(held):
        connection.close()
    engine.dispose(close=os.getpid() == owner_pid)


_PG_CONNECT_TIMEOUT_SECONDS = 10


class _HeldConnection:
    """A thread's kept connection; returned to the pool when the thread's locals go away."""

    __slots__ = ("__weakref__", "connection", "pid")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.pid = os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():  # never touch a parent's connection after a fork
            with contextlib.suppress(Exception):
                self.connection.close()

    def __del__(self) -> None:
        self.close()


class Database:
    """One process's connection pool to a storage database, with locking and retries.

    The engine is created lazily and again after a fork: a pool must never be shared between
    processes.
    """

    def __init__(self, url: URL, *, read_only: bool, engine_kwargs: dict[str, Any]) -> None:
        self.url = url
        self.masked_url = mask(url)
        self.dialect_name = "sqlite" if url.drivername == "sqlite" else "postgresql"
        self._read_only = read_only
        self._engine_kwargs = dict(engine_kwargs)
        self._pid = -1
        self._engine_lock = threading.Lock()
        self._engine_obj: Engine | None = None
        self._local = threading.local()
        self._held: weakref.WeakSet[_HeldConnection] = weakref.WeakSet()

    def _engine(self) -> Engine:
        engine = self._engine_obj
        if self._pid == os.getpid() and engine is not None:
            return engine
        with self._engine_lock:
            if self._pid != os.getpid() or self._engine_obj is None:
                if self.dialect_name == "sqlite":
                    engine = _sqlite_engine(self.url, self._read_only, self._engine_kwargs)
                else:
                    # An unreachable host fails in seconds rather than the OS's TCP timeout.
                    kwargs = {
                        "pool_pre_ping": True,
                        "connect_args": {"connect_timeout": _PG_CONNECT_TIMEOUT_SECONDS},
                        **self._engine_kwargs,
                    }
                    engine = create_engine(self.url, **kwargs)
                self._engine_obj = engine
                self._pid = os.getpid()
                # Close the pool when this object goes away (or at exit), so drivers do not warn
                # about open connections; a forked child never closes its parent's connections.
                weakref.finalize(self, _dispose, engine, self._pid, self._held)
            assert self._engine_obj is not None
            return self._engine_obj

    def run(
        self, fn: Callable[[Connection], T], *, write: bool, retry_disconnects: bool = True
    ) -> T:
        """Run ``fn`` in one transaction, re-running it from scratch on transient failures.

        Raises:
            StorageError: From the backend's error, if it is not transient or retries ran out.
        """
        started = time.monotonic()
        attempt = 1
        while True:
            try:
                connection = self._connection()
                connection.execution_options(**{_WRITE_OPTION: write})
                with connection.begin():
                    return fn(connection)
            except DBAPIError as exc:
                self._drop_connection()
                if attempt >= MAX_ATTEMPTS or not self._is_transient(exc, retry_disconnects):
                    waited = time.monotonic() - started
                    detail = (
                        f" after {attempt} attempts over {waited:.1f} s" if attempt > 1 else ""
                    )
                    raise StorageError(
                        f"the database at {self.masked_url} failed{detail}: {exc.orig}"
                    ) from exc
            except SQLAlchemyError as exc:
                self._drop_connection()
                raise StorageError(f"the database at {self.masked_url} failed: {exc!r}") from exc
            delay = min(_MAX_DELAY_SECONDS, _BASE_DELAY_SECONDS * 2 ** (attempt - 1))
            _logger.debug("transient database error, attempt %d; retrying", attempt)
            time.sleep(random.uniform(0.5 * delay, delay))
            attempt += 1

    def _is_transient(self, exc: DBAPIError, retry_disconnects: bool) -> bool:
        if self.dialect_name == "sqlite":
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        if getattr(exc.orig, "sqlstate", None) in _PG_TRANSIENT_SQLSTATES:
            return True
        return retry_disconnects and bool(exc.connection_invalidated)

    def _connection(self) -> Connection:
        """This thread's connection, kept between transactions.

        Checking a connection out of the pool for every transaction costs more than the
        transaction itself on SQLite; each thread keeps one instead, closed when the thread
        ends (or after an error), and never reused across a fork.
        """
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid() or held.connection.closed:
            held = _HeldConnection(self._engine().connect())
            self._local.held = held
            self._held.add(held)
        return held.connection

    def _drop_connection(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()

    def dispose(self) -> None:
        """Close the pooled connections of this process."""
        self._local.held = None
        if self._engine_obj is not None and self._pid == os.getpid():
            _dispose(self._engine_obj, self._pid, self._held)
        self._engine_obj = None
        self._pid = -1


def _older_message(db: Database, revision: str) -> str:
    return (
        f"the database at {db.masked_url} has the older schema revision {revision!r} "
        f"(this dltune uses {head_revision()!r}); back it up, then run "
        f"`dltune storage upgrade --storage {db.masked_url}`"
    )


def _newer_text(db: Database, revision: str) -> str:
    return (
        f"the database at {db.masked_url} was written by a newer dltune (schema revision "
        f"{revision!r}; this dltune knows up to {head_revision()!r})"
    )


def newer_message(db: Database, revision: str) -> str:
    """Why a database written by a newer dltune is read-only here."""
    return (
        f"{_newer_text(db, revision)}; it is open read-only: upgrade dltune "
        "(pip install -U dltune) to write to it"
    )


def _upgrade_locked(db: Database, *, create_only: bool) -> tuple[str | None, str]:
    """Create or upgrade the schema under the database's write lock; ``(old, new)``."""

    def transaction(connection: Connection) -> tuple[str | None, str]:
        if db.dialect_name == "postgresql":
            # Serializes concurrent openers: one creates the schema, the others then see it.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
        old = read_revision(connection)
        head = head_revision()
        if old == head:
            return old, head
        if old is not None and not is_known_revision(old):
            raise SchemaVersionError(f"{_newer_text(db, old)}; upgrade dltune to use it")
        if old is not None and create_only:
            raise SchemaVersionError(_older_message(db, old))
        run_upgrade(connection)
        return old, head

    return db.run(transaction, write=True, retry_disconnects=False)


def _connect_error(db: Database, exc: StorageError) -> StorageError:
    cause = exc.__cause__
    detail = cause.orig if isinstance(cause, DBAPIError) else cause or exc
    return StorageError(f"cannot open the database at {db.masked_url}: {detail}")


def open_schema(db: Database, *, read_only: bool) -> str | None:
    """Check (or create) the schema of a database being opened.

    Returns:
        ``None`` if the schema is this dltune's; the revision if it is newer (writes refused).

    Raises:
        SchemaVersionError: If the schema is older (telling how to upgrade it).
        StorageError: If the database cannot be reached.
    """
    try:
        revision = db.run(read_revision, write=False, retry_disconnects=False)
    except SchemaVersionError:
        raise
    except StorageError as exc:
        raise _connect_error(db, exc) from exc.__cause__
    if revision == head_revision():
        return None
    if revision is None:
        if read_only:
            raise StorageError(
                f"the database at {db.masked_url} holds no dltune schema yet; open it once "
                "without read_only=True to create it"
            )
        _upgrade_locked(db, create_only=True)
        return None
    if is_known_revision(revision):
        raise SchemaVersionError(_older_message(db, revision))
    return revision


def upgrade_storage(url: str) -> tuple[str | None, str]:
    """Bring a storage database to this dltune's schema, creating it if empty.

    Args:
        url: The storage URL, as given to :class:`SQLStorage`.

    Returns:
        The revision before (``None`` for an empty database) and after the upgrade.

    Raises:
        SchemaVersionError: If the database was written by a newer dltune.
        StorageError: If the database cannot be reached.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> upgrade_storage(f"sqlite:///{path}")
        (None, '0001')
    """
    db = Database(parse_url(url), read_only=False, engine_kwargs={})
    try:
        return _upgrade_locked(db, create_only=False)
    finally:
        db.dispose()


def current_schema_version(url: str) -> str | None:
    """The schema revision of a storage database, or ``None`` if it holds no dltune schema.

    Raises:
        StorageError: If the database cannot be reached.

    Example:
        >>> import tempfile, os
        >>> current_schema_version(f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'new.db')}")
    """
    parsed = parse_url(url)
    if parsed.drivername == "sqlite" and not os.path.exists(parsed.database or ""):
        return None  # do not create the file just to look at it
    db = Database(parsed, read_only=False, engine_kwargs={})
    try:
        return db.run(read_revision, write=False, retry_disconnects=False)
    finally:
        db.dispose()
