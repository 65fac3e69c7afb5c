"""Search-space distributions: validation, internal form and the unit cube.

A parameter's *external* value is what the objective sees (a float, an int or one of the
categorical choices). Its *internal* value is a float that every storage can hold: the number
itself for floats and ints, the index of the choice for categoricals. Samplers that work in a
continuous box (quasi-random, Gaussian process, CMA-ES) use :meth:`BaseDistribution.to_unit`
and :meth:`BaseDistribution.from_unit`, which map internal values to ``[0, 1]`` and back so that a
uniform draw in the unit interval is a uniform draw over the distribution.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TypeAlias

__all__ = [
    "BaseDistribution",
    "CategoricalChoice",
    "CategoricalDistribution",
    "FloatDistribution",
    "IntDistribution",
    "check_compatible",
    "distribution_from_json",
    "distribution_to_json",
]

CategoricalChoice: TypeAlias = None | bool | int | float | str
_CHOICE_TYPES = (type(None), bool, int, float, str)
_MAX_EXACT_INT = 2**53


class BaseDistribution(abc.ABC):
    """A one-dimensional distribution of a hyperparameter."""

    @abc.abstractmethod
    def to_internal(self, value: Any) -> float:
        """Map an external value to its internal float, raising ``ValueError`` if not contained."""

    @abc.abstractmethod
    def to_external(self, internal: float) -> Any:
        """Map an internal float back to the value the objective sees."""

    @abc.abstractmethod
    def contains(self, internal: float) -> bool:
        """Whether an internal value lies in this distribution."""

    @abc.abstractmethod
    def to_unit(self, internal: float) -> float:
        """Map an internal value into ``[0, 1]``."""

    @abc.abstractmethod
    def from_unit(self, unit: float) -> float:
        """Map a point of ``[0, 1]`` to a contained internal value (the inverse of ``to_unit``)."""

    @abc.abstractmethod
    def is_single(self) -> bool:
        """Whether the distribution holds exactly one value."""

    @abc.abstractmethod
    def _kwargs(self) -> dict[str, Any]:
        """The constructor arguments, for serialization."""


def _check_finite(arg: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{arg}={value!r} must be a finite number")


def _check_low_high(low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"low={low!r} must be <= high={high!r}; swap them")


def _check_step_divides(low: float, high: float, step: float) -> None:
    if step <= 0:
        raise ValueError(f"step={step!r} must be > 0")
    n_steps = round((high - low) / step)
    if not _on_grid(low + n_steps * step, high, low, high):
        fixed = low + math.floor((high - low) / step) * step
        raise ValueError(
            f"step={step!r} does not divide the range high - low = {high - low!r}; "
            f"choose a step that divides it or set high to {fixed!r}"
        )


def _on_grid(x: float, target: float, low: float, high: float) -> bool:
    """Whether ``x`` equals ``target`` up to the rounding error of numbers as large as the
    bounds (a relative tolerance on the step count fails for large bounds and fine steps)."""
    scale = max(abs(low), abs(high), 1e-300)
    return math.isclose(x, target, rel_tol=1e-12, abs_tol=8 * math.ulp(scale))


@dataclass(frozen=True)
class FloatDistribution(BaseDistribution):
    """A real-valued parameter in ``[low, high]``, optionally on a log scale or a grid.

    Args:
        low: Lower bound, inclusive.
        high: Upper bound, inclusive.
        log: Sample uniformly in ``log`` space; needs ``low > 0``.
        step: Grid spacing from ``low``; must divide ``high - low``. Not with ``log``.

    Raises:
        ValueError: If the bounds are not finite, ``low > high``, ``log`` with ``low <= 0``,
            ``log`` with ``step``, or a step that does not divide the range.

    Example:
        >>> FloatDistribution(1e-5, 1e-1, log=True).to_external(1e-3)
        0.001
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        for arg in ("low", "high"):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{arg}={value!r} must be a number")
            object.__setattr__(self, arg, float(value))
            _check_finite(arg, float(value))
        _check_low_high(self.low, self.high)
        if self.log and self.low <= 0.0:
            raise ValueError(f"log=True needs low > 0, got low={self.low!r}")
        if self.step is not None:
            if self.log:
                raise ValueError(f"log=True cannot be combined with step={self.step!r}")
            object.__setattr__(self, "step", float(self.step))
            _check_finite("step", self.step)
            _check_step_divides(self.low, self.high, self.step)

    def _snap(self, x: float) -> float:
        if self.step is not None:
            x = self.low + round((x - self.low) / self.step) * self.step
        return min(max(x, self.low), self.high)

    def to_internal(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"value {value!r} is not a number")
        x = float(value)
        if not self.contains(x):
            raise ValueError(f"value {value!r} is outside {self!r}")
        return x

    def to_external(self, internal: float) -> float:
        return float(internal)

    def contains(self, internal: float) -> bool:
        x = float(internal)
        if not (self.low <= x <= self.high):
            return False
        if self.step is None:
            return True
        k = round((x - self.low) / self.step)
        return _on_grid(self.low + k * self.step, x, self.low, self.high)

    def to_unit(self, internal: float) -> float:
        if self.low == self.high:
            return 0.5
        lo, hi = self._unit_bounds()
        x = math.log(internal) if self.log else float(internal)
        return min(max((x - lo) / (hi - lo), 0.0), 1.0)

    def from_unit(self, unit: float) -> float:
        if self.low == self.high:
            return self.low
        lo, hi = self._unit_bounds()
        x = lo + min(max(float(unit), 0.0), 1.0) * (hi - lo)
        return self._snap(math.exp(x) if self.log else x)

    def _unit_bounds(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        half = 0.5 * self.step if self.step is not None else 0.0
        return self.low - half, self.high + half

    def is_single(self) -> bool:
        return self.low == self.high

    def _kwargs(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class IntDistribution(BaseDistribution):
    """An integer parameter in ``[low, high]``, optionally on a log scale or a grid.

    Args:
        low: Lower bound, inclusive.
        high: Upper bound, inclusive.
        log: Sample uniformly in ``log`` space; needs ``low >= 1``.
        step: Grid spacing from ``low`` (>= 1); must divide ``high - low``. Only 1 with ``log``.

    Raises:
        ValueError: On ``low > high``, ``log`` with ``low < 1``, a step that is not a positive
            integer, ``log`` with ``step != 1``, or a step that does not divide the range.

    Example:
        >>> IntDistribution(16, 256, log=True).contains(64)
        True
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        for arg in ("low", "high", "step"):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    object.__setattr__(self, arg, int(value))
                    continue
                raise TypeError(f"{arg}={value!r} must be an integer")
        for arg in ("low", "high"):
            if abs(getattr(self, arg)) > _MAX_EXACT_INT:
                raise ValueError(
                    f"{arg}={getattr(self, arg)!r} is beyond +-2**53, where floats (the stored "
                    "form) no longer hold every integer; use a smaller range or a log-scaled float"
                )
        _check_low_high(self.low, self.high)
        if self.step < 1:
            raise ValueError(f"step={self.step!r} must be an integer >= 1")
        if self.log and self.low < 1:
            raise ValueError(f"log=True needs low >= 1, got low={self.low!r}")
        if self.log and self.step != 1:
            raise ValueError(f"log=True cannot be combined with step={self.step!r}; use step=1")
        if (self.high - self.low) % self.step != 0:
            fixed = self.low + (self.high - self.low) // self.step * self.step
            raise ValueError(
                f"step={self.step!r} does not divide the range high - low = "
                f"{self.high - self.low!r}; choose a step that divides it or set high to {fixed!r}"
            )

    def to_internal(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"value {value!r} is not an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"value {value!r} is not an integer")
        if not self.contains(float(value)):
            raise ValueError(f"value {value!r} is outside {self!r}")
        return float(value)

    def to_external(self, internal: float) -> int:
        return int(round(internal))

    def contains(self, internal: float) -> bool:
        x = float(internal)
        if not (self.low <= x <= self.high) or not x.is_integer():
            return False
        return (int(x) - self.low) % self.step == 0

    def _unit_bounds(self) -> tuple[float, float]:
        half = 0.5 * self.step
        if self.log:
            return math.log(self.low - half), math.log(self.high + half)
        return self.low - half, self.high + half

    def to_unit(self, internal: float) -> float:
        if self.low == self.high:
            return 0.5
        lo, hi = self._unit_bounds()
        x = math.log(internal) if self.log else float(internal)
        return min(max((x - lo) / (hi - lo), 0.0), 1.0)

    def from_unit(self, unit: float) -> float:
        if self.low == self.high:
            return float(self.low)
        lo, hi = self._unit_bounds()
        x = lo + min(max(float(unit), 0.0), 1.0) * (hi - lo)
        if self.log:
            x = math.exp(x)
        k = round((x - self.low) / self.step)
        k = min(max(k, 0), (self.high - self.low) // self.step)
        return float(self.low + k * self.step)

    def is_single(self) -> bool:
        return self.low == self.high

    def _kwargs(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True, eq=False)
class CategoricalDistribution(BaseDistribution):
    """A parameter taking one of a fixed, ordered tuple of choices.

    Args:
        choices: At least one distinct choice, each ``None``, a bool, an int, a float or a str
            (these round-trip through every storage exactly).

    Raises:
        ValueError: If ``choices`` is empty or holds duplicates.
        TypeError: If a choice is of another type (a list, a dict, an object).

    Example:
        >>> CategoricalDistribution(("sgd", "adam")).to_external(1.0)
        'adam'
    """

    choices: tuple[CategoricalChoice, ...]

    def __post_init__(self) -> None:
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Sequence):
            raise TypeError(f"choices={self.choices!r} must be a list or tuple of choices")
        choices = tuple(self.choices)
        if not choices:
            raise ValueError("choices=() is empty; give at least one choice")
        for choice in choices:
            if not isinstance(choice, _CHOICE_TYPES):
                raise TypeError(
                    f"choice {choice!r} of type {type(choice).__name__} is not supported; "
                    "choices must be None, bool, int, float or str (map other objects by name)"
                )
            if isinstance(choice, float) and math.isnan(choice):
                raise ValueError("choice nan is not supported: it never equals itself")
        keys = [_choice_key(c) for c in choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"choices={choices!r} holds duplicates; each choice must be distinct")
        object.__setattr__(self, "choices", choices)

    def __eq__(self, other: object) -> bool:
        # True == 1 in Python, but a choice of True and a choice of 1 are different choices.
        if not isinstance(other, CategoricalDistribution):
            return NotImplemented
        return self._keys() == other._keys()

    def __hash__(self) -> int:
        return hash(self._keys())

    def _keys(self) -> tuple[tuple[str, Any], ...]:
        return tuple((type(c).__name__, c) for c in self.choices)

    @classmethod
    def of(cls, choices: Sequence[CategoricalChoice]) -> CategoricalDistribution:
        """Build from any sequence of choices (a list, say), refusing a bare string.

        Raises:
            TypeError: If ``choices`` is a str or not a sequence.
        """
        if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
            raise TypeError(f"choices={choices!r} must be a list or tuple of choices")
        return cls(tuple(choices))

    def index(self, value: Any) -> int:
        """The position of ``value`` in ``choices``, raising ``ValueError`` if absent."""
        try:
            key = _choice_key(value)
        except TypeError:
            raise ValueError(f"value {value!r} is not one of {self.choices!r}") from None
        for i, choice in enumerate(self.choices):
            if _choice_key(choice) == key:
                return i
        raise ValueError(f"value {value!r} is not one of {self.choices!r}")

    def to_internal(self, value: Any) -> float:
        return float(self.index(value))

    def to_external(self, internal: float) -> CategoricalChoice:
        return self.choices[int(internal)]

    def contains(self, internal: float) -> bool:
        x = float(internal)
        return x.is_integer() and 0 <= x < len(self.choices)

    def to_unit(self, internal: float) -> float:
        return (float(internal) + 0.5) / len(self.choices)

    def from_unit(self, unit: float) -> float:
        n = len(self.choices)
        unit = min(max(float(unit), 0.0), 1.0)
        return float(min(int(math.floor(unit * n)), n - 1))

    def is_single(self) -> bool:
        return len(self.choices) == 1

    def _kwargs(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


def _choice_key(value: Any) -> tuple[str, Any]:
    """A key under which ``True`` and ``1`` (equal in Python) stay different choices."""
    if not isinstance(value, _CHOICE_TYPES):
        raise TypeError(f"{value!r} is not a supported choice")
    return (type(value).__name__ if isinstance(value, bool | type(None) | str) else "num", value)


_KINDS: dict[str, type[BaseDistribution]] = {
    "float": FloatDistribution,
    "int": IntDistribution,
    "categorical": CategoricalDistribution,
}


def distribution_to_json(distribution: BaseDistribution) -> str:
    """Serialize a distribution to a compact JSON string.

    Example:
        >>> distribution_to_json(IntDistribution(1, 4))
        '{"kind":"int","low":1,"high":4,"log":false,"step":1}'
    """
    kind = next(k for k, cls in _KINDS.items() if isinstance(distribution, cls))
    return json.dumps({"kind": kind, **distribution._kwargs()}, separators=(",", ":"))


def distribution_from_json(text: str) -> BaseDistribution:
    """Parse what :func:`distribution_to_json` wrote.

    Raises:
        ValueError: If the text is not a serialized distribution.
    """
    try:
        data = json.loads(text)
        kind = data.pop("kind")
        cls = _KINDS[kind]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a serialized distribution: {text!r}") from exc
    try:
        if cls is CategoricalDistribution:
            choices = data.pop("choices")
            if data:
                raise TypeError(f"unexpected keys {sorted(data)!r}")
            return CategoricalDistribution.of(choices)
        return cls(**data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a serialized distribution: {text!r} ({exc})") from exc


def check_compatible(name: str, old: BaseDistribution, new: BaseDistribution) -> None:
    """Refuse a parameter name reused in one study with an incompatible distribution.

    Ranges and steps may change between trials (a define-by-run space often makes them depend on
    other parameters); the kind, the log scale and categorical choices may not, since samplers
    learn from values of the same kind on the same scale.

    Raises:
        ValueError: Naming the parameter and both distributions.
    """
    if old == new:
        return
    same_kind = type(old) is type(new)
    if same_kind and isinstance(old, CategoricalDistribution):
        same_kind = old == new
    elif same_kind:
        same_kind = getattr(old, "log", False) == getattr(new, "log", False)
    if not same_kind:
        raise ValueError(
            f"parameter {name!r} was already defined in this study as {old!r}; "
            f"{new!r} is incompatible with it (the kind, log scale and categorical choices "
            "must stay the same); use a different name for the new distribution"
        )
