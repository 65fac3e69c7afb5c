"""Studies: create, load, delete, list; ask/tell; enqueue; the best trial(s); data frames."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

import dltune
from dltune import Trial
from dltune.exceptions import DuplicatedStudyError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.pruners import NopPruner
from dltune.samplers import AutoSampler
from dltune.samplers import RandomSampler
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.testing import CountedStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

COMPLETE, PRUNED, FAIL = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL


def _study(backend: CountedStorage, name: str = "s", **kwargs: Any) -> dltune.Study:
    kwargs.setdefault("sampler", RandomSampler(seed=0))
    return dltune.create_study(name, storage=backend.storage, **kwargs)


def _x(trial: Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0)


# -- create, load, delete, list ------------------------------------------------------------


def test_create_study_defaults() -> None:
    study = dltune.create_study()
    assert study.study_name.startswith("no-name-")
    assert study.direction == StudyDirection.MINIMIZE
    assert study.directions == [StudyDirection.MINIMIZE]
    assert isinstance(study.sampler, AutoSampler)
    assert study.trials == []
    other = dltune.create_study()
    assert other.study_name != study.study_name


def test_create_study_in_a_storage(backend: CountedStorage) -> None:
    study = _study(backend, "max", direction="maximize")
    multi = _study(backend, "multi", directions=["minimize", StudyDirection.MAXIMIZE])
    assert study.direction == StudyDirection.MAXIMIZE
    assert multi.directions == [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]
    with pytest.raises(RuntimeError, match=r"the study has 2 objectives; use study\.directions"):
        multi.direction  # noqa: B018
    assert dltune.get_all_study_names(backend.storage) == ["max", "multi"]


def test_duplicate_study_name(backend: CountedStorage) -> None:
    _study(backend)
    before = backend.rows()
    with pytest.raises(DuplicatedStudyError, match=r"'s' already exists; pass load_if_exists"):
        _study(backend)
    assert backend.rows() == before


def test_load_if_exists_continues_the_study(backend: CountedStorage) -> None:
    first = _study(backend)
    first.optimize(_x, n_trials=2)
    again = _study(backend, load_if_exists=True)
    assert [t.number for t in again.trials] == [0, 1]
    again.optimize(_x, n_trials=3)
    assert len(first.trials) == 3


def test_load_if_exists_with_other_directions(backend: CountedStorage) -> None:
    _study(backend)
    before = backend.rows()
    with pytest.raises(
        ValueError,
        match=r"study 's' exists with directions \['MINIMIZE'\], not \['MAXIMIZE'\]; use another "
        r"name or the same directions",
    ):
        _study(backend, direction="maximize", load_if_exists=True)
    with pytest.raises(ValueError, match=r"not \['MINIMIZE', 'MINIMIZE'\]"):
        _study(backend, directions=["minimize", "minimize"], load_if_exists=True)
    assert backend.rows() == before


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"direction": "up"}, ValueError, r"direction='up' is not valid; use 'minimize' or"),
        ({"direction": 1}, ValueError, r"direction=1 is not valid"),
        (
            {"direction": "minimize", "directions": ["minimize"]},
            ValueError,
            r"give direction or directions, not both",
        ),
        ({"directions": []}, ValueError, r"directions=\[\] must be a non-empty list"),
        ({"directions": "minimize"}, ValueError, r"directions='minimize' must be a non-empty"),
        ({"directions": ["minimize", "down"]}, ValueError, r"direction='down' is not valid"),
        ({"seed": -1}, ValueError, r"seed=-1 must be >= 0"),
        ({"seed": "1"}, TypeError, r"seed='1' must be an int or None"),
        ({"sampler": "tpe"}, TypeError, r"sampler='tpe' must be an instance of BaseSampler"),
        ({"pruner": NopPruner}, TypeError, r"pruner=<class .*NopPruner'> must be an instance"),
        ({"study_name": ""}, ValueError, r"study_name='' is empty"),
        ({"study_name": "a\x00b"}, ValueError, r"contains a NUL character"),
        ({"study_name": 5}, TypeError, r"study_name=5 must be a str"),
    ],
)
def test_invalid_create_study_writes_nothing(
    backend: CountedStorage, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    before = backend.rows()
    with pytest.raises(error, match=match):
        dltune.create_study(storage=backend.storage, **kwargs)
    assert backend.rows() == before
    assert before["studies"] == 0


@pytest.mark.parametrize(
    ("storage", "error", "match"),
    [
        (123, TypeError, r"storage=123 of type int is not supported; pass None \(in memory\)"),
        ("mysql://u@h/db", ValueError, r"uses the unsupported driver 'mysql'"),
        ("sqlite://", ValueError, r"does not name a database file"),
        ("sqlite:///:memory:", ValueError, r"does not name a database file"),
        ("not a url", ValueError, r"url='not a url' is not a database URL"),
    ],
)
def test_invalid_storage(storage: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        dltune.create_study(storage=storage)


def test_load_study(backend: CountedStorage) -> None:
    study = _study(backend)
    study.optimize(_x, n_trials=2)
    loaded = dltune.load_study("s", backend.storage)
    assert [t.params for t in loaded.trials] == [t.params for t in study.trials]
    assert dltune.load_study(None, backend.storage).study_name == "s"
    with pytest.raises(
        StudyNotFoundError, match=r"no study named 'nope'; the storage holds \['s'\]"
    ):
        dltune.load_study("nope", backend.storage)
    _study(backend, "t")
    with pytest.raises(
        ValueError,
        match=r"study_name=None needs a storage with exactly one study; it holds \['s', 't'\]",
    ):
        dltune.load_study(None, backend.storage)


def test_load_study_from_a_url_in_another_handle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'url.db'}"
    study = dltune.create_study("by-url", storage=url, seed=1)
    study.optimize(_x, n_trials=3)
    loaded = dltune.load_study("by-url", url)
    assert [t.params for t in loaded.trials] == [t.params for t in study.trials]
    assert loaded.best_trial.number == study.best_trial.number


def test_delete_study(backend: CountedStorage) -> None:
    study = _study(backend)
    study.optimize(_x, n_trials=2)
    _study(backend, "keep")
    dltune.delete_study("s", backend.storage)
    assert dltune.get_all_study_names(backend.storage) == ["keep"]
    assert backend.rows()["trials"] == 0
    with pytest.raises(
        StudyNotFoundError, match=r"no study named 's'; the storage holds \['keep'\]"
    ):
        dltune.delete_study("s", backend.storage)
    with pytest.raises(StudyNotFoundError, match=r"no study named 's'"):
        dltune.load_study("s", backend.storage)


def test_list_studies(backend: CountedStorage) -> None:
    assert dltune.list_studies(backend.storage) == []
    a = _study(backend, "a")
    a.optimize(_x, n_trials=3)
    a.set_user_attr("owner", "me")
    _study(backend, "b", directions=["minimize", "maximize"])
    summaries = dltune.list_studies(backend.storage)
    assert [(s.study_name, s.n_trials) for s in summaries] == [("a", 3), ("b", 0)]
    assert summaries[0].user_attrs == {"owner": "me"}
    assert summaries[1].directions == [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]


def test_study_attrs(backend: CountedStorage) -> None:
    study = _study(backend)
    study.set_user_attr("dataset", {"name": "spirals", "n": 400})
    study.set_system_attr("dltune", 1)
    assert study.user_attrs == {"dataset": {"name": "spirals", "n": 400}}
    assert study.system_attrs == {"dltune": 1}
    before = backend.rows()
    with pytest.raises(TypeError, match=r"attribute 'model': value .* is not JSON-serializable"):
        study.set_user_attr("model", object())
    assert backend.rows() == before


# -- ask and tell --------------------------------------------------------------------------


def test_ask_and_tell(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    x = _x(trial)
    finished = study.tell(trial, x**2)
    assert (finished.number, finished.state, finished.values) == (0, COMPLETE, [x**2])
    assert finished.datetime_complete is not None
    assert study.trials[0].params == {"x": x}
    second = study.ask()
    assert study.tell(second.number, 5).values == [5.0]  # by number; an int value


@pytest.mark.parametrize(
    ("values", "state", "reason", "expected_state", "expected_values", "expected_reason"),
    [
        (1.5, None, None, COMPLETE, [1.5], None),
        ([1.5], None, None, COMPLETE, [1.5], None),
        (math.inf, None, None, COMPLETE, [math.inf], None),
        (-math.inf, None, None, COMPLETE, [-math.inf], None),
        (None, PRUNED, None, PRUNED, None, None),
        (None, FAIL, "out of memory", FAIL, None, "out of memory"),
        (None, None, None, FAIL, None, None),
        (math.nan, None, None, FAIL, None, "the objective returned nan"),
        ("abc", None, None, FAIL, None, "returned 'abc' of type str, not a number"),
        ("1.5", None, None, FAIL, None, "returned '1.5' of type str, not a number"),
        (True, None, None, FAIL, None, "returned True, not a number"),
    ],
)
def test_tell_outcomes(
    backend: CountedStorage,
    values: Any,
    state: TrialState | None,
    reason: str | None,
    expected_state: TrialState,
    expected_values: list[float] | None,
    expected_reason: str | None,
) -> None:
    study = _study(backend)
    trial = study.ask()
    finished = study.tell(trial, values, state, reason=reason)
    stored = study.trials[0]
    for t in (finished, stored):
        assert (t.state, t.values) == (expected_state, expected_values)
        if expected_reason is None:
            assert t.reason is None
        else:
            assert t.reason is not None
            assert expected_reason in t.reason


def test_tell_multi_objective(backend: CountedStorage) -> None:
    study = _study(backend, directions=["minimize", "maximize"])
    trial = study.ask()
    assert study.tell(trial, (1.0, -math.inf)).values == [1.0, -math.inf]
    trial = study.ask()
    failed = study.tell(trial, [1.0, math.nan])
    assert (failed.state, failed.reason) == (FAIL, "the objective returned nan")


@pytest.mark.parametrize(
    ("directions", "values"),
    [(["minimize"], [1.0, 2.0]), (["minimize", "maximize"], 1.0), (["minimize"] * 2, [1.0])],
    ids=["two-for-one", "one-for-two", "list-of-one-for-two"],
)
def test_tell_wrong_number_of_values(
    backend: CountedStorage, directions: list[str], values: Any
) -> None:
    study = _study(backend, directions=directions)
    trial = study.ask()
    finished = study.tell(trial, values)
    assert finished.state == TrialState.FAIL
    assert finished.values is None
    assert re.search(r"value\(s\).*the study has \d objective", finished.reason or "")


def test_tell_twice(backend: CountedStorage) -> None:
    study = _study(backend)
    trial = study.ask()
    study.tell(trial, 1.0)
    before = backend.rows()
    for values, state in ((2.0, None), (None, FAIL), (None, PRUNED)):
        with pytest.raises(UpdateFinishedTrialError, match=r"trial 0 is already COMPLETE"):
            study.tell(trial, values, state)
    assert backend.rows() == before
    assert (study.trials[0].state, study.trials[0].values) == (COMPLETE, [1.0])


@pytest.mark.parametrize(
    ("trial", "values", "state", "error", "match"),
    [
        (
            None,
            None,
            TrialState.RUNNING,
            ValueError,
            r"state=<TrialState\.RUNNING: 'RUNNING'> "
            r"must be COMPLETE, PRUNED or FAIL",
        ),
        (None, None, TrialState.WAITING, ValueError, r"state=.*WAITING.* must be COMPLETE"),
        (None, 1.0, "COMPLETE", ValueError, r"state='COMPLETE' must be COMPLETE, PRUNED or FAIL"),
        (None, 1.0, PRUNED, ValueError, r"values=1\.0 cannot be given with state=PRUNED"),
        (None, [1.0], FAIL, ValueError, r"values=\[1\.0\] cannot be given with state=FAIL"),
        ("0", 1.0, None, TypeError, r"trial='0' must be a Trial or a trial number"),
        (True, 1.0, None, TypeError, r"trial=True must be a Trial or a trial number"),
        (7, 1.0, None, ValueError, r"trial number 7 does not exist in study 's'"),
    ],
)
def test_invalid_tell_writes_nothing(
    backend: CountedStorage,
    trial: Any,
    values: Any,
    state: Any,
    error: type[Exception],
    match: str,
) -> None:
    study = _study(backend)
    handle = study.ask()
    before = backend.rows()
    with pytest.raises(error, match=match):
        study.tell(handle if trial is None else trial, values, state)
    assert backend.rows() == before
    assert study.trials[0].state == TrialState.RUNNING


# -- enqueue and add -----------------------------------------------------------------------


def test_enqueued_trials_run_first_with_their_values(backend: CountedStorage) -> None:
    study = _study(backend)
    study.enqueue_trial({"x": 0.5, "n": 3}, user_attrs={"source": "baseline"})
    study.enqueue_trial({"x": -0.25})

    def objective(trial: Trial) -> float:
        return _x(trial) + trial.suggest_int("n", 0, 10)

    study.optimize(objective, n_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [COMPLETE] * 3
    assert trials[0].params == {"x": 0.5, "n": 3}
    assert trials[0].user_attrs == {"source": "baseline"}
    assert trials[1].params["x"] == -0.25
    assert 0 <= trials[1].params["n"] <= 10


def test_enqueued_value_outside_the_range_fails_that_trial(backend: CountedStorage) -> None:
    study = _study(backend)
    study.enqueue_trial({"x": 5.0})
    study.enqueue_trial({"x": "big"})
    study.optimize(_x, n_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [FAIL, FAIL, COMPLETE]
    assert trials[0].reason is not None
    assert "enqueued parameter 'x'" in trials[0].reason
    assert "value 5.0 is outside" in trials[0].reason
    assert trials[1].reason is not None
    assert "enqueued parameter 'x': value 'big' is not a number" in trials[1].reason
    assert trials[0].params == {}


def test_enqueue_skip_if_exists(backend: CountedStorage) -> None:
    study = _study(backend)
    study.enqueue_trial({"x": 0.5}, skip_if_exists=True)
    study.enqueue_trial({"x": 0.5}, skip_if_exists=True)
    assert len(study.trials) == 1
    study.optimize(_x, n_trials=1)
    study.enqueue_trial({"x": 0.5}, skip_if_exists=True)  # ran already
    assert len(study.trials) == 1
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.25}, skip_if_exists=True)
    assert [t.state for t in study.trials] == [COMPLETE, TrialState.WAITING, TrialState.WAITING]


@pytest.mark.parametrize(
    ("params", "user_attrs", "error", "match"),
    [
        ([("x", 1)], None, TypeError, r"params=\[\('x', 1\)\] must be a dict with str keys"),
        ({1: 2}, None, TypeError, r"params=\{1: 2\} must be a dict with str keys"),
        ({"x": object()}, None, TypeError, r"is not JSON-serializable"),
        ({"x": 1}, {"model": object()}, TypeError, r"'model'.* is not JSON-serializable"),
    ],
    ids=["not-a-dict", "int-key", "object-value", "object-user-attr"],
)
def test_invalid_enqueue_writes_nothing(
    backend: CountedStorage, params: Any, user_attrs: Any, error: type[Exception], match: str
) -> None:
    study = _study(backend)
    before = backend.rows()
    with pytest.raises(error, match=match):
        study.enqueue_trial(params, user_attrs)
    assert backend.rows() == before


def _frozen(state: TrialState, values: list[float] | None = None, **kw: Any) -> FrozenTrial:
    return FrozenTrial(number=-1, trial_id=-1, state=state, values=values, **kw)


def test_add_trial(backend: CountedStorage) -> None:
    study = _study(backend)
    study.optimize(_x, n_trials=1)
    dist = FloatDistribution(-1.0, 1.0)
    study.add_trial(
        _frozen(
            COMPLETE, [-10.0], params={"x": 0.5}, distributions={"x": dist}, user_attrs={"a": 1}
        )
    )
    study.add_trial(_frozen(PRUNED, intermediate_values={0: 3.0}))
    study.add_trial(_frozen(FAIL, system_attrs={"reason": "lost"}))
    trials = study.trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state for t in trials] == [COMPLETE, COMPLETE, PRUNED, FAIL]
    assert (trials[1].params, trials[1].user_attrs) == ({"x": 0.5}, {"a": 1})
    assert trials[2].intermediate_values == {0: 3.0}
    assert study.best_trial.number == 1
    assert study.best_params == {"x": 0.5}
    study.optimize(_x, n_trials=5)  # added trials count in the budget
    assert len(study.trials) == 5


@pytest.mark.parametrize(
    ("trial", "error", "match"),
    [
        (_frozen(TrialState.RUNNING), ValueError, r"trial state RUNNING must be COMPLETE, PRUNED"),
        (_frozen(TrialState.WAITING), ValueError, r"trial state WAITING must be COMPLETE"),
        (
            _frozen(COMPLETE),
            ValueError,
            r"cannot add a COMPLETE trial: the objective returned None",
        ),
        (_frozen(COMPLETE, [math.nan]), ValueError, r"cannot add a COMPLETE trial: .*nan"),
        (
            _frozen(COMPLETE, [1.0, 2.0]),
            ValueError,
            r"cannot add a COMPLETE trial: .*2 value\(s\)",
        ),
        (
            _frozen(COMPLETE, [1.0], params={"x": 5}, distributions={"x": IntDistribution(0, 3)}),
            ValueError,
            r"value 5 is outside IntDistribution",
        ),
        (
            _frozen(COMPLETE, [1.0], params={"x": 1}, distributions={"x": IntDistribution(0, 3)}),
            ValueError,
            r"parameter 'x' was already defined in this study",
        ),
        (_frozen(COMPLETE, [1.0], params={"x": 0.5}), ValueError, r"'x'"),
    ],
    ids=[
        "running",
        "waiting",
        "no-values",
        "nan",
        "two-values",
        "outside",
        "incompatible",
        "param-without-distribution",
    ],
)
def test_invalid_add_trial_writes_nothing(
    backend: CountedStorage, trial: FrozenTrial, error: type[Exception], match: str
) -> None:
    study = _study(backend)
    study.optimize(_x, n_trials=1)  # defines x as a float
    before = backend.rows()
    with pytest.raises(error, match=match):
        study.add_trial(trial)
    assert backend.rows() == before


# -- the best trial(s) ---------------------------------------------------------------------


def _tell_all(study: dltune.Study, outcomes: list[Any]) -> None:
    for outcome in outcomes:
        trial = study.ask()
        if isinstance(outcome, TrialState):
            study.tell(trial, state=outcome)
        else:
            study.tell(trial, outcome)


@pytest.mark.parametrize(
    ("direction", "outcomes", "best"),
    [
        ("minimize", [3.0, FAIL, 1.0, PRUNED, 2.0, 1.0], 2),
        ("maximize", [3.0, FAIL, 1.0, 4.0, 4.0], 3),
        ("minimize", [math.inf, 2.0, -math.inf, -math.inf], 2),
        ("maximize", [-math.inf, math.inf, 1e308], 1),
        ("minimize", [math.inf, math.nan, math.inf], 0),
        ("minimize", [FAIL, math.nan, 7.0], 2),
    ],
)
def test_best_trial(
    backend: CountedStorage, direction: str, outcomes: list[Any], best: int
) -> None:
    study = _study(backend, direction=direction)
    _tell_all(study, outcomes)
    assert study.best_trial.number == best
    assert study.best_value == outcomes[best]
    assert study.best_params == study.trials[best].params


def test_no_best_trial_before_a_complete_one(backend: CountedStorage) -> None:
    study = _study(backend)
    _tell_all(study, [FAIL, PRUNED, math.nan])
    match = r"study 's' has no COMPLETE trial yet, so no best trial"
    with pytest.raises(ValueError, match=match):
        study.best_trial  # noqa: B018
    with pytest.raises(ValueError, match=match):
        study.best_value  # noqa: B018
    with pytest.raises(ValueError, match=match):
        study.best_params  # noqa: B018


def test_best_trial_of_a_multi_objective_study(backend: CountedStorage) -> None:
    study = _study(backend, directions=["minimize", "minimize"])
    _tell_all(study, [(1.0, 2.0)])
    with pytest.raises(ValueError, match=r"the study has 2 objectives, so no single best trial"):
        study.best_trial  # noqa: B018


def test_best_trials_is_the_pareto_front(backend: CountedStorage) -> None:
    study = _study(backend, directions=["minimize", "maximize"])
    _tell_all(
        study,
        [(1.0, 1.0), (2.0, 3.0), (3.0, 3.0), FAIL, (0.0, 0.0), (2.0, 3.0), (4.0, 5.0), PRUNED],
    )
    assert [t.number for t in study.best_trials] == [0, 1, 4, 5, 6]


def test_best_trials_of_a_single_objective_study(backend: CountedStorage) -> None:
    study = _study(backend)
    _tell_all(study, [2.0, 1.0, 3.0, 1.0])
    assert [t.number for t in study.best_trials] == [1, 3]


# -- data frame ----------------------------------------------------------------------------


def test_trials_dataframe(backend: CountedStorage) -> None:
    study = _study(backend)
    assert len(study.trials_dataframe()) == 0
    trial = study.ask()
    trial.suggest_int("n", 1, 1)
    trial.set_user_attr("note", "first")
    study.tell(trial, 2.5)
    study.tell(study.ask(), state=FAIL, reason="boom")
    df = study.trials_dataframe()
    assert list(df["number"]) == [0, 1]
    assert list(df["state"]) == ["COMPLETE", "FAIL"]
    assert df["value"][0] == 2.5
    assert math.isnan(df["value"][1])
    assert df["params_n"][0] == 1
    assert df["user_attrs_note"][0] == "first"
    assert list(df["reason"])[1] == "boom"
    assert {"datetime_start", "datetime_complete", "duration"} <= set(df.columns)
    assert df["duration"][0] >= 0


def test_trials_dataframe_multi_objective(backend: CountedStorage) -> None:
    study = _study(backend, directions=["minimize", "maximize"])
    _tell_all(study, [(1.0, 2.0), PRUNED])
    df = study.trials_dataframe()
    assert "value" not in df.columns
    assert list(df["values_0"])[0] == 1.0
    assert list(df["values_1"])[0] == 2.0
    assert list(df["state"]) == ["COMPLETE", "PRUNED"]
