"""``dltune dashboard``: its errors in process, and a real served process."""

from __future__ import annotations

import inspect
import json
import logging
import signal
import socket
import sqlite3
import sys
import urllib.error
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


def status_for_host(url: str, host: str) -> int:
    """The status of GET /api/info sent with this Host header."""
    request = urllib.request.Request(url + "/api/info", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_other_hosts_get_a_loud_warning_and_only_known_names(study_db: str) -> None:
    served = start_dashboard(study_db, "--host", "0.0.0.0", "--allow-host", "Dash.Example")
    try:
        assert served.url.startswith("http://127.0.0.1:")  # the URL this machine can open
        port = served.url.rsplit(":", 1)[1]
        # This machine's names and the names given are answered, with or without the port.
        for host in ("127.0.0.1", f"localhost:{port}", socket.gethostname(), "dash.example"):
            assert status_for_host(served.url, host) == 200, host
        # Any other name is refused: a rebinding attacker's page sends its own.
        assert status_for_host(served.url, "attacker.example") == 400
        info = json.loads(get(served.url + "/api/info"))
        assert info["storage"] == "sqlite:///…/studies.db"  # no path for other machines
    finally:
        assert served.stop() == 0
    err = served.stderr
    assert "#  WARNING: listening on 0.0.0.0, not only on this machine (127.0.0.1)." in err
    assert "the dashboard has no authentication" in err
    assert "anyone who can reach this address can read every study" in err  # the log line


def test_any_host_only_when_asked_with_a_star(study_db: str) -> None:
    served = start_dashboard(study_db, "--host", "0.0.0.0", "--allow-host", "*")
    try:
        assert status_for_host(served.url, "anything.example") == 200
    finally:
        assert served.stop() == 0
    assert "the dashboard answers any Host header: no DNS-rebinding defence" in served.stderr


def test_another_loopback_address_is_served(study_db: str) -> None:
    # Linux routes all of 127.0.0.0/8 to the loopback interface (Debian names the machine
    # 127.0.1.1); the Host header then names that address.
    served = start_dashboard(study_db, "--host", "127.0.0.2")
    try:
        assert served.url.startswith("http://127.0.0.2:")
        assert json.loads(get(served.url + "/api/info"))["storage"] == study_db
        assert {s["name"] for s in json.loads(get(served.url + "/api/studies"))} >= {"demo"}
    finally:
        assert served.stop() == 0
    assert "WARNING" not in served.stderr


def test_an_unwritable_runtime_dir_is_logged_and_served_anyway(
    study_db: str, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("not a folder")
    served = start_dashboard(study_db, env={"DLTUNE_DASHBOARD_DIR": str(not_a_dir)})
    try:
        assert json.loads(get(served.url + "/api/info"))["poll_seconds"] == 2.0
        served.process.send_signal(signal.SIGTERM)
    finally:
        assert served.stop() == 0
    assert f"could not register the dashboard in {not_a_dir}, so dltune tune will not link" in (
        served.stderr
    )
    assert not_a_dir.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "allowed_hosts holds '', which is not a host name or address"),
        ("a b", "allowed_hosts holds 'a b', which is not a host name or address"),
        ("http://x/", "allowed_hosts holds 'http://x/', which is not a host name"),
    ],
)
def test_bad_allow_host(study_db: str, name: str, message: str) -> None:
    result = invoke("--storage", study_db, "--port", "0", "--allow-host", name)
    assert result.exit_code == 2
    assert f"Error: {message}" in result.output
