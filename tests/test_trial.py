"""The define-by-run handle: suggest_*, report, should_prune, attributes."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import pytest

import dltune
from dltune import Trial
from dltune import TrialPruned
from dltune.exceptions import UpdateFinishedTrialError
from dltune.pruners import BasePruner
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.testing import CountedStorage
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.view import StudyView


def _study(backend: CountedStorage, **kwargs: Any) -> dltune.Study:
    return dltune.create_study(storage=backend.storage, sampler=RandomSampler(seed=0), **kwargs)


# -- suggest -------------------------------------------------------------------------------


def test_suggest_every_kind(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    x = trial.suggest_float("x", -1.0, 1.0)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    q = trial.suggest_float("q", 0.0, 1.0, step=0.25)
    n = trial.suggest_int("n", 1, 10)
    width = trial.suggest_int("width", 16, 256, log=True)
    k = trial.suggest_int("k", 0, 30, step=10)
    opt = trial.suggest_categorical("opt", ["sgd", "adam"])
    flag = trial.suggest_categorical("flag", [None, True, 1])
    assert type(x) is float and -1.0 <= x <= 1.0
    assert type(lr) is float and 1e-5 <= lr <= 1e-1
    assert q in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert type(n) is int and 1 <= n <= 10
    assert type(width) is int and 16 <= width <= 256
    assert k in (0, 10, 20, 30)
    assert opt in ("sgd", "adam")
    assert flag in (None, True, 1)
    expected = {
        "x": x,
        "lr": lr,
        "q": q,
        "n": n,
        "width": width,
        "k": k,
        "opt": opt,
        "flag": flag,
    }
    assert trial.params == expected
    assert trial.distributions["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert trial.distributions["k"] == IntDistribution(0, 30, step=10)
    stored = study.trials[0]
    assert stored.params == expected
    assert type(stored.params["flag"]) is type(flag)
    assert stored.distributions == trial.distributions


def test_suggest_accepts_any_sequence_of_choices(backend: CountedStorage) -> None:
    trial = _study(backend).ask()
    assert trial.suggest_categorical("a", ("x",)) == "x"
    assert trial.suggest_categorical("b", ["y"]) == "y"


def test_same_name_twice_returns_the_same_value(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    calls: list[Callable[[], Any]] = [
        lambda: trial.suggest_float("x", 0.0, 1.0),
        lambda: trial.suggest_float("lr", 1e-4, 1.0, log=True),
        lambda: trial.suggest_int("n", 0, 1000),
        lambda: trial.suggest_categorical("c", ["a", "b", "c", "d"]),
    ]
    for call in calls:
        assert call() == call() == call()
    assert len(study.trials[0].params) == 4


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (lambda t: t.suggest_float("p", 0, 1), lambda t: t.suggest_float("p", 0, 2)),
        (lambda t: t.suggest_float("p", 0, 1), lambda t: t.suggest_int("p", 0, 1)),
        (lambda t: t.suggest_int("p", 1, 8), lambda t: t.suggest_int("p", 1, 8, log=True)),
        (
            lambda t: t.suggest_categorical("p", ["a", "b"]),
            lambda t: t.suggest_categorical("p", ["b", "a"]),
        ),
        (
            lambda t: t.suggest_categorical("p", [1, 2]),
            lambda t: t.suggest_categorical("p", [True, 2]),
        ),
    ],
    ids=["range", "kind", "log", "order", "bool-vs-int"],
)
def test_same_name_with_another_distribution_in_one_trial(
    backend: CountedStorage, first: Any, second: Any
) -> None:
    study = _study(backend)
    trial = study.ask()
    value = first(trial)
    before = backend.rows()
    with pytest.raises(ValueError, match=r"parameter 'p' was already suggested in this trial as"):
        second(trial)
    assert backend.rows() == before
    assert trial.params == {"p": value}
    assert study.trials[0].params == {"p": value}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (lambda t: t.suggest_float("p", 0, 1), lambda t: t.suggest_int("p", 0, 1)),
        (lambda t: t.suggest_float("p", 0.1, 1), lambda t: t.suggest_float("p", 0.1, 1, log=True)),
        (
            lambda t: t.suggest_categorical("p", ["a", "b"]),
            lambda t: t.suggest_categorical("p", ["a", "b", "c"]),
        ),
    ],
    ids=["kind", "log", "choices"],
)
def test_incompatible_distribution_across_trials(
    backend: CountedStorage, first: Any, second: Any
) -> None:
    study = _study(backend)
    done = study.ask()
    first(done)
    study.tell(done, 1.0)
    trial = study.ask()
    trial.suggest_float("other", 0, 1)
    before = backend.rows()
    with pytest.raises(ValueError, match=r"parameter 'p' was already defined in this study"):
        second(trial)
    assert backend.rows() == before
    assert "p" not in trial.params
    assert set(study.trials[1].params) == {"other"}
    # The trial goes on after the refusal.
    assert 0 <= trial.suggest_float("more", 0, 1) <= 1


def test_compatible_distribution_across_trials(backend: CountedStorage) -> None:
    study = _study(backend)
    first = study.ask()
    first.suggest_int("units", 1, 8)
    study.tell(first, 1.0)
    second = study.ask()
    units = second.suggest_int("units", 8, 64, step=8)  # a define-by-run range may change
    assert units % 8 == 0
    assert study.trials[1].distributions["units"] == IntDistribution(8, 64, step=8)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda t: t.suggest_float("x", 1, 0),
            ValueError,
            r"suggest_float\('x'\): low=1\.0 must be <= high=0\.0; swap them",
        ),
        (
            lambda t: t.suggest_float("x", 0, 1, log=True),
            ValueError,
            r"suggest_float\('x'\): log=True needs low > 0",
        ),
        (
            lambda t: t.suggest_float("x", 0, 1, step=0.3),
            ValueError,
            r"suggest_float\('x'\): step=0\.3 does not divide the range",
        ),
        (
            lambda t: t.suggest_float("x", 0.1, 1, step=0.1, log=True),
            ValueError,
            r"suggest_float\('x'\): log=True cannot be combined with step=0\.1",
        ),
        (
            lambda t: t.suggest_float("x", 0, math.inf),
            ValueError,
            r"suggest_float\('x'\): high=inf must be a finite number",
        ),
        (
            lambda t: t.suggest_float("x", "0", 1),
            TypeError,
            r"suggest_float\('x'\): low='0' must be a number",
        ),
        (
            lambda t: t.suggest_int("n", 0, 10, log=True),
            ValueError,
            r"suggest_int\('n'\): log=True needs low >= 1, got low=0",
        ),
        (
            lambda t: t.suggest_int("n", 0, 10, step=3),
            ValueError,
            r"suggest_int\('n'\): step=3 does not divide .* set high to 9",
        ),
        (
            lambda t: t.suggest_int("n", 0, 2.5),
            TypeError,
            r"suggest_int\('n'\): high=2\.5 must be an integer",
        ),
        (
            lambda t: t.suggest_categorical("c", []),
            ValueError,
            r"suggest_categorical\('c'\): choices=\(\) is empty",
        ),
        (
            lambda t: t.suggest_categorical("c", [[1], [2]]),
            TypeError,
            r"suggest_categorical\('c'\): choice \[1\] of type list is not supported",
        ),
        (
            lambda t: t.suggest_categorical("c", [{}]),
            TypeError,
            r"suggest_categorical\('c'\): choice \{\} of type dict is not supported",
        ),
        (
            lambda t: t.suggest_categorical("c", ["a", "a"]),
            ValueError,
            r"suggest_categorical\('c'\): choices=\('a', 'a'\) holds duplicates",
        ),
        (
            lambda t: t.suggest_categorical("c", "abc"),
            TypeError,
            r"suggest_categorical\('c'\): choices='abc' must be a list or tuple",
        ),
        (lambda t: t.suggest_float("", 0, 1), ValueError, r"suggest_float: name='' must be"),
        (lambda t: t.suggest_int(3, 0, 1), ValueError, r"suggest_int: name=3 must be a non-empty"),
        (
            lambda t: t.suggest_categorical(None, ["a"]),
            ValueError,
            r"suggest_categorical: name=None must be a non-empty str",
        ),
    ],
)
def test_invalid_suggestion_writes_nothing(
    backend: CountedStorage, call: Any, error: type[Exception], match: str
) -> None:
    study = _study(backend)
    trial = study.ask()
    before = backend.rows()
    with pytest.raises(error, match=match):
        call(trial)
    assert backend.rows() == before
    assert study.trials[0].params == {}


def test_suggest_after_tell_is_refused(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    study.tell(trial, 1.0)
    before = backend.rows()
    with pytest.raises(UpdateFinishedTrialError, match=r"trial 0 is already COMPLETE"):
        trial.suggest_float("x", 0, 1)
    with pytest.raises(UpdateFinishedTrialError, match=r"trial 0 is already COMPLETE"):
        trial.report(1.0, 0)
    assert backend.rows() == before


# -- report and prune ------------------------------------------------------------------------


def test_report_keeps_every_value(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    reported = {0: 1.0, 1: math.nan, 2: math.inf, 3: -math.inf, 10: 0.5, 2**40: 0.25}
    for step, value in reported.items():
        trial.report(value, step)
    trial.report(3, 11)  # an int value is a number too
    stored = study.trials[0].intermediate_values
    assert sorted(stored) == sorted([*reported, 11])
    for step, value in reported.items():
        assert stored[step] == value or (math.isnan(stored[step]) and math.isnan(value))
    assert stored[11] == 3.0


def test_report_same_step_twice_keeps_the_first(
    backend: CountedStorage, caplog: pytest.LogCaptureFixture
) -> None:
    study = _study(backend)
    trial = study.ask()
    trial.report(1.0, 4)
    with caplog.at_level(logging.WARNING, logger="dltune"):
        trial.report(2.0, 4)
    assert study.trials[0].intermediate_values == {4: 1.0}
    assert [r.getMessage() for r in caplog.records] == [
        "trial 0 reported step 4 twice; the first value 1.0 is kept"
    ]


@pytest.mark.parametrize(
    ("value", "step", "error", "match"),
    [
        (1.0, -1, ValueError, r"report: step=-1 must be >= 0"),
        (1.0, 1.0, TypeError, r"report: step=1\.0 must be an int"),
        (1.0, True, TypeError, r"report: step=True must be an int"),
        (1.0, "3", TypeError, r"report: step='3' must be an int"),
        ("0.5", 0, TypeError, r"report: value='0\.5' of type str must be a number"),
        (None, 0, TypeError, r"report: value=None of type NoneType must be a number"),
        (True, 0, TypeError, r"report: value=True must be a number"),
        ([1.0], 0, TypeError, r"report: value=\[1\.0\] of type list must be a number"),
    ],
)
def test_invalid_report_writes_nothing(
    backend: CountedStorage, value: Any, step: Any, error: type[Exception], match: str
) -> None:
    study = _study(backend)
    trial = study.ask()
    before = backend.rows()
    with pytest.raises(error, match=match):
        trial.report(value, step)
    assert backend.rows() == before


class PruneFromStep(BasePruner):
    """Prunes every trial once it reported ``step``: a tiny, real pruner."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.seen: list[FrozenTrial] = []

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        self.seen.append(trial)
        return (trial.last_step or 0) >= self.step


