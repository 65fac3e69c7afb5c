"""Study.optimize: budgets, processes, callbacks, stop, timeout, and objectives that misbehave."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dltune
from dltune import Trial
from dltune import TrialPruned
from dltune.execution import LocalExecutor
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.testing import CountedStorage
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

COMPLETE, PRUNED, FAIL = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL


def _study(backend: CountedStorage, name: str = "s", **kwargs: Any) -> dltune.Study:
    kwargs.setdefault("sampler", RandomSampler(seed=0))
    return dltune.create_study(name, storage=backend.storage, **kwargs)


def _x(trial: Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0)


# -- optimize ------------------------------------------------------------------------------


def _sleepy(seconds: float) -> Callable[[Trial], float]:
    def objective(trial: Trial) -> float:
        time.sleep(seconds)
        return trial.suggest_float("x", 0, 1)

    return objective


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_callbacks_and_stop(n_jobs: int) -> None:
    study = dltune.create_study(seed=0)
    seen: list[FrozenTrial] = []

    def stop_after_three(study: dltune.Study, trial: FrozenTrial) -> None:
        seen.append(trial)
        if len(seen) == 3:
            study.stop()

    study.optimize(_sleepy(0.05), n_trials=50, n_jobs=n_jobs, callbacks=[stop_after_three])
    trials = study.trials
    assert all(t.state == COMPLETE for t in trials)
    if n_jobs == 1:
        assert len(trials) == 3
    else:  # the other worker's running trial finishes; it may have just started another
        assert 3 <= len(trials) <= 5
    assert sorted(t.number for t in seen) == [t.number for t in trials]
    assert all(t.state == COMPLETE for t in seen)
    study.optimize(_sleepy(0.0), n_trials=len(trials) + 2)  # stop() does not stick
    assert len(study.trials) == len(trials) + 2


def test_timeout() -> None:
    study = dltune.create_study(seed=0)
    started = time.monotonic()
    study.optimize(_sleepy(0.05), timeout=0.3)
    elapsed = time.monotonic() - started
    assert 1 <= len(study.trials) <= 8  # about 6; fewer on a loaded machine
    assert elapsed < 0.3 + 2.0  # no trial starts after the timeout
    assert all(t.state == COMPLETE for t in study.trials)


def _outcome_objective(trial: Trial) -> Any:
    """Trial n behaves as case n % len(OUTCOMES)."""
    x = trial.suggest_float("x", 0, 1)
    case = OUTCOMES[trial.number % len(OUTCOMES)][0]
    if case == "raise":
        raise RuntimeError(f"boom {trial.number}")
    if case == "report-nan":
        trial.report(math.nan, 0)
        return 0.25
    if case == "prune-nan":
        trial.report(math.nan, 0)
        if trial.should_prune():
            raise TrialPruned()
        return 0.0
    return {
        "value": 0.5 + x,
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "none": None,
        "string": "abc",
        "bool": False,
        "list": [0.1, 0.2],
        "object": object(),
    }[case]


OUTCOMES: list[tuple[str, TrialState, str | None]] = [
    ("value", COMPLETE, None),
    ("nan", FAIL, "the objective returned nan"),
    ("inf", COMPLETE, None),
    ("none", FAIL, "the objective returned None, not a number"),
    ("string", FAIL, "the objective returned 'abc' of type str, not a number"),
    ("bool", FAIL, "the objective returned False, not a number"),
    ("raise", FAIL, "RuntimeError: boom"),
    ("report-nan", COMPLETE, None),
    ("prune-nan", PRUNED, None),
    ("list", FAIL, "the objective returned 2 value(s) [0.1, 0.2]; the study has 1 objective(s)"),
    ("object", FAIL, "of type object, not a number"),
    ("-inf", COMPLETE, None),
]


@pytest.mark.parametrize(
    ("case", "state", "reason"), OUTCOMES, ids=[case for case, _, _ in OUTCOMES]
)
def test_objective_outcome_is_stored(
    case: str, state: TrialState, reason: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    study = dltune.create_study(seed=0)
    for _ in range([c for c, _, _ in OUTCOMES].index(case)):
        study.tell(study.ask(), state=PRUNED)  # move on to the trial number of this case
    with caplog.at_level(logging.WARNING, logger="dltune"):
        study.optimize(_outcome_objective, n_trials=len(study.trials) + 1)
    trial = study.trials[-1]
    assert trial.state == state
    if reason is None:
        assert trial.reason is None
    else:
        assert trial.reason is not None
        assert reason in trial.reason
    if state == FAIL:
        assert trial.values is None
        failures = [r for r in caplog.records if f"trial {trial.number} failed" in r.getMessage()]
        assert len(failures) == 1, "a failed trial is logged once"
        assert "'x'" in failures[0].getMessage(), "with its params"
    if case == "report-nan":
        assert math.isnan(trial.intermediate_values[0])
        assert trial.values == [0.25]


def test_objective_returning_a_numeric_string_fails() -> None:
    # check_value: "NaN, None, strings and other objects are not [usable]", "0.1" included.
    study = dltune.create_study(seed=0)
    study.optimize(lambda trial: "0.1", n_trials=1)
    trial = study.trials[0]
    assert (trial.state, trial.values) == (FAIL, None)
    assert trial.reason == "the objective returned '0.1' of type str, not a number"


def test_study_goes_on_and_best_trial_stays_right(backend: CountedStorage) -> None:
    study = _study(backend, pruner=NopPruner())
    n = 2 * len(OUTCOMES)
    study.optimize(_outcome_objective, n_trials=n)
    trials = study.trials
    assert len(trials) == n
    states = [t.state for t in trials]
    assert states == [OUTCOMES[i % len(OUTCOMES)][1] for i in range(n)]
    complete = [t for t in trials if t.state == COMPLETE]
    assert study.best_value == -math.inf
    assert study.best_trial.number == min(t.number for t in complete if t.values == [-math.inf])


def test_catch_reraises_other_exceptions_after_storing_them(backend: CountedStorage) -> None:
    def objective(trial: Trial) -> float:
        _x(trial)
        if trial.number == 0:
            raise ValueError("tolerated")
        raise KeyError("fatal")

    study = _study(backend)
    with pytest.raises(KeyError, match=r"fatal"):
        study.optimize(objective, n_trials=5, catch=(ValueError,))
    trials = study.trials
    assert [t.state for t in trials] == [FAIL, FAIL]
    assert trials[0].reason == "ValueError: tolerated"
    assert trials[1].reason == "KeyError: 'fatal'"


def test_n_trials_is_the_study_budget(backend: CountedStorage) -> None:
    study = _study(backend)
    study.optimize(_x, n_trials=0)
    assert study.trials == []
    study.optimize(_x, n_trials=5)
    study.optimize(_x, n_trials=5)
    assert len(study.trials) == 5
    study.optimize(_x, n_trials=8)
    assert [t.number for t in study.trials] == list(range(8))
    study.optimize(_x, n_trials=3)  # fewer than the study holds: nothing to do
    assert len(study.trials) == 8


def test_enqueued_trials_count_once_they_start(backend: CountedStorage) -> None:
    study = _study(backend)
    for x in (0.1, 0.2, 0.3, 0.4):
        study.enqueue_trial({"x": x})
    study.optimize(_x, n_trials=3)
    states = [t.state for t in study.trials]
    assert states == [COMPLETE, COMPLETE, COMPLETE, TrialState.WAITING]
    assert [t.params.get("x") for t in study.trials[:3]] == [0.1, 0.2, 0.3]


def test_resume_after_an_interruption(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"

    def objective(trial: Trial) -> float:
        x = _x(trial)
        if trial.number == 2 and not trial.study.user_attrs.get("resumed"):
            raise KeyboardInterrupt
        return x

    study = dltune.create_study("resume", storage=url, seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=6)
    assert [t.state for t in study.trials] == [COMPLETE, COMPLETE, FAIL]
    assert study.trials[2].reason == "interrupted"
    # "Rerunning the same command" in a new process: a new storage on the same file.
    again = dltune.create_study("resume", storage=url, seed=0, load_if_exists=True)
    again.set_user_attr("resumed", True)
    again.optimize(objective, n_trials=6)
    trials = again.trials
    assert [t.number for t in trials] == list(range(6))
    assert [t.state for t in trials] == [COMPLETE, COMPLETE, FAIL] + [COMPLETE] * 3
    again.optimize(objective, n_trials=6)
    assert len(again.trials) == 6


@pytest.mark.parametrize("storage", [pytest.param("memory", marks=pytest.mark.slow), "sqlite"])
def test_two_workers_run_exactly_the_budget(storage: str, tmp_path: Path) -> None:
    url = None if storage == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"
    study = dltune.create_study(storage=url, seed=0)
    study.optimize(_sleepy(0.01), n_trials=10, n_jobs=2)
    trials = study.trials
    assert [t.number for t in trials] == list(range(10))
    assert all(t.state == COMPLETE for t in trials)


def test_multi_objective_optimize(backend: CountedStorage) -> None:
    study = _study(backend, directions=["minimize", "maximize"])

    def objective(trial: Trial) -> tuple[float, float]:
        x = _x(trial)
        return x**2, x

    study.optimize(objective, n_trials=6)
    assert all(t.state == COMPLETE and t.values is not None for t in study.trials)
    assert {t.number for t in study.best_trials} <= set(range(6))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"func": None}, TypeError, r"func=None is not callable; pass objective\(trial\)"),
        ({"func": "objective"}, TypeError, r"func='objective' is not callable"),
        ({"n_trials": -1}, ValueError, r"n_trials=-1 must be >= 0"),
        ({"n_trials": 1.5}, TypeError, r"n_trials=1\.5 must be an int or None"),
        ({"n_trials": True}, TypeError, r"n_trials=True must be an int or None"),
        ({"timeout": 0}, ValueError, r"timeout=0 must be > 0 seconds"),
        ({"timeout": -1.0}, ValueError, r"timeout=-1\.0 must be > 0 seconds"),
        ({"timeout": math.nan}, ValueError, r"timeout=nan must be > 0 seconds"),
        ({"timeout": "10"}, TypeError, r"timeout='10' must be a number of seconds or None"),
        ({"n_jobs": 0}, ValueError, r"n_jobs=0 must be >= 1, or -1 for one per CPU core"),
        ({"n_jobs": -2}, ValueError, r"n_jobs=-2 must be >= 1"),
        ({"n_jobs": 1.5}, TypeError, r"n_jobs=1\.5 must be an int"),
        ({"n_jobs": "2"}, TypeError, r"n_jobs='2' must be an int"),
        ({"callbacks": [1]}, TypeError, r"callback 1 is not callable"),
        ({"catch": [int]}, TypeError, r"catch holds <class 'int'>, which is not an Exception"),
        ({"catch": ["ValueError"]}, TypeError, r"catch holds 'ValueError'"),
        (
            {"n_jobs": 2, "executor": LocalExecutor(1)},
            ValueError,
            r"n_jobs=2 cannot be combined with executor=LocalExecutor\(n_workers=1\)",
        ),
    ],
)
def test_invalid_optimize_writes_nothing(
    backend: CountedStorage, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    study = _study(backend)
    before = backend.rows()
    arguments: dict[str, Any] = {"func": _x, "n_trials": 3, **kwargs}
    with pytest.raises(error, match=match):
        study.optimize(**arguments)
    assert backend.rows() == before
