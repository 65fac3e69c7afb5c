"""Making the app and serving it with uvicorn on a socket we bind ourselves.

Binding first turns "port in use" into one clear error (uvicorn would log it and exit) and
lets ``port=0`` pick a free port whose URL is known before serving starts.

Every dashboard checks the Host header of each request against the names this machine goes
by (:func:`allowed_host_names`): a page of another site whose name an attacker re-points at
this machine (DNS rebinding) sends its own name and is refused. Only an explicit ``"*"``
answers any name.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dltune._imports import require
from dltune.dashboard._discovery import register
from dltune.dashboard._discovery import runtime_dir
from dltune.dashboard._discovery import unregister

if TYPE_CHECKING:
    from types import FrameType

    from starlette.applications import Starlette

__all__ = [
    "ANY_HOST",
    "LOOPBACK_HOSTS",
    "allowed_host_names",
    "create_app",
    "is_loopback",
    "serve",
]

_logger = logging.getLogger(__name__)

#: The Host header values every dashboard answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Passed in ``allowed_hosts``, answers any Host header (no DNS-rebinding defence).
ANY_HOST = "*"
_FEATURE = "the dashboard"
_WILDCARDS = ("", "0.0.0.0", "::")
_HOST_WITH_PORT = re.compile(r"([^:\[\]]+):[0-9]{1,5}")
_BRACKETED = re.compile(r"\[([^\[\]]+)\](?::[0-9]{1,5})?")
#: Addresses used only to ask the routing table which local address faces the network (a
#: UDP "connect" sends nothing).
_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def _require_web() -> None:
    require("starlette", extra="dashboard", feature=_FEATURE)
    require("uvicorn", extra="dashboard", feature=_FEATURE)
    require("plotly", extra="dashboard", feature=_FEATURE)  # serves its plotly.min.js


def create_app(
    storage: str,
    *,
    poll_seconds: float = 2.0,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
    is_public: bool = False,
) -> Starlette:
    """The dashboard as a starlette app over ``storage``, opened read-only.

    Args:
        storage: The storage URL (``sqlite:///path.db``, ``postgresql+psycopg://...``). A
            SQLite file must exist: it is never created.
        poll_seconds: How often open pages ask for new and changed trials.
        allowed_hosts: Host header values answered (others get 400, which stops DNS
            rebinding); ``None`` answers any. :func:`serve` passes
            :func:`allowed_host_names` of its address.
        is_public: Whether other machines can reach the app: ``/api/info`` then shows only
            the storage's scheme and file name, not its path or host.

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

    reader = StudyReader(storage, poll_seconds=poll_seconds, is_public=is_public)
    return build_app(reader, allowed_hosts=allowed_hosts)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine.

    Args:
        host: A host name or address (IPv6 with or without brackets).

    Returns:
        ``True`` for ``localhost`` and the loopback addresses (all of ``127.0.0.0/8``,
        ``::1``); ``False`` for anything else, wildcards included.

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


def _check_extra_hosts(allowed_hosts: Sequence[str]) -> list[str]:
    if isinstance(allowed_hosts, str) or not isinstance(allowed_hosts, Sequence):
        raise TypeError(
            f"allowed_hosts={allowed_hosts!r} must be a list of host names, such as "
            "['dashboard.example.org']"
        )
    names = []
    for name in allowed_hosts:
        if not isinstance(name, str) or not name or any(c.isspace() or c in "/@" for c in name):
            raise ValueError(
                f"allowed_hosts holds {name!r}, which is not a host name or address; give "
                "names such as 'dashboard.example.org' or '10.0.0.5', or '*' for any"
            )
        found = _HOST_WITH_PORT.fullmatch(name) or _BRACKETED.fullmatch(name)
        names.append((found.group(1) if found else name).lower())
    return names


def _machine_names() -> set[str]:
    names = set()
    for lookup in (socket.gethostname, socket.getfqdn):
        with contextlib.suppress(OSError, UnicodeError):
            names.add(lookup().lower())
    names.discard("")
    return names


def _machine_addresses() -> set[str]:
    """This machine's addresses that are cheap to find: its name's and the one facing the
    network."""
    found = set()
    with contextlib.suppress(OSError, UnicodeError):
        for *_rest, address in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(address[0]).split("%", 1)[0])
    for family, probe in _PROBES:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((probe, 9))
            found.add(str(udp.getsockname()[0]).split("%", 1)[0])
    return {a.lower() for a in found if a not in _WILDCARDS}


