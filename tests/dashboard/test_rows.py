"""JSON bodies, the table's filter rules and a trial's detail."""

from __future__ import annotations

import math

import pytest

from dltune.dashboard._rows import check_state_filter
from dltune.dashboard._rows import dumps
from dltune.dashboard._rows import js_text
from dltune.dashboard._rows import row_matches
from dltune.dashboard._rows import trial_detail
from dltune.trial import FrozenTrial
from dltune.trial import TrialState


def row(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "number": 12,
        "state": "pruned",
        "outcome": "diverged",
        "worker": "gpu-box:4242",
        "reason": "Diverged at step 3: loss=nan",
        "params": {"lr": 0.001, "optimizer": "AdamW", "layers": 3, "bn": True},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("state", "terms", "kept"),
    [
        (None, [], True),
        ("pruned", [], True),
        ("diverged", [], True),
        ("complete", [], False),
        (None, ["adamw"], True),
        (None, ["lr=0.001", "layers=3"], True),
        (None, ["lr=0.01"], False),
        (None, ["bn=true"], True),
        (None, ["gpu-box"], True),
        (None, ["loss=nan", "12"], True),
        (None, ["adamw", "sgd"], False),
        (None, ["lr=0.001 layers"], False),  # one term never spans two fields
    ],
)
def test_row_matches(state: str | None, terms: list[str], kept: bool) -> None:
    assert row_matches(row(), state, terms) is kept


def test_row_matches_missing_reason_and_null_param() -> None:
    assert row_matches(row(reason=None, params={"x": None}), None, ["x=null"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (123.456, "123.456"),
        (1e20, "100000000000000000000"),
        (1.2345e21, "1.2345e+21"),
        (-2.5e-9, "-2.5e-9"),
        (-0.0, "0"),
        (100.0, "100"),
        (5e-324, "5e-324"),
        (math.inf, "Infinity"),
        (math.nan, "NaN"),
        (False, "false"),
        (7, "7"),
    ],
)
def test_js_text_writes_numbers_as_javascript_does(value: object, text: str) -> None:
    assert js_text(value) == text


@pytest.mark.parametrize("state", [None, "", "all"])
def test_no_state_filter(state: str | None) -> None:
    assert check_state_filter(state) is None


def test_state_filter_is_case_insensitive_and_checked() -> None:
    assert check_state_filter("NOT_LEARNING") == "not_learning"
    with pytest.raises(ValueError, match=r"state='ok' is not one of complete, pruned, fail"):
        check_state_filter("ok")


def test_dumps_is_strict_json_even_with_nan_deep_inside() -> None:
    assert dumps({"a": [1.5, {"b": math.inf}], "c": (1, 2)}) == b'{"a":[1.5,{"b":null}],"c":[1,2]}'
    assert dumps({"x": object()}).startswith(b'{"x":"<object object')


def test_trial_detail_shows_selected_system_attrs_and_gaps_for_nan() -> None:
    trial = FrozenTrial(
        4,
        9,
        TrialState.PRUNED,
        intermediate_values={0: 1.0, 2: math.nan, 1: 0.5},
        system_attrs={"stopped_by": "diverged", "reason": "nan", "other": 1, "resume_of": 2},
    )
    detail = trial_detail(trial)
    assert detail["intermediate_values"] == [[0, 1.0], [1, 0.5], [2, None]]
    assert detail["system_attrs"] == {"stopped_by": "diverged", "reason": "nan", "resume_of": 2}
    assert detail["resume_of"] == 2
    assert detail["figure"]["data"][0]["y"] == [1.0, 0.5, None]
    assert detail["figure"]["layout"]["title"]["text"] == "Learning curve of trial 4"
