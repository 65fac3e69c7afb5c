"""Helpers of the dashboard tests: constants, the test client, a big generated study,
Chromium's path and a dashboard served by a real ``dltune dashboard`` process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from starlette.testclient import TestClient

__all__ = [
    "BASE_URL",
    "CHROMIUM_SKIP_VAR",
    "NASTY_NAME",
    "ServedDashboard",
    "chromium_path",
    "make_client",
    "start_dashboard",
]

BASE_URL = "http://127.0.0.1:8080"
NASTY_NAME = 'evil <script>alert("x")</script> & /slash'
CHROMIUM_VAR = "DLTUNE_TEST_CHROMIUM"
CHROMIUM_SKIP_VAR = "DLTUNE_TEST_CHROMIUM_SKIP_REASON"


def make_client(app: Any, **kwargs: Any) -> TestClient:
    """starlette's test client of ``app`` (base URL :data:`BASE_URL` unless given)."""
    with warnings.catch_warnings():
        # starlette 1.x asks for httpx2 instead of httpx (our dev dependency); the warning is
        # raised once, on import, and says nothing about our code.
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    kwargs.setdefault("base_url", BASE_URL)
    return TestClient(app, **kwargs)


def chromium_path() -> str | None:
    """The Chromium to drive: ``$DLTUNE_TEST_CHROMIUM``, else ``chromium`` on ``PATH``."""
    explicit = os.environ.get(CHROMIUM_VAR)
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


# -- a dashboard served by a real process --------------------------------------------------------


class ServedDashboard:
    """``dltune dashboard --port 0`` running in a child process."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url.rstrip("/")
        self.stderr = ""

    def stop(self) -> int:
        """SIGINT (Ctrl-C) it if it runs, collect its stderr and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=15)
        self.stderr += err or ""
        return self.process.returncode


def start_dashboard(url: str, *extra: str, env: dict[str, str] | None = None) -> ServedDashboard:
    """Start ``dltune dashboard --storage url --port 0`` and wait for the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dltune", "dashboard", "--storage", url, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"the dashboard printed {line!r}; stderr: {err}")
    return ServedDashboard(process, found.group(0))
