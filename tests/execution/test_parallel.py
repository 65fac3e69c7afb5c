"""Many worker processes on one study: numbering, budget, crashes, resumption, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import dltune
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.storage import BaseStorage
from dltune.storage import SQLStorage
from dltune.trial import TrialState

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import parallel_objectives  # noqa: E402

WORKER_SCRIPT = str(HERE / "parallel_objectives.py")


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _run_many(
    url: str, n_jobs: int, n_trials: int, capfd: pytest.CaptureFixture[str]
) -> dltune.Study:
    study = dltune.create_study(
        study_name="many", storage=url, sampler=RandomSampler(seed=0), pruner=NopPruner()
    )
    study.optimize(parallel_objectives.reporting, n_trials=n_trials, n_jobs=n_jobs)
    out, err = capfd.readouterr()
    assert "locked" not in (out + err).lower()
    assert "Traceback" not in err
    return study


def _check_exact(study: dltune.Study, n_trials: int) -> None:
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    n_values = sum(len(t.intermediate_values) for t in trials)
    assert n_values == n_trials * parallel_objectives.N_REPORTS
    assert len({(t.params["x"], t.params["k"]) for t in trials}) == n_trials


def test_processes_share_sqlite_study(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    study = _run_many(_sqlite_url(tmp_path), n_jobs=3, n_trials=60, capfd=capfd)
    _check_exact(study, 60)


@pytest.mark.slow
def test_8_processes_x_200_trials_sqlite(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    study = _run_many(_sqlite_url(tmp_path), n_jobs=8, n_trials=1600, capfd=capfd)
    _check_exact(study, 1600)


@pytest.mark.slow
@pytest.mark.postgres
def test_8_processes_x_200_trials_postgres(
    fresh_postgres_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    study = _run_many(fresh_postgres_url, n_jobs=8, n_trials=1600, capfd=capfd)
    _check_exact(study, 1600)


@pytest.mark.postgres
def test_processes_share_postgres_study(
    fresh_postgres_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    study = _run_many(fresh_postgres_url, n_jobs=3, n_trials=60, capfd=capfd)
    _check_exact(study, 60)


def _start_worker(url: str, n_trials: int, n_jobs: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, WORKER_SCRIPT, url, "crash", str(n_trials), str(n_jobs)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _storage(url: str) -> BaseStorage:
    return SQLStorage(url, heartbeat_seconds=0.2, grace_seconds=1.5, max_retries=2)


def _running(url: str) -> int:
    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name("crash")
    except dltune.StudyNotFoundError:
        return 0
    return storage.get_n_trials(study_id, (TrialState.RUNNING,))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkilled_worker_is_reaped_and_retried(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        _sqlite_url(tmp_path)
        if backend == "sqlite"
        else str(request.getfixturevalue("fresh_postgres_url"))
    )
    n_trials = 8
    victim = _start_worker(url, n_trials)
    _wait_until(lambda: _running(url) == 1)
    survivor = _start_worker(url, n_trials)
    time.sleep(0.3)
    victim.kill()  # SIGKILL mid-trial: no chance to clean up
    victim.wait()
    assert survivor.wait(timeout=120) == 0
    # A reader reaps too: anything still RUNNING is past its grace period by now.
    time.sleep(1.6)
    storage = _storage(url)
    study_id = storage.get_study_id_from_name("crash")
    trials = storage.get_all_trials(study_id)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == n_trials
    stale = [t for t in trials if t.state == TrialState.FAIL]
    assert stale and all(t.reason == "stale" for t in stale)
    retries = {t.system_attrs["retry_of"]: t for t in trials if "retry_of" in t.system_attrs}
    for failed in stale:
        assert failed.number in retries
        assert retries[failed.number].params == failed.params
    assert sorted(t.number for t in trials) == list(range(len(trials)))


def test_killed_driver_then_rerun_ends_with_exactly_n(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path)
    n_trials = 10
    driver = _start_worker(url, n_trials, n_jobs=2)
    storage = _storage(url)

    def half_done() -> bool:
        try:
            study_id = storage.get_study_id_from_name("crash")
        except dltune.StudyNotFoundError:
            return False
        return storage.get_n_trials(study_id, (TrialState.COMPLETE,)) >= n_trials // 2

    _wait_until(half_done)
    driver.kill()  # its worker processes follow it (SIGTERM from the kernel)
    driver.wait()
    _wait_until(lambda: _running(url) == 0, timeout=30)
    rerun = _start_worker(url, n_trials, n_jobs=2)
    assert rerun.wait(timeout=120) == 0
    study_id = storage.get_study_id_from_name("crash")
    trials = storage.get_all_trials(study_id)
    assert len(trials) == n_trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.reason in ("interrupted", "stale") for t in interrupted)


def test_ctrl_c_fails_running_trials_as_interrupted(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path)
    driver = _start_worker(url, 50, n_jobs=2)
    _wait_until(lambda: _running(url) == 2)
    # A terminal sends SIGINT to the whole foreground group: the driver and its workers.
    for pid in _children(driver.pid) + [driver.pid]:
        os.kill(pid, signal.SIGINT)
    driver.wait(timeout=60)
    storage = _storage(url)
    trials = storage.get_all_trials(storage.get_study_id_from_name("crash"))
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.reason == "interrupted"]
    assert len(interrupted) == 2
    assert all(t.state == TrialState.FAIL for t in interrupted)


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]
