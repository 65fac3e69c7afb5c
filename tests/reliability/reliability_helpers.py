"""Parts of the fault-injection scenarios (tests/reliability and benchmarks/reliability.py):
a fleet of ``dltune worker`` processes that can be killed and restarted, their stderr checked
for errors, and a census of the study at the end. Nothing here asserts.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Stderr text that betrays a storage or worker problem, whoever wrote it.
ERROR_PATTERN = re.compile(
    r"locked|busy|deadlock|serializ|OperationalError|StorageError|Traceback|Exception|"
    r"Error\b|error:",
    re.IGNORECASE,
)
#: Stderr lines that are expected under faults (a dead worker's trial reaped as stale).
EXPECTED_PATTERN = re.compile(r"failed as stale: its worker sent no heartbeat")


def child_env() -> dict[str, str]:
    """The environment of a worker process: this folder and our sys.path importable."""
    paths = [str(HERE), *(p for p in sys.path if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def problem_lines(text: str) -> list[str]:
    """The lines of a process's stderr that report an error (expected warnings excluded)."""
    return [
        line.strip()
        for line in text.splitlines()
        if ERROR_PATTERN.search(line) and not EXPECTED_PATTERN.search(line)
    ]


# -- the state of a study, read after the run -----------------------------------------------------


@dataclass
class Census:
    """What a study holds at the end of a scenario.

    Attributes:
        states: How many trials are in each state (by name).
        n_trials: How many trials in all.
        duplicate_numbers: Trial numbers stored more than once.
        missing_numbers: Numbers in ``0..max`` that no trial has.
        n_retries: Trials that retry a stale one (``retry_of`` set).
        n_stale: Trials failed as stale.
        n_budget: Trials that count against the budget (not retries, not WAITING).
        reasons: How many FAIL trials have each reason.
        unretried: Numbers of stale trials without a COMPLETE retry at the end of the chain.
        params_mismatch: Retries whose params differ from the trial they retry.
    """

    states: dict[str, int]
    n_trials: int
    duplicate_numbers: list[int]
    missing_numbers: list[int]
    n_retries: int
    n_stale: int
    n_budget: int
    reasons: dict[str, int]
    unretried: list[int] = field(default_factory=list)
    params_mismatch: list[int] = field(default_factory=list)

    def count(self, state: str) -> int:
        """How many trials are in ``state`` (a TrialState name)."""
        return self.states.get(state, 0)


def census(url: str, study_name: str, *, reap: bool = True) -> Census:
    """Read a study's trials and check numbering and retry chains.

    Args:
        url: The storage URL.
        study_name: The study.
        reap: Fail stale trials first, as any worker or writable reader would (each trial
            goes stale by its own deadline, whatever this reader's grace period).
    """
    from dltune.storage import SQLStorage
    from dltune.trial import TrialState

    storage = SQLStorage(url, read_only=not reap)
    try:
        study_id = storage.get_study_id_from_name(study_name)
        if reap:
            storage.fail_stale_trials(study_id)
        trials = storage.get_all_trials(study_id)
    finally:
        storage.close()
    numbers = collections.Counter(t.number for t in trials)
    top = max(numbers, default=-1)
    by_number = {t.number: t for t in trials}
    retry_of = {t.system_attrs["retry_of"]: t for t in trials if "retry_of" in t.system_attrs}
    unretried, mismatch = [], []
    for trial in trials:
        if trial.reason != "stale":
            continue
        chain = trial
        while chain.number in retry_of:
            nxt = retry_of[chain.number]
            # A trial killed before its first suggest has no params; its retry samples anew.
            ran = nxt.state != TrialState.WAITING
            if ran and {name: nxt.params.get(name) for name in trial.params} != trial.params:
                mismatch.append(nxt.number)
            chain = nxt
        if chain.state != TrialState.COMPLETE:
            unretried.append(trial.number)
    reasons = collections.Counter(str(t.reason) for t in trials if t.state == TrialState.FAIL)
    return Census(
        states=dict(collections.Counter(t.state.name for t in trials)),
        n_trials=len(trials),
        duplicate_numbers=sorted(n for n, c in numbers.items() if c > 1),
        missing_numbers=[n for n in range(top + 1) if n not in by_number],
        n_retries=len(retry_of),
        n_stale=sum(1 for t in trials if t.reason == "stale"),
        n_budget=sum(
            1 for t in trials if "retry_of" not in t.system_attrs and t.state != TrialState.WAITING
        ),
        reasons=dict(reasons),
        unretried=sorted(set(unretried)),
        params_mismatch=sorted(mismatch),
    )


# -- worker processes -----------------------------------------------------------------------------


