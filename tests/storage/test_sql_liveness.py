"""What only the SQL storage promises about liveness: heartbeats and retries across storage
objects, pickling, forking, and many processes at once."""

from __future__ import annotations

import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from sql_helpers import FUTURE_REVISION
from sql_helpers import GRACE
from sql_helpers import HEARTBEAT
from sql_helpers import MIN
from sql_helpers import PAST_GRACE
from sql_helpers import Opener
from sql_helpers import claim
from sql_helpers import execute_raw
from sql_helpers import populate
from sql_helpers import snapshot
from sqlalchemy import make_url

from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import SchemaVersionError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import FloatDistribution
from dltune.storage import SQLStorage
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.trial import TrialState

# -- 6. heartbeats and retries -----------------------------------------------------------------


def test_each_trial_goes_stale_after_its_own_deadline(open_storage: Opener) -> None:
    # One timeline for several promises, so that they share a single wait.
    short = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE, max_retries=0)
    long = open_storage(max_retries=5)  # a 60 s grace
    short_reaper = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    reader = open_storage(read_only=True, heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    study_id = short.create_new_study([MIN], "liveness")
    stale = claim(short, study_id)  # number 0: its worker never beats again
    short.set_trial_intermediate_value(stale.trial_id, 0, 1.0)
    claim(long, study_id)  # number 1: a 60 s deadline
    handed = claim(short, study_id)  # number 2: beaten through a 60 s storage
    long.record_heartbeat(handed.trial_id)
    assert long.fail_stale_trials(study_id) == []
    assert short_reaper.fail_stale_trials(study_id) == []

    time.sleep(PAST_GRACE)
    running = [TrialState.RUNNING] * 3
    # A read-only storage never reaps, however often it reads.
    for _ in range(3):
        assert [t.state for t in reader.get_all_trials(study_id)] == running
        assert reader.get_n_trials(study_id, (TrialState.RUNNING,)) == 3
    with pytest.raises(ReadOnlyStorageError, match=r"was opened with read_only=True"):
        reader.fail_stale_trials(study_id)
    # A reaper with a long grace fails trial 0 at its own (short) deadline, without enqueueing
    # a retry: the claimer's max_retries=0 counts, not the reaper's 5.
    assert long.fail_stale_trials(study_id) == [0]
    # A reaper with a short grace leaves the trials whose deadlines are 60 s away.
    assert short_reaper.fail_stale_trials(study_id) == []
    assert long.fail_stale_trials(study_id) == []
    trials = short_reaper.get_all_trials(study_id)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    failed = trials[0]
    assert failed.system_attrs[REASON_KEY] == "stale"
    assert failed.datetime_complete is not None
    assert failed.intermediate_values == {0: 1.0}
    assert short.get_trial(stale.trial_id) == failed

    # The worker wakes up: its outcome is refused, saying why; its heartbeat is a no-op.
    why = (
        r"trial 0 is already FAIL and cannot be changed; it was failed as stale because its "
        r"worker sent no heartbeat within its grace period \(the earlier outcome stands\)"
    )
    tid = stale.trial_id
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_state_values(tid, TrialState.COMPLETE, [0.5])
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_param(tid, "x", 0.5, FloatDistribution(0.0, 1.0))
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_attr(tid, "k", 1, system=False)
    with pytest.raises(UpdateFinishedTrialError, match=why):
        short.set_trial_intermediate_value(tid, 1, 0.5)
    short.record_heartbeat(tid)
    assert short.fail_stale_trials(study_id) == []
    assert short.get_trial(tid) == failed
    assert short_reaper.get_n_trials(study_id) == 3


def test_heartbeats_keep_a_trial_alive(open_storage: Opener) -> None:
    worker = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    reaper = open_storage()
    study_id = worker.create_new_study([MIN], "beating")
    claimed = claim(worker, study_id)
    deadline = time.monotonic() + GRACE + 0.2
    while time.monotonic() < deadline:
        time.sleep(HEARTBEAT)
        worker.record_heartbeat(claimed.trial_id)
        assert reaper.fail_stale_trials(study_id) == []
    time.sleep(PAST_GRACE)
    # Readers reap too: a read through the reaper fails the trial now its heartbeats stopped.
    assert [t.state for t in reaper.get_all_trials(study_id)] == [TrialState.FAIL]


def test_stale_trial_is_retried_by_the_claimers_max_retries(open_storage: Opener) -> None:
    worker = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE, max_retries=2)
    reaper = open_storage(max_retries=0)
    study_id = worker.create_new_study([MIN], "retried")
    first = claim(worker, study_id)
    worker.set_trial_param(first.trial_id, "x", 0.25, FloatDistribution(0.0, 1.0))
    worker.set_trial_param(first.trial_id, "y", 0.75, FloatDistribution(0.0, 1.0))
    fixed = {"x": 0.25, "y": 0.75}

    for number in range(3):  # the trial, its retry, and the retry's retry
        time.sleep(PAST_GRACE)
        assert reaper.fail_stale_trials(study_id) == [number]
        trials = reaper.get_all_trials(study_id)
        assert trials[number].state == TrialState.FAIL
        assert trials[number].system_attrs[REASON_KEY] == "stale"
        if number == 2:
            assert len(trials) == 3, "a third retry was enqueued"
            break
        retry = trials[-1]
        assert (retry.number, retry.state) == (number + 1, TrialState.WAITING)
        assert retry.system_attrs[RETRY_OF_KEY] == number
        assert retry.system_attrs[FIXED_PARAMS_KEY] == fixed
        # Claimed with max_trials=1: a retry replaces a counted trial, so the budget allows it.
        claimed = worker.claim_trial(study_id, max_trials=1)
        assert claimed is not None
        assert (claimed.trial_id, claimed.state) == (retry.trial_id, TrialState.RUNNING)
        assert claimed.system_attrs[FIXED_PARAMS_KEY] == fixed

    assert [t.state for t in worker.get_all_trials(study_id)] == [TrialState.FAIL] * 3
    assert worker.claim_trial(study_id, max_trials=1) is None


