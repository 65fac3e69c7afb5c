"""DaskExecutor on a real LocalCluster, and ObjectiveRef (how objectives reach workers)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dltune
from dltune.execution import DaskExecutor
from dltune.execution import ObjectiveRef
from dltune.execution._dask import _warn_if_sqlite_elsewhere
from dltune.execution._objective_ref import objective_ref
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.storage import InMemoryStorage
from dltune.storage import SQLStorage
from dltune.trial import INTERRUPTED
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client  # noqa: E402
from distributed import LocalCluster  # noqa: E402

HERE = Path(__file__).resolve().parent
# Dask workers import the objectives by path; the LocalCluster's worker processes start with
# this process's sys.path (multiprocessing's spawn passes it on).
sys.path.insert(0, str(HERE))

import dask_objectives  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """One cluster for the module: starting one costs seconds on 2 cores."""
    cluster = LocalCluster(  # type: ignore[no-untyped-call]  # unannotated in distributed
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as client:  # type: ignore[no-untyped-call]  # unannotated in distributed
        yield client


def _study(tmp_path: Path, name: str = "dask") -> dltune.Study:
    return dltune.create_study(
        study_name=name,
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        sampler=RandomSampler(seed=0),
        pruner=NopPruner(),
    )


def _nthreads(client: Client) -> dict[str, int]:
    """Worker address -> threads."""
    nthreads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]  # unannotated
    return nthreads


def _workers(client: Client) -> set[str]:
    return {f"dask:{address}" for address in _nthreads(client)}


def _assert_all_finished(study: dltune.Study) -> list[FrozenTrial]:
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    return trials


# -- running -------------------------------------------------------------------------------


def test_trials_run_as_dask_tasks_within_the_exact_budget(tmp_path: Path, client: Client) -> None:
    study = _study(tmp_path)
    study.optimize(dask_objectives.quadratic, n_trials=5, executor=DaskExecutor(client))
    assert len(study.trials) == 5
    # The budget is the study's total: a second call extends it, never overshoots.
    study.optimize(dask_objectives.quadratic, n_trials=9, executor=DaskExecutor(client))
    trials = _assert_all_finished(study)
    assert len(trials) == 9
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.value == pytest.approx(t.params["x"] ** 2) for t in trials)
    assert {t.system_attrs["worker"] for t in trials} <= _workers(client)


@pytest.mark.postgres
def test_a_postgresql_study_is_shared_by_the_workers(
    fresh_postgres_url: str, client: Client
) -> None:
    storage = SQLStorage(fresh_postgres_url)
    try:
        study = dltune.create_study(
            study_name="pg", storage=storage, sampler=RandomSampler(seed=0), pruner=NopPruner()
        )
        study.optimize(dask_objectives.quadratic, n_trials=6, executor=DaskExecutor(client))
        trials = _assert_all_finished(study)
    finally:
        storage.close()  # before the fixture drops the database
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert {t.system_attrs["worker"] for t in trials} <= _workers(client)


def test_an_address_connects_a_client_for_the_run_and_closes_it(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    scheduler = cluster.scheduler
    assert scheduler is not None  # a LocalCluster runs its scheduler in this process
    n_clients = len(scheduler.clients)
    study = _study(tmp_path)
    executor = DaskExecutor(address=cluster.scheduler_address)
    study.optimize(dask_objectives.quadratic, n_trials=3, executor=executor)
    assert [t.state for t in _assert_all_finished(study)] == [TrialState.COMPLETE] * 3
    assert all(t.system_attrs["worker"].startswith("dask:tcp://") for t in study.trials)
    deadline = time.monotonic() + 10
    while len(scheduler.clients) > n_clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(scheduler.clients) == n_clients


def test_an_objective_ref_builds_the_objective_on_the_workers(
    tmp_path: Path, client: Client
) -> None:
    study = _study(tmp_path)
    ref = ObjectiveRef("dask_objectives:make_shifted", 0.5)
    study.optimize(ref, n_trials=4, executor=DaskExecutor(client))
    trials = _assert_all_finished(study)
    assert all(t.value == pytest.approx((t.params["x"] - 0.5) ** 2 + 0.5) for t in trials)


def test_study_stop_in_a_callback_ends_the_run(tmp_path: Path, client: Client) -> None:
    study = _study(tmp_path)
    seen: list[int] = []

    def stop_after_two(study: dltune.Study, trial: FrozenTrial) -> None:
        seen.append(trial.number)
        if len(seen) == 2:
            study.stop()

    executor = DaskExecutor(client)
    study.optimize(
        dask_objectives.quadratic, n_trials=40, executor=executor, callbacks=[stop_after_two]
    )
    trials = _assert_all_finished(study)
    # The two, and at most one trial per worker thread that was running: all relayed.
    assert 2 <= len(trials) <= 2 + sum(_nthreads(client).values())
    assert sorted(seen) == [t.number for t in trials]


def test_an_objective_error_outside_catch_stops_the_study_and_is_raised(
    tmp_path: Path, client: Client
) -> None:
    study = _study(tmp_path)
    with pytest.raises(dask_objectives.Boom, match="boom in trial 2"):
        study.optimize(
            dask_objectives.fails_on_third, n_trials=30, catch=(), executor=DaskExecutor(client)
        )
    trials = _assert_all_finished(study)
    assert len(trials) < 30
    assert trials[2].state == TrialState.FAIL and trials[2].reason == "Boom: boom in trial 2"


def test_objective_errors_are_stored_and_the_study_goes_on_by_default(
    tmp_path: Path, client: Client
) -> None:
    study = _study(tmp_path)
    study.optimize(dask_objectives.fails_on_third, n_trials=5, executor=DaskExecutor(client))
    trials = _assert_all_finished(study)
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4
    assert trials[2].state == TrialState.FAIL


def test_the_timeout_stops_starting_trials(tmp_path: Path, client: Client) -> None:
    study = _study(tmp_path)
    executor = DaskExecutor(client)
    study.optimize(dask_objectives.slow_steps, n_trials=100, timeout=0.5, executor=executor)
    trials = _assert_all_finished(study)
    assert 1 <= len(trials) < 100
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_an_owned_local_cluster_runs_and_is_closed_after_an_error(tmp_path: Path) -> None:
    before = set(multiprocessing.active_children())
    study = _study(tmp_path)
    with pytest.raises(dask_objectives.Boom, match="boom in trial 2"):
        study.optimize(
            dask_objectives.fails_on_third,
            n_trials=8,
            catch=(),
            executor=DaskExecutor(n_workers=1),
        )
    trials = _assert_all_finished(study)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL]
    assert all(t.system_attrs["worker"].startswith("dask:tcp://") for t in trials)
    assert set(multiprocessing.active_children()) <= before  # its worker process is gone


@pytest.mark.slow
def test_ctrl_c_closes_the_owned_cluster_and_fails_its_running_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hang.db'}"
    script = str(HERE / "dask_objectives.py")
    # Its own process group, which Ctrl-C in a terminal signals as a whole (workers too).
    proc = subprocess.Popen(
        [sys.executable, script, url], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        running: list[FrozenTrial] = []
        while not running and time.monotonic() < deadline:
            time.sleep(0.2)
            if (tmp_path / "hang.db").exists():
                running = [t for t in _trials_of(url, "hang") if t.intermediate_values]
        assert running, "no trial started"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    trials = _trials_of(url, "hang")
    assert [(t.state, t.reason) for t in trials] == [(TrialState.FAIL, INTERRUPTED)]


def _trials_of(url: str, name: str) -> list[FrozenTrial]:
    try:
        return dltune.load_study(study_name=name, storage=url).trials
    except KeyError:  # not created yet
        return []


# -- refusals ------------------------------------------------------------------------------


def test_an_in_memory_storage_is_refused(client: Client) -> None:
    study = dltune.create_study(storage=InMemoryStorage())
    with pytest.raises(ValueError, match=r"storage=.* is in memory.*'postgresql\+psycopg"):
        study.optimize(dask_objectives.quadratic, n_trials=1, executor=DaskExecutor(client))


def test_a_lambda_is_refused_with_what_to_do(tmp_path: Path, client: Client) -> None:
    study = _study(tmp_path)
    with pytest.raises(TypeError, match=r"<lambda>.* is a lambda; .*ObjectiveRef\("):
        study.optimize(lambda t: 0.0, n_trials=1, executor=DaskExecutor(client))
    assert study.trials == []


def _closure() -> Any:
    def objective(trial: dltune.Trial) -> float:
        return 0.0

    return objective


def _copy(func: Any, module: str) -> Any:
    copied = types.FunctionType(func.__code__, func.__globals__, func.__name__)
    copied.__module__, copied.__qualname__ = module, func.__qualname__
    return copied


class _CallableObjective:
    def __call__(self, trial: dltune.Trial) -> float:
        return 0.0


@pytest.mark.parametrize(
    ("objective", "match"),
    [
        (_closure(), r"_closure.<locals>.objective.* is defined inside another function"),
        (_copy(dask_objectives.quadratic, "__main__"), r"is defined in __main__"),
        (_copy(dask_objectives.quadratic, "dask_objectives"), r"not importable as "),
        (_CallableObjective(), r"only a module-level function or an ObjectiveRef can"),
    ],
    ids=["closure", "main", "replaced", "callable-object"],
)
def test_objectives_that_cannot_be_imported_are_refused(objective: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        objective_ref(objective)


def test_a_module_level_function_travels_by_its_path() -> None:
    ref = objective_ref(dask_objectives.quadratic)
    assert ref.target == "dask_objectives:quadratic"
    assert ref.resolve() is dask_objectives.quadratic
    given = ObjectiveRef("m:f")
    assert objective_ref(given) is given


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"client": "tcp://127.0.0.1:8786"}, TypeError, r"client='tcp://.*' must be a "),
        ({"address": 8786}, TypeError, r"address=8786 must be a scheduler address string"),
        ({"address": " "}, ValueError, r"address=' ' is empty"),
        ({"n_workers": 0}, ValueError, r"n_workers=0 must be >= 1"),
        ({"n_workers": "2"}, TypeError, r"n_workers='2' must be an int or None"),
        ({"n_workers": True}, TypeError, r"n_workers=True must be an int or None"),
    ],
)
def test_bad_executor_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DaskExecutor(**kwargs)


def test_a_client_with_an_address_or_n_workers_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match=r"give client= or address='tcp://x:1', not both"):
        DaskExecutor(client, address="tcp://x:1")
    with pytest.raises(ValueError, match=r"n_workers=2 sizes the LocalCluster"):
        DaskExecutor(client, n_workers=2)
    with pytest.raises(ValueError, match=r"n_workers=2 sizes the LocalCluster"):
        DaskExecutor(address="tcp://x:1", n_workers=2)


def test_the_executor_shows_how_it_was_made(client: Client) -> None:
    assert repr(DaskExecutor(n_workers=3)) == "DaskExecutor(n_workers=3)"
    assert repr(DaskExecutor(address="tcp://h:1")) == "DaskExecutor(address='tcp://h:1')"
    assert repr(DaskExecutor(client)).startswith("DaskExecutor(client=<Client: ")


def test_an_unreachable_scheduler_is_named(tmp_path: Path) -> None:
    study = _study(tmp_path)
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(OSError, match=r"cannot reach the Dask scheduler at address='tcp://"),
    ):
        study.optimize(
            dask_objectives.quadratic, n_trials=1, executor=DaskExecutor(address=address)
        )


def test_sqlite_behind_a_remote_scheduler_logs_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = SQLStorage(f"sqlite:///{tmp_path / 'study.db'}")
    with caplog.at_level(logging.WARNING, logger="dltune.execution._dask"):
        _warn_if_sqlite_elsewhere(storage, "tcp://127.0.0.1:8786")
        _warn_if_sqlite_elsewhere(storage, "tcp://localhost:8786")
        _warn_if_sqlite_elsewhere(InMemoryStorage(), "tcp://10.1.2.3:8786")
        assert caplog.records == []
        _warn_if_sqlite_elsewhere(storage, "tcp://10.1.2.3:8786")
    (record,) = caplog.records
    assert "every worker must open the very same file" in record.getMessage()
    assert "PostgreSQL is recommended" in record.getMessage()


def test_importing_the_package_does_not_import_distributed() -> None:
    code = "import sys, dltune.execution; sys.exit('distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- ObjectiveRef --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (3, TypeError, r"target=3 must be a string 'package.module:factory'"),
        ("dask_objectives.make_shifted", ValueError, r"is not an import path; use 'package"),
        ("dask-objectives:make", ValueError, r"target='dask-objectives:make' is not an"),
        ("m:", ValueError, r"target='m:' is not an import path"),
    ],
)
def test_a_bad_target_is_refused(target: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ObjectiveRef(target)


def test_arguments_must_be_json_data() -> None:
    with pytest.raises(TypeError, match=r"ObjectiveRef args\[1\]=<object object at .* JSON"):
        ObjectiveRef("m:f", 1, object())
    with pytest.raises(TypeError, match=r"ObjectiveRef kwargs\['path'\]=PosixPath\("):
        ObjectiveRef("m:f", path=Path("/tmp"))


def test_resolving_names_what_is_missing() -> None:
    with pytest.raises(ImportError, match=r"cannot import module 'no_such_module_x'"):
        ObjectiveRef("no_such_module_x:f").resolve()
    with pytest.raises(ImportError, match=r"module 'dask_objectives' has no attribute 'nope'"):
        ObjectiveRef("dask_objectives:nope").resolve()
    with pytest.raises(TypeError, match=r"returned 3, which is not callable"):
        ObjectiveRef("dask_objectives:not_callable", 3).resolve()


def test_a_ref_is_data_and_runs_with_any_executor() -> None:
    ref = ObjectiveRef("dask_objectives:make_shifted", 1.0)
    study = dltune.create_study(sampler=RandomSampler(seed=1))
    study.optimize(ref, n_trials=3)
    assert all(t.value == pytest.approx((t.params["x"] - 1.0) ** 2 + 1.0) for t in study.trials)
    copy = pickle.loads(pickle.dumps(ref))
    assert copy == ref and copy is not ref
    assert copy != ObjectiveRef("dask_objectives:make_shifted", 2.0)
    assert repr(copy) == "ObjectiveRef('dask_objectives:make_shifted', 1.0)"


def test_the_status_says_when_the_cluster_has_no_workers(tmp_path: Path) -> None:
    import threading

    study = _study(tmp_path)
    with (
        LocalCluster(  # type: ignore[no-untyped-call]  # unannotated in distributed
            n_workers=0, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as empty,
        Client(empty) as client,  # type: ignore[no-untyped-call]
    ):
        executor = DaskExecutor(client)
        assert executor.status() is None  # not running
        run = threading.Thread(
            target=study.optimize,
            args=(dask_objectives.quadratic,),
            kwargs={"n_trials": 2, "executor": executor},
        )
        run.start()
        seen = None
        for _ in range(200):
            seen = executor.status()
            if seen is not None:
                break
            time.sleep(0.05)
        assert seen == "waiting for Dask workers: the scheduler has none"
        empty.scale(1)
        run.join(timeout=90)
        assert not run.is_alive()
    assert executor.status() is None
    assert len(_assert_all_finished(study)) == 2
