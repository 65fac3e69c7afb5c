"""Connecting to the SQL database: URLs, engines, locking transactions, retries and versions.

Every storage operation is one transaction function run by :meth:`Database.run`. On SQLite the
driver's own transaction handling is switched off and we emit ``BEGIN IMMEDIATE`` for writes
(taking the write lock up front, so a transaction never fails half-way on an upgrade from a read
lock) and ``BEGIN`` for reads, which in WAL mode never block writers. A transaction that fails
on a lock, a serialization conflict, a deadlock or a lost connection is rolled back and re-run
from scratch, with exponential backoff and jitter, so callers never see a transient failure.

Failures that waiting cannot fix are raised on the first attempt, with what to do: a full disk
(SQLite's ``SQLITE_FULL``, PostgreSQL's ``disk_full``), and a database that may only be read (a
SQLite file on a read-only file system or without write permission, a PostgreSQL role without
write privileges or a read-only server). A SQLite file that cannot be written here is opened for
reading only, so that reading it (the CLI, reports, the dashboard) still works.
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
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import SchemaVersionError
from dltune.exceptions import StorageError
from dltune.storage._sql_schema import head_revision
from dltune.storage._sql_schema import is_known_revision
from dltune.storage._sql_schema import read_revision
from dltune.storage._sql_schema import run_upgrade

__all__ = [
    "Database",
    "current_schema_version",
    "open_schema",
    "parse_url",
    "sqlite_read_only_reason",
    "upgrade_storage",
]

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
# Failures no retry fixes, named in the error. SQLite's primary result codes are the low byte
# of its extended ones (SQLITE_READONLY_DBMOVED, ...).
_SQLITE_READONLY = 8
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_PG_NO_PRIVILEGE = "42501"  # insufficient_privilege: a role without write grants
_PG_READ_ONLY_TRANSACTION = "25006"  # a standby, or default_transaction_read_only
_READABLE_HINT = (
    "It can still be read: open it with read_only=True (the CLI's reading commands, "
    "`dltune report` and the dashboard do)"
)


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


def sqlite_read_only_reason(database: str) -> str | None:
    """Why an existing SQLite file cannot be written by this process, or ``None`` if it can.

    ``None`` too for a file that does not exist yet: opening it creates it, or says why not.

    Example:
        >>> import tempfile, os
        >>> sqlite_read_only_reason(os.path.join(tempfile.mkdtemp(), "new.db")) is None
        True
    """
    path = os.path.abspath(database)
    try:
        flags = os.statvfs(path).f_flag
    except OSError:
        return None
    if flags & os.ST_RDONLY:
        return "its file system is mounted read-only"
    if not os.access(path, os.W_OK):
        return "this user may not write to the file"
    sidecars = (f"{path}-wal", f"{path}-shm")
    if not os.access(os.path.dirname(path), os.W_OK) and not all(
        os.access(sidecar, os.W_OK) for sidecar in sidecars
    ):
        return "this user may not create files in its directory (SQLite's -wal and -shm files)"
    return None


def _read_only_url(database: str) -> URL:
    path = os.path.abspath(database)
    query = {"mode": "ro", "uri": "true"}
    if not os.access(os.path.dirname(path), os.W_OK) and not os.path.exists(f"{path}-shm"):
        # Reading a WAL database needs its -shm file, which cannot be created here. A writer
        # elsewhere (a read-write mount of the same directory) would have created it, so no
        # one writes the file now: read it as immutable, without the shared-memory index.
        query["immutable"] = "1"
    return URL.create("sqlite", database=f"file:{quote(path)}", query=query)


def _sqlite_engine(url: URL, read_only: bool, engine_kwargs: dict[str, Any]) -> Engine:
    connect_url = _read_only_url(url.database or "") if read_only else url
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
        #: How the errors name the database: a SQLite file by its path.
        self.where = (
            f"the database file {os.path.abspath(url.database or '')!r}"
            if self.dialect_name == "sqlite"
            else f"the database at {self.masked_url}"
        )
        #: Why this process cannot write to the SQLite file (known once the engine exists).
        self.read_only_reason: str | None = None
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
                    engine = self._new_sqlite_engine()
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
            connecting = True
            try:
                if write:
                    self._check_writable()
                connection = self._connection()
                connecting = False
                connection.execution_options(**{_WRITE_OPTION: write})
                with connection.begin():
                    return fn(connection)
            except DBAPIError as exc:
                self._drop_connection()
                transient = self._is_transient(exc, retry_disconnects, connecting)
                if attempt >= MAX_ATTEMPTS or not transient:
                    lasted = f" after {attempt} attempts over {time.monotonic() - started:.1f} s"
                    raise self._failure(exc, write, lasted if attempt > 1 else "") from exc
            except SQLAlchemyError as exc:
                self._drop_connection()
                raise StorageError(f"the database at {self.masked_url} failed: {exc!r}") from exc
            delay = min(_MAX_DELAY_SECONDS, _BASE_DELAY_SECONDS * 2 ** (attempt - 1))
            _logger.debug("transient database error, attempt %d; retrying", attempt)
            time.sleep(random.uniform(0.5 * delay, delay))
            attempt += 1

    def _new_sqlite_engine(self) -> Engine:
        read_only = self._read_only
        if not read_only:
            self.read_only_reason = sqlite_read_only_reason(self.url.database or "")
            if self.read_only_reason is not None:
                _logger.info("%s is open for reading only: %s", self.where, self.read_only_reason)
                read_only = True
        return _sqlite_engine(self.url, read_only, self._engine_kwargs)

    def _check_writable(self) -> None:
        """Refuse a write to a SQLite file that cannot be written, before trying it."""
        if self.dialect_name == "sqlite":
            self._engine()  # decides read_only_reason
            if self.read_only_reason is not None:
                raise ReadOnlyStorageError(
                    f"cannot write to {self.where}: it is read-only here "
                    f"({self.read_only_reason}). {_READABLE_HINT}"
                )

    def _failure(self, exc: DBAPIError, write: bool, lasted: str) -> StorageError:
        """The error to raise for a backend error that retrying did not (or cannot) fix."""
        named = self.named_failure(exc, write)
        if named is not None:
            return named
        return StorageError(f"the database at {self.masked_url} failed{lasted}: {exc.orig}")

    def named_failure(self, exc: DBAPIError, write: bool) -> StorageError | None:
        """The error saying what to do about a full disk or a read-only database, else None."""
        text = str(exc.orig).strip()
        cause = text.splitlines()[0] if text else type(exc.orig).__name__
        code = getattr(exc.orig, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if primary == _SQLITE_FULL or sqlstate == _PG_DISK_FULL:
            detail = cause if sqlstate is None else f"SQLSTATE {sqlstate}: {cause}"
            return StorageError(
                f"cannot write to {self.where}: its disk is full ({detail}). Nothing stored "
                "was lost: free some space, then run the study again to resume it (a trial "
                "left RUNNING is failed as stale after its grace period, and rerun if the "
                "storage's max_retries allows)"
            )
        if primary == _SQLITE_READONLY:
            return ReadOnlyStorageError(
                f"cannot write to {self.where}: it is read-only ({cause}). {_READABLE_HINT}"
            )
        if write and sqlstate == _PG_NO_PRIVILEGE:
            return ReadOnlyStorageError(
                f"cannot write to {self.where}: permission denied (SQLSTATE {sqlstate}: "
                f"{cause}); this role may only read. {_READABLE_HINT}, or grant the role "
                "INSERT, UPDATE and DELETE on the dltune tables to write"
            )
        if write and sqlstate == _PG_READ_ONLY_TRANSACTION:
            return ReadOnlyStorageError(
                f"cannot write to {self.where}: the server accepts only reads here (SQLSTATE "
                f"{sqlstate}: {cause}). {_READABLE_HINT}"
            )
        return None

    def _is_transient(self, exc: DBAPIError, retry_disconnects: bool, connecting: bool) -> bool:
        if self.dialect_name == "sqlite":
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        if getattr(exc.orig, "sqlstate", None) in _PG_TRANSIENT_SQLSTATES:
            return True
        # A lost connection, or a new one refused while the server restarts: psycopg flags no
        # disconnect for a connection that never opened ("Connection refused", "the database
        # system is shutting down / starting up").
        return retry_disconnects and (connecting or bool(exc.connection_invalidated))

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
    if isinstance(cause, DBAPIError) and db.named_failure(cause, write=False) is not None:
        return exc  # a full disk or a read-only file: that error already says what to do
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
        >>> before, after = upgrade_storage(f"sqlite:///{path}")
        >>> before is None and after == head_revision()
        True
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
