"""Making the app and serving it with uvicorn on a socket we bind ourselves.

Binding first turns "port in use" into one clear error (uvicorn would log it and exit) and
lets ``port=0`` pick a free port whose URL is known before serving starts.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dltune._imports import require
from dltune.dashboard._discovery import register
from dltune.dashboard._discovery import unregister

if TYPE_CHECKING:
    from types import FrameType

    from starlette.applications import Starlette

__all__ = ["LOOPBACK_HOSTS", "create_app", "is_loopback", "serve"]

_logger = logging.getLogger(__name__)

#: The Host header values a dashboard bound to a loopback address answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_FEATURE = "the dashboard"


def _require_web() -> None:
    require("starlette", extra="dashboard", feature=_FEATURE)
    require("uvicorn", extra="dashboard", feature=_FEATURE)
    require("plotly", extra="dashboard", feature=_FEATURE)  # serves its plotly.min.js


def create_app(
    storage: str,
    *,
    poll_seconds: float = 2.0,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
) -> Starlette:
    """The dashboard as a starlette app over ``storage``, opened read-only.

    Args:
        storage: The storage URL (``sqlite:///path.db``, ``postgresql+psycopg://...``). A
            SQLite file must exist: it is never created.
        poll_seconds: How often open pages ask for new and changed trials.
        allowed_hosts: Host header values answered (others get 400, which stops DNS
            rebinding); ``None`` answers any, as needed when serving other machines.

    Returns:
        The app; ``app.state.reader`` reads the storage and is closed on shutdown.

    Raises:
        MissingDependencyError: Without ``pip install 'dltune[dashboard]'``.
        ValueError: On a bad URL, a missing SQLite file or a bad ``poll_seconds``.
        StorageError: If the database cannot be read or holds no dltune schema.

    Example:
        >>> import os, tempfile, dltune
        >>> url = f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'demo.db')}"
        >>> _ = dltune.create_study("demo", url)
        >>> app = create_app(url)
        >>> [study["name"] for study in app.state.reader.studies()]
        ['demo']
        >>> app.state.reader.close()
    """
    _require_web()
    from dltune.dashboard._app import build_app
    from dltune.dashboard._reader import StudyReader

    reader = StudyReader(storage, poll_seconds=poll_seconds)
    return build_app(reader, allowed_hosts=allowed_hosts)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ValueError(f"host={host!r} is not an address of this machine: {exc}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(
                f"port={port!r}: {where} is already in use; stop what listens there or pick "
                "another port (e.g. --port 8081, or 0 for any free one)"
            ) from None
        raise ValueError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = host.strip("[]")
    if shown in ("", "0.0.0.0", "::"):
        shown = "127.0.0.1"  # every interface, this machine's included
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(
    storage: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    poll_seconds: float = 2.0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard of ``storage`` until interrupted (Ctrl-C or SIGTERM), then return.

    While it serves, a discovery file lets :func:`find_dashboard` (and ``dltune tune``)
    find it; the file is removed on exit.

    Args:
        storage: The storage URL, opened read-only.
        host: The address to listen on. Anything but a loopback address lets other machines
            read every study (there is no authentication): a warning is logged.
        port: The TCP port; 0 picks a free one.
        poll_seconds: How often open pages ask for changes.
        on_ready: Called with the dashboard's URL once it listens.

    Raises:
        ValueError: If the port is in use, the host unknown, or the storage URL bad.
        MissingDependencyError: Without ``pip install 'dltune[dashboard]'``.
        StorageError: If the database cannot be read.
    """
    if not isinstance(host, str) or not host:
        raise TypeError(f"host={host!r} must be an address such as '127.0.0.1'")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port={port!r} must be a TCP port number from 0 to 65535")
    loopback = is_loopback(host)
    app = create_app(
        storage, poll_seconds=poll_seconds, allowed_hosts=LOOPBACK_HOSTS if loopback else None
    )
    uvicorn = require("uvicorn", extra="dashboard", feature=_FEATURE)
    try:
        sock = _bind(host, port)
    except BaseException:
        app.state.reader.close()
        raise
    url = _url(host, sock)
    if not loopback:
        _logger.warning(
            "the dashboard listens on %s: anyone who can reach this address can read every "
            "study of %s (it has no authentication)",
            host,
            app.state.reader.storage.url,
        )
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    discovery = register(url, storage)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM, then raises it again; by default that
        # would end the process before the discovery file is removed.
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if on_ready is not None:
            on_ready(url)
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        _logger.info("the dashboard at %s stopped", url)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        unregister(discovery)
        sock.close()


class _Terminated(Exception):
    """SIGTERM arrived: stop serving and return."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated
