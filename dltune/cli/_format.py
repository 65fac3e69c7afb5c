"""Table and JSON output."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

from dltune.cli._common import MAX_CELL_WIDTH

if TYPE_CHECKING:
    from dltune.trial import FrozenTrial


def _float(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def _values(values: Sequence[float] | None) -> str:
    return "-" if values is None else ", ".join(_float(v) for v in values)


def _param(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_param(v)}" for k, v in params.items()) or "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _cut(text: str, width: int = MAX_CELL_WIDTH) -> str:
    text = " ".join(text.split())  # a cell is one line
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns, long cells cut to :data:`MAX_CELL_WIDTH` characters."""
    cells = [[_cut(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = [list(headers), ["-" * w for w in widths], *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _strict(value: Any) -> Any:
    """Replace non-finite floats (anywhere inside) by "inf", "-inf" or "nan" for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(data: Any) -> str:
    """Strict JSON (no NaN/Infinity tokens); objects JSON lacks are written with ``str``."""
    return json.dumps(_strict(data), indent=2, default=str, allow_nan=False)


def _trial_record(trial: FrozenTrial, n_objectives: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "outcome": trial.outcome,
    }
    if n_objectives == 1:
        record["value"] = None if trial.values is None else trial.values[0]
    else:
        record["values"] = trial.values
    record.update(
        params=trial.params,
        duration_seconds=trial.duration_seconds,
        reason=trial.reason,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        user_attrs=trial.user_attrs,
    )
    return record


def _state(trial: FrozenTrial) -> str:
    """The state, with the guard's verdict for a trial it stopped: 'PRUNED (diverged)'."""
    outcome = trial.outcome
    if outcome in ("diverged", "not_learning"):
        return f"{trial.state.name} ({outcome.replace('_', ' ')})"
    return trial.state.name


def _trial_rows(trials: Sequence[FrozenTrial]) -> list[list[str]]:
    return [
        [
            str(t.number),
            _state(t),
            _values(t.values),
            _params(t.params),
            _duration(t.duration_seconds),
            t.reason or "-",
        ]
        for t in trials
    ]


_TRIAL_HEADERS = ("NUMBER", "STATE", "VALUE", "PARAMS", "DURATION", "REASON")


# -- the commands ----------------------------------------------------------------------------
