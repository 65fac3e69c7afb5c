"""The parameter plot records: parallel coordinates, slices, contour and importance."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

import dltune
from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._plots_params import importance_chart
from dltune.analysis._plots_params import parallel_coordinates
from dltune.analysis._plots_params import param_contour
from dltune.analysis._plots_params import param_slices
from dltune.analysis._record import PlotRecord
from dltune.samplers import RandomSampler
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

LR = FloatDistribution(1e-4, 1e-1, log=True)
LAYERS = IntDistribution(1, 4)
OPT = CategoricalDistribution(("sgd", "adam", "rmsprop"))
MOMENTUM = FloatDistribution(0.0, 0.9)
DISTS: dict[str, BaseDistribution] = {
    "lr": LR,
    "opt": OPT,
    "momentum": MOMENTUM,
    "layers": LAYERS,
}


def make_trial(
    number: int,
    values: list[float] | None,
    params: dict[str, Any],
    state: TrialState = TrialState.COMPLETE,
) -> FrozenTrial:
    dists = {name: DISTS.get(name, FloatDistribution(-100.0, 100.0)) for name in params}
    return FrozenTrial(number, number, state, values, params, dists)


def small_study() -> list[FrozenTrial]:
    """Five trials: momentum only with sgd; trial 3 pruned, trial 5 infinite."""
    return [
        make_trial(0, [0.5], {"lr": 0.01, "opt": "sgd", "momentum": 0.5, "layers": 2}),
        make_trial(1, [0.2], {"lr": 0.001, "opt": "adam", "layers": 3}),
        make_trial(2, [0.9], {"lr": 0.1, "opt": "rmsprop", "layers": 1}),
        make_trial(3, None, {"lr": 0.05, "opt": "sgd"}, TrialState.PRUNED),
        make_trial(4, [0.1], {"lr": 0.0001, "opt": "sgd", "momentum": 0.0, "layers": 4}),
        make_trial(5, [math.inf], {"lr": 0.02, "opt": "adam", "layers": 2}),
    ]


def grid_study(n: int = 8) -> list[FrozenTrial]:
    """Trials on an n x n grid of x, y in [0, 1] with value x + y (lowest at (0, 0))."""
    trials: list[FrozenTrial] = []
    for i in range(n):
        for j in range(n):
            x, y = i / (n - 1), j / (n - 1)
            dists: dict[str, BaseDistribution] = {
                "x": FloatDistribution(0.0, 1.0),
                "y": FloatDistribution(0.0, 1.0),
            }
            number = len(trials)
            trials.append(
                FrozenTrial(number, number, TrialState.COMPLETE, [x + y], {"x": x, "y": y}, dists)
            )
    return trials


def check_json(record: PlotRecord) -> None:
    json.dumps(record.to_json(), allow_nan=False)


def test_parallel_coordinates_lays_out_every_kind_of_axis() -> None:
    record = parallel_coordinates(small_study(), ["minimize"])
    check_json(record)
    assert record.kind == "parallel"
    data = record.data
    assert data["number"] == [0, 1, 2, 4]
    lr, opt, momentum, layers = data["params"]
    assert lr == {
        "name": "lr",
        "type": "numeric",
        "log": True,
        "range": [1e-4, 1e-1],
        "labels": None,
        "values": [0.01, 0.001, 0.1, 0.0001],
    }
    assert opt["type"] == "categorical" and opt["labels"] == ["sgd", "adam", "rmsprop"]
    assert opt["values"] == [0, 1, 2, 0] and opt["log"] is False and opt["range"] == [0, 2]
    assert momentum["values"] == [0.5, None, None, 0.0] and momentum["range"] == [0.0, 0.9]
    assert layers["values"] == [2, 3, 1, 4] and layers["log"] is False
    assert data["objective"] == {
        "name": "value (minimize)",
        "type": "numeric",
        "log": False,
        "range": [0.1, 0.9],
        "labels": None,
        "direction": "minimize",
        "values": [0.5, 0.2, 0.9, 0.1],
    }
    assert record.notes[0].startswith("2 of 6 trials have no finite value")
    assert "'absent' position" in record.notes[1]


def test_parallel_coordinates_orders_params_by_importance_or_as_asked() -> None:
    trials = small_study()
    imp = ParamImportances("ped_anova", 0, {"layers": 0.7, "lr": 0.3}, 4)
    names = [
        a["name"]
        for a in parallel_coordinates(trials, ["minimize"], importance=imp).data["params"]
    ]
    assert names == ["layers", "lr", "opt", "momentum"]
    asked = parallel_coordinates(trials, ["minimize"], params=["opt", "lr"]).data["params"]
    assert [a["name"] for a in asked] == ["opt", "lr"]


def test_parallel_coordinates_caps_the_default_params_at_twelve() -> None:
    params = {f"p{i}": float(i) for i in range(15)}
    trials = [make_trial(0, [1.0], params), make_trial(1, [2.0], params)]
    record = parallel_coordinates(trials, ["minimize"])
    assert [a["name"] for a in record.data["params"]] == [f"p{i}" for i in range(12)]
    assert record.notes == (
        "Showing the first 12 of 15 parameters; pass params=[...] to choose others.",
    )


def test_parallel_coordinates_keeps_best_and_worst_when_capping_trials() -> None:
    trials = [make_trial(i, [float((7 * i) % 10)], {"x": float(i)}) for i in range(10)]
    record = parallel_coordinates(trials, ["minimize"], max_trials=3)
    assert sorted(record.data["objective"]["values"]) == [0.0, 4.0, 9.0]
    assert record.data["number"] == [0, 2, 7]  # in number order
    assert record.notes[0].startswith("Showing 3 of 10 trials, evenly spread")


def test_builders_plot_the_chosen_objective_of_a_multi_objective_study() -> None:
    trials = [make_trial(i, [float(i), float(10 - i)], {"x": float(i)}) for i in range(3)]
    record = parallel_coordinates(trials, ["minimize", "maximize"], objective=1)
    assert record.data["objective"]["values"] == [10.0, 9.0, 8.0]
    assert record.data["objective"]["name"] == "value 1 (maximize)"
    panel = param_slices(trials, ["minimize", "maximize"], objective=1).data["panels"][0]
    assert panel["y"] == [10.0, 9.0, 8.0]


def test_param_slices_hold_only_the_trials_that_used_each_param() -> None:
    record = param_slices(small_study(), ["minimize"])
    check_json(record)
    assert record.kind == "slice"
    lr, opt, momentum, layers = record.data["panels"]
    assert lr["log"] is True and lr["x"] == [0.01, 0.001, 0.1, 0.0001]
    assert lr["y"] == [0.5, 0.2, 0.9, 0.1] and lr["number"] == [0, 1, 2, 4]
    assert opt["x"] == [0, 1, 2, 0] and opt["labels"] == ["sgd", "adam", "rmsprop"]
    assert momentum["x"] == [0.5, 0.0] and momentum["y"] == [0.5, 0.1]
    assert momentum["number"] == [0, 4]
    assert layers["type"] == "numeric" and layers["range"] == [1, 4]
    assert record.data["objective"]["range"] == [0.1, 0.9]
    assert record.notes[-1] == "Each panel shows only the trials that used its parameter."


def test_params_without_distributions_are_typed_by_their_values() -> None:
    trials = [
        FrozenTrial(0, 0, TrialState.COMPLETE, [1.0], {"act": "relu", "flag": True, "w": 3}),
        FrozenTrial(1, 1, TrialState.COMPLETE, [2.0], {"act": "tanh", "flag": 1, "w": 5}),
    ]
    act, flag, width = param_slices(trials, ["minimize"]).data["panels"]
    assert act["labels"] == ["relu", "tanh"] and act["x"] == [0, 1]
    assert flag["labels"] == ["True", "1"] and flag["x"] == [0, 1]  # True and 1 stay apart
    assert width["type"] == "numeric" and width["range"] == [3.0, 5.0] and width["log"] is False


def test_param_contour_surface_is_low_where_the_data_is_low() -> None:
    record = param_contour(grid_study(), ["minimize"], grid=10)
    check_json(record)
    grid = record.data["grid"]
    assert len(grid["x"]) == len(grid["y"]) == 10 and grid["x"][0] == 0.0 and grid["x"][-1] == 1.0
    z = grid["z"]
    assert len(z) == 10 and all(len(row) == 10 for row in z)
    cells = [(v, i, j) for i, row in enumerate(z) for j, v in enumerate(row)]
    assert min(cells)[1:] == (0, 0) and max(cells)[1:] == (9, 9)
    assert z[0][0] < 0.5 < 1.5 < z[9][9]
    assert z[0][9] == pytest.approx(z[9][0], abs=1e-9)  # symmetric data, symmetric surface
    assert record.data["points"]["value"][:2] == [0.0, 1 / 7]
    assert record.title == "Contour of value (minimize) over x and y"


def test_param_contour_leaves_cells_without_near_trials_empty() -> None:
    trials = [t for t in grid_study(20) if t.params["x"] < 0.3]
    z = param_contour(trials, ["minimize"], grid=20).data["grid"]["z"]
    assert all(row[0] is not None and row[-1] is None for row in z)


def test_param_contour_keeps_log_and_categorical_axes() -> None:
    trials = small_study()
    record = param_contour(trials, ["minimize"], params=["lr", "opt"], grid=4)
    data = record.data
    assert data["grid"]["x"] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert data["x"]["log"] is True and data["x"]["range"] == pytest.approx([1e-4, 1e-1])
    assert data["grid"]["y"] == [0.0, 1.0, 2.0] and data["y"]["labels"] == [
        "sgd",
        "adam",
        "rmsprop",
    ]
    assert len(data["grid"]["z"]) == 3 and len(data["grid"]["z"][0]) == 4
    # no smoothing across choices: the only rmsprop trial sets the rmsprop row where it is defined
    row = [v for v in data["grid"]["z"][2] if v is not None]
    assert row and all(v == pytest.approx(0.9) for v in row)
    assert data["points"] == {
        "x": [0.01, 0.001, 0.1, 0.0001],
        "y": [0, 1, 2, 0],
        "value": [0.5, 0.2, 0.9, 0.1],
        "number": [0, 1, 2, 4],
    }


def test_param_contour_picks_numeric_params_by_importance() -> None:
    trials = small_study()
    default = param_contour(trials, ["minimize"], grid=3)
    assert (default.data["x"]["name"], default.data["y"]["name"]) == ("lr", "momentum")
    assert default.notes[-1] == "2 trials did not use both parameters."
    imp = ParamImportances("fanova", 0, {"opt": 0.6, "layers": 0.3, "lr": 0.1}, 4)
    ranked = param_contour(trials, ["minimize"], grid=3, importance=imp)
    assert (ranked.data["x"]["name"], ranked.data["y"]["name"]) == ("layers", "lr")


def test_param_contour_uses_every_trial_but_draws_at_most_max_trials() -> None:
    record = param_contour(grid_study(), ["minimize"], grid=5, max_trials=10)
    assert len(record.data["points"]["number"]) == 10
    assert record.notes == ("Drawing 10 of 64 trial points; the surface uses all.",)


def test_importance_chart_sorts_and_names_the_method() -> None:
    result = ParamImportances("ped_anova", 0, {"wd": 0.1, "lr": 0.6, "opt": 0.3}, 37, ("few",))
    record = importance_chart(result)
    check_json(record)
    assert record.kind == "importance"
    assert record.title == "Parameter importance (PED-ANOVA) over 37 trials"
    assert record.data == {
        "method": "ped_anova",
        "method_label": "PED-ANOVA",
        "objective": 0,
        "n_trials": 37,
        "params": ["lr", "opt", "wd"],
        "importances": [0.6, 0.3, 0.1],
    }
    assert record.notes == ("few",)
    fanova = importance_chart(ParamImportances("fanova", 1, {}, 0))
    assert fanova.title == "Parameter importance (fANOVA) over 0 trials, objective 1"
    assert fanova.notes == ("No parameter to rank.",)


def test_builders_accept_a_study_and_an_empty_one() -> None:
    study = dltune.create_study(sampler=RandomSampler(seed=0))

    def objective(trial: dltune.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        if trial.suggest_categorical("opt", ["sgd", "adam"]) == "sgd":
            trial.suggest_float("momentum", 0.0, 0.9)
        return lr

    empty = parallel_coordinates(study)
    assert empty.data["number"] == [] and empty.notes == (
        "No complete trial with a finite value yet.",
    )
    study.optimize(objective, n_trials=6)
    for record in (parallel_coordinates(study), param_slices(study), param_contour(study, grid=5)):
        check_json(record)
    assert [a["name"] for a in parallel_coordinates(study).data["params"]][:2] == ["lr", "opt"]


def test_records_and_plotly_dicts_import_no_plotting_library() -> None:
    code = (
        "import sys\n"
        "from dltune.analysis._importance_result import ParamImportances\n"
        "from dltune.analysis import _plots_params as p\n"
        "from dltune.trial import FrozenTrial, TrialState\n"
        "ts = [FrozenTrial(i, i, TrialState.COMPLETE, [i], {'x': i, 'y': -i}) for i in range(4)]\n"
        "p.parallel_coordinates(ts, ['minimize']); p.param_slices(ts, ['minimize'])\n"
        "p.param_contour(ts, ['minimize'])\n"
        "p.importance_chart(ParamImportances('ped_anova', 0, {'x': 1.0}, 4))\n"
        "from dltune.analysis import _mpl_params, _plotly_params\n"
        "_plotly_params.PLOTLY['slice'](p.param_slices(ts, ['minimize']))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('plotly', 'matplotlib')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"params": ["lr", "nope"]},
            ValueError,
            r"unknown parameter 'nope'; known parameters: \['lr', 'opt', 'momentum', 'layers'\]",
        ),
        ({"params": "lr"}, TypeError, r"params='lr' must be a list of parameter names"),
        ({"params": ["lr", 3]}, TypeError, r"holds 3, which is not a parameter name"),
        ({"params": []}, ValueError, r"params=\[\] is empty"),
        ({"params": ["lr", "lr"]}, ValueError, r"names a parameter twice"),
        (
            {"objective": 1},
            ValueError,
            r"objective=1 is out of range: the study has 1 objective\(s\), so use 0..0",
        ),
        ({"objective": "0"}, TypeError, r"objective='0' must be an int"),
        ({"objective": True}, TypeError, r"objective=True must be an int"),
        ({"max_trials": 0}, ValueError, r"max_trials=0 must be >= 1"),
        ({"max_trials": 2.5}, TypeError, r"max_trials=2.5 must be an int >= 1"),
        (
            {"importance": {"lr": 1.0}},
            TypeError,
            r"importance=\{'lr': 1.0\} must be a ParamImportances",
        ),
        (
            {"importance": ParamImportances("ped_anova", 1, {}, 0)},
            ValueError,
            r"importance is for objective 1 but objective=0; compute it with objective=0",
        ),
    ],
)
@pytest.mark.parametrize("builder", [parallel_coordinates, param_slices, param_contour])
def test_builders_reject_bad_arguments(
    builder: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        builder(small_study(), ["minimize"], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grid": 1}, ValueError, r"grid=1 must be between 2 and 500 nodes per axis"),
        ({"grid": 501}, ValueError, r"grid=501 must be between 2 and 500"),
        ({"grid": 4.0}, TypeError, r"grid=4.0 must be an int"),
        ({"params": ["lr"]}, ValueError, r"params=\['lr'\] must name exactly two parameters"),
        ({"params": ["lr", "opt", "layers"]}, ValueError, r"must name exactly two parameters"),
    ],
)
def test_param_contour_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        param_contour(small_study(), ["minimize"], **kwargs)


def test_param_contour_needs_two_params() -> None:
    trials = [make_trial(0, [1.0], {"lr": 0.01})]
    with pytest.raises(
        ValueError, match=r"a contour needs two parameters; the study has \['lr'\]"
    ):
        param_contour(trials, ["minimize"])


def test_importance_chart_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match=r"importances=\{'lr': 1.0\} must be a ParamImportances"):
        importance_chart({"lr": 1.0})  # type: ignore[arg-type]