# -- 7. pickling and processes -----------------------------------------------------------------


def test_pickled_copy_shares_the_database_and_options(open_storage: Opener) -> None:
    storage = open_storage(heartbeat_seconds=1.5, grace_seconds=9, max_retries=2)
    study_id, trial_id = populate(storage)
    copy = pickle.loads(pickle.dumps(storage))
    try:
        assert isinstance(copy, SQLStorage)
        assert (copy.heartbeat_seconds, copy.grace_seconds, copy.max_retries) == (1.5, 9.0, 2)
        assert copy.url == storage.url
        assert snapshot(copy) == snapshot(storage)
        copy.set_trial_state_values(trial_id, TrialState.COMPLETE, [0.5])
        assert storage.get_trial(trial_id).values == [0.5]
        best = storage.get_best_trial(study_id)
        assert best is not None
        assert best.trial_id == trial_id
    finally:
        copy.close()

    reader = pickle.loads(pickle.dumps(open_storage(read_only=True)))
    try:
        assert snapshot(reader) == snapshot(storage)
        with pytest.raises(ReadOnlyStorageError, match=r"was opened with read_only=True"):
            reader.create_new_study([MIN], "copy")
    finally:
        reader.close()


def test_storage_works_in_a_forked_child(open_storage: Opener, tmp_path: Path) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "forked")
    assert storage.claim_trial(study_id) is not None  # the parent's pool holds a connection
    report = tmp_path / "child-error.txt"
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            for _ in range(5):
                trial = storage.claim_trial(study_id)
                assert trial is not None
                storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
            storage.close()
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, report.read_text() if report.exists() else f"the child exited with {code}"
    # The parent's connections were not disturbed by the child.
    trials = storage.get_all_trials(study_id)
    assert [t.number for t in trials] == list(range(6))
    assert [t.state for t in trials] == [TrialState.RUNNING] + [TrialState.COMPLETE] * 5
    assert storage.claim_trial(study_id) is not None


_PICKLED_CHILD = """
import pickle
import sys

from dltune.trial import TrialState

storage = pickle.loads(sys.stdin.buffer.read())
study_id = storage.get_study_id_from_name("pickled")
trial = storage.claim_trial(study_id)
storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [float(trial.number)])
storage.close()
print(trial.number)
"""


