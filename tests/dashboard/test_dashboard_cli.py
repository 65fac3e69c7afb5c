"""``dltune dashboard``: its errors in process, and a real served process."""

from __future__ import annotations

import inspect
import json
import logging
import signal
import socket
import sqlite3
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result
from dashboard_helpers import start_dashboard

from dltune.cli import cli
from dltune.dashboard import find_dashboard
from dltune.dashboard import serve


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures the ``dltune`` logger; give other tests theirs back."""
    logger = logging.getLogger("dltune")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.delenv("DLTUNE_STORAGE", raising=False)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["dashboard", *args])


def test_missing_file_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = invoke("--storage", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert result.output.startswith(
        f"Error: --storage 'sqlite:///{missing}': there is no database file '{missing}'"
    )
    assert not missing.exists()


def test_bad_storage_urls(tmp_path: Path) -> None:
    result = invoke("--storage", "mysql://h/db")
    assert result.exit_code == 2
    assert "Error: url='mysql://h/db' uses the unsupported driver 'mysql'" in result.output
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    result = invoke("--storage", f"sqlite:///{empty}")
    assert result.exit_code == 2
    assert "holds no dltune studies yet (no dltune schema)" in result.output


def test_port_in_use(study_db: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("--storage", study_db, "--port", str(port))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: port={port}: 127.0.0.1:{port} is already in use; stop what listens there or "
        "pick another port (e.g. --port 8081, or 0 for any free one)"
    ]


def test_unknown_host(study_db: str) -> None:
    result = invoke("--storage", study_db, "--host", "no-such-host.invalid", "--port", "0")
    assert result.exit_code == 2
    assert "Error: host='no-such-host.invalid' is not an address of this machine" in (
        result.output
    )


def test_missing_extra_says_how_to_install(study_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    result = invoke("--storage", study_db, "--port", "0")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: the dashboard needs the package 'uvicorn', which is not installed; install "
        "it with: pip install 'dltune[dashboard]'"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--poll-seconds", "0"], "Invalid value for '--poll-seconds': 0.0 is not in the range"),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range"),
    ],
)
def test_option_ranges(study_db: str, args: list[str], message: str) -> None:
    result = invoke("--storage", study_db, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_binds_127_0_0_1_by_default() -> None:
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    command = cli.commands["dashboard"]
    assert next(p for p in command.params if p.name == "host").default == "127.0.0.1"
    assert "no authentication" in CliRunner().invoke(cli, ["dashboard", "--help"]).output


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


def raw_status(url: str, path: str) -> int:
    """The status of GET ``path`` sent byte for byte (no client normalises it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = conn.recv(64).decode("latin-1")
    return int(head.split()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serves_registers_and_stops_cleanly(
    study_db: str, _discovery_dir: Path, stop: signal.Signals
) -> None:
    served = start_dashboard(study_db, "--poll-seconds", "0.5")
    try:
        assert served.url.startswith("http://127.0.0.1:")
        studies = json.loads(get(served.url + "/api/studies"))
        assert {s["name"] for s in studies} >= {"demo", "maxi"}
        assert json.loads(get(served.url + "/api/info"))["poll_seconds"] == 0.5
        assert find_dashboard(study_db) == served.url + "/"
        assert [p.name for p in _discovery_dir.iterdir()][0].startswith("dashboard-")
        for probe in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "//x"):
            assert raw_status(served.url, probe) == 404
        served.process.send_signal(stop)
    finally:
        assert served.stop() == 0
    assert list(_discovery_dir.iterdir()) == []
    assert find_dashboard(study_db) is None


def test_other_hosts_get_a_loud_warning(study_db: str) -> None:
    served = start_dashboard(study_db, "--host", "0.0.0.0")
    try:
        assert served.url.startswith("http://127.0.0.1:")  # the URL this machine can open
        # Any Host header is answered: the names others use are not known.
        request = urllib.request.Request(
            served.url + "/api/info", headers={"Host": "dashboard.example"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    finally:
        assert served.stop() == 0
    err = served.stderr
    assert "#  WARNING: listening on 0.0.0.0, not only on this machine (127.0.0.1)." in err
    assert "the dashboard has no authentication" in err
    assert "anyone who can reach this address can read every study" in err  # the log line
