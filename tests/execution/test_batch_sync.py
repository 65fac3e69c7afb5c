"""Batch-synchronous runs (``optimize(batch_size=k)``): k workers replay a one-worker run."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import dltune
from dltune.execution import OptimizeJob
from dltune.execution._worker import BatchGate
from dltune.execution._worker import DeferInterrupts
from dltune.execution._worker import run_worker
from dltune.pruners import BasePruner
from dltune.pruners import MedianPruner
from dltune.samplers import AutoSampler
from dltune.samplers import BaseSampler
from dltune.samplers import CMAESSampler
from dltune.samplers import GPSampler
from dltune.samplers import QMCSampler
from dltune.samplers import RandomSampler
from dltune.samplers import TPESampler
from dltune.storage import InMemoryStorage
from dltune.storage import SQLStorage
from dltune.trial import INTERRUPTED
from dltune.trial import StudyDirection
from dltune.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))

import sync_objectives  # noqa: E402

N_TRIALS = 11  # not a multiple of the batch size: the last batch is partial
BATCH = 3

Record = dict[int, tuple[TrialState, dict[str, Any], list[float] | None, dict[int, float]]]


def _record(study: dltune.Study) -> Record:
    return {t.number: (t.state, t.params, t.values, t.intermediate_values) for t in study.trials}


def _run(
    storage: str | InMemoryStorage,
    sampler: BaseSampler,
    n_jobs: int,
    *,
    pruner: BasePruner | None = None,
    objective: Callable[[dltune.Trial], float] = sync_objectives.jittery,
    n_trials: int = N_TRIALS,
) -> Record:
    study = dltune.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner if pruner is not None else MedianPruner(n_startup_trials=2),
        seed=11,
    )
    study.optimize(objective, n_trials=n_trials, n_jobs=n_jobs, batch_size=BATCH)
    return _record(study)


def _run_in_threads(
    url: str,
    sampler: BaseSampler,
    n_workers: int,
    *,
    pruner: BasePruner | None = None,
    objective: Callable[[dltune.Trial], float] = sync_objectives.jittery,
    n_trials: int = N_TRIALS,
    batch_size: int = BATCH,
) -> dltune.Study:
    """Run ``n_workers`` worker loops in threads, each with its own storage connection and
    copies of the sampler and pruner, as processes (or Dask tasks) would have, at a fraction
    of the cost of starting processes."""
    study = dltune.create_study(
        storage=url,
        sampler=sampler,
        pruner=pruner if pruner is not None else MedianPruner(n_startup_trials=2),
        seed=11,
    )
    job = OptimizeJob.build(study, objective, n_trials, None, None, batch_size=batch_size)
    errors: list[BaseException] = []

    def work() -> None:
        mine = cloudpickle.loads(cloudpickle.dumps(job))
        storage = SQLStorage(url)
        try:
            run_worker(dltune.Study(mine.study_name, storage, mine.sampler, mine.pruner), mine)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            storage.close()

    threads = [threading.Thread(target=work) for _ in range(n_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return study


def test_three_processes_replay_each_other_and_one_worker(tmp_path: Path) -> None:
    def tpe() -> TPESampler:
        return TPESampler(seed=2, n_startup_trials=2 * BATCH)

    first = _run(f"sqlite:///{tmp_path / 'a.db'}", tpe(), 3)
    second = _run(f"sqlite:///{tmp_path / 'b.db'}", tpe(), 3)
    alone = _run(InMemoryStorage(), tpe(), 1)
    assert first == second == alone
    assert sorted(first) == list(range(N_TRIALS))
    states = {state for state, *_ in first.values()}
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states  # the pruner worked


def _cmaes() -> BaseSampler:
    pytest.importorskip("cmaes")
    # CMA-ES takes a generation's first popsize trials to finish: a batch size dividing the
    # population size (6 here) gives every generation exactly popsize trials, so no choice.
    return CMAESSampler(seed=0, n_startup_trials=BATCH, popsize=2 * BATCH)


@pytest.mark.parametrize(
    ("make", "n_trials"),
    [
        (lambda: RandomSampler(seed=0), 8),
        (lambda: QMCSampler(seed=0), 8),
        (lambda: GPSampler(seed=0, n_startup_trials=BATCH, n_candidates=64, n_restarts=2), 8),
        (lambda: AutoSampler(seed=0, n_trials=8), 8),
        (_cmaes, 5 * BATCH),  # the start-up batch, then two whole generations
    ],
    ids=["random", "qmc", "gp", "auto", "cmaes"],
)
def test_seeded_samplers_replay_with_three_workers(
    tmp_path: Path, make: Callable[[], BaseSampler], n_trials: int
) -> None:
    parallel = _run_in_threads(f"sqlite:///{tmp_path / 'k.db'}", make(), 3, n_trials=n_trials)
    assert _record(parallel) == _run(InMemoryStorage(), make(), 1, n_trials=n_trials)


def test_without_batches_a_proposal_depends_on_which_trials_finished_first() -> None:
    # Why batches are needed: the same seeded study, its trial 1 asked before or after
    # trial 0 finished. With batch_size=2 trial 1 would see neither.
    def second_params(finish_first: bool) -> dict[str, Any]:
        study = dltune.create_study(sampler=TPESampler(seed=0, n_startup_trials=1))
        first = study.ask()
        first.suggest_float("x", 0.0, 1.0)
        if finish_first:
            study.tell(first, 0.5)
        second = study.ask()
        second.suggest_float("x", 0.0, 1.0)
        return second.params

    assert second_params(finish_first=True) != second_params(finish_first=False)


@pytest.mark.parametrize("by_parity", [False, True], ids=["one-bracket", "two-brackets"])
def test_promotion_is_the_same_with_one_or_two_workers(tmp_path: Path, by_parity: bool) -> None:
    def run(n_workers: int) -> dict[int, Any]:
        study = _run_in_threads(
            f"sqlite:///{tmp_path / f'{n_workers}.db'}",
            RandomSampler(seed=0),
            n_workers,
            pruner=sync_objectives.PauseAtStepTwo(by_parity),
            objective=sync_objectives.resumable,
            n_trials=8,
            batch_size=2,
        )
        return {t.number: (t.resume_of, t.state, t.params) for t in study.trials}

    alone = run(1)
    assert alone == run(2)
    resumed = {n: r[0] for n, r in alone.items()}
    if by_parity:  # each bracket's paused trial is continued in the same batch
        assert resumed == {0: None, 1: None, 2: 0, 3: 1, 4: None, 5: None, 6: 4, 7: 5}
    else:  # one paused trial per batch; the batch's other trial samples (and pauses)
        assert resumed == {0: None, 1: None, 2: 0, 3: None, 4: 1, 5: None, 6: 3, 7: None}


# -- the gate ----------------------------------------------------------------------------


def _study_with_a_running_trial(storage: Any = None) -> tuple[dltune.Study, int]:
    """A study whose trial 0 another (silent) worker holds RUNNING."""
    study = dltune.create_study(storage=storage if storage is not None else InMemoryStorage())
    frozen = study._storage.claim_trial(study._study_id, worker="elsewhere:1")
    assert frozen is not None
    return study, frozen.trial_id


def test_the_gate_stops_waiting_at_the_deadline_or_when_asked() -> None:
    study, _ = _study_with_a_running_trial()
    assert not BatchGate(study, 1, time.time() + 0.05, lambda: False).wait_to_claim()
    assert not BatchGate(study, 1, None, lambda: True).wait_to_claim()
    assert BatchGate(study, 2, None, lambda: True).wait_to_claim()  # trial 1 is in batch 0


def test_a_claimed_trial_that_cannot_start_is_failed_as_interrupted() -> None:
    study, _ = _study_with_a_running_trial()
    mine = study._storage.claim_trial(study._study_id)
    assert mine is not None and mine.number == 1
    with DeferInterrupts() as interrupts:
        assert not BatchGate(study, 1, None, lambda: True).wait_claimed(mine, interrupts)
    stored = study._storage.get_trial(mine.trial_id)
    assert stored.state == TrialState.FAIL and stored.reason == INTERRUPTED


def test_the_gate_reaps_a_dead_workers_trial_instead_of_waiting_forever(tmp_path: Path) -> None:
    storage = SQLStorage(
        f"sqlite:///{tmp_path / 's.db'}", heartbeat_seconds=0.05, grace_seconds=0.2
    )
    study, trial_id = _study_with_a_running_trial(storage)
    assert BatchGate(study, 1, time.time() + 30, lambda: False).wait_to_claim()
    assert study._storage.get_trial(trial_id).reason == "stale"


def test_the_gate_never_waits_for_a_waiting_trial() -> None:
    study = dltune.create_study()
    study.enqueue_trial({"x": 0.5})  # trial 0, WAITING: only a claim starts it
    assert BatchGate(study, 1, None, lambda: True).wait_to_claim()


def test_the_view_of_a_batch_shows_the_earlier_batches_only() -> None:
    study = dltune.create_study(direction=StudyDirection.MAXIMIZE)
    for value in (1.0, 3.0, 3.0, 9.0):
        study.tell(study.ask(), value)
    trial = study._storage.claim_trial(study._study_id)
    assert trial is not None and trial.number == 4
    view = BatchGate(study, 3, None, lambda: False).view(trial)
    assert view.trials_before == 3
    assert [t.number for t in view.get_trials()] == [0, 1, 2]
    assert [t.number for t in view.get_trials((TrialState.RUNNING,))] == []
    best = view.best_trial
    assert best is not None and best.number == 1  # ties go to the earliest
    assert study._view.before(0).best_trial is None


def test_the_view_of_a_batch_has_no_best_trial_with_several_objectives() -> None:
    study = dltune.create_study(directions=["minimize", "maximize"])
    with pytest.raises(ValueError, match=r"the study has 2 objectives, so no single best trial"):
        study._view.before(1).best_trial  # noqa: B018


@pytest.mark.parametrize(
    ("number", "error", "match"),
    [
        (-1, ValueError, r"number=-1 must be >= 0"),
        ("3", TypeError, r"number='3' must be an int"),
        (True, TypeError, r"number=True must be an int"),
    ],
)
def test_cutting_a_view_checks_the_number(number: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        dltune.create_study()._view.before(number)


@pytest.mark.parametrize(
    ("batch_size", "error", "match"),
    [
        (0, ValueError, r"batch_size=0 must be >= 1 \(usually the number of workers\), or None"),
        (-2, ValueError, r"batch_size=-2 must be >= 1"),
        (True, TypeError, r"batch_size=True must be an int \(the trials per batch\) or None"),
        (2.0, TypeError, r"batch_size=2.0 must be an int"),
    ],
)
def test_optimize_checks_the_batch_size(
    batch_size: Any, error: type[Exception], match: str
) -> None:
    study = dltune.create_study()
    with pytest.raises(error, match=match):
        study.optimize(sync_objectives.jittery, n_trials=1, batch_size=batch_size)
    assert study.trials == []


def test_the_job_carries_the_batch_size() -> None:
    study = dltune.create_study()
    job = OptimizeJob.build(study, sync_objectives.jittery, 3, None, None, batch_size=4)
    assert job.batch_size == 4
    assert OptimizeJob.build(study, sync_objectives.jittery, 3, None, None).batch_size is None
