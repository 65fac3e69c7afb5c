"""Shared parts of the benchmarks: timers, machine facts, work dirs, PostgreSQL, RESULTS.md."""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "_work"
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
POSTGRES_URL_VARS = ("DLTUNE_BENCH_POSTGRES_URL", "DLTUNE_TEST_POSTGRES_URL")

_RESULTS_HEADER = """\
# dltune benchmarks

dltune and Optuna measured side by side on the same work, each section in one run of one command
(`python -m benchmarks` for overhead and throughput; `python -m benchmarks NAME` for the longer
ones: mnist1d (~35 min), blackbox (BBOB, ~40-80 min), divergence (~1 min), samplers-mnist1d
(~25 min), multifidelity (~75 min), analysis (~5 min); see `python -m benchmarks --help`). Each
section is rewritten by its benchmark and names its command; ratios, ranks and targets come first,
absolute numbers second. The machine is small and shared, so trust ratios over absolute times.
"""


# -- timing ----------------------------------------------------------------------------------


def children_cpu_seconds() -> float:
    """User + system CPU of all waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    """CPU of this process (all threads) plus that of its waited-for children."""
    return time.process_time() + children_cpu_seconds()


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``min–max`` of the values, for showing the noise next to a median."""
    if not values:
        return "n/a"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


# -- machine ---------------------------------------------------------------------------------


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


class LoadMonitor:
    """Samples the 1-minute load average from a thread while a benchmark runs."""

    def __init__(self, interval_seconds: float = 5.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._interval = interval_seconds
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        """Median and max of the samples so far."""
        return f"median {median(self.samples):.1f}, max {max(self.samples):.1f}"

    def stop(self) -> None:
        """End the sampling."""
        self._stop.set()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


_OFF_PATH = {"cli.py", "__main__.py"}


def source_fingerprint() -> str:
    """The git commit and a hash of dltune's measured source files (edits included)."""
    digest = hashlib.sha256()
    for path in sorted((REPO_DIR / "dltune").rglob("*.py")):
        if path.name in _OFF_PATH or {"cli", "testing"} & set(path.parts):
            continue  # not on the measured path; edited by others while benchmarks run
        digest.update(str(path.relative_to(REPO_DIR)).encode())
        digest.update(path.read_bytes())
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_DIR
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "dltune"], capture_output=True, text=True, cwd=REPO_DIR
    )
    state = " + uncommitted changes" if dirty.stdout.strip() else ""
    commit = done.stdout.strip() or "?"
    return f"commit {commit}{state}, dltune source sha256 {digest.hexdigest()[:12]}"


@dataclass
class RunInfo:
    """What a section says about how, when, where and on which code it was measured."""

    command: str
    started: datetime.datetime = field(default_factory=datetime.datetime.now)
    start_load: str = field(default_factory=load_average)
    start_source: str = field(default_factory=source_fingerprint)
    monitor: LoadMonitor = field(default_factory=LoadMonitor)

    def lines(self) -> list[str]:
        """Markdown bullet lines; stops the load sampling."""
        self.monitor.stop()
        source = source_fingerprint()
        changed = (
            ""
            if source == self.start_source
            else f" — **WARNING: dltune's source changed during the run** (was "
            f"{self.start_source})"
        )
        minutes = (datetime.datetime.now() - self.started).total_seconds() / 60
        return [
            f"- Command: `{self.command}`",
            f"- Date: {self.started.strftime('%Y-%m-%d %H:%M')} (local), took {minutes:.1f} min",
            f"- Machine: {os.cpu_count()} cores (nproc), {platform.machine()}, "
            f"{platform.system()} {platform.release()}; load average at start: "
            f"{self.start_load}; 1-minute load during the run: {self.monitor.summary()} (a "
            f"load above {os.cpu_count()} means other work competed for the cores)",
            f"- Versions: Python {platform.python_version()}, dltune {_version('dltune')}, "
            f"optuna {_version('optuna')}, SQLAlchemy {_version('SQLAlchemy')}, "
            f"psycopg {_version('psycopg')}",
            f"- dltune source: {source}{changed}",
        ]


# -- files -----------------------------------------------------------------------------------


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under ``benchmarks/_work`` (gitignored), removed afterwards."""
    WORK_DIR.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=WORK_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_url(path: Path) -> str:
    """A SQLAlchemy URL of a SQLite file (four slashes for the absolute path)."""
    return f"sqlite:///{path}"


# -- PostgreSQL ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


@dataclass
class PostgresServer:
    """A PostgreSQL server to benchmark on, handing out fresh databases.

    Attributes:
        base_url: A ``postgresql+psycopg://`` URL of an existing database on the server.
        description: Where the server comes from, for the results.
    """

    base_url: str
    description: str
    _stop: list[str] = field(default_factory=list)
    _tmp: str | None = None

    def _admin_connect_args(self) -> dict[str, object]:
        from sqlalchemy.engine import make_url

        url = make_url(self.base_url)
        return dict(url.translate_connect_args(username="user", database="dbname"))

    def settings(self) -> str:
        """The server version and the settings that decide durability."""
        import psycopg

        with psycopg.connect(**self._admin_connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
            values = []
            for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes"):
                row = conn.execute(f"SHOW {name}").fetchone()
                values.append(f"{name}={row[0] if row else '?'}")
        return ", ".join(values)

    def create_database(self, prefix: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(**self._admin_connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(self.base_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`."""
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        with psycopg.connect(**self._admin_connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def close(self) -> None:
        """Stop the throwaway cluster, if one was started."""
        if self._stop:
            subprocess.run(self._stop, capture_output=True, check=False)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_postgres() -> PostgresServer:
    """The server named by an environment variable, or a throwaway local cluster.

    The cluster keeps PostgreSQL's durability defaults (fsync, synchronous_commit): the
    comparison is of storages, not of how much durability one is willing to give up.

    Raises:
        RuntimeError: Saying why no server could be had.
    """
    for var in POSTGRES_URL_VARS:
        if os.environ.get(var):
            return PostgresServer(os.environ[var], f"the server at ${var}")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError(
            "no PostgreSQL: set DLTUNE_BENCH_POSTGRES_URL or install the server "
            "(apt-get install postgresql)"
        )
    tmp = tempfile.mkdtemp(prefix="dltune-bench-pg-")
    if os.geteuid() == 0:
        shutil.chown(tmp, user="postgres")
    data, port = os.path.join(tmp, "data"), _free_port()
    run = {"capture_output": True, "text": True, "cwd": tmp}
    # --no-sync only skips initdb's own fsync of the new files; the server's settings are
    # untouched.
    done = subprocess.run(
        _as_postgres([initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]), **run
    )
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={tmp}"
    start = [pg_ctl, "-D", data, "-l", os.path.join(tmp, "log"), "-o", options, "-w", "start"]
    done = subprocess.run(_as_postgres(start), **run)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-500:]}")
    return PostgresServer(
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        f"a throwaway cluster ({pg_ctl}) on 127.0.0.1 started by the benchmark",
        _stop=_as_postgres([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]),
        _tmp=tmp,
    )


# -- results ---------------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def verdict(ok: bool) -> str:
    """PASS or MISS, bold so a miss is not overlooked."""
    return "PASS" if ok else "**MISS**"


def write_section(name: str, markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in ``path``.

    The file is created with a header if missing; a missing section is appended.
    """
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else _RESULTS_HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def command_line() -> str:
    """How this process was started, as a command to paste."""
    args = " ".join(sys.argv[1:])
    return f"python -m benchmarks {args}".strip()