def test_should_prune_asks_the_pruner(backend: CountedStorage) -> None:
    pruner = PruneFromStep(2)
    study = _study(backend, pruner=pruner)
    trial = study.ask()
    assert trial.should_prune() is False  # nothing reported: the pruner is not even asked
    assert pruner.seen == []
    trial.report(1.0, 0)
    assert trial.should_prune() is False
    trial.report(0.5, 2)
    assert trial.should_prune() is True
    last = pruner.seen[-1]
    assert (last.number, last.state, last.intermediate_values) == (
        0,
        TrialState.RUNNING,
        {0: 1.0, 2: 0.5},
    )


def test_should_prune_after_nan(backend: CountedStorage) -> None:
    study = _study(backend, pruner=NopPruner())
    trial = study.ask()
    trial.report(1.0, 0)
    assert trial.should_prune() is False
    trial.report(math.nan, 1)
    assert trial.should_prune() is True


def test_trial_pruned_is_stored_as_pruned(backend: CountedStorage) -> None:
    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(5):
            trial.report(x + step, step)
            if trial.should_prune():
                raise TrialPruned()
        return x

    study = _study(backend, pruner=PruneFromStep(2))
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        assert trial.state == TrialState.PRUNED
        assert trial.values is None
        assert sorted(trial.intermediate_values) == [0, 1, 2]
        assert "x" in trial.params
        assert trial.datetime_complete is not None
    with pytest.raises(ValueError, match=r"has no COMPLETE trial yet"):
        study.best_trial  # noqa: B018


