"""Reliability scenario 4: a Dask worker SIGKILLed mid-trial on a LocalCluster.

Its trial stays RUNNING until its heartbeat is older than the grace period, is then failed as
stale, and its retry runs; the client survives the lost task (rescheduled by Dask, or raised
as KilledWorker when Dask allows no failures) and the study ends with exactly its budget.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

import dltune
from dltune.execution import DaskExecutor
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.storage import SQLStorage
from dltune.trial import STALE
from dltune.trial import TrialState

pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client  # noqa: E402
from distributed import LocalCluster  # noqa: E402

# The objective lives in an importable module: Dask workers import it by path. The worker
# processes start with this process's sys.path (multiprocessing's spawn passes it on).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask_lost_objectives  # noqa: E402

N_TRIALS = 6
GRACE_SECONDS = 1.0


def _kill_a_running_trial(url: str, client: Client) -> int:
    """SIGKILL the Dask worker process of a trial that is mid-way; return the trial number."""
    reader = SQLStorage(url)
    study_id = reader.get_study_id_from_name("lost")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for trial in reader.get_all_trials(study_id, (TrialState.RUNNING,)):
            worker = str(trial.system_attrs.get("worker", ""))
            if trial.intermediate_values and worker.startswith("dask:"):
                pids = client.run(os.getpid)
                os.kill(pids[worker.removeprefix("dask:")], signal.SIGKILL)
                return trial.number
        time.sleep(0.05)
    raise AssertionError("no trial was seen running on a Dask worker")


def _cluster() -> LocalCluster:
    """Two single-threaded worker processes."""
    cluster: LocalCluster = LocalCluster(  # type: ignore[no-untyped-call]  # unannotated in distributed
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    return cluster


@pytest.mark.slow
@pytest.mark.parametrize(
    "allowed_failures",
    [3, 0],
    ids=["task-rescheduled-by-dask", "task-lost-as-killed-worker"],
)
def test_a_killed_dask_worker_fails_its_trial_as_stale_and_the_retry_completes(
    tmp_path: Path, allowed_failures: int
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = SQLStorage(url, heartbeat_seconds=0.2, grace_seconds=GRACE_SECONDS, max_retries=1)
    study = dltune.create_study(
        study_name="lost", storage=storage, sampler=RandomSampler(seed=0), pruner=NopPruner()
    )
    errors: list[BaseException] = []
    # The scheduler runs in this process and reads allowed-failures when it starts.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        _cluster() as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]  # unannotated in distributed
    ):

        def optimize() -> None:
            try:
                study.optimize(
                    dask_lost_objectives.slow_steps,
                    n_trials=N_TRIALS,
                    executor=DaskExecutor(client),
                )
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=optimize)
        thread.start()
        victim = _kill_a_running_trial(url, client)
        thread.join(timeout=90)
        assert not thread.is_alive(), "optimize did not return"
    if errors:
        raise errors[0]
    trials = SQLStorage(url).get_all_trials(study._study_id)
    by_number = {t.number: t for t in trials}
    assert len(by_number) == len(trials), "duplicate trial numbers"
    assert sorted(by_number) == list(range(len(trials)))
    killed = by_number[victim]
    assert killed.state == TrialState.FAIL
    assert killed.reason is not None and STALE in killed.reason
    retries = [t for t in trials if t.system_attrs.get("retry_of") == victim]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
