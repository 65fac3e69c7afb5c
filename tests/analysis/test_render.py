"""plot_records picks the plots that apply; the renderers dispatch by kind; unpack checks input."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

import dltune
from dltune.analysis import IMPORTANCE_METHODS
from dltune.analysis import NO_IMPORTANCE
from dltune.analysis import ParamImportances
from dltune.analysis import PlotRecord
from dltune.analysis import param_importances
from dltune.analysis import plot_records
from dltune.analysis import save_png
from dltune.analysis import to_matplotlib
from dltune.analysis import to_plotly
from dltune.analysis import to_plotly_dict
from dltune.analysis._record import unpack
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState


def _tuning_study(n_trials: int = 24) -> dltune.Study:
    """A study shaped like `dltune tune`'s: an optimizer choice, a conditional momentum,
    learning curves, a pruned trial and a diverged one."""
    study = dltune.create_study(direction="maximize", seed=0)
    for i in range(n_trials):
        trial = study.ask()
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        width = trial.suggest_int("width", 8, 64)
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.99)
        acc = 0.0
        for epoch in range(1, 4):
            acc = 1 - abs(math.log10(lr) + 2.5) / 3 - 0.01 * epoch * (opt == "sgd")
            trial.report(float("nan") if i == 5 and epoch == 2 else acc, epoch)
        if i == 3:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, acc + width / 1000)
    return study


def test_plot_records_of_a_tuning_study_cover_every_kind_that_applies() -> None:
    kinds = [r.kind for r in plot_records(_tuning_study())]
    assert kinds == [
        "history",
        "learning_curves",
        "optimizers",
        "importance",
        "parallel",
        "slice",
        "contour",
        "timeline",
    ]


def test_plot_records_are_json_ready_and_every_one_renders() -> None:
    for record in plot_records(_tuning_study()):
        json.dumps(record.to_json(), allow_nan=False)
        figure = to_plotly_dict(record)
        json.dumps(figure, allow_nan=False)
        assert set(figure) >= {"data", "layout"}, record.kind


def test_plot_records_of_two_objectives_has_two_histories_and_a_front() -> None:
    study = dltune.create_study(directions=["minimize", "maximize"], seed=0)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=8)
    kinds = [r.kind for r in plot_records(study)]
    assert kinds[:3] == ["history", "history", "pareto"]
    assert [r.data["objective"] for r in plot_records(study)[:2]] == [0, 1]


def test_plot_records_of_an_empty_study_is_the_history_alone() -> None:
    assert [r.kind for r in plot_records(dltune.create_study())] == ["history"]


def test_plot_records_takes_precomputed_importances_or_none() -> None:
    study = _tuning_study()
    given = param_importances(study, method="ped_anova")
    records = plot_records(study, importance=given)
    chart = next(r for r in records if r.kind == "importance")
    assert list(chart.data["params"]) == list(given.importances)
    assert "importance" not in [r.kind for r in plot_records(study, importance="none")]


def test_plot_records_rejects_an_unknown_importance_method() -> None:
    with pytest.raises(
        ValueError,
        match=r"importance='shap' is not a method; use one of \['ped_anova', 'fanova', 'none'\]",
    ):
        plot_records(_tuning_study(4), importance="shap")


@pytest.mark.parametrize("importance", [3, ["fanova"]])
def test_plot_records_names_importance_when_it_is_no_str(importance: Any) -> None:
    with pytest.raises(TypeError, match=r"importance=.* must be a ParamImportances, a method"):
        plot_records(_tuning_study(4), importance=importance)


def test_plot_records_importance_choices_are_the_methods_and_none() -> None:
    assert (IMPORTANCE_METHODS, NO_IMPORTANCE) == (("ped_anova", "fanova"), "none")
    default = next(r for r in plot_records(_tuning_study(8)) if r.kind == "importance")
    assert default.data["method"] == IMPORTANCE_METHODS[0]


def test_plot_records_of_trials_without_distributions() -> None:
    # The builders take hand-made trials whose params have no distribution; so does this.
    trials = [
        FrozenTrial(
            i,
            i,
            TrialState.COMPLETE,
            [float(i % 5)],
            {"optimizer": ["sgd", "adam"][i % 2], "x": i / 10, "y": i * 7 % 10 / 10},
        )
        for i in range(12)
    ]
    kinds = [r.kind for r in plot_records(trials, ["minimize"])]
    # No optimizer comparison (it needs a categorical distribution); x and y are numeric.
    assert kinds == ["history", "importance", "parallel", "slice", "contour", "timeline"]


def test_plot_records_takes_trials_with_directions() -> None:
    study = _tuning_study(6)
    from_trials = plot_records(study.trials, ["maximize"])
    assert [r.kind for r in from_trials] == [r.kind for r in plot_records(study)]


def test_renderers_reject_what_is_not_a_record() -> None:
    with pytest.raises(TypeError, match=r"record=\{'kind': 'history'\} is not a PlotRecord"):
        to_plotly_dict({"kind": "history"})  # type: ignore[arg-type]  # the error path


def test_renderers_name_an_unknown_kind_and_list_the_known_ones() -> None:
    record = PlotRecord("radar", "Radar", {})
    with pytest.raises(ValueError, match=r"record.kind='radar' has no renderer; known kinds: \["):
        to_plotly_dict(record)
    with pytest.raises(ValueError, match=r"record.kind='radar' has no renderer"):
        to_matplotlib(record)


def test_to_plotly_and_save_png_draw_a_record(tmp_path: object) -> None:
    import pathlib

    record = plot_records(_tuning_study(6))[0]
    figure = to_plotly(record)
    assert len(figure.data) >= 1
    path = save_png(record, pathlib.Path(str(tmp_path)) / "history.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importance_chart_comes_from_the_method_asked_for() -> None:
    records = plot_records(_tuning_study(), importance="fanova")
    chart = next(r for r in records if r.kind == "importance")
    assert chart.data["method"] == "fanova"
    assert isinstance(param_importances(_tuning_study(4)), ParamImportances)


def test_unpack_needs_directions_with_a_list_of_trials() -> None:
    with pytest.raises(ValueError, match=r"directions=None: with a list of trials, pass"):
        unpack([])


def test_unpack_refuses_directions_that_differ_from_the_study() -> None:
    with pytest.raises(ValueError, match=r"directions=\['maximize'\] differ from the study's"):
        unpack(dltune.create_study(), ["maximize"])


def test_unpack_refuses_what_is_neither_a_study_nor_trials() -> None:
    with pytest.raises(TypeError, match=r"source=42 is neither a study nor a list of FrozenTrial"):
        unpack(42, ["minimize"])  # type: ignore[arg-type]  # the error path
    with pytest.raises(TypeError, match=r"source holds 'x', not a FrozenTrial"):
        unpack(["x"], ["minimize"])  # type: ignore[list-item]  # the error path


def test_unpack_parses_directions() -> None:
    trial = FrozenTrial(0, 0, TrialState.COMPLETE, values=[1.0])
    assert unpack([trial], ["MAXIMIZE"]) == ([trial], [StudyDirection.MAXIMIZE])


# -- user strings are drawn as written --------------------------------------------------------

NAME = "<b>x</b>%{y}"
CHOICE = "<a href=x>"
OPTIMIZER = "<i>optimizer"  # still named like one, so the comparison is drawn


def _nasty_study(directions: list[str]) -> dltune.Study:
    """Trials whose parameter name and choice look like plotly markup and a template."""
    study = dltune.create_study(directions=directions, seed=0)
    for i in range(8):
        trial = study.ask()
        x = trial.suggest_float(NAME, 0.0, 1.0)
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        opt = trial.suggest_categorical(OPTIMIZER, [CHOICE, "sgd"])
        trial.report(x, 0)
        value = x + (opt == "sgd")
        study.tell(trial, value if len(directions) == 1 else [value, -value + i % 3])
    return study


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a figure dict, with its path of keys ("data/dimensions/ticktext")."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}/{k}")
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, path)


def test_plotly_dicts_escape_user_strings_everywhere() -> None:
    shown: dict[str, str] = {}
    for directions in (["minimize"], ["minimize", "maximize"]):
        for record in plot_records(_nasty_study(directions)):
            strings = list(_strings(to_plotly_dict(record)))
            shown[record.kind] = shown.get(record.kind, "") + "\n".join(s for _, s in strings)
            for path, string in strings:
                if path == "/data/dimensions/ticktext":
                    # parcoords ticks are plain text in plotly.js: markup shows as written
                    continue
                for raw in (NAME, CHOICE, OPTIMIZER):
                    assert raw not in string, (record.kind, path, raw)
                if path.endswith("/hovertemplate"):  # no user text in a template
                    assert "&lt;" not in string and "&#37;" not in string, record.kind
                else:  # and no template field anywhere else
                    assert "%{" not in string, (record.kind, path, string)
    name, choice = "&lt;b&gt;x&lt;/b&gt;&#37;{y}", "&lt;a href=x&gt;"
    for kind in ("parallel", "slice", "importance", "learning_curves", "pareto"):
        assert name in shown[kind], kind
    for kind in ("optimizers", "slice", "learning_curves"):
        assert choice in shown[kind], kind
    assert f"\n{CHOICE}\n" in shown["parallel"]  # a parcoords tick, plain text
    assert "&lt;i&gt;optimizer" in shown["optimizers"]


def test_matplotlib_draws_dollar_signs_as_written() -> None:
    # Read as mathtext, "\\nosuch" would fail the drawing.
    name, choice = r"$\nosuch$ lr", r"$\frac{$"
    study = dltune.create_study(seed=0)
    for i in range(6):
        trial = study.ask()
        trial.suggest_float(name, 1e-3, 1.0, log=True)
        trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("optimizer", [choice, "sgd"])
        study.tell(trial, float(i))
    for record in plot_records(study):
        figure = to_matplotlib(record)
        figure.draw_without_rendering()  # lays out every text: mathtext would parse here
        if record.kind == "slice":
            labels = [ax.get_xlabel() for ax in figure.axes]
            assert r"\$\nosuch\$ lr" in labels
