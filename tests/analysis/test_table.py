"""Trials as rows (trial_row) and CSV export (rows_to_csv)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest

from dltune.analysis import rows_to_csv
from dltune.analysis import trial_row
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

C = TrialState.COMPLETE


def _table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_trial_row_keeps_values_json_safe_and_their_text_exact() -> None:
    row = trial_row(FrozenTrial(0, 0, C, [math.inf, -math.inf, 0.25]))
    assert row["values"] == [None, None, 0.25]
    assert row["values_text"] == ["inf", "-inf", "0.25"]
    json.dumps(row, allow_nan=False)
    running = trial_row(FrozenTrial(1, 1, TrialState.RUNNING))
    assert running["values"] is None and running["values_text"] is None


def test_csv_writes_infinite_values_as_inf() -> None:
    rows = [trial_row(FrozenTrial(n, n, C, [v])) for n, v in enumerate([math.inf, -math.inf])]
    table = _table(rows_to_csv(rows))
    assert [line[3] for line in table] == ["value", "inf", "-inf"]


def test_csv_keeps_the_study_s_value_columns_when_rows_are_filtered() -> None:
    # A 2-objective study filtered down to trials without values still has value_0, value_1.
    rows = [trial_row(FrozenTrial(0, 0, TrialState.FAIL))]
    header = _table(rows_to_csv(rows, n_values=2))[0]
    assert header[3:5] == ["value_0", "value_1"]
    assert _table(rows_to_csv(rows))[0][3] == "value"
    assert _table(rows_to_csv(rows, n_values=2))[1][3:5] == ["", ""]


@pytest.mark.parametrize(
    ("n_values", "error", "match"),
    [
        (0, ValueError, r"n_values=0 must be 1 or more"),
        (1, ValueError, r"n_values=1 is less than the 2 values a row has"),
        ("2", TypeError, r"n_values='2' must be an int"),
        (True, TypeError, r"n_values=True must be an int"),
    ],
)
def test_csv_rejects_a_bad_n_values(n_values: Any, error: type[Exception], match: str) -> None:
    rows = [trial_row(FrozenTrial(0, 0, C, [1.0, 2.0]))]
    with pytest.raises(error, match=match):
        rows_to_csv(rows, n_values=n_values)


def test_csv_defuses_text_a_spreadsheet_would_run_as_a_formula() -> None:
    params = {"act": "=HYPERLINK(1)", "b": "+1", "c": "-x", "d": "@SUM(A1)", "e": "plain"}
    trial = FrozenTrial(0, 0, TrialState.FAIL, None, params, system_attrs={"worker": "\tw"})
    rows = [trial_row(trial), trial_row(FrozenTrial(1, 1, C, [-0.5], {"b": -2.0}))]
    table = _table(rows_to_csv(rows))
    cells = dict(zip(table[0], table[1], strict=True))
    assert [cells[f"params_{k}"] for k in "act b c d e".split()] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-x",
        "'@SUM(A1)",
        "plain",
    ]
    assert cells["worker"] == "'\tw"
    numbers = dict(zip(table[0], table[2], strict=True))
    assert (numbers["value"], numbers["params_b"]) == ("-0.5", "-2.0")  # numbers stay numbers


def test_csv_of_rows_without_values_text_still_reads_values() -> None:
    row = trial_row(FrozenTrial(0, 0, C, [0.5], {"lr": 0.1}))
    del row["values_text"]  # a hand-made row: the JSON-safe values are all there is
    assert _table(rows_to_csv([row]))[1][3] == "0.5"