# -- attributes and reading ------------------------------------------------------------------


def test_user_attrs(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    trial.set_user_attr("path", "/tmp/ckpt")
    trial.set_user_attr("metrics", {"acc": [0.5, 0.75], "ok": True, "none": None})
    trial.set_user_attr("path", "/tmp/ckpt2")
    expected = {"path": "/tmp/ckpt2", "metrics": {"acc": [0.5, 0.75], "ok": True, "none": None}}
    assert trial.user_attrs == expected
    assert study.trials[0].user_attrs == expected


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "model",
            object(),
            r"attribute 'model': value <object object at .*> of type object is not "
            r"JSON-serializable",
        ),
        ("ids", {1, 2}, r"attribute 'ids': value \{1, 2\} of type set is not JSON-serializable"),
        (3, "v", r"attribute key 3 must be a str"),
    ],
    ids=["object", "set", "key"],
)
def test_invalid_user_attr_writes_nothing(
    backend: CountedStorage, key: Any, value: Any, match: str
) -> None:
    study = _study(backend)
    trial = study.ask()
    before = backend.rows()
    with pytest.raises(TypeError, match=match):
        trial.set_user_attr(key, value)
    assert backend.rows() == before
    assert trial.user_attrs == {}


def test_trial_properties(backend: CountedStorage) -> None:
    study = _study(backend)
    for number in range(3):
        trial = study.ask()
        assert trial.number == number
        assert trial.study is study
        assert trial.datetime_start is not None
        assert trial.params == {}
        trial.params["x"] = 1  # a copy: changing it changes nothing
        assert trial.params == {}


