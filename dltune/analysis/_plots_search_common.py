"""Shared pieces of the "how the search went" plot records and their two renderers.

Colours live here (not in a renderer) so plotly and matplotlib draw each outcome alike; nothing
here imports a plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dltune.analysis._record import PlotRecord
from dltune.analysis._text import plotly_text
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

#: Colour of each trial outcome, the same in every plot and in both renderers.
OUTCOME_COLORS: dict[str, str] = {
    "complete": "#1f77b4",
    "pruned": "#9e9e9e",
    "diverged": "#d62728",
    "not_learning": "#9467bd",
    "fail": "#000000",
    "running": "#ff7f0e",
    "waiting": "#c7c7c7",
}
#: Legend names of the outcomes.
OUTCOME_NAMES: dict[str, str] = {
    "complete": "complete",
    "pruned": "pruned",
    "diverged": "diverged",
    "not_learning": "not learning",
    "fail": "failed",
    "running": "running",
    "waiting": "waiting",
}
#: Colour of best-so-far lines, the best trial's curve and the Pareto front.
BEST_COLOR = "#2ca02c"
#: Above this many points plotly draws with WebGL (``scattergl``), below as SVG.
GL_THRESHOLD = 2000


def direction_name(direction: StudyDirection) -> str:
    """``"minimize"`` or ``"maximize"``."""
    return direction.name.lower()


def is_better(a: float, b: float | None, maximize: bool) -> bool:
    """Whether ``a`` beats ``b`` (``None`` is beaten by anything)."""
    return b is None or (a > b if maximize else a < b)


def epoch(moment: datetime | None) -> float | None:
    """A naive local datetime as epoch seconds, or ``None``."""
    return None if moment is None else moment.timestamp()


def plain(value: Any) -> Any:
    """A parameter value as JSON holds it (non-finite floats become ``None``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def plain_params(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's params as JSON-ready values."""
    return {name: plain(value) for name, value in trial.params.items()}


def value_of(trial: FrozenTrial, objective: int) -> float:
    """The value of a trial that ``objective_values`` returned (COMPLETE, so it has values)."""
    assert trial.values is not None  # objective_values keeps only COMPLETE trials with values
    return float(trial.values[objective])


def last_value(trial: FrozenTrial) -> float | None:
    """The value reported at the trial's last step, or ``None`` (none, NaN or infinite)."""
    values = trial.intermediate_values
    if not values:
        return None
    value = float(values[max(values)])
    return value if math.isfinite(value) else None


def plural(n: int, word: str) -> str:
    """``"1 trial"``, ``"3 trials"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- plotly figure helpers (plain dicts, no plotly import) ---------------------------------

#: Outcomes in drawing order: the grey ones first, so complete and running curves lie on top.
DRAW_ORDER = ("pruned", "not_learning", "fail", "diverged", "waiting", "complete", "running")


def scatter_type(n_points: int) -> str:
    """``"scattergl"`` above ``GL_THRESHOLD`` points (WebGL), else ``"scatter"`` (SVG)."""
    return "scattergl" if n_points > GL_THRESHOLD else "scatter"


def base_layout(record: PlotRecord, x_title: str, y_title: str) -> dict[str, Any]:
    """The layout every figure starts from: title, axis titles, legend (all escaped)."""
    return {
        "title": {"text": plotly_text(record.title)},
        "xaxis": {"title": {"text": plotly_text(x_title)}},
        "yaxis": {"title": {"text": plotly_text(y_title)}},
        "hovermode": "closest",
        "legend": {"groupclick": "togglegroup"},
        "margin": {"t": 60, "r": 20},
    }


def empty_message(layout: dict[str, Any], text: str) -> None:
    """Put ``text`` (escaped) in the middle of an empty figure, so it does not look broken."""
    layout["annotations"] = [
        {
            "text": plotly_text(text),
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "showarrow": False,
            "font": {"size": 16},
        }
    ]


def by_outcome(outcomes: Sequence[str]) -> dict[str, list[int]]:
    """The indices of each outcome, in ``DRAW_ORDER`` (unknown outcomes last)."""
    groups: dict[str, list[int]] = {}
    for i, outcome in enumerate(outcomes):
        groups.setdefault(outcome, []).append(i)
    order = {name: k for k, name in enumerate(DRAW_ORDER)}
    return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order))))


def pick(values: Sequence[Any], indices: Iterable[int]) -> list[Any]:
    """``values`` at ``indices``."""
    return [values[i] for i in indices]