def allowed_host_names(host: str, allowed_hosts: Sequence[str] = ()) -> tuple[str, ...] | None:
    """The Host header values a dashboard listening on ``host`` answers to.

    The loopback names, the address listened on, this machine's name and fully qualified
    name, and, listening on every interface (``0.0.0.0``, ``::``), the machine's addresses
    that are cheap to find; plus ``allowed_hosts``. Ports do not matter.

    Args:
        host: The address listened on.
        allowed_hosts: More names to answer (names others reach this machine by, such as a
            DNS alias or a NAT address); ``"*"`` answers any name.

    Returns:
        The names, sorted and in lower case; ``None`` (any name) when ``allowed_hosts``
        holds ``"*"``.

    Raises:
        TypeError: If ``allowed_hosts`` is a str, not a list of them.
        ValueError: If an entry is not a host name or address.

    Example:
        >>> names = allowed_host_names("127.0.0.2", ["Dash.Example:8080"])
        >>> {"127.0.0.2", "localhost", "dash.example"} <= set(names)
        True
        >>> allowed_host_names("0.0.0.0", ["*"]) is None
        True
    """
    extra = _check_extra_hosts(allowed_hosts)
    if ANY_HOST in extra:
        return None
    bind = host.strip("[]").lower()
    names = {*LOOPBACK_HOSTS, *_machine_names(), *extra}
    if bind in _WILDCARDS:
        names |= _machine_addresses()
    else:
        names.add(bind)
    return tuple(sorted(names))


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
    allowed_hosts: Sequence[str] = (),
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard of ``storage`` until interrupted (Ctrl-C or SIGTERM), then return.

    While it serves, a discovery file lets :func:`find_dashboard` (and ``dltune tune``)
    find it; the file is removed on exit. If the file cannot be written, a warning is logged
    and the dashboard serves anyway.

    Args:
        storage: The storage URL, opened read-only.
        host: The address to listen on. Anything but a loopback address lets other machines
            read every study (there is no authentication): a warning is logged, and
            ``/api/info`` shows only the storage's scheme and file name.
        port: The TCP port; 0 picks a free one.
        poll_seconds: How often open pages ask for changes.
        allowed_hosts: Names other than this machine's own (see
            :func:`allowed_host_names`) that others reach it by; ``["*"]`` answers any
            Host header, which gives up the defence against DNS rebinding.
        on_ready: Called with the dashboard's URL once it listens.

    Raises:
        ValueError: If the port is in use, the host unknown, the storage URL bad, or an
            ``allowed_hosts`` entry not a host name.
        TypeError: If ``host`` is not a str or ``allowed_hosts`` is a str.
        MissingDependencyError: Without ``pip install 'dltune[dashboard]'``.
        StorageError: If the database cannot be read.
    """
    if not isinstance(host, str) or not host:
        raise TypeError(f"host={host!r} must be an address such as '127.0.0.1'")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port={port!r} must be a TCP port number from 0 to 65535")
    names = allowed_host_names(host, allowed_hosts)
    loopback = is_loopback(host)
    app = create_app(
        storage, poll_seconds=poll_seconds, allowed_hosts=names, is_public=not loopback
    )
    try:
        uvicorn = require("uvicorn", extra="dashboard", feature=_FEATURE)
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
    if names is None:
        _logger.warning("the dashboard answers any Host header: no DNS-rebinding defence")
    discovery = None
    previous = None
    try:
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        )
        try:
            discovery = register(url, storage)
        except OSError as exc:
            _logger.warning(
                "could not register the dashboard in %s, so dltune tune will not link it: %s",
                runtime_dir(),
                exc,
            )
        if threading.current_thread() is threading.main_thread():
            # uvicorn shuts down gracefully on SIGTERM, then raises it again; by default that
            # would end the process before the discovery file is removed.
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        if on_ready is not None:
            on_ready(url)
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        _logger.info("the dashboard at %s stopped", url)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if discovery is not None:
            unregister(discovery)
        sock.close()
        app.state.reader.close()  # done by the app's shutdown, unless it never started


class _Terminated(Exception):
    """SIGTERM arrived: stop serving and return."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated
