"""How a running dashboard is found: one small JSON file per serving process.

While it serves, a dashboard writes ``{"pid", "url", "storage"}`` into the runtime directory
and removes it on exit; ``dltune tune`` calls :func:`find_dashboard` to link a live one. The
storage URL is written normalised (SQLite paths made absolute) and with any password masked,
so the file never holds a secret. This module imports neither starlette nor uvicorn.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["find_dashboard", "normalise_storage_url", "register", "runtime_dir", "unregister"]

_logger = logging.getLogger(__name__)

DIR_ENV = "DLTUNE_DASHBOARD_DIR"
_SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
_POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg")


def runtime_dir() -> Path:
    """Where running dashboards register themselves.

    Returns:
        ``$DLTUNE_DASHBOARD_DIR`` if set, else ``$XDG_RUNTIME_DIR/dltune-dashboards``, else
        ``~/.cache/dltune/dashboards``. It may not exist (yet).

    Example:
        >>> import os
        >>> os.environ["DLTUNE_DASHBOARD_DIR"] = "/tmp/dash-doc"
        >>> str(runtime_dir())
        '/tmp/dash-doc'
        >>> del os.environ["DLTUNE_DASHBOARD_DIR"]
    """
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "dltune-dashboards"
    return Path.home() / ".cache" / "dltune" / "dashboards"


def normalise_storage_url(url: str) -> str:
    """The storage URL two processes compare: SQLite paths absolute, passwords masked.

    Args:
        url: A storage URL.

    Returns:
        The URL normalised; one that does not parse is returned unchanged (it then matches
        only itself).

    Example:
        >>> import os
        >>> normalise_storage_url("sqlite:///a.db") == f"sqlite:///{os.path.realpath('a.db')}"
        True
        >>> normalise_storage_url("postgresql://me:secret@db/x")
        'postgresql+psycopg://me:***@db/x'
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.drivername in _SQLITE_DRIVERS:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = os.path.realpath(os.path.expanduser(database))
            return f"sqlite:///{path}"
        return url
    if parsed.drivername in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=True)


def register(url: str, storage: str, *, pid: int | None = None) -> Path:
    """Write the discovery file of a dashboard serving ``storage`` at ``url``.

    The file is written whole (a temporary file renamed into place) and readable only by
    its owner.

    Args:
        url: Where the dashboard answers (``http://127.0.0.1:8080/``).
        storage: The storage URL it serves (stored normalised, password masked).
        pid: The serving process (this one by default); the file counts while it runs.

    Returns:
        The file's path, for :func:`unregister`.

    Raises:
        OSError: If the runtime directory cannot be made or written (``serve`` logs it and
            serves anyway, without being found).

    Example:
        >>> import os, tempfile
        >>> os.environ["DLTUNE_DASHBOARD_DIR"] = tempfile.mkdtemp()
        >>> path = register("http://127.0.0.1:8080/", "sqlite:////data/runs.db")
        >>> path.name.startswith("dashboard-"), path.exists()
        (True, True)
        >>> unregister(path)
        >>> del os.environ["DLTUNE_DASHBOARD_DIR"]
    """
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pid = os.getpid() if pid is None else pid
    record = {"pid": pid, "url": url, "storage": normalise_storage_url(storage)}
    fd, tmp = tempfile.mkstemp(prefix=".dashboard-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        path = folder / f"dashboard-{pid}-{uuid.uuid4().hex[:8]}.json"
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _logger.info("registered the dashboard at %s in %s", url, path)
    return path


def unregister(path: Path) -> None:
    """Remove a discovery file written by :func:`register`.

    Never raises: a file gone already is fine, and one that cannot be removed (a read-only
    directory, another user's file) is left for its owner, logged at debug level.

    Args:
        path: The file.

    Example:
        >>> from pathlib import Path
        >>> unregister(Path("/nonexistent/dashboard-1.json"))
    """
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        _logger.debug("could not remove the dashboard file %s: %s", path, exc)


def _is_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    except OSError:
        return False
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed since it was listed
        return 0.0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    pid = record.get("pid")
    # os.kill(0 or -1, 0) would ask about whole process groups; huge ones overflow.
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return None
    if not isinstance(record.get("url"), str) or not isinstance(record.get("storage"), str):
        return None
    return record


def find_dashboard(storage_url: str) -> str | None:
    """The URL of a live dashboard serving ``storage_url``, or ``None``.

    A dashboard counts as live while its process runs; files left by dead processes are
    removed (when they can be). Unreadable or malformed files are skipped. With several live
    ones, the most recently started wins. Cheap: one directory listing and a few small reads.

    Args:
        storage_url: The storage URL, as given to the dashboard (relative SQLite paths are
            compared as absolute ones).

    Returns:
        The dashboard's URL, or ``None`` when none serves that storage.

    Raises:
        TypeError: If ``storage_url`` is not a str.

    Example:
        >>> import os, tempfile
        >>> os.environ["DLTUNE_DASHBOARD_DIR"] = tempfile.mkdtemp()
        >>> find_dashboard("sqlite:///demo.db") is None
        True
        >>> path = register("http://127.0.0.1:8080/", "sqlite:///demo.db")
        >>> find_dashboard("sqlite:///demo.db")
        'http://127.0.0.1:8080/'
        >>> unregister(path)
        >>> del os.environ["DLTUNE_DASHBOARD_DIR"]
    """
    if not isinstance(storage_url, str):
        raise TypeError(f"storage_url={storage_url!r} must be a str such as 'sqlite:///dltune.db'")
    wanted = normalise_storage_url(storage_url)
    try:
        paths = list(runtime_dir().glob("dashboard-*.json"))
    except OSError:
        return None
    for path in sorted(paths, key=_mtime, reverse=True):
        record = _read(path)
        if record is None:
            continue
        if not _is_alive(record["pid"]):
            unregister(path)
            continue
        if record.get("storage") == wanted:
            return str(record["url"])
    return None
