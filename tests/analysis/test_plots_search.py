"""The "how the search went" plot records: history, curves, optimizers, timeline, Pareto front."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

import dltune
from dltune.analysis._plots_search import learning_curves
from dltune.analysis._plots_search import optimization_history
from dltune.analysis._plots_search import optimizer_comparison
from dltune.analysis._plots_search import pareto_front
from dltune.analysis._plots_search import timeline
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

NAN = float("nan")
INF = float("inf")
T0 = datetime(2024, 5, 1, 12, 0, 0)
C = TrialState.COMPLETE
P = TrialState.PRUNED
F = TrialState.FAIL
R = TrialState.RUNNING
W = TrialState.WAITING


def ft(
    number: int,
    state: TrialState,
    values: list[float] | None = None,
    *,
    params: dict[str, Any] | None = None,
    iv: dict[int, float] | None = None,
    attrs: dict[str, Any] | None = None,
    start: float | None = None,
    end: float | None = None,
) -> FrozenTrial:
    """A hand-built trial; params that are str get a categorical distribution, others a float."""
    params = params or {}
    dists: dict[str, BaseDistribution] = {
        name: CategoricalDistribution(("adam", "rmsprop", "sgd"))
        if isinstance(value, str)
        else FloatDistribution(0.0, 100.0)
        for name, value in params.items()
    }
    return FrozenTrial(
        number,
        number,
        state,
        values,
        params,
        dists,
        dict(iv or {}),
        {},
        dict(attrs or {}),
        None if start is None else T0 + timedelta(seconds=start),
        None if end is None else T0 + timedelta(seconds=end),
    )


def curve(values: list[float], state: TrialState = C, number: int = 0, **kw: Any) -> FrozenTrial:
    final = [values[-1]] if state == C else None
    return ft(number, state, final, iv=dict(enumerate(values)), **kw)


# -- optimization_history ---------------------------------------------------------------------


def test_history_best_so_far_minimize_from_a_study() -> None:
    study = dltune.create_study()
    for value in [3.0, 1.0, 2.0, 0.5]:
        study.tell(study.ask(), value)
    data = optimization_history(study).data
    assert data["number"] == [0, 1, 2, 3]
    assert data["value"] == [3.0, 1.0, 2.0, 0.5]
    assert data["best"] == [3.0, 1.0, 1.0, 0.5]
    assert data["best_number"] == 3
    assert data["direction"] == "minimize" and data["label"] == "value (minimize)"
    assert all(isinstance(t, float) for t in data["complete"])


def test_history_best_so_far_maximize_skips_unfinished_trials() -> None:
    trials = [ft(0, C, [1.0]), ft(1, R), ft(2, C, [3.0]), ft(3, C, [2.0]), ft(4, W)]
    record = optimization_history(trials, ["maximize"])
    assert record.kind == "history"
    assert record.data["number"] == [0, 2, 3]
    assert record.data["best"] == [1.0, 3.0, 3.0]
    assert record.data["best_number"] == 2
    assert record.data["others"]["number"] == []


def test_history_shows_pruned_diverged_and_failed_apart() -> None:
    trials = [
        ft(0, C, [2.0], end=5),
        ft(1, P, iv={0: 4.0, 1: 3.5}, end=9),
        ft(2, P, iv={0: 4.0, 1: NAN}, attrs={"stopped_by": "diverged"}),
        ft(3, F),
        ft(4, C, [INF]),
    ]
    record = optimization_history(trials, ["minimize"])
    assert record.data["number"] == [0]
    assert record.data["others"] == {
        "number": [1, 2, 3],
        "outcome": ["pruned", "diverged", "fail"],
        "value": [3.5, None, None],
        "complete": [(T0 + timedelta(seconds=9)).timestamp(), None, None],
    }
    assert record.notes[0] == "1 complete trial with an infinite value not drawn."
    assert "ticks along the bottom" in record.notes[1]


def test_history_draws_a_continued_paused_trial_through_its_continuation() -> None:
    trials = [
        curve([3.0, 2.0], P, number=0),
        curve([3.0, 2.0, 1.5], P, number=1, attrs={"resume_of": 0}),
        curve([3.0, 2.0, 1.5, 1.0], number=2, attrs={"resume_of": 1}),
        curve([4.0, 3.0], P, number=3),
    ]
    record = optimization_history(trials, ["minimize"])
    assert record.data["number"] == [2]
    assert record.data["others"]["number"] == [3]  # 0 and 1 live on in trial 2
    assert record.notes[-1] == (
        "2 paused trials not drawn: the trial that continued each carries its lineage."
    )
    alone = optimization_history(trials[3:], ["minimize"])
    assert not any("paused" in note for note in alone.notes)


def test_history_of_the_second_objective() -> None:
    trials = [ft(0, C, [1.0, 5.0]), ft(1, C, [0.5, 7.0]), ft(2, C, [0.1, 6.0])]
    record = optimization_history(trials, ["minimize", "maximize"], objective=1)
    assert record.data["best"] == [5.0, 7.0, 7.0]
    assert record.data["label"] == "value 1 (maximize)"
    assert record.title == "Optimization history of objective 1"


def test_history_of_an_empty_study_says_so() -> None:
    record = optimization_history([], ["minimize"])
    assert record.data["number"] == [] and record.data["best_number"] is None
    assert record.notes == ("No trial has completed yet.",)


@pytest.mark.parametrize("objective", [1, -1])
def test_history_rejects_an_objective_out_of_range(objective: int) -> None:
    with pytest.raises(ValueError, match=rf"objective={objective} is out of range.*use 0\.\.0"):
        optimization_history([], ["minimize"], objective=objective)


def test_history_rejects_an_objective_that_is_not_an_int() -> None:
    with pytest.raises(TypeError, match=r"objective='0' must be an int: an objective index"):
        optimization_history([], ["minimize"], objective="0")  # type: ignore[arg-type]


def test_history_needs_directions_with_a_list_of_trials() -> None:
    with pytest.raises(ValueError, match=r"directions=None"):
        optimization_history([ft(0, C, [1.0])])


# -- learning_curves --------------------------------------------------------------------------


def test_curves_are_tagged_with_their_outcome() -> None:
    trials = [
        curve([3.0, 2.0, 1.0], number=0, params={"lr": 0.1}),
        curve([3.0, 2.5], P, number=1),
        curve([3.0, INF, NAN], P, number=2, attrs={"stopped_by": "diverged"}),
        curve([3.0, 3.0], P, number=3, attrs={"stopped_by": "not_learning"}),
        curve([3.0], F, number=4),
        curve([2.9, 2.1], R, number=5),
        ft(6, C, [0.5]),  # reported nothing: no curve
        ft(7, W),
    ]
    data = learning_curves(trials, ["minimize"]).data
    assert [(c["number"], c["outcome"]) for c in data["curves"]] == [
        (0, "complete"),
        (1, "pruned"),
        (2, "diverged"),
        (3, "not_learning"),
        (4, "fail"),
        (5, "running"),
    ]
    assert data["curves"][0] == {
        "number": 0,
        "outcome": "complete",
        "steps": [0, 1, 2],
        "values": [3.0, 2.0, 1.0],
        "final": 1.0,
        "blowup_step": None,
        "blowup_value": None,
        "resume_of": None,
        "params": {"lr": 0.1},
    }
    diverged = data["curves"][2]
    assert diverged["values"] == [3.0, None, None]
    assert (diverged["blowup_step"], diverged["blowup_value"], diverged["final"]) == (1, 3.0, None)
    assert data["n_trials"] == 6
    assert data["best_number"] is None  # the best trial (6) reported no values
    assert data["direction"] == "minimize"


def test_curves_from_a_study_and_the_best_trial() -> None:
    study = dltune.create_study(directions=["maximize"])
    for values in ([0.1, 0.5], [0.2, 0.9, 0.8]):
        trial = study.ask()
        for step, value in enumerate(values):
            trial.report(value, step)
        study.tell(trial, values[-1])
    data = learning_curves(study).data
    assert [c["steps"] for c in data["curves"]] == [[0, 1], [0, 1, 2]]
    assert [c["values"] for c in data["curves"]] == [[0.1, 0.5], [0.2, 0.9, 0.8]]
    assert data["best_number"] == 1
    assert data["direction"] == "maximize"


def test_a_continued_lineage_is_drawn_once() -> None:
    trials = [
        curve([3.0, 2.0], P, number=0),
        curve([3.0, 2.0, 1.5, 1.2], P, number=1, attrs={"resume_of": 0}),
        curve([3.0, 2.0, 1.5, 1.2, 1.0, 0.9], number=2, attrs={"resume_of": 1}),
        curve([4.0, 3.0], P, number=3),
    ]
    record = learning_curves(trials, ["minimize"])
    assert [c["number"] for c in record.data["curves"]] == [2, 3]
    assert record.data["curves"][0]["resume_of"] == 1
    assert record.notes == (
        "2 paused trials drawn through the trial that continued it (a continuation re-reports "
        "its values).",
    )


def test_a_continuation_that_has_not_caught_up_leaves_its_parent_drawn() -> None:
    trials = [
        curve([3.0, 2.0, 1.8], P, number=0),
        curve([3.0], R, number=1, attrs={"resume_of": 0}),
    ]
    record = learning_curves(trials, ["minimize"])
    assert [c["number"] for c in record.data["curves"]] == [0, 1]
    assert record.notes == ()


def test_many_curves_keep_the_best_a_spread_and_every_running_one() -> None:
    done = [curve([10.0 + n, float(n)], number=n) for n in range(20)]
    running = [curve([30.0], R, number=n) for n in (20, 21)]
    record = learning_curves(done + running, ["minimize"], max_trials=7)
    # kept: best trial 0 and running 20, 21; best two of the rest: 1, 2; spread over 3..19: 3, 19
    assert [c["number"] for c in record.data["curves"]] == [0, 1, 2, 3, 19, 20, 21]
    assert record.data["n_trials"] == 22
    assert record.data["best_number"] == 0
    assert record.notes == (
        "22 trials reported values; drawn: the best trial, the 2 with the best last value, "
        "2 spread over the rest and all 2 running (max_trials=7).",
    )


def test_many_curves_for_maximize_rank_high_last_values_first() -> None:
    trials = [curve([float(n)], P, number=n) for n in range(10)]
    record = learning_curves(trials, ["maximize"], max_trials=3)
    # no best trial (none complete): best two are 9, 8; the spread's one pick is the middle of
    # the rest ranked 7, 6, ..., 0
    assert [c["number"] for c in record.data["curves"]] == [3, 8, 9]


def test_no_reported_values_says_so() -> None:
    record = learning_curves([ft(0, C, [1.0])], ["minimize"])
    assert record.data["curves"] == []
    assert record.notes == ("No trial has reported intermediate values yet.",)


def test_curves_of_a_multi_objective_study_have_no_best() -> None:
    record = learning_curves([curve([1.0], number=0)], ["minimize", "minimize"])
    assert record.data["best_number"] is None


@pytest.mark.parametrize("max_trials", [0, -3])
def test_curves_reject_max_trials_below_one(max_trials: int) -> None:
    with pytest.raises(ValueError, match=rf"max_trials={max_trials} must be 1 or more"):
        learning_curves([], ["minimize"], max_trials=max_trials)


@pytest.mark.parametrize("max_trials", ["5", True, 2.0])
def test_curves_reject_max_trials_that_is_not_an_int(max_trials: Any) -> None:
    with pytest.raises(TypeError, match=r"max_trials=.* must be an int, 1 or more"):
        learning_curves([], ["minimize"], max_trials=max_trials)


# -- optimizer_comparison ---------------------------------------------------------------------


def _optimizer_study(direction: str = "minimize") -> dltune.Study:
    study = dltune.create_study(directions=[direction])
    plan = [
        ("adam", 0.5, C),
        ("sgd", 0.9, C),
        ("adam", 0.3, C),
        ("rmsprop", None, P),
        ("sgd", None, F),
        ("adam", 0.7, C),
        ("sgd", None, R),
    ]
    for name, value, state in plan:
        study.enqueue_trial({"optimizer": name})
        trial = study.ask()
        trial.suggest_categorical("optimizer", ["adam", "rmsprop", "sgd"])
        trial.suggest_float("lr", 0.001, 0.1)
        if state != R:
            study.tell(trial, value, state=state)
    return study


def _counts(**nonzero: int) -> dict[str, int]:
    names = ("complete", "pruned", "diverged", "not_learning", "fail", "running")
    return {name: nonzero.get(name, 0) for name in names}


def test_optimizer_comparison_per_choice() -> None:
    record = optimizer_comparison(_optimizer_study())
    assert record.kind == "optimizers" and record.title == "Comparison by optimizer"
    assert record.data["param"] == "optimizer"
    assert record.data["choices"] == [
        {
            "choice": "adam",
            "values": [0.5, 0.3, 0.7],
            "numbers": [0, 2, 5],
            "best": 0.3,
            "best_number": 2,
            "counts": _counts(complete=3),
        },
        {
            "choice": "rmsprop",
            "values": [],
            "numbers": [],
            "best": None,
            "best_number": None,
            "counts": _counts(pruned=1),
        },
        {
            "choice": "sgd",
            "values": [0.9],
            "numbers": [1],
            "best": 0.9,
            "best_number": 1,
            "counts": _counts(complete=1, fail=1, running=1),
        },
    ]
    assert record.notes == ()


def test_optimizer_comparison_best_respects_maximize() -> None:
    choices = optimizer_comparison(_optimizer_study("maximize")).data["choices"]
    assert [(c["best"], c["best_number"]) for c in choices] == [(0.7, 5), (None, None), (0.9, 1)]


def test_optimizer_comparison_falls_back_to_a_name_ending_with_optimizer() -> None:
    trials = [
        ft(0, C, [1.0], params={"act": "sgd", "model_optimizer": "adam"}),
        ft(1, C, [2.0], params={"act": "sgd", "model_optimizer": "sgd"}),
    ]
    data = optimizer_comparison(trials, ["minimize"]).data
    assert data["param"] == "model_optimizer"
    assert [c["values"] for c in data["choices"]] == [[1.0], [], [2.0]]
    assert optimizer_comparison(trials, ["minimize"], param="act").data["choices"][2][
        "numbers"
    ] == [
        0,
        1,
    ]


def test_optimizer_comparison_counts_a_lineage_once_and_notes_trials_without_the_param() -> None:
    trials = [
        ft(0, P, params={"optimizer": "adam"}),
        ft(1, C, [1.0], params={"optimizer": "adam"}, attrs={"resume_of": 0}),
        ft(2, C, [2.0], params={"lr": 1.0}),
        ft(3, P, params={"optimizer": "sgd"}, attrs={"stopped_by": "diverged"}),
    ]
    record = optimizer_comparison(trials, ["minimize"])
    assert [c["counts"] for c in record.data["choices"]] == [
        _counts(complete=1),
        _counts(),
        _counts(diverged=1),
    ]
    assert record.notes == (
        "1 trial without 'optimizer' not counted.",
        "1 paused trial counted once, through the trial that continued it.",
    )


def test_optimizer_comparison_without_an_optimizer_lists_the_categorical_params() -> None:
    trials = [ft(0, C, [1.0], params={"act": "sgd", "lr": 0.1})]
    with pytest.raises(ValueError, match=r"param=None: .*categorical parameters \['act'\]"):
        optimizer_comparison(trials, ["minimize"])


def test_optimizer_comparison_rejects_an_unknown_or_non_categorical_param() -> None:
    study = _optimizer_study()
    with pytest.raises(ValueError, match=r"param='lr' is not a categorical .*\['optimizer'\]"):
        optimizer_comparison(study, param="lr")
    with pytest.raises(ValueError, match=r"param='nope' is not a categorical"):
        optimizer_comparison(study, param="nope")
    with pytest.raises(TypeError, match=r"param=3 must be a parameter name"):
        optimizer_comparison(study, param=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"objective=1 is out of range"):
        optimizer_comparison(study, objective=1)


# -- timeline ---------------------------------------------------------------------------------


def test_timeline_bars_per_worker() -> None:
    a, b = {"worker": "h:1"}, {"worker": "h:2"}
    trials = [
        ft(0, C, [1.0], attrs=a, start=0, end=10),
        ft(1, P, attrs=b, start=5, end=15),
        ft(2, C, [1.0], attrs=a, start=12, end=20),
        ft(3, R, attrs=b, start=10),
        ft(4, F, start=30, end=31),
        ft(5, W),
    ]
    now = (T0 + timedelta(seconds=25)).timestamp()
    record = timeline(trials, ["minimize"], now=now)
    data = record.data
    assert data["origin"] == T0.timestamp()
    assert data["now"] == 25.0
    assert data["number"] == [0, 1, 2, 3, 4]
    assert data["worker"] == ["h:1", "h:2", "h:1", "h:2", "-"]
    assert data["start"] == [0.0, 5.0, 12.0, 10.0, 30.0]
    assert data["end"] == [10.0, 15.0, 20.0, 25.0, 31.0]
    assert data["outcome"] == ["complete", "pruned", "complete", "running", "fail"]
    assert data["span_seconds"] == 31.0
    assert data["workers"] == [
        {"name": "h:1", "n_trials": 2, "busy_seconds": 18.0, "utilisation": 0.9},
        {"name": "h:2", "n_trials": 2, "busy_seconds": 20.0, "utilisation": 1.0},
        {"name": "-", "n_trials": 1, "busy_seconds": 1.0, "utilisation": 1.0},
    ]
    assert record.notes == ("1 trial not started yet (waiting) not drawn.",)


def test_timeline_of_a_running_study_ends_running_trials_at_the_clock() -> None:
    study = dltune.create_study()
    study.tell(study.ask(), 1.0)
    study.ask()
    data = timeline(study).data
    assert data["outcome"] == ["complete", "running"]
    assert data["end"][1] == pytest.approx(data["now"], abs=1e-6)
    assert data["workers"][0]["name"] == "-"


def test_timeline_draws_a_finished_trial_without_an_end_as_a_tick() -> None:
    record = timeline([ft(0, F, start=3)], ["minimize"], now=0.0)
    assert (record.data["start"], record.data["end"]) == ([0.0], [0.0])
    assert record.data["workers"][0]["utilisation"] is None
    assert record.notes == ("1 finished trial without an end time drawn as a tick.",)


def test_timeline_of_an_empty_study_says_so() -> None:
    record = timeline([], ["minimize"], now=100.0)
    assert record.data["number"] == [] and record.data["workers"] == []
    assert record.notes == ("No trial has started yet.",)


def test_timeline_rejects_a_bad_now() -> None:
    with pytest.raises(TypeError, match=r"now='soon' must be epoch seconds"):
        timeline([], ["minimize"], now="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"now=nan must be finite"):
        timeline([], ["minimize"], now=NAN)


# -- pareto_front -----------------------------------------------------------------------------


def test_pareto_front_minimize_minimize_with_ties_and_duplicates() -> None:
    points = [[1, 5], [2, 3], [2, 4], [3, 3], [4, 1], [4, 1], [5, 5], [1, 6]]
    trials = [ft(n, C, [float(x) for x in p]) for n, p in enumerate(points)]
    trials.append(ft(8, P))
    record = pareto_front(trials, ["minimize", "minimize"])
    data = record.data
    assert data["on_front"] == [True, True, False, False, True, True, False, False]
    assert data["front"]["number"] == [0, 1, 4, 5]
    assert data["front"]["x"] == [1.0, 2.0, 4.0, 4.0]
    assert data["front"]["y"] == [5.0, 3.0, 1.0, 1.0]
    assert data["x_label"] == "value 0 (minimize)"
    assert record.notes == ()


def test_pareto_front_respects_each_direction() -> None:
    points = [[1.0, 1.0], [2.0, 3.0], [3.0, 2.0], [0.5, 0.5]]
    trials = [ft(n, C, p, params={"lr": n}) for n, p in enumerate(points)]
    data = pareto_front(trials, ["minimize", "maximize"]).data
    assert data["on_front"] == [True, True, False, True]
    assert data["front"]["number"] == [3, 0, 1]
    assert data["front"]["params"] == [{"lr": 3}, {"lr": 0}, {"lr": 1}]
    assert data["directions"] == ["minimize", "maximize"]


def test_pareto_front_on_two_of_three_objectives_notes_it_and_skips_infinities() -> None:
    trials = [ft(0, C, [1.0, 9.0, 2.0]), ft(1, C, [2.0, 9.0, 1.0]), ft(2, C, [0.0, 0.0, INF])]
    record = pareto_front(trials, ["minimize"] * 3, objectives=(2, 0))
    assert record.data["number"] == [0, 1]
    assert record.data["on_front"] == [True, True]
    assert record.data["objectives"] == [2, 0]
    assert record.notes == (
        "1 complete trial with an infinite value not drawn.",
        "The front is over objectives 2 and 0 only; the study has 3, so other trials may be "
        "Pareto-optimal on the rest.",
    )


def test_pareto_front_needs_a_multi_objective_study() -> None:
    with pytest.raises(ValueError, match=r"needs a multi-objective study; this study has 1"):
        pareto_front(dltune.create_study())


@pytest.mark.parametrize(
    ("objectives", "error", "match"),
    [
        ((0, 0), ValueError, r"objectives=\(0, 0\) names one objective twice"),
        ((0, 2), ValueError, r"objectives\[1\]=2 is out of range"),
        ((0,), ValueError, r"objectives=\(0,\) must be two objective indices"),
        ("01", ValueError, r"objectives='01' must be two objective indices"),
        ((0, "1"), TypeError, r"objectives\[1\]='1' must be an int: an objective index"),
    ],
)
def test_pareto_front_rejects_bad_objectives(objectives: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        pareto_front([], ["minimize", "maximize"], objectives=objectives)


# -- every record -----------------------------------------------------------------------------


def test_every_record_is_strict_json_even_with_nan_and_inf() -> None:
    trials = [
        ft(0, C, [1.0, INF], params={"optimizer": "adam", "x": NAN}, iv={0: INF}, start=0, end=1),
        ft(1, P, params={"optimizer": "sgd"}, iv={0: NAN}, start=1, end=2),
        ft(2, C, [0.5, 2.0], params={"optimizer": "sgd"}, iv={0: 0.5}, start=2, end=3),
    ]
    dirs = ["minimize", "maximize"]
    records = [
        optimization_history(trials, dirs),
        learning_curves(trials, dirs),
        optimizer_comparison(trials, dirs),
        timeline(trials, dirs, now=0.0),
        pareto_front(trials, dirs),
    ]
    for record in records:
        json.dumps(record.to_json(), allow_nan=False)
    curves = records[1].data["curves"]
    assert curves[0]["params"] == {"optimizer": "adam", "x": None}
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in curves[0]["values"])


def test_records_and_plotly_dicts_need_no_plotting_library() -> None:
    code = (
        "import sys\n"
        "from dltune.trial import FrozenTrial, TrialState\n"
        "from dltune.analysis import _plots_search as ps\n"
        "from dltune.analysis._plotly_search import PLOTLY\n"
        "from dltune.analysis import _mpl_search\n"
        "t = [FrozenTrial(0, 0, TrialState.COMPLETE, [1.0, 2.0], intermediate_values={0: 1.0})]\n"
        "d = ['minimize', 'minimize']\n"
        "for r in [ps.optimization_history(t, d), ps.learning_curves(t, d),\n"
        "          ps.timeline(t, d), ps.pareto_front(t, d)]:\n"
        "    PLOTLY[r.kind](r)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('plotly', 'matplotlib'))\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
