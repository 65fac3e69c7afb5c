"""A private, restartable PostgreSQL cluster for the fault-injection suite and its benchmark.

The suite's shared test server (``DLTUNE_TEST_POSTGRES_URL``) must not be restarted under other
tests, so the restart scenario starts its own throwaway cluster: initdb and pg_ctl (as the
``postgres`` user when run as root), on 127.0.0.1 and a free port, in a temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return versions[-1] if versions else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 in a temporary directory, restartable.

    Raises:
        RuntimeError: Saying why no cluster could be started (see :func:`pg_unavailable`).
    """

    def __init__(self) -> None:
        reason = pg_unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self._pg_ctl = str(_pg_binary("pg_ctl"))
        self.tmp = Path(tempfile.mkdtemp(prefix="dltune-reliability-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.tmp, user="postgres")
        self.data = self.tmp / "data"
        self.port = _free_port()
        done = subprocess.run(
            _as_postgres(
                [str(_pg_binary("initdb")), "-D", str(self.data), "-U", "postgres"]
                + ["-A", "trust", "--no-sync"]
            ),
            capture_output=True,
            text=True,
            cwd=self.tmp,
        )
        if done.returncode != 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
        self.start()

    @property
    def url(self) -> str:
        """The URL of the cluster's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.tmp}"
        )
        cmd = [self._pg_ctl, "-D", str(self.data), "-l", str(self.tmp / "log"), "-o", options]
        done = subprocess.run(
            _as_postgres([*cmd, "-w", *args]), capture_output=True, text=True, cwd=self.tmp
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stderr.strip()[-500:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")

    def stop(self) -> None:
        """Stop the server in fast mode: sessions are cut, open transactions rolled back."""
        self._ctl("-m", "fast", "stop")

    def close(self) -> None:
        """Stop the server (if running) and delete the cluster."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def pg_unavailable() -> str | None:
    """Why no private PostgreSQL cluster can be started here, or ``None`` if one can."""
    missing = [name for name in ("initdb", "pg_ctl") if _pg_binary(name) is None]
    if missing:
        return (
            f"PostgreSQL server binaries {missing!r} not found on PATH or in "
            "/usr/lib/postgresql/*/bin (apt-get install postgresql)"
        )
    if importlib.util.find_spec("psycopg") is None:
        return "the psycopg driver is not installed (pip install 'dltune[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser (to run initdb as postgres) is missing"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
