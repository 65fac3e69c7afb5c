"""Config problems: where each one is, what is wrong, and what would be accepted."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dltune.exceptions import DLTuneError

__all__ = ["ConfigError", "Loc", "Problem", "ProblemLog", "Problems", "format_loc"]

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """Render a location as a path: dots for mapping keys, ``[i]`` for list items.

    Example:
        >>> format_loc(("space", "optimizer", "choices", 2))
        'space.optimizer.choices[2]'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "config"


@dataclass(frozen=True)
class Problem:
    """One problem of a config: its location and the text after the path."""

    loc: Loc
    text: str

    def render(self) -> str:
        """``<path>: <text>``."""
        return f"{format_loc(self.loc)}: {self.text}"

    def under(self, prefix: Loc) -> Problem:
        """The same problem, located under ``prefix``."""
        return Problem((*prefix, *self.loc), self.text)

    @classmethod
    def bad(cls, loc: Loc, problem: str, got: Any, accepted: str) -> Problem:
        """``<problem> (got <got!r>; <accepted>)``."""
        return cls(loc, f"{problem} (got {got!r}; {accepted})")

    @classmethod
    def missing(cls, loc: Loc, problem: str, accepted: str) -> Problem:
        """``<problem> (missing; <accepted>)``, for a required key that is absent."""
        return cls(loc, f"{problem} (missing; {accepted})")

    @classmethod
    def unknown(cls, loc: Loc, kind: str, name: Any, valid: Sequence[str], listed: str) -> Problem:
        """``unknown <kind> <name!r>[, did you mean ...?] (valid names: <listed>)``."""
        return cls(
            loc, f"unknown {kind} {name!r}{_did_you_mean(name, valid)} (valid names: {listed})"
        )

    @classmethod
    def unknown_key(cls, loc: Loc, key: Any, value: Any, accepted: Sequence[str]) -> Problem:
        """``unknown key <key!r>[, did you mean ...?] (got <value!r>; accepted keys: ...)``."""
        keys = ", ".join(accepted) if accepted else "none"
        hint = _did_you_mean(key, accepted)
        return cls(loc, f"unknown key {key!r}{hint} (got {value!r}; accepted keys: {keys})")


class ProblemLog(list[Problem]):
    """A list of problems with one-line constructors (see :class:`Problem`)."""

    def bad(self, loc: Loc, problem: str, got: Any, accepted: str) -> None:
        self.append(Problem.bad(loc, problem, got, accepted))

    def missing(self, loc: Loc, problem: str, accepted: str) -> None:
        self.append(Problem.missing(loc, problem, accepted))

    def unknown(self, loc: Loc, kind: str, name: Any, valid: Sequence[str], listed: str) -> None:
        self.append(Problem.unknown(loc, kind, name, valid, listed))

    def unknown_key(self, loc: Loc, key: Any, value: Any, accepted: Sequence[str]) -> None:
        self.append(Problem.unknown_key(loc, key, value, accepted))


def _did_you_mean(name: Any, valid: Sequence[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


class Problems(ValueError):
    """Problems found by one validator, with locations relative to what it validated.

    Raised inside pydantic validators; the config loader expands them under the validator's
    location (pydantic keeps the exception in the error's context).
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.render() for p in self.problems))


class ConfigError(DLTuneError, ValueError):
    """An invalid config; the message lists every problem found, one per line.

    Attributes:
        errors: One ``<path>: <problem> (got <value>; <what is accepted>)`` line per problem.
        source: The file (or ``<config>`` for a mapping) the config came from.

    Example:
        >>> err = ConfigError(["budget.workers: must be >= 1 (got 0; an integer >= 1)"], "a.yaml")
        >>> print(err)
        invalid config a.yaml:
          budget.workers: must be >= 1 (got 0; an integer >= 1)
    """

    def __init__(self, errors: Sequence[str], source: str = "<config>") -> None:
        self.errors = list(errors)
        self.source = source
        lines = "\n".join(f"  {line}" for line in self.errors)
        super().__init__(f"invalid config {source}:\n{lines}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str], str]]:
        return (type(self), (self.errors, self.source))

    @classmethod
    def of(cls, problems: Sequence[Problem], source: str) -> ConfigError:
        """Build from problems."""
        return cls([p.render() for p in problems], source)
