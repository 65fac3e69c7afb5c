"""Where a record's axis values go on a drawn axis: shared by the plotly and matplotlib drawings.

Parallel coordinates draw each parameter on its own vertical axis, and neither plotly's
``parcoords`` nor a hand-made matplotlib drawing has log or categorical axes there, so both
renderers place values in *axis coordinates*: ``log10`` of the value on a log axis, the code on
a categorical one, the value itself otherwise. A trial that did not use a conditional parameter
goes to a dedicated ``absent`` position just below the axis range, with its own tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ABSENT", "AxisScale", "axis_scale", "nice_ticks", "tick_text"]

#: The tick label of the position of absent values.
ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class AxisScale:
    """A record axis laid out in axis coordinates.

    Attributes:
        low: The lower end of the drawn range (the ``absent`` position when there is one).
        high: The upper end of the drawn range.
        tickvals: Tick positions, in axis coordinates.
        ticktext: Their labels, in the parameter's own values.
        absent: Where ``None`` values go, or ``None`` when the axis has none.
        log: Whether positions are ``log10`` of the values.
    """

    low: float
    high: float
    tickvals: list[float]
    ticktext: list[str]
    absent: float | None
    log: bool

    def position(self, value: Any) -> float:
        """Where ``value`` (a number, a code or ``None``) goes on the axis."""
        if value is None:
            assert self.absent is not None  # axis_scale saw every value
            return self.absent
        return math.log10(value) if self.log else float(value)

    def unit(self, value: Any) -> float:
        """:meth:`position`, mapped to ``[0, 1]`` over the drawn range."""
        return (self.position(value) - self.low) / (self.high - self.low)


def tick_text(value: float) -> str:
    """A short label for a tick value.

    Example:
        >>> tick_text(0.30000000000000004), tick_text(1e-05), tick_text(250.0)
        ('0.3', '1e-05', '250')
    """
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values in ``[low, high]`` (steps of 1, 2, 2.5 or 5 times 10^k).

    Example:
        >>> nice_ticks(0.0, 1.0)
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not high > low:
        return [low]
    raw = (high - low) / n
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = magnitude * next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks of a log axis running from ``10**low`` to ``10**high``: decades when it spans
    three or more, else 1-2-5 steps, else round values of the parameter itself."""
    decades = list(range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1))
    if len(decades) >= 3:
        return [float(d) for d in decades], [tick_text(10.0**d) for d in decades]
    values = [
        m * 10.0**d
        for d in range(math.floor(low) - 1, math.ceil(high) + 1)
        for m in (1.0, 2.0, 5.0)
        if low - 1e-9 <= math.log10(m) + d <= high + 1e-9
    ]
    if len(values) < 3:
        values = [v for v in nice_ticks(10.0**low, 10.0**high) if v > 0]
    return [math.log10(v) for v in values], [tick_text(v) for v in values]


def axis_scale(axis: Mapping[str, Any], values: Sequence[Any] = ()) -> AxisScale:
    """Lay out a record axis (``type``, ``log``, ``range``, ``labels``) that holds ``values``.

    Example:
        >>> axis = {"type": "categorical", "log": False, "range": [0, 1], "labels": ["a", "b"]}
        >>> scale = axis_scale(axis, [0, None])
        >>> scale.ticktext, scale.position(None), scale.low
        (['absent', 'a', 'b'], -1.0, -1.0)
    """
    has_absent = any(v is None for v in values)
    if axis["type"] == "categorical":
        labels = list(axis["labels"])
        tickvals = [float(i) for i in range(len(labels))]
        low, high = 0.0, float(max(len(labels) - 1, 0))
        if high <= low:
            low, high = low - 0.5, high + 0.5
        if not has_absent:
            return AxisScale(low, high, tickvals, labels, None, False)
        return AxisScale(-1.0, high, [-1.0, *tickvals], [ABSENT, *labels], -1.0, False)
    log = bool(axis["log"])
    low, high = _numeric_range(axis, values, log)
    if log:
        tickvals, ticktext = _log_ticks(low, high)
    else:
        tickvals = nice_ticks(low, high)
        ticktext = [tick_text(v) for v in tickvals]
    if not has_absent:
        return AxisScale(low, high, tickvals, ticktext, None, log)
    absent = low - 0.15 * (high - low)
    return AxisScale(absent, high, [absent, *tickvals], [ABSENT, *ticktext], absent, log)


def _numeric_range(
    axis: Mapping[str, Any], values: Sequence[Any], log: bool
) -> tuple[float, float]:
    bounds = axis.get("range") or [v for v in values if v is not None] or [0.0, 1.0]
    low, high = float(min(bounds)), float(max(bounds))
    if log:
        low, high = math.log10(low), math.log10(high)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return low, high
