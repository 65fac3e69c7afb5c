"""The dashboard part of the analysis benchmark: the first render of a study page, timed.

``dltune dashboard`` runs as a subprocess over the benchmark's SQLite file, timed two ways:

- over HTTP: the requests a browser makes to show the study page (the page, every script and
  style it loads, following ES module imports and the scripts modules add by path, such as
  plotly.js, and the trials and plots APIs), made in order on one keep-alive connection, on a
  cold server and again warm;
- in a real browser: Debian's Chromium driven by Playwright (``$DLTUNE_TEST_CHROMIUM``, else
  ``chromium`` on ``PATH``; a browser is never downloaded) loads the study page in a fresh
  context (empty cache), once on a cold server (navigating as soon as it answers, before its
  background warm-up has read the study) and once warm (after the warm-up, when the plots API
  answers), on a new server each repeat. A script in the page checks every frame when the
  summary and the table's first rows are shown, and when each plot's figure is drawn.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from benchmarks._common import REPO_DIR
from benchmarks._common import _free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Longest wait for one page load's plots (a cold 10,000-trial study reads and draws first).
PAGE_TIMEOUT_SECONDS = 300.0
CHROMIUM_VAR = "DLTUNE_TEST_CHROMIUM"


@dataclass
class Request:
    """One timed GET."""

    path: str
    status: int
    seconds: float
    n_bytes: int


@dataclass
class PageLoad:
    """One load of the study page in Chromium: seconds from navigation start (NaN: never)."""

    server: str  # "cold" or "warm"
    usable: float = math.nan  # the summary and the table's first rows shown
    plotly_ready: float = math.nan  # plotly.js loaded and run (its load event; after the table)
    first_plot: float = math.nan
    all_plots: float = math.nan
    n_rows: int = 0
    plots: list[dict[str, Any]] = field(default_factory=list)  # {key, kind, webgl, seconds}
    n_plots: int = 0
    problems: list[str] = field(default_factory=list)
    #: Only for cold loads: seconds from the server's first answer to the navigation, and from
    #: it to the end of the server's warm-up (negative: the warm-up was over; NaN: unknown).
    navigated_after: float = math.nan
    warm_up_left: float = math.nan


@dataclass
class BrowserRun:
    """The study page's loads in Chromium, or why there are none."""

    loads: list[PageLoad] = field(default_factory=list)
    chromium: str = ""
    renderer: str = ""
    skipped: str | None = None

    def of(self, server: str) -> list[PageLoad]:
        """The loads on a ``"cold"`` or ``"warm"`` server."""
        return [load for load in self.loads if load.server == server]


@dataclass
class DashboardRun:
    """The first render's requests, cold and warm, or why they could not be made."""

    cold: list[Request] = field(default_factory=list)
    warm: list[list[Request]] = field(default_factory=list)
    start_seconds: float = math.nan
    unavailable: str | None = None
    browser: BrowserRun = field(default_factory=BrowserRun)

    @staticmethod
    def total(requests: list[Request]) -> float:
        return sum(r.seconds for r in requests)


# -- over HTTP -------------------------------------------------------------------------------

_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)
_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+\.(?:js|mjs|css))["']""")
#: A script or style a module adds by its absolute path (plotly.js, loaded after the table).
_LITERAL = re.compile(r"""["'](/[^"'\s]+\.(?:js|mjs|css))["']""")


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[Request, bytes]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    response = conn.getresponse()
    body = response.read()
    return Request(path, response.status, time.perf_counter() - started, len(body)), body


def _local(base: str, ref: str) -> str | None:
    """``ref`` resolved against ``base`` if it stays on the dashboard's host, else ``None``."""
    resolved = urllib.parse.urljoin(base, ref)
    parts = urllib.parse.urlsplit(resolved)
    if parts.scheme or parts.netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def first_render(port: int, study: str) -> list[Request]:
    """GET the study page, every script and style it loads (modules followed), and the APIs."""
    name = urllib.parse.quote(study, safe="")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PAGE_TIMEOUT_SECONDS)
    try:
        page_path = f"/studies/{name}"
        first, body = _get(conn, page_path)
        requests, seen = [first], {page_path}
        queue = [p for p in (_local(page_path, r) for r in _ASSET.findall(body.decode())) if p]
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            request, body = _get(conn, path)
            requests.append(request)
            if path.split("?")[0].endswith((".js", ".mjs")):
                text = body.decode(errors="replace")
                refs = _IMPORT.findall(text) + _LITERAL.findall(text)
                queue += [p for p in (_local(path, r) for r in refs) if p]
        for api in (f"/api/studies/{name}/trials", f"/api/studies/{name}/plots"):
            requests.append(_get(conn, api)[0])
        return requests
    finally:
        conn.close()