def test_enqueued_params_are_returned(backend: CountedStorage) -> None:
    study = _study(backend)
    study.enqueue_trial({"x": 0.25, "opt": "adam", "n": 3})
    trial = study.ask()
    assert trial.suggest_float("x", 0, 1) == 0.25
    assert trial.suggest_categorical("opt", ["sgd", "adam"]) == "adam"
    assert trial.suggest_int("n", 1, 5) == 3
    assert 0 <= trial.suggest_float("free", 0, 1) <= 1
    assert study.trials[0].params["x"] == 0.25


def test_enqueued_value_outside_the_distribution(backend: CountedStorage) -> None:
    study = _study(backend)
    study.enqueue_trial({"x": 5.0})
    trial = study.ask()
    before = backend.rows()
    with pytest.raises(ValueError, match=r"enqueued parameter 'x': value 5\.0 is outside"):
        trial.suggest_float("x", 0, 1)
    assert backend.rows() == before


def test_frozen_trial_value() -> None:
    frozen = FrozenTrial(0, 0, TrialState.COMPLETE, values=[1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"trial 0 has 2 values; use trial\.values"):
        frozen.value  # noqa: B018
    assert FrozenTrial(0, 0, TrialState.RUNNING).value is None
    assert FrozenTrial(0, 0, TrialState.COMPLETE, values=[-math.inf]).value == -math.inf


# -- one value per objective ------------------------------------------------------------------


def test_a_multi_objective_trial_reports_one_value_per_objective() -> None:
    study = dltune.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    trial.report([0.9, 1200.0], 1)
    trial.report((0.95, 1200), 2)
    trial.report(0.97, 3)  # a scalar is still accepted: the first objective's value
    frozen = study.trials[0]
    assert frozen.intermediate_values == {1: 0.9, 2: 0.95, 3: 0.97}
    assert frozen.system_attrs["reported_values"] == {"1": [0.9, 1200.0], "2": [0.95, 1200.0]}


def test_a_vector_of_the_wrong_length_or_type_is_refused() -> None:
    study = dltune.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    with pytest.raises(ValueError, match=r"value=\[0\.9\] has 1 values; the study has 2"):
        trial.report([0.9], 1)
    with pytest.raises(TypeError, match=r"value='a' of type str must be a number"):
        trial.report([0.9, "a"], 1)  # type: ignore[list-item]
    single = dltune.create_study().ask()
    with pytest.raises(TypeError, match=r"one value per objective is for multi-objective"):
        single.report([0.9, 1.0], 1)
    assert study.trials[0].intermediate_values == {}
