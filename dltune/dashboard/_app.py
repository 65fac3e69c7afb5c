"""The starlette app: one dispatcher over the request's raw path segments.

Imported only by :func:`dltune.dashboard.create_app`, after ``require`` found starlette.

Paths are split on ``/`` *before* percent-decoding, so a study name may hold any character
(``%2F`` included) and no decoded ``..`` ever reaches a lookup. Static files come from a
fixed table of names read from the package: no filesystem path is built from a request.
Every response carries the security headers of :data:`SECURITY_HEADERS`.

A study's name is one path segment, written by :func:`study_segment`: browsers drop the
segments ``.`` and ``..`` (even as ``%2E%2E``), so the names ``.`` and ``..`` (and, to keep
the scheme reversible, every name starting with ``~``) get a ``~`` in front.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import re
import threading
from collections.abc import AsyncIterator
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from dltune.dashboard._open import NotFoundError
from dltune.dashboard._open import ReaderClosedError
from dltune.dashboard._reader import StudyReader
from dltune.dashboard._rows import dumps
from dltune.dashboard._summary import Payload
from dltune.exceptions import StorageError

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PLOTS_CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "build_app",
    "static_names",
    "study_name_of",
    "study_segment",
]

_logger = logging.getLogger(__name__)

#: Scripts only from our own static files (no inline script, no eval); styles also inline:
#: plotly.js injects its stylesheet as a <style> element and sets style attributes on what it
#: draws (without 'unsafe-inline' its mode bar and parcoords axes come out broken). Images may
#: be data:/blob: URLs: plotly's "download plot as png" rasterises the SVG through them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: The study pages draw WebGL plots (parcoords always; scattergl for big studies), and
#: plotly's regl compiles their drawing code with ``new Function``: without 'unsafe-eval' they
#: show "WebGL is not supported" (checked in Chromium). Only these pages get it.
PLOTS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self';", "script-src 'self' 'unsafe-eval';"
)
_CSP = "content-security-policy"
SECURITY_HEADERS = (
    (_CSP, CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)
_JS = "text/javascript; charset=utf-8"
#: The only static files served: name -> media type.
_STATIC = {
    "app.js": _JS,
    "api.js": _JS,
    "dom.js": _JS,
    "format.js": _JS,
    "plots.js": _JS,
    "studies.js": _JS,
    "study.js": _JS,
    "table.js": _JS,
    "trial.js": _JS,
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "plotly.min.js": _JS,
}
_JSON = "application/json"
_NUMBER = re.compile(r"[0-9]{1,9}")
_GZIP_MIN_BYTES = 16_384
#: How long shutdown waits for the warm-up thread to stop (it stops before its next read or
#: plot); then the reader is closed anyway and a late read of the thread is refused.
_WARM_UP_JOIN_SECONDS = 2.0
_LOCAL_CLIENTS = ("127.0.0.1", "::1", "testclient")


def static_names() -> list[str]:
    """The names served under ``/static/``: nothing else is.

    Returns:
        The file names, sorted.

    Example:
        >>> "app.js" in static_names(), "index.html" in static_names()
        (True, False)
    """
    return sorted(_STATIC)


def study_segment(name: str) -> str:
    """A study name as its path segment says it, before percent-encoding (``api.js`` does the
    same): ``.``, ``..`` and names starting with ``~`` get a ``~`` in front, so no name is a
    dot segment a browser would drop.

    Args:
        name: The study's name.

    Returns:
        The segment's text; :func:`study_name_of` reads the name back.

    Example:
        >>> [study_segment(n) for n in (".", "..", "~x", "demo", "...")]
        ['~.', '~..', '~~x', 'demo', '...']
    """
    return "~" + name if name in (".", "..") or name.startswith("~") else name


def study_name_of(segment: str) -> str:
    """The study name a (percent-decoded) path segment stands for; see :func:`study_segment`.

    Args:
        segment: The segment, percent-decoded.

    Returns:
        The name.

    Example:
        >>> [study_name_of(s) for s in ("~.", "~..", "~~x", "demo")]
        ['.', '..', '~x', 'demo']
    """
    return segment[1:] if segment.startswith("~") else segment


def _plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


class _StaticFiles:
    """The whitelisted files, read once and kept in memory with their ETag."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Payload, str]] = {}

    def get(self, name: str) -> tuple[Payload, str] | None:
        """A whitelisted file's body and ETag; ``None`` for any other name."""
        return self.load(name) if name in _STATIC else None

    def load(self, name: str) -> tuple[Payload, str]:
        """A file of the package's ``static`` folder (or plotly.js) by its fixed name."""
        cached = self._cache.get(name)
        if cached is None:
            if name == "plotly.min.js":
                body = _plotly_js().read_bytes()
            else:
                body = (resources.files("dltune.dashboard") / "static" / name).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            cached = (Payload(body), etag)
            self._cache[name] = cached
        return cached


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response the app sends (errors included); a
    response that set its own (stricter or page-specific) policy keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in headers}
                headers += [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS if k not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_gzip(request: Request) -> bool:
    """Whether to compress: the client takes gzip and is not on this machine (over loopback,
    compressing takes longer than sending)."""
    if "gzip" not in request.headers.get("accept-encoding", "").lower():
        return False
    return request.client is None or request.client.host not in _LOCAL_CLIENTS


async def _respond(
    request: Request,
    content: bytes | Payload,
    media_type: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    payload = content if isinstance(content, Payload) else Payload(content)
    body = payload.body
    out = {"cache-control": "no-store", **(headers or {})}
    if len(body) >= _GZIP_MIN_BYTES:
        out["vary"] = "Accept-Encoding"
        if _wants_gzip(request):
            out["content-encoding"] = "gzip"
            body = await run_in_threadpool(payload.gzipped)
    return Response(body, status_code=status, media_type=media_type, headers=out)


async def _error(request: Request, status: int, message: str, **extra: Any) -> Response:
    if request.url.path.startswith("/api/"):
        return await _respond(request, dumps({"error": message, **extra}), _JSON, status=status)
    return await _respond(
        request, f"{status}: {message}\n".encode(), "text/plain; charset=utf-8", status=status
    )


def _segments(scope: Scope) -> list[str]:
    """The path's segments, each percent-decoded on its own (``%2F`` stays inside one)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"], safe="/")
    path = path.split("?", 1)[0]
    return [unquote(part, errors="replace") for part in path.split("/")[1:]]


class _Dispatcher:
    """Maps the segments of a GET path to a page, a static file or an API answer."""

    def __init__(self, reader: StudyReader) -> None:
        self.reader = reader
        self.static = _StaticFiles()

    async def handle(self, request: Request) -> Response:
        """Answer one GET (or HEAD) request."""
        parts = _segments(request.scope)
        try:
            return await self._route(request, parts)
        except NotFoundError as exc:
            return await _error(request, 404, str(exc), studies=exc.names)
        except (ValueError, TypeError) as exc:
            return await _error(request, 400, str(exc))
        except StorageError as exc:
            _logger.warning("the storage failed: %s", exc)
            return await _error(request, 503, f"the storage failed: {exc}")
        except ReaderClosedError as exc:
            return await _error(request, 503, str(exc))
        except Exception:
            _logger.exception("the dashboard failed on %s", request.url.path)
            return await _error(request, 500, "internal error; see the dashboard's log")

    async def _route(self, request: Request, parts: list[str]) -> Response:
        n = len(parts)
        if parts == [""]:
            return await self._page(request)
        if n == 2 and parts[0] == "static":
            return await self._static(request, parts[1])
        if n >= 2 and parts[0] == "studies" and parts[1]:
            name = study_name_of(parts[1])
            if n == 2:
                await run_in_threadpool(self.reader.study_id, name)
                return await self._page(request, csp=PLOTS_CONTENT_SECURITY_POLICY)
            if n == 4 and parts[2] == "trials" and _NUMBER.fullmatch(parts[3]):
                await run_in_threadpool(self.reader.trial, name, int(parts[3]))
                return await self._page(request)
        if n >= 2 and parts[0] == "api":
            return await self._api(request, parts[1:])
        return await _error(request, 404, "no such page")

    async def _page(self, request: Request, csp: str = CONTENT_SECURITY_POLICY) -> Response:
        payload, _etag = self.static.load("index.html")
        headers = {_CSP: csp}
        return await _respond(request, payload, "text/html; charset=utf-8", headers=headers)

    async def _static(self, request: Request, name: str) -> Response:
        found = self.static.get(name)
        if found is None:
            return await _error(request, 404, "no such file")
        payload, etag = found
        headers = {"etag": etag, "cache-control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(b"", status_code=304, headers=headers)
        return await _respond(request, payload, _STATIC[name], headers=headers)

    async def _api(self, request: Request, parts: list[str]) -> Response:
        reader = self.reader
        n = len(parts)
        query = request.query_params
        if parts == ["info"]:
            return await _respond(request, dumps(reader.info()), _JSON)
        if parts[0] != "studies":
            return await _error(request, 404, "no such API path")
        if n == 1:
            return await _respond(request, dumps(await run_in_threadpool(reader.studies)), _JSON)
        if not parts[1]:
            return await _error(request, 404, "no such API path")
        name = study_name_of(parts[1])
        if n == 2:
            return await _respond(
                request, dumps(await run_in_threadpool(reader.study, name)), _JSON
            )
        if n == 3 and parts[2] == "trials":
            body = await run_in_threadpool(reader.trials, name, query.get("after"))
            return await _respond(request, body, _JSON)
        if n == 3 and parts[2] == "trials.csv":
            text = await run_in_threadpool(
                reader.csv, name, state=query.get("state"), q=query.get("q")
            )
            filename = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "study"
            disposition = f"attachment; filename=\"{filename}-trials.csv\"; filename*=UTF-8''"
            disposition += quote(f"{name}-trials.csv", safe="")
            headers = {"content-disposition": disposition}
            return await _respond(
                request, text.encode(), "text/csv; charset=utf-8", headers=headers
            )
        if n == 3 and parts[2] == "plots":
            payload, key = await run_in_threadpool(reader.plots, name)
            headers = {
                "x-dltune-finished-trials": str(key.n_finished),
                "x-dltune-plots-key": key.encode(),
            }
            return await _respond(request, payload, _JSON, headers=headers)
        if n == 4 and parts[2] == "trials":
            if not _NUMBER.fullmatch(parts[3]):
                raise ValueError(f"trial number {parts[3]!r} is not a whole number >= 0")
            detail = await run_in_threadpool(reader.trial, name, int(parts[3]))
            return await _respond(request, dumps(detail), _JSON)
        return await _error(request, 404, "no such API path")


class _HostCheck:
    """Answers 400 unless the Host header names an allowed host (DNS-rebinding defence)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            host = ""
            for key, value in scope.get("headers", []):
                if key == b"host":
                    host = value.decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]") not in self.allowed:
                response = Response(
                    b"400: the Host header names a host this dashboard does not serve\n",
                    status_code=400,
                    media_type="text/plain; charset=utf-8",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(
    reader: StudyReader,
    *,
    allowed_hosts: Sequence[str] | None,
    warm_up_join_seconds: float = _WARM_UP_JOIN_SECONDS,
) -> Starlette:
    """The dashboard app over ``reader``; closes it on shutdown.

    Args:
        reader: The storage's reader; the app owns it from now on.
        allowed_hosts: Host header values answered (others get 400); ``None`` answers any.
        warm_up_join_seconds: How long shutdown waits for the warm-up thread to stop before
            closing the reader under it.

    Returns:
        The app. Its lifespan warms the reader up in a background thread and, on shutdown,
        stops that thread and closes the reader (even if the thread is still drawing).
    """
    dispatcher = _Dispatcher(reader)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        warming = threading.Thread(
            target=reader.warm_up, args=(stop,), name="dltune-dashboard-warm-up", daemon=True
        )
        warming.start()
        try:
            yield
        finally:
            stop.set()
            await run_in_threadpool(warming.join, warm_up_join_seconds)
            if warming.is_alive():
                _logger.info("closing the storage while the warm-up still draws plots")
            await run_in_threadpool(reader.close)

    app = Starlette(
        routes=[Route("/{path:path}", dispatcher.handle, methods=["GET"])],
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(_HostCheck, allowed_hosts=allowed_hosts),
        ],
        lifespan=lifespan,
    )
    app.state.reader = reader
    return app