# -- the server ------------------------------------------------------------------------------

_WARM_UP_DONE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO \S+: read \d+ stud", re.M)


@dataclass
class _Server:
    proc: subprocess.Popen[str]
    port: int
    log_path: Path
    answered_seconds: float = math.nan  # from launch to the first answer
    answered_at: float = math.nan  # time.perf_counter() then

    def log_tail(self) -> str:
        return " ".join(self.log_path.read_text(errors="replace").split()[-80:])

    def warm_up_end(self, wait_seconds: float) -> datetime.datetime | None:
        """When the server logged the end of its warm-up (waiting for it), or ``None``."""
        deadline = time.monotonic() + wait_seconds
        while True:
            found = _WARM_UP_DONE.search(self.log_path.read_text(errors="replace"))
            if found:
                return datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return None
            time.sleep(0.1)


def _wait_until_up(proc: subprocess.Popen[str], port: int, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return time.perf_counter() - started
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"the dashboard did not answer on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def _served(url: str, work: Path, tag: str) -> Iterator[_Server]:
    """``dltune -v dashboard`` over ``url`` on a free port, answering; stopped afterwards."""
    port = _free_port()
    env = {**os.environ, "DLTUNE_DASHBOARD_DIR": str(work / "dashboards")}
    cmd = [sys.executable, "-m", "dltune", "-v", "dashboard", "--storage", url]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = work / f"dashboard-{tag}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=REPO_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
    server = _Server(proc, port, log_path)
    try:
        server.answered_seconds = _wait_until_up(proc, port, 60.0)
        server.answered_at = time.perf_counter()
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _plots_answer(port: int, study: str) -> None:
    """GET the study's plots API (what the warm-up prepares); raise unless it answers 200."""
    name = urllib.parse.quote(study, safe="")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PAGE_TIMEOUT_SECONDS)
    try:
        request = _get(conn, f"/api/studies/{name}/plots")[0]
    finally:
        conn.close()
    if request.status != 200:
        raise RuntimeError(f"{request.path} answered {request.status}")


def measure_http(url: str, study: str, work: Path, n_warm: int) -> DashboardRun:
    """The first render's requests on a new server: once as soon as it answers, then warm."""
    try:
        with _served(url, work, "http") as server:
            try:
                run = DashboardRun(start_seconds=server.answered_seconds)
                run.cold = first_render(server.port, study)
                run.warm = [first_render(server.port, study) for _ in range(n_warm)]
            except OSError as exc:
                return DashboardRun(unavailable=f"{exc}; its log ends: {server.log_tail()}")
    except RuntimeError as exc:
        tail = " ".join((work / "dashboard-http.log").read_text(errors="replace").split()[-80:])
        return DashboardRun(unavailable=f"{exc}; its log ends: {tail}")
    bad = [r for r in [*run.cold, *run.warm[0]] if r.status != 200]
    if bad:
        run.unavailable = "requests failed: " + ", ".join(f"{r.path} {r.status}" for r in bad)
    return run


# -- in Chromium -----------------------------------------------------------------------------

