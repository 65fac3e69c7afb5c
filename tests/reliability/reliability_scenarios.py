"""The fault-injection scenarios 1-3: each starts real worker processes, injects its fault,
waits for the end and returns a report (the tests assert on it; the benchmark records it).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reliability_helpers import Census
from reliability_helpers import Fleet
from reliability_helpers import Watcher
from reliability_helpers import WorkerOptions
from reliability_helpers import census
from reliability_helpers import child_env
from reliability_helpers import create_study
from reliability_helpers import problem_lines
from reliability_helpers import wait_until
from reliability_pg import PgCluster

# -- scenario 1: SIGKILL a worker every few seconds -----------------------------------------------


@dataclass
class KillReport:
    """What happened in a kill-and-restart run.

    Attributes:
        n_workers: Worker slots.
        n_trials: The study's budget.
        kill_every: Seconds between kills.
        kills: When each SIGKILL came (seconds from the start) and how many trials the study
            held then; each victim was restarted at once.
        wall_seconds: From the first start to the last worker's exit.
        census: The study at the end, read after the grace period.
        exit_codes: Exit codes of the workers that were not killed.
        problems: Error lines in any worker's stderr.
    """

    n_workers: int
    n_trials: int
    kill_every: float
    kills: list[tuple[float, int]]
    wall_seconds: float
    census: Census
    exit_codes: list[int]
    problems: list[str]


def run_kill_scenario(
    options: WorkerOptions,
    n_workers: int,
    kill_every: float,
    log_dir: Path,
    timeout: float = 300.0,
) -> KillReport:
    """Run ``n_workers`` workers on a shared budget, SIGKILL one every ``kill_every`` s and
    restart it at once, until every worker has exited on its own. The first kill comes
    ``kill_every`` seconds after the first trial starts; the last one as the last wave of the
    budget is claimed (``n_trials - n_workers`` trials exist): the moment that tests whether
    the dead worker's retry still finds a worker to run it.

    The victims go round the slots, so each worker lives ``n_workers * kill_every`` seconds
    before its next death. After the last exit, the driver waits out the grace period and
    reads the study (reaping anything left RUNNING), as a later reader would.
    """
    create_study(options.url, options.study_name)
    fleet = Fleet(options, n_workers, log_dir)
    watcher = Watcher(options.url, options.study_name)
    started = time.monotonic()
    fleet.start_all()
    kills: list[tuple[float, int]] = []
    next_kill = math.inf  # the clock starts with the first trial
    victim, n_trials, clock_started, last_done = 0, 0, False, False
    try:
        while fleet.alive():
            now = time.monotonic()
            if now - started > timeout:
                raise TimeoutError(f"the workers did not finish within {timeout} s")
            n_trials = watcher.n_trials()
            if n_trials > 0 and not clock_started:
                next_kill, clock_started = now + kill_every, True
            is_last = not last_done and n_trials >= options.n_trials - n_workers
            if now >= next_kill or is_last:
                incarnation = fleet.current[victim % n_workers]
                victim += 1
                if incarnation.proc.poll() is None:
                    fleet.kill(incarnation)
                    fleet.start(incarnation.slot)
                    kills.append((round(now - started, 2), n_trials))
                next_kill = math.inf if is_last else next_kill + kill_every
                last_done = last_done or is_last
            time.sleep(0.05)
    finally:
        fleet.stop_all()
        watcher.close()
    wall = time.monotonic() - started
    time.sleep(options.grace_seconds + options.heartbeat_seconds)
    return KillReport(
        n_workers=n_workers,
        n_trials=options.n_trials,
        kill_every=kill_every,
        kills=kills,
        wall_seconds=wall,
        census=census(options.url, options.study_name),
        exit_codes=fleet.exit_codes(),
        problems=fleet.problems(),
    )


def run_last_trial_kill(options: WorkerOptions, n_workers: int, log_dir: Path) -> KillReport:
    """Run ``n_workers`` workers on a shared budget; once the whole budget is claimed, SIGKILL
    a worker that is running a trial and do not replace it. The survivors alone can run its
    retry, once its grace period has passed: with a grace period longer than the survivors'
    last trials, only survivors that wait for it do."""
    create_study(options.url, options.study_name)
    fleet = Fleet(options, n_workers, log_dir)
    watcher = Watcher(options.url, options.study_name)
    started = time.monotonic()
    fleet.start_all()
    kills = []
    try:
        wait_until(
            lambda: watcher.n_trials() >= options.n_trials or not fleet.alive(),
            120,
            "the last trial's claim",
        )
        by_pid = {i.proc.pid: i for i in fleet.alive()}
        victims = [by_pid[pid] for pid in watcher.running_pids() if pid in by_pid]
        if victims:
            fleet.kill(victims[0])
            kills.append((round(time.monotonic() - started, 2), watcher.n_trials()))
        wait_until(lambda: not fleet.alive(), 120, "the survivors' exit")
    finally:
        fleet.stop_all()
        watcher.close()
    wall = time.monotonic() - started
    # No wait for the grace period: survivors that waited for the dead worker's trial leave
    # nothing RUNNING; a RUNNING trial left now is the failure this scenario looks for.
    return KillReport(
        n_workers=n_workers,
        n_trials=options.n_trials,
        kill_every=math.inf,
        kills=kills,
        wall_seconds=wall,
        census=census(options.url, options.study_name),
        exit_codes=fleet.exit_codes(),
        problems=fleet.problems(),
    )


# -- scenario 2: many processes create the same study at once -------------------------------------


@dataclass
class RaceReport:
    """What happened when ``n_processes`` raced to create one study.

    Attributes:
        n_processes: Racers.
        n_trials_each: Trials each racer ran after creating (or loading) the study.
        study_ids: The study id each racer that finished got.
        exit_codes: Every racer's exit code.
        problems: Error lines in any racer's stderr.
        n_studies: Studies in the storage at the end.
        numbers: Trial numbers the racers reported, all together.
        census: The study at the end.
        spread_seconds: From the barrier opening to the last racer's exit.
        create_seconds: How long each racer's ``create_study`` call took.
        trials_seconds: How long each racer's trials took.
    """

    n_processes: int
    n_trials_each: int
    study_ids: list[int]
    exit_codes: list[int]
    problems: list[str]
    n_studies: int
    numbers: list[int]
    census: Census
    spread_seconds: float
    create_seconds: list[float]
    trials_seconds: list[float]


def run_create_race(
    url: str, study_name: str, n_processes: int, n_trials_each: int, log_dir: Path
) -> RaceReport:
    """Start ``n_processes`` racers on a storage that may not exist yet; once every one has
    imported dltune and waits at the barrier, open it: all call ``create_study(...,
    load_if_exists=True)`` at the same moment, then run ``n_trials_each`` trials each."""
    barrier = log_dir / "go"
    procs = []
    for i in range(n_processes):
        err_path = log_dir / f"racer-{i}.stderr"
        with err_path.open("wb") as err:
            cmd = [sys.executable, "-m", "reliability_worker", "create", url, study_name]
            cmd += [str(barrier), str(n_trials_each)]
            procs.append(
                (
                    subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=err, env=child_env(), cwd=log_dir
                    ),
                    err_path,
                )
            )
    try:
        for proc, _ in procs:
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready": imported, waiting at the barrier
        barrier.touch()
        opened = time.monotonic()
        outputs = [proc.communicate(timeout=120)[0].decode() for proc, _ in procs]
        spread = time.monotonic() - opened
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    summaries = [json.loads(out.splitlines()[-1]) for out in outputs if out.strip()]
    problems = [
        f"racer {i}: {line}"
        for i, (_, path) in enumerate(procs)
        for line in problem_lines(path.read_text(errors="replace"))
    ]
    from dltune.storage import SQLStorage

    storage = SQLStorage(url, read_only=True)
    try:
        n_studies = len(storage.get_all_studies())
    finally:
        storage.close()
    return RaceReport(
        n_processes=n_processes,
        n_trials_each=n_trials_each,
        study_ids=[int(s["study_id"]) for s in summaries],
        exit_codes=[proc.returncode for proc, _ in procs],
        problems=problems,
        n_studies=n_studies,
        numbers=sorted(n for s in summaries for n in s["numbers"]),
        census=census(url, study_name, reap=False),
        spread_seconds=spread,
        create_seconds=[float(s["create_seconds"]) for s in summaries],
        trials_seconds=[float(s["trials_seconds"]) for s in summaries],
    )


@dataclass
class RestartReport:
    """What happened when the PostgreSQL server was restarted mid-study.

    Attributes:
        n_workers: Worker processes.
        n_trials: The study's budget.
        trials_at_stop: Trials the study held when the server was stopped.
        down_seconds: From the start of the stop to the server accepting connections again.
        wall_seconds: From the first worker's start to the last one's exit.
        census: The study at the end, read after the grace period.
        exit_codes: Every worker's exit code.
        problems: Error lines in any worker's stderr.
    """

    n_workers: int
    n_trials: int
    trials_at_stop: int
    down_seconds: float
    wall_seconds: float
    census: Census
    exit_codes: list[int]
    problems: list[str]


def run_restart_scenario(
    cluster: PgCluster,
    options: WorkerOptions,
    n_workers: int,
    log_dir: Path,
    pause_seconds: float = 2.0,
    timeout: float = 240.0,
) -> RestartReport:
    """Run ``n_workers`` workers on a shared budget on the cluster; once a third of the budget
    exists, stop the server (fast mode), wait ``pause_seconds`` and start it again."""
    create_study(options.url, options.study_name)
    fleet = Fleet(options, n_workers, log_dir)
    watcher = Watcher(options.url, options.study_name)
    started = time.monotonic()
    fleet.start_all()
    try:
        wait_until(
            lambda: watcher.n_trials() >= options.n_trials // 3 or not fleet.alive(),
            timeout,
            "a third of the budget",
        )
        at_stop = watcher.n_trials()
        watcher.close()
        down = time.monotonic()
        cluster.stop()
        time.sleep(pause_seconds)
        cluster.start()
        down_seconds = time.monotonic() - down
        wait_until(lambda: not fleet.alive(), timeout, "the workers' exit")
    finally:
        fleet.stop_all()
        watcher.close()
    wall = time.monotonic() - started
    time.sleep(options.grace_seconds + options.heartbeat_seconds)
    return RestartReport(
        n_workers=n_workers,
        n_trials=options.n_trials,
        trials_at_stop=at_stop,
        down_seconds=down_seconds,
        wall_seconds=wall,
        census=census(options.url, options.study_name),
        exit_codes=[i.proc.returncode for i in fleet.all],
        problems=fleet.problems(),
    )
