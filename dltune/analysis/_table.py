"""Trials as flat, JSON-ready rows: the trial table of the report, the dashboard and CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from dltune.analysis._record import finite_or_none
from dltune.analysis._record import worker_of
from dltune.trial import FrozenTrial

__all__ = ["param_names", "rows_to_csv", "trial_row"]


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
    ``None``), ``params``, ``last_step``, ``last_value`` (the last reported value),
    ``start`` and ``complete`` (epoch seconds or ``None``), ``duration_seconds``, ``worker``,
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


def param_names(trials: Iterable[FrozenTrial]) -> list[str]:
    """Every parameter name any trial used, in first-use order (conditional ones included)."""
    seen: dict[str, None] = {}
    for trial in trials:
        for name in trial.params:
            seen.setdefault(name, None)
    return list(seen)


def rows_to_csv(rows: Sequence[dict[str, Any]], params: Sequence[str] | None = None) -> str:
    """Rows of :func:`trial_row` as CSV text: one column per value and per parameter.

    Example:
        >>> from dltune.trial import TrialState
        >>> rows = [trial_row(FrozenTrial(0, 0, TrialState.COMPLETE, [1.0], {"lr": 0.1}))]
        >>> print(rows_to_csv(rows).splitlines()[0])
        number,state,outcome,value,params_lr,last_step,duration_seconds,worker,reason
    """
    if params is None:
        params = list(dict.fromkeys(name for row in rows for name in row["params"]))
    n_values = max((len(row["values"] or ()) for row in rows), default=1) or 1
    value_cols = ["value"] if n_values == 1 else [f"value_{k}" for k in range(n_values)]
    header = ["number", "state", "outcome", *value_cols, *(f"params_{p}" for p in params)]
    header += ["last_step", "duration_seconds", "worker", "reason"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = list(row["values"] or [])
        values += [None] * (n_values - len(values))
        cells: list[Any] = [row["number"], row["state"], row["outcome"], *values]
        for name in params:
            value = row["params"].get(name)
            cells.append(json.dumps(value) if isinstance(value, list | dict) else value)
        cells += [row["last_step"], row["duration_seconds"], row["worker"], row["reason"]]
        writer.writerow(["" if cell is None else cell for cell in cells])
    return out.getvalue()
