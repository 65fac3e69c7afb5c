"""JSON bodies, the trial table's filters (the same rules as ``static/table.js``) and the
detail of one trial with its learning curve."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from dltune.analysis._record import finite_or_none
from dltune.analysis._table import trial_row
from dltune.trial import FrozenTrial

__all__ = [
    "STATE_FILTERS",
    "check_state_filter",
    "dumps",
    "js_text",
    "jsonable",
    "row_matches",
    "trial_detail",
]

#: What the state filter accepts: a state, or the outcome of a guard-stopped PRUNED trial.
STATE_FILTERS = (
    "complete",
    "pruned",
    "fail",
    "running",
    "waiting",
    "diverged",
    "not_learning",
)
#: The system attributes a trial's page shows.
SHOWN_SYSTEM_ATTRS = ("reason", "worker", "resume_of", "stopped_by", "hparams")


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities (at any depth) replaced by ``None``.

    Args:
        value: Attributes as stored (dicts, lists, numbers, text; other objects).

    Returns:
        The same structure, JSON-ready: tuples become lists, keys text, other objects their
        ``str``.

    Example:
        >>> jsonable({"a": [1.0, float("nan")], "b": (float("inf"),)})
        {'a': [1.0, None], 'b': [None]}
    """
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def dumps(value: Any) -> bytes:
    """Strict JSON (no NaN tokens) as UTF-8; non-finite numbers become ``null``.

    Args:
        value: What to encode.

    Returns:
        Compact JSON, with text as it is (not ``\\u`` escapes): the pages write it as text.

    Example:
        >>> dumps({"x": float("nan"), "name": "<b>"})
        b'{"x":null,"name":"<b>"}'
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError):  # rare: a NaN or an odd type deep inside; clean it
        text = json.dumps(
            jsonable(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False
        )
    return text.encode("utf-8")


def js_text(value: Any) -> str:
    """A parameter value as JavaScript's ``String(value)`` writes it (the table's filter).

    Args:
        value: A parameter value as JSON carries it.

    Returns:
        Its text in the page's filter.

    Example:
        >>> [js_text(v) for v in (1e-05, 1.0, 0.1, 1e21, 123456789.0, True, None, "adam")]
        ['0.00001', '1', '0.1', '1e+21', '123456789', 'true', 'null', 'adam']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    return str(value)


def _js_number(value: float) -> str:
    """ECMAScript's Number::toString: the shortest round-trip digits (as ``repr`` finds them),
    written in fixed notation for exponents from -6 to 20 and in exponent notation beyond."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _js_number(-value)
    digits_tuple = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    exponent = int(digits_tuple.exponent)
    k = len(digits)
    n = k + exponent  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    sign = "+" if n - 1 >= 0 else "-"
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{sign}{abs(n - 1)}"


def _haystack(row: dict[str, Any]) -> str:
    parts = [str(row["number"]), row["state"], row["outcome"], row["worker"], row["reason"] or ""]
    parts += [f"{name}={js_text(value)}" for name, value in row["params"].items()]
    return " ".join(parts).lower()


def row_matches(row: dict[str, Any], state: str | None, terms: Sequence[str]) -> bool:
    """Whether a :func:`trial_row` passes the table's filters.

    ``state`` keeps the rows in that state or with that outcome; each of ``terms`` (lower
    case) must occur in the row's number, state, outcome, worker, reason or one of its
    ``name=value`` params.

    Args:
        row: The row.
        state: A state or outcome to keep, or ``None`` for any.
        terms: Lower-case words, all of which must occur.

    Returns:
        Whether the table shows the row.

    Example:
        >>> row = {"number": 4, "state": "complete", "outcome": "complete", "worker": "h:1",
        ...        "reason": None, "params": {"lr": 1e-05, "opt": "Adam"}}
        >>> row_matches(row, "complete", ["lr=0.00001", "adam"]), row_matches(row, "fail", [])
        (True, False)
    """
    if state is not None and state not in (row["state"], row["outcome"]):
        return False
    if not terms:
        return True
    haystack = _haystack(row)
    return all(term in haystack for term in terms)


def check_state_filter(state: str | None) -> str | None:
    """The ``state`` query parameter checked.

    Args:
        state: The parameter, or ``None``.

    Returns:
        ``None`` (for ``None``, ``""`` or ``"all"``: every trial) or the state in lower case.

    Raises:
        ValueError: Naming ``state`` and the accepted values.

    Example:
        >>> check_state_filter("Complete"), check_state_filter("all")
        ('complete', None)
    """
    if state is None or state in ("", "all"):
        return None
    if state.lower() not in STATE_FILTERS:
        raise ValueError(f"state={state!r} is not one of {', '.join(STATE_FILTERS)} (or all)")
    return state.lower()


def learning_curve_figure(trial: FrozenTrial) -> dict[str, Any]:
    """A plotly figure of ``trial``'s reported values by step (diverged steps are gaps).

    Args:
        trial: The trial.

    Returns:
        ``{"data": [one scatter trace], "layout": {...}}``.
    """
    steps = sorted(trial.intermediate_values)
    values = [finite_or_none(trial.intermediate_values[s]) for s in steps]
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "x": steps,
        "y": values,
        "name": f"trial {trial.number}",
        "hovertemplate": "step %{x}<br>value %{y}<extra></extra>",
    }
    layout = {
        "title": {"text": f"Learning curve of trial {trial.number}"},
        "xaxis": {"title": {"text": "step"}},
        "yaxis": {"title": {"text": "reported value"}},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "height": 360,
    }
    return {"data": [trace], "layout": layout}


def trial_detail(trial: FrozenTrial) -> dict[str, Any]:
    """Everything a trial's page shows: its row, reports, attributes and learning curve.

    Args:
        trial: The trial.

    Returns:
        Its :func:`~dltune.analysis._table.trial_row` plus ``intermediate_values`` (``[step,
        value]`` pairs, NaN as ``None``), ``distributions`` (their ``repr``),
        ``user_attrs``, the shown ``system_attrs`` and ``figure`` (its learning curve).

    Example:
        >>> from dltune.trial import TrialState
        >>> trial = FrozenTrial(2, 2, TrialState.RUNNING, intermediate_values={0: 0.5})
        >>> detail = trial_detail(trial)
        >>> detail["number"], detail["intermediate_values"], detail["figure"]["data"][0]["x"]
        (2, [[0, 0.5]], [0])
    """
    detail = trial_row(trial)
    steps = sorted(trial.intermediate_values)
    detail["intermediate_values"] = [
        [step, finite_or_none(trial.intermediate_values[step])] for step in steps
    ]
    detail["distributions"] = {name: repr(d) for name, d in trial.distributions.items()}
    detail["user_attrs"] = jsonable(trial.user_attrs)
    detail["system_attrs"] = {
        key: jsonable(trial.system_attrs[key])
        for key in SHOWN_SYSTEM_ATTRS
        if key in trial.system_attrs
    }
    detail["figure"] = learning_curve_figure(trial)
    return detail
