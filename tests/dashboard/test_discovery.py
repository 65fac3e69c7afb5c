"""How ``dltune tune`` finds a running dashboard: the discovery files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dltune.dashboard import find_dashboard
from dltune.dashboard._discovery import normalise_storage_url
from dltune.dashboard._discovery import register
from dltune.dashboard._discovery import runtime_dir
from dltune.dashboard._discovery import unregister


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_registered_dashboard_is_found_until_unregistered(_discovery_dir: Path) -> None:
    url = "sqlite:////data/runs.db"
    path = register("http://127.0.0.1:8080/", url)
    assert path.parent == _discovery_dir
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {
        "pid": os.getpid(),
        "url": "http://127.0.0.1:8080/",
        "storage": url,
    }
    assert find_dashboard(url) == "http://127.0.0.1:8080/"
    assert find_dashboard("sqlite:////data/other.db") is None
    unregister(path)
    unregister(path)  # twice is fine
    assert find_dashboard(url) is None


def test_relative_sqlite_paths_match_absolute_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    register("http://127.0.0.1:9000/", "sqlite:///runs.db")
    assert find_dashboard(f"sqlite:///{tmp_path / 'runs.db'}") == "http://127.0.0.1:9000/"
    assert find_dashboard(f"sqlite:///{tmp_path}/./sub/../runs.db") == "http://127.0.0.1:9000/"


def test_a_dead_dashboards_file_is_ignored_and_removed(_discovery_dir: Path) -> None:
    path = register("http://127.0.0.1:8080/", "sqlite:////x.db", pid=dead_pid())
    assert find_dashboard("sqlite:////x.db") is None
    assert not path.exists()


def test_the_newest_live_dashboard_wins_and_junk_is_skipped(_discovery_dir: Path) -> None:
    old = register("http://127.0.0.1:1111/", "sqlite:////x.db")
    os.utime(old, (1, 1))
    register("http://127.0.0.1:2222/", "sqlite:////x.db")
    (_discovery_dir / "dashboard-junk.json").write_text("{not json")
    (_discovery_dir / "dashboard-list.json").write_text("[1, 2]")
    assert find_dashboard("sqlite:////x.db") == "http://127.0.0.1:2222/"


def test_postgres_passwords_never_reach_the_file(_discovery_dir: Path) -> None:
    path = register("http://127.0.0.1:8080/", "postgresql://me:s3cret@db:5432/runs")
    assert "s3cret" not in path.read_text()
    assert find_dashboard("postgresql+psycopg://me:other@db:5432/runs") == (
        "http://127.0.0.1:8080/"
    )
    assert normalise_storage_url("not a url") == "not a url"


def test_runtime_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DLTUNE_DASHBOARD_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert runtime_dir() == tmp_path / "a"
    monkeypatch.delenv("DLTUNE_DASHBOARD_DIR")
    assert runtime_dir() == tmp_path / "run" / "dltune-dashboards"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runtime_dir() == tmp_path / "home" / ".cache" / "dltune" / "dashboards"
    assert find_dashboard("sqlite:///x.db") is None  # no folder yet: nothing found


def test_find_dashboard_checks_its_argument() -> None:
    with pytest.raises(TypeError, match=r"storage_url=3 must be a str such as"):
        find_dashboard(3)  # type: ignore[arg-type]


def test_discovery_imports_no_web_framework() -> None:
    code = (
        "import sys, dltune.dashboard; "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@contextlib.contextmanager
def undeletable_files(folder: Path) -> Iterator[None]:
    """Files in ``folder`` cannot be removed inside: mode 0o500, and for root (whom modes do
    not stop) the immutable attribute; skips where neither works."""
    folder.chmod(0o500)
    immutable = False
    try:
        if _can_write(folder) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], check=False).returncode == 0
        if _can_write(folder):
            pytest.skip("cannot make a folder read-only here (root, and no chattr +i)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o700)


def _can_write(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_a_dead_dashboards_file_that_cannot_be_removed_is_skipped(_discovery_dir: Path) -> None:
    path = register("http://127.0.0.1:8080/", "sqlite:////x.db", pid=dead_pid())
    live = register("http://127.0.0.1:9090/", "sqlite:////x.db")
    os.utime(live, (1, 1))  # older: the dead one is looked at first
    with undeletable_files(_discovery_dir):
        assert find_dashboard("sqlite:////x.db") == "http://127.0.0.1:9090/"
        assert find_dashboard("sqlite:////y.db") is None
    assert path.exists()


def test_unregister_never_raises(tmp_path: Path) -> None:
    folder = tmp_path / "dashboard-1.json"
    folder.mkdir()  # unlink() of a folder fails with IsADirectoryError, an OSError
    unregister(folder)
    assert folder.is_dir()


@pytest.mark.parametrize(
    "record",
    [
        {"pid": -1, "url": "http://127.0.0.1:1/", "storage": "sqlite:////x.db"},
        {"pid": 0, "url": "http://127.0.0.1:1/", "storage": "sqlite:////x.db"},
        {"pid": 2**70, "url": "http://127.0.0.1:1/", "storage": "sqlite:////x.db"},
        {"pid": True, "url": "http://127.0.0.1:1/", "storage": "sqlite:////x.db"},
        {"pid": os.getpid(), "url": 5, "storage": "sqlite:////x.db"},
        {"pid": os.getpid(), "url": "http://127.0.0.1:1/", "storage": None},
    ],
)
def test_malformed_records_are_skipped(_discovery_dir: Path, record: dict[str, object]) -> None:
    _discovery_dir.mkdir(parents=True, exist_ok=True)
    (_discovery_dir / "dashboard-odd.json").write_text(json.dumps(record))
    assert find_dashboard("sqlite:////x.db") is None


def test_an_unreadable_file_is_skipped(_discovery_dir: Path) -> None:
    register("http://127.0.0.1:2222/", "sqlite:////x.db")
    unreadable = _discovery_dir / "dashboard-dir.json"
    unreadable.mkdir()  # reading it fails with IsADirectoryError
    os.utime(unreadable, (2**31, 2**31))  # the newest: read first
    assert find_dashboard("sqlite:////x.db") == "http://127.0.0.1:2222/"
