"""Trials as flat, JSON-ready rows: the trial table of the report, the dashboard and CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from dltune.analysis._record import finite_or_none
from dltune.analysis._record import worker_of
from dltune.trial import PAUSED
from dltune.trial import FrozenTrial
from dltune.trial import resumed_numbers

__all__ = ["outcome_counts", "param_names", "rows_to_csv", "trial_row"]


def _plain(value: Any) -> Any:
    """A parameter value as JSON has it (non-finite floats become ``None``)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One trial as a flat JSON-ready mapping.

    Keys: ``number``, ``state`` (``"complete"``, ``"running"``, ...), ``outcome`` (the state,
    or ``"diverged"``/``"not_learning"`` for guard-stopped trials), ``values`` (list or
    ``None``; an infinite value is ``None`` there, as JSON has no infinity), ``values_text``
    (the values as text, ``"inf"`` and ``"-inf"`` included, or ``None``: what CSV export
    writes), ``params``, ``last_step``, ``last_value`` (the last reported value), ``start``
    and ``complete`` (epoch seconds or ``None``), ``duration_seconds``, ``worker``,
    ``reason``, ``resume_of``.

    Example:
        >>> from dltune.trial import TrialState
        >>> row = trial_row(FrozenTrial(3, 7, TrialState.COMPLETE, values=[0.5], params={"x": 1}))
        >>> row["number"], row["outcome"], row["values"], row["params"]
        (3, 'complete', [0.5], {'x': 1})
    """
    last_step = trial.last_step
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "outcome": trial.outcome,
        "values": None if trial.values is None else [finite_or_none(v) for v in trial.values],
        "values_text": None if trial.values is None else [repr(float(v)) for v in trial.values],
        "params": {name: _plain(value) for name, value in trial.params.items()},
        "last_step": last_step,
        "last_value": (
            None if last_step is None else finite_or_none(trial.intermediate_values[last_step])
        ),
        "start": None if trial.datetime_start is None else trial.datetime_start.timestamp(),
        "complete": (
            None if trial.datetime_complete is None else trial.datetime_complete.timestamp()
        ),
        "duration_seconds": trial.duration_seconds,
        "worker": worker_of(trial),
        "reason": trial.reason,
        "resume_of": trial.resume_of,
    }


def outcome_counts(trials: Sequence[FrozenTrial]) -> Counter[str]:
    """How many trials ended each way, counting a paused and resumed lineage once.

    A paused trial that a later trial continued counts as :data:`dltune.trial.PAUSED`, not as
    pruned: the continuation carries the lineage's outcome. The counts sum to ``len(trials)``.

    Example:
        >>> from dltune.trial import TrialState
        >>> paused = FrozenTrial(0, 0, TrialState.PRUNED)
        >>> go_on = FrozenTrial(1, 1, TrialState.COMPLETE, [1.0], system_attrs={"resume_of": 0})
        >>> sorted(outcome_counts([paused, go_on, FrozenTrial(2, 2, TrialState.PRUNED)]).items())
        [('complete', 1), ('paused', 1), ('pruned', 1)]
    """
    resumed = resumed_numbers(trials)
    return Counter(PAUSED if t.number in resumed else t.outcome for t in trials)


def param_names(trials: Iterable[FrozenTrial]) -> list[str]:
    """Every parameter name any trial used, in first-use order (conditional ones included)."""
    seen: dict[str, None] = {}
    for trial in trials:
        for name in trial.params:
            seen.setdefault(name, None)
    return list(seen)


def rows_to_csv(
    rows: Sequence[dict[str, Any]],
    params: Sequence[str] | None = None,
    *,
    n_values: int | None = None,
) -> str:
    """Rows of :func:`trial_row` as CSV text: one column per value and per parameter.

    Values are written as numbers (``inf``/``-inf`` included). A text cell that a spreadsheet
    would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return) gets a leading ``'``.

    Args:
        rows: The rows, from :func:`trial_row`.
        params: The parameter columns, in order (default: every parameter of ``rows``).
        n_values: How many value columns: the study's number of objectives, so a filtered
            export keeps the study's columns (default: the most values any row has, at
            least 1).

    Returns:
        The CSV text, header first, ``\n`` line ends.

    Raises:
        TypeError: If ``n_values`` is not an int.
        ValueError: If ``n_values`` is below 1, or a row has more values.

    Example:
        >>> from dltune.trial import TrialState
        >>> rows = [trial_row(FrozenTrial(0, 0, TrialState.COMPLETE, [1.0], {"lr": 0.1}))]
        >>> print(rows_to_csv(rows).splitlines()[0])
        number,state,outcome,value,params_lr,last_step,duration_seconds,worker,reason
    """
    if params is None:
        params = list(dict.fromkeys(name for row in rows for name in row["params"]))
    n_values = _check_n_values(n_values, rows)
    value_cols = ["value"] if n_values == 1 else [f"value_{k}" for k in range(n_values)]
    header = ["number", "state", "outcome", *value_cols, *(f"params_{p}" for p in params)]
    header += ["last_step", "duration_seconds", "worker", "reason"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(name) for name in header])
    for row in rows:
        values = _row_values(row)
        values += [None] * (n_values - len(values))
        cells: list[Any] = [row["number"], row["state"], row["outcome"], *values]
        for name in params:
            value = row["params"].get(name)
            cells.append(json.dumps(value) if isinstance(value, list | dict) else value)
        cells += [row["last_step"], row["duration_seconds"], row["worker"], row["reason"]]
        writer.writerow([_cell(cell) for cell in cells])
    return out.getvalue()


def _row_values(row: dict[str, Any]) -> list[float | None]:
    """The row's values as floats, infinities kept (from ``values_text`` when the row has it)."""
    text = row.get("values_text")
    if text is not None:
        return [float(v) for v in text]
    return list(row["values"] or [])


def _check_n_values(n_values: object, rows: Sequence[dict[str, Any]]) -> int:
    most = max((len(row["values"] or ()) for row in rows), default=0)
    if n_values is None:
        return max(most, 1)
    if isinstance(n_values, bool) or not isinstance(n_values, int):
        raise TypeError(
            f"n_values={n_values!r} must be an int, the study's number of objectives, or None"
        )
    if n_values < 1:
        raise ValueError(f"n_values={n_values!r} must be 1 or more (the number of objectives)")
    if most > n_values:
        raise ValueError(
            f"n_values={n_values!r} is less than the {most} values a row has; pass the "
            "study's number of objectives, len(study.directions)"
        )
    return n_values


# What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: ``None`` as blank, text that would start a formula behind a ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