#: Runs in the page before its own scripts: checks every frame (requestAnimationFrame, so a
#: state counts once the page can paint it) when the summary and the table's first rows are
#: shown, and when each plot's figure holds a drawn svg or canvas.
_TIMER_JS = """
(() => {
  const t = { usable: null, plotly: null, firstPlot: null, allPlots: null, rows: 0, nPlots: 0 };
  t.plots = {};
  // a script's load event fires once it has run; it does not bubble, so listen on the way down
  document.addEventListener("load", (e) => {
    const src = e.target.src || "";
    if (t.plotly === null && src.endsWith("/plotly.min.js")) t.plotly = performance.now() / 1000;
  }, true);
  window.__dltuneBench = t;
  const shown = (n) => {
    const r = n.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const drawn = (plot) => [...plot.querySelectorAll(".plot-figure svg, .plot-figure canvas")]
    .some((n) => shown(n) && (n.tagName.toLowerCase() === "canvas" || n.childElementCount > 0));
  const tick = () => {
    const now = performance.now() / 1000;
    if (t.usable === null) {
      const summary = document.querySelector("#summary dl.summary");
      const rows = document.querySelectorAll("#trials tbody tr[data-number]");
      if (summary && shown(summary) && rows.length && shown(rows[0])) {
        t.usable = now;
        t.rows = rows.length;
      }
    }
    const plots = [...document.querySelectorAll("#plots .plot")];
    for (const p of plots) {
      if (!(p.dataset.key in t.plots) && drawn(p)) {
        const webgl = !!p.querySelector(".plot-figure canvas");
        t.plots[p.dataset.key] = { key: p.dataset.key, kind: p.dataset.kind, webgl, seconds: now };
      }
    }
    if (t.firstPlot === null && Object.keys(t.plots).length) t.firstPlot = now;
    if (plots.length && plots.every((p) => p.dataset.key in t.plots)) {
      t.allPlots = now;
      t.nPlots = plots.length;
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""
_WEBGL_RENDERER_JS = """() => {
  const gl = document.createElement("canvas").getContext("webgl");
  if (!gl) return "no WebGL";
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}"""


def chromium_path() -> str | None:
    """The Chromium to drive: ``$DLTUNE_TEST_CHROMIUM``, else ``chromium`` on ``PATH``."""
    return os.environ.get(CHROMIUM_VAR) or shutil.which("chromium")


def load_page(browser: Browser, address: str, server: str) -> PageLoad:
    """Load ``address`` in a fresh context (empty cache) until every plot is drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    load = PageLoad(server)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.add_init_script(_TIMER_JS)
        page.on("pageerror", lambda exc: load.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                load.problems.append(f"console: {msg.text}") if msg.type == "error" else None
            ),
        )
        page.goto(address, wait_until="commit", timeout=PAGE_TIMEOUT_SECONDS * 1000)
        try:
            page.wait_for_function(
                "window.__dltuneBench && window.__dltuneBench.allPlots !== null",
                timeout=PAGE_TIMEOUT_SECONDS * 1000,
            )
        except PlaywrightTimeoutError:
            load.problems.append(f"not every plot drawn within {PAGE_TIMEOUT_SECONDS:.0f} s")
        times = page.evaluate("window.__dltuneBench")
    finally:
        context.close()
    for name, key in (
        ("usable", "usable"),
        ("plotly_ready", "plotly"),
        ("first_plot", "firstPlot"),
        ("all_plots", "allPlots"),
    ):
        if times[key] is not None:
            setattr(load, name, float(times[key]))
    load.n_rows, load.n_plots = int(times["rows"]), int(times["nPlots"])
    load.plots = sorted(times["plots"].values(), key=lambda p: p["seconds"])
    return load


def _cold_then_warm(
    browser: Browser, url: str, study: str, work: Path, k: int, *, warm: bool
) -> list[PageLoad]:
    """On a new server: the page as soon as it answers, then (if ``warm``) after its warm-up."""
    with _served(url, work, f"browser-{k}") as server:
        address = f"http://127.0.0.1:{server.port}/studies/{urllib.parse.quote(study, safe='')}"
        navigated_after = time.perf_counter() - server.answered_at
        navigated = datetime.datetime.now()
        cold = load_page(browser, address, "cold")
        cold.navigated_after = navigated_after
        _plots_answer(server.port, study)
        ended = server.warm_up_end(wait_seconds=60.0)
        if ended is not None:
            cold.warm_up_left = (ended - navigated).total_seconds()
        else:
            cold.problems.append(f"the server never logged its warm-up's end: {server.log_tail()}")
        return [cold, load_page(browser, address, "warm")] if warm else [cold]


def measure_browser(
    url: str, study: str, work: Path, repeats: int, *, warm: bool = True
) -> BrowserRun:
    """``repeats`` cold (and if ``warm``, warm) loads of the study page in Chromium, each
    cold one on a new server."""
    executable = chromium_path()
    if executable is None:
        return BrowserRun(
            skipped=f"browser timing skipped: no chromium (${CHROMIUM_VAR} is not set and "
            "there is no 'chromium' on PATH; apt-get install chromium)"
        )
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        return BrowserRun(skipped=f"browser timing skipped: no playwright ({exc})")
    run = BrowserRun()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                run.chromium = f"Chromium {browser.version} ({executable}, headless)"
                blank = browser.new_page()
                run.renderer = str(blank.evaluate(_WEBGL_RENDERER_JS))
                blank.close()
                for k in range(repeats):
                    run.loads += _cold_then_warm(browser, url, study, work, k, warm=warm)
            finally:
                browser.close()
    except (RuntimeError, OSError, http.client.HTTPException, PlaywrightError) as exc:
        run.skipped = f"browser timing failed: {' '.join(str(exc).split())[-600:]}"
    return run


def measure_dashboard(
    url: str, study: str, work: Path, n_warm: int, *, browser_warm: bool = True
) -> DashboardRun:
    """Time the first render over HTTP (cold, ``n_warm`` warm), then ``n_warm`` times in
    Chromium, cold and (unless ``browser_warm`` is false, to be quick) warm."""
    run = measure_http(url, study, work, n_warm)
    run.browser = measure_browser(url, study, work, n_warm, warm=browser_warm)
    return run