@pytest.mark.parametrize(
    "url",
    ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
def test_storage_pickled_to_a_new_process(open_storage: Opener) -> None:
    storage = open_storage(heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    study_id = storage.create_new_study([MIN], "pickled")
    child = subprocess.run(
        [sys.executable, "-c", _PICKLED_CHILD],
        input=pickle.dumps(storage),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()
    assert child.stdout.decode().strip() == "0"
    (trial,) = storage.get_all_trials(study_id)
    assert (trial.state, trial.values) == (TrialState.COMPLETE, [0.0])


def test_storage_closed_in_one_thread_reconnects_in_every_thread(open_storage: Opener) -> None:
    # close() releases the connections; the next use, in any thread, opens new ones.
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "closed")
    jobs: queue.Queue[Callable[[], object] | None] = queue.Queue()
    results: queue.Queue[object] = queue.Queue()

    def serve() -> None:  # a long-lived thread, as in a pool of workers
        while (job := jobs.get()) is not None:
            try:
                results.put(job())
            except Exception as exc:  # handed to the test thread
                results.put(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        jobs.put(lambda: claim(storage, study_id).number)
        assert results.get(timeout=30) == 0
        storage.close()
        jobs.put(lambda: claim(storage, study_id).number)
        outcome = results.get(timeout=30)
    finally:
        jobs.put(None)
        thread.join()
    if isinstance(outcome, BaseException):
        raise AssertionError(f"the thread's next call failed: {outcome!r}") from outcome
    assert outcome == 1
    assert claim(storage, study_id).number == 2


@pytest.mark.postgres
def test_lost_postgres_connections_are_replaced(fresh_postgres_url: str) -> None:
    import psycopg

    storage = SQLStorage(fresh_postgres_url)
    libpq_url = make_url(fresh_postgres_url).set(drivername="postgresql")
    kill_others = (
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        study_id = storage.create_new_study([MIN], "reconnect")
        assert claim(storage, study_id).number == 0
        with psycopg.connect(libpq_url.render_as_string(hide_password=False)) as admin:
            admin.autocommit = True
            row = admin.execute(kill_others).fetchone()
            assert row is not None
            assert row[0] >= 1  # the storage's connection is gone
            assert claim(storage, study_id).number == 1  # a write, first
            admin.execute(kill_others)
            assert [t.number for t in storage.get_all_trials(study_id)] == [0, 1]  # a read
    finally:
        storage.close()


def test_storages_left_open_leave_no_open_connection(url: str) -> None:
    # Drivers warn (ResourceWarning) about a connection garbage-collected while open.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = SQLStorage(url)
        study_id, _ = populate(storage)
        thread = threading.Thread(target=storage.get_all_trials, args=(study_id,))
        thread.start()
        thread.join()
        del storage, thread
        gc.collect()
        execute_raw(url, f"UPDATE alembic_version SET version_num = '{FUTURE_REVISION}'")
        SQLStorage(url).get_all_studies()  # opened, used and dropped at once
        execute_raw(url, "INSERT INTO alembic_version (version_num) VALUES ('0042')")
        try:
            SQLStorage(url)
        except SchemaVersionError:
            pass
        else:
            raise AssertionError("a database with two version stamps was opened")
        gc.collect()
    assert [str(w.message) for w in caught] == []


# -- 8. many processes at once -----------------------------------------------------------------

_WORKER = """
import os
import sys
import time

import dltune

url, ready, go = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
study = dltune.create_study(study_name="s", storage=url, load_if_exists=True)
study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0) ** 2, n_trials=64)
"""
N_PROCESSES = 32
N_TRIALS = 64


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_32_processes_create_and_optimize_one_study(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{i}" for i in range(N_PROCESSES)]
    logs = [tmp_path / f"stderr-{i}.txt" for i in range(N_PROCESSES)]
    processes = []
    for ready, log in zip(readies, logs, strict=True):
        with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall a worker
            command = [sys.executable, "-c", _WORKER, url, str(ready), str(go)]
            processes.append(subprocess.Popen(command, stdout=stderr, stderr=stderr))
    try:
        deadline = time.monotonic() + 300
        while not all(ready.exists() for ready in readies):
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(p.poll() is None for p in processes), "a worker died before starting"
            time.sleep(0.05)
        go.touch()  # all 32 open the empty database at once
        for process in processes:
            process.wait(timeout=300)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for i, (process, log) in enumerate(zip(processes, logs, strict=True)):
        output = log.read_text()
        assert process.returncode == 0, f"worker {i} exited with {process.returncode}:\n{output}"
        assert "locked" not in output.lower(), output
        assert "Traceback" not in output, output
        assert output == "", f"worker {i} wrote:\n{output}"

    storage = SQLStorage(url, read_only=True)
    try:
        (study,) = storage.get_all_studies()
        assert study.study_name == "s"
        trials = storage.get_all_trials(study.study_id)
    finally:
        storage.close()
    assert [t.number for t in trials] == list(range(N_TRIALS))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