@dataclass
class WorkerOptions:
    """How ``dltune worker`` processes join the study."""

    url: str
    study_name: str
    n_trials: int
    objective: str = "reliability_worker:sleepy"
    heartbeat_seconds: float = 0.5
    grace_seconds: float = 5.0
    max_retries: int = 10

    def command(self) -> list[str]:
        """The command line of one worker."""
        return [
            sys.executable,
            "-m",
            "dltune",
            "worker",
            "--study",
            self.study_name,
            "--storage",
            self.url,
            "--objective",
            self.objective,
            "--n-trials",
            str(self.n_trials),
            "--sampler",
            "random",
            "--pruner",
            "nop",
            "--max-retries",
            str(self.max_retries),
            "--heartbeat-seconds",
            str(self.heartbeat_seconds),
            "--grace-seconds",
            str(self.grace_seconds),
        ]


@dataclass
class Incarnation:
    """One process of a worker slot (a slot's worker is restarted after each kill)."""

    slot: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    started: float
    killed: bool = False

    def stderr(self) -> str:
        """What the process wrote to stderr."""
        return self.stderr_path.read_text(errors="replace")


class Fleet:
    """``n`` worker slots running ``dltune worker``, each restartable after a kill."""

    def __init__(self, options: WorkerOptions, n_workers: int, log_dir: Path) -> None:
        self.options = options
        self.n_workers = n_workers
        self.log_dir = log_dir
        self.all: list[Incarnation] = []
        self.current: dict[int, Incarnation] = {}

    def start(self, slot: int) -> Incarnation:
        """Start (or restart) the worker of ``slot``."""
        path = self.log_dir / f"worker-{slot}-{len(self.all)}.stderr"
        with path.open("wb") as err:
            proc = subprocess.Popen(
                self.options.command(),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=child_env(),
                cwd=self.log_dir,
            )
        incarnation = Incarnation(slot, proc, path, time.monotonic())
        self.all.append(incarnation)
        self.current[slot] = incarnation
        return incarnation

    def start_all(self) -> None:
        """Start every slot's first worker."""
        for slot in range(self.n_workers):
            self.start(slot)

    def alive(self) -> list[Incarnation]:
        """The incarnations still running."""
        return [i for i in self.current.values() if i.proc.poll() is None]

    def kill(self, incarnation: Incarnation) -> None:
        """SIGKILL a worker (no chance to clean up) and reap it."""
        incarnation.killed = True
        incarnation.proc.send_signal(signal.SIGKILL)
        incarnation.proc.wait()

    def stop_all(self) -> None:
        """Kill whatever still runs (after a failed or timed-out scenario)."""
        for incarnation in self.all:
            if incarnation.proc.poll() is None:
                incarnation.proc.kill()
                incarnation.proc.wait()

    def exit_codes(self) -> list[int]:
        """The exit codes of the incarnations that were not killed."""
        return [i.proc.returncode for i in self.all if not i.killed]

    def problems(self) -> list[str]:
        """Every error line of every incarnation's stderr, prefixed with its slot."""
        return [
            f"worker {i.slot} (pid {i.proc.pid}): {line}"
            for i in self.all
            for line in problem_lines(i.stderr())
        ]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms.

    Raises:
        TimeoutError: Naming ``what`` if it does not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s")
        time.sleep(0.05)


def create_study(url: str, study_name: str) -> None:
    """Create the scenario's study (minimize, no pruner) before the workers join it."""
    import dltune
    from dltune.storage import SQLStorage

    storage = SQLStorage(url)
    try:
        dltune.create_study(study_name=study_name, storage=storage)
    finally:
        storage.close()


class Watcher:
    """Watches the study from the driver, read-only (so it never reaps)."""

    def __init__(self, url: str, study_name: str) -> None:
        from dltune.storage import SQLStorage

        self._storage = SQLStorage(url, read_only=True)
        self._study_id = self._storage.get_study_id_from_name(study_name)
        self._last, self._n = 0.0, 0

    def n_trials(self) -> int:
        """How many trials the study holds (read at most every 0.2 s)."""
        if time.monotonic() - self._last >= 0.2:
            self._n = self._storage.get_n_trials(self._study_id)
            self._last = time.monotonic()
        return self._n

    def running_pids(self) -> list[int]:
        """The process ids of the workers running a trial now (from the trials' ``worker``)."""
        from dltune.trial import TrialState

        running = self._storage.get_all_trials(self._study_id, (TrialState.RUNNING,))
        return [int(str(t.system_attrs["worker"]).rsplit(":", 1)[1]) for t in running]

    def close(self) -> None:
        self._storage.close()
