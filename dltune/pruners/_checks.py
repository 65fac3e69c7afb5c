"""Argument checks the pruners' constructors share: every message names the argument, shows the
bad value and says what is accepted."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["RANK", "check_int", "check_number", "check_objective"]

#: The ``objective`` that compares trials by non-dominated rank instead of one objective.
RANK = "rank"


def check_int(arg: str, value: Any, minimum: int) -> int:
    """``value`` if it is an int (not a bool) ``>= minimum``.

    Raises:
        TypeError: If it is not an int.
        ValueError: If it is below ``minimum``.

    Example:
        >>> check_int("patience", 3, 1)
        3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{arg}={value!r} must be >= {minimum}")
    return value


def check_number(arg: str, value: Any, *, minimum: float | None = None) -> float:
    """``value`` as a float if it is a finite number (not a bool), ``>= minimum`` if given.

    Raises:
        TypeError: If it is not a number.
        ValueError: If it is NaN, infinite or below ``minimum``.

    Example:
        >>> check_number("min_delta", 0, minimum=0.0)
        0.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{arg}={value!r} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{arg}={value!r} must be a finite number")
    if minimum is not None and number < minimum:
        raise ValueError(f"{arg}={value!r} must be >= {minimum!r}")
    return number


def objective_hint(n_objectives: int | None, *, allow_rank: bool) -> str:
    """What an ``objective`` argument accepts, for error messages."""
    if n_objectives is None:
        index = "an objective index (an int >= 0)"
    elif n_objectives == 1:
        index = "0"
    else:
        index = f"an objective index 0..{n_objectives - 1}"
    return f"use {index} or {RANK!r}" if allow_rank else f"use {index}"


def check_objective(value: Any, *, allow_rank: bool = True) -> int | str:
    """An ``objective`` argument: an objective index, or ``"rank"`` where allowed.

    Whether an index exists in the study is checked when the pruner first sees the study.

    Raises:
        TypeError: If it is neither an int nor a str.
        ValueError: For a negative index or another string (or ``"rank"`` where not allowed).

    Example:
        >>> check_objective("rank"), check_objective(1)
        ('rank', 1)
    """
    hint = objective_hint(None, allow_rank=allow_rank)
    if isinstance(value, str):
        if value == RANK and allow_rank:
            return value
        raise ValueError(f"objective={value!r} is not valid; {hint}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"objective={value!r} must be an int or a str; {hint}")
    if value < 0:
        raise ValueError(f"objective={value!r} is not valid; {hint}")
    return value
