"""Parsing the ``space:`` mapping: parameters, fixed values and their conditions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from dltune.config._errors import Loc
from dltune.config._errors import ProblemLog
from dltune.space import BaseDistribution
from dltune.space import CategoricalChoice
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

__all__ = [
    "SCALAR_TEXT",
    "Condition",
    "Entry",
    "Fixed",
    "Param",
    "check_structure",
    "dependency_order",
    "entry_to_mapping",
    "is_scalar",
    "parse_space",
]

SPEC_KEYS = ("choices", "low", "high", "log", "step", "type", "when")
SCALAR_TEXT = "null, true/false, a number or a string"
_SCALARS = (type(None), bool, int, float, str)
_RANGE_ONLY = ("low", "high", "log", "step", "type")
_NO_LOG_STEP = "drop step or log"


def _key(value: Any) -> tuple[str, Any]:
    """Compare values as the storage does: ``True`` and ``1`` are different choices."""
    return (type(value).__name__ if isinstance(value, bool | type(None) | str) else "num", value)


def is_scalar(value: Any) -> bool:
    """Whether ``value`` can be a choice or a fixed value."""
    return isinstance(value, _SCALARS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Condition:
    """Parameter ``name`` must be active with one of ``values``."""

    name: str
    values: tuple[CategoricalChoice, ...]

    def holds(self, params: Mapping[str, Any]) -> bool:
        """Whether the condition holds for the parameters chosen so far."""
        if self.name not in params:
            return False
        key = _key(params[self.name])
        return any(_key(v) == key for v in self.values)


@dataclass(frozen=True)
class Param:
    """A tuned parameter: its distribution and the conditions under which it is suggested."""

    distribution: BaseDistribution
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Fixed:
    """A value that is not tuned."""

    value: CategoricalChoice


Entry = Param | Fixed


def entry_to_mapping(entry: Entry) -> Any:
    """The YAML form of one entry."""
    if isinstance(entry, Fixed):
        return entry.value
    dist = entry.distribution
    out: dict[str, Any]
    if isinstance(dist, CategoricalDistribution):
        out = {"choices": list(dist.choices)}
    else:
        assert isinstance(dist, FloatDistribution | IntDistribution)  # all we build
        out = {"low": dist.low, "high": dist.high}
        if dist.log:
            out["log"] = True
        if dist.step not in (None, 1):
            out["step"] = dist.step
    if entry.when:
        out["when"] = {
            c.name: c.values[0] if len(c.values) == 1 else list(c.values) for c in entry.when
        }
    return out


def _kind(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "categorical"
    return "int range" if isinstance(dist, IntDistribution) else "float range"


# -- one entry ------------------------------------------------------------------------------

_ARG_MESSAGE = re.compile(r"^(\w+)=(\S+) (.*)$")


def _build(
    loc: Loc, factory: Callable[[], BaseDistribution], spec: Mapping[str, Any], out: ProblemLog
) -> BaseDistribution | None:
    """Construct the real distribution; a rule not checked before keeps its own text."""
    try:
        return factory()
    except (TypeError, ValueError) as exc:
        match = _ARG_MESSAGE.match(str(exc))
        if match and match[1] in spec:
            problem, _, accepted = match[3].partition("; ")
            out.bad((*loc, match[1]), problem, spec[match[1]], accepted or "a valid range")
        else:
            out.bad(loc, str(exc), dict(spec), "a valid distribution")
        return None


def _categorical(loc: Loc, choices: Any, out: ProblemLog) -> BaseDistribution | None:
    cloc = (*loc, "choices")
    if isinstance(choices, str | bytes) or not isinstance(choices, list | tuple):
        out.bad(cloc, "must be a list", choices, "a non-empty list of values")
        return None
    if not choices:
        out.bad(cloc, "must not be empty", list(choices), "at least one value")
        return None
    n_before = len(out)
    seen: dict[tuple[str, Any], int] = {}
    for i, choice in enumerate(choices):
        if not is_scalar(choice):
            out.bad((*cloc, i), "must be a single value", choice, SCALAR_TEXT)
        elif isinstance(choice, float) and math.isnan(choice):
            out.bad((*cloc, i), "cannot be nan", choice, "a number or a name")
        elif _key(choice) in seen:
            out.bad((*cloc, i), f"repeats choice {seen[_key(choice)]}", choice, "each choice once")
        else:
            seen[_key(choice)] = i
    if len(out) > n_before:
        return None
    return _build(loc, lambda: CategoricalDistribution(tuple(choices)), {}, out)


def _range_types(loc: Loc, spec: Mapping[str, Any], out: ProblemLog) -> bool:
    """Check the types of low, high, log, step and type; True if they are usable."""
    n_before = len(out)
    for key, other, what in (("low", "high", "lower"), ("high", "low", "upper")):
        if key not in spec:
            out.missing((*loc, key), f"required with {other}", f"a number, the {what} bound")
    for key in ("low", "high", "step"):
        if key not in spec or key == "step" and spec[key] is None:  # step: null means none
            continue
        if not (_is_number(spec[key]) and math.isfinite(spec[key])):
            out.bad((*loc, key), "must be a finite number", spec[key], "a number")
    if not isinstance(spec.get("log", False), bool):
        out.bad((*loc, "log"), "must be true or false", spec["log"], "a boolean")
    if spec.get("type") not in (None, "float", "int"):
        out.bad((*loc, "type"), "must be float or int", spec["type"], "float or int")
    return len(out) == n_before


def _range(
    loc: Loc, spec: Mapping[str, Any], prefer_float: bool, out: ProblemLog
) -> BaseDistribution | None:
    if not _range_types(loc, spec, out):
        return None
    low, high, step = spec["low"], spec["high"], spec.get("step")
    log = bool(spec.get("log", False))
    kind = spec.get("type")
    if kind is None:
        ints = all(isinstance(v, int) for v in (low, high, step) if v is not None)
        kind = "int" if ints and not prefer_float else "float"
    n_before = len(out)
    if low > high:
        out.bad((*loc, "low"), "must be <= high", low, f"a number <= {high!r}")
    if kind == "int":
        for key, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and not float(value).is_integer():
                out.bad((*loc, key), "must be an integer with type: int", value, "an integer")
            elif key == "step" and value is not None and value < 1:
                out.bad((*loc, "step"), "must be >= 1", step, "an integer >= 1")
        if log and low < 1:
            out.bad((*loc, "low"), "must be >= 1 with log: true", low, "an integer >= 1")
        if log and step not in (None, 1):
            out.bad((*loc, "step"), "cannot be combined with log: true", step, _NO_LOG_STEP)
    else:
        if log and low <= 0:
            out.bad((*loc, "low"), "must be > 0 with log: true", low, "a positive number")
        if log and step is not None:
            out.bad((*loc, "step"), "cannot be combined with log: true", step, _NO_LOG_STEP)
        if step is not None and step <= 0:
            out.bad((*loc, "step"), "must be > 0", step, "a positive number")
    if len(out) > n_before:
        return None
    if kind == "int":
        istep = 1 if step is None else int(step)
        return _build(loc, lambda: IntDistribution(int(low), int(high), log, istep), spec, out)
    fstep = None if step is None else float(step)
    return _build(loc, lambda: FloatDistribution(float(low), float(high), log, fstep), spec, out)


def _parse_entry(
    name: str, spec: Any, prefer_float: bool, out: ProblemLog
) -> tuple[Entry | None, Any]:
    """One ``space:`` entry, and its raw ``when`` (checked once every entry is known)."""
    loc: Loc = (name,)
    if is_scalar(spec):
        return Fixed(spec), None
    if isinstance(spec, list | tuple):
        accepted = "put the values under choices, as {choices: [...]}, or give one fixed value"
        out.bad(loc, "a list is not a parameter", list(spec), accepted)
        return None, None
    if not isinstance(spec, Mapping):
        accepted = "one fixed value, {choices: [...]} or {low: ..., high: ...}"
        out.bad(loc, "must be a fixed value or a mapping", spec, accepted)
        return None, None
    n_before = len(out)
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            out.unknown_key((*loc, str(key)), key, value, SPEC_KEYS)
    dist: BaseDistribution | None = None
    if "choices" in spec:
        for key in _RANGE_ONLY:
            if key in spec:
                accepted = "either choices or a low/high range"
                out.bad((*loc, key), "cannot be combined with choices", spec[key], accepted)
        dist = _categorical(loc, spec["choices"], out)
    elif "low" in spec or "high" in spec:
        dist = _range(loc, spec, prefer_float, out)
    else:
        accepted = "{choices: [...]}, {low: ..., high: ...} or one fixed value"
        out.bad(loc, "needs choices, or low and high", dict(spec), accepted)
    if dist is None or len(out) > n_before:
        return None, None
    return Param(dist), spec.get("when")


# -- conditions -----------------------------------------------------------------------------


def _condition(
    rloc: Loc, ref: str, values: Any, entry: Entry, eligible: str, out: ProblemLog
) -> Condition | None:
    if isinstance(entry, Param) and not isinstance(entry.distribution, CategoricalDistribution):
        problem = f"{ref} is a {_kind(entry.distribution)}; conditions test categorical ones"
        out.bad(rloc, problem, ref, f"a categorical parameter or a fixed value: {eligible}")
        return None
    items = list(values) if isinstance(values, list | tuple) else [values]
    if not items:
        out.bad(rloc, "must not be empty", values, "a value or a list of values")
        return None
    if isinstance(entry, Fixed):
        choices: tuple[Any, ...] = (entry.value,)
        accepted = f"{ref} is fixed to {entry.value!r}"
    else:
        assert isinstance(entry.distribution, CategoricalDistribution)
        choices = entry.distribution.choices
        accepted = f"one of the choices of {ref}: {', '.join(map(repr, choices))}"
    keys = {_key(c) for c in choices}
    n_before = len(out)
    for i, value in enumerate(items):
        if not is_scalar(value) or _key(value) not in keys:
            vloc = (*rloc, i) if isinstance(values, list | tuple) else rloc
            out.bad(vloc, f"is not a value {ref} can take", value, accepted)
    return Condition(ref, tuple(items)) if len(out) == n_before else None


def _parse_when(
    name: str, spec: Any, entries: Mapping[str, Entry], broken: Collection[str], out: ProblemLog
) -> tuple[Condition, ...] | None:
    loc: Loc = (name, "when")
    if not isinstance(spec, Mapping):
        accepted = "a mapping of parameter name to value(s), e.g. {optimizer: [sgd, rmsprop]}"
        out.bad(loc, "must be a mapping", spec, accepted)
        return None
    valid = [
        n
        for n, e in entries.items()
        if isinstance(e, Fixed) or isinstance(e.distribution, CategoricalDistribution)
    ]
    eligible = ", ".join(valid) or "none"
    conditions: list[Condition] = []
    n_before = len(out)
    for ref, values in spec.items():
        if ref in broken:  # reported where it is defined
            continue
        entry = entries.get(ref) if isinstance(ref, str) else None
        if entry is None:
            out.unknown((*loc, str(ref)), "parameter", ref, valid, eligible)
            continue
        condition = _condition((*loc, ref), ref, values, entry, eligible, out)
        if condition is not None:
            conditions.append(condition)
    return tuple(conditions) if len(out) == n_before else None


def _find_cycles(entries: Mapping[str, Entry]) -> list[list[str]]:
    deps = {n: [c.name for c in e.when] for n, e in entries.items() if isinstance(e, Param)}
    cycles: list[list[str]] = []
    found: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                if frozenset(cycle) not in found:
                    found.add(frozenset(cycle))
                    cycles.append(cycle)
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in entries:
        if node not in state:
            visit(node, [])
    return cycles


def check_structure(
    entries: dict[str, Entry], raw_when: Mapping[str, Any], broken: Collection[str]
) -> ProblemLog:
    """Attach the conditions to their entries (in place), and refuse cycles."""
    out = ProblemLog()
    for name, spec in raw_when.items():
        conditions = _parse_when(name, spec, entries, broken, out)
        entry = entries[name]
        if conditions is not None and isinstance(entry, Param):
            entries[name] = replace(entry, when=conditions)
    for cycle in _find_cycles(entries):
        path = " -> ".join([*cycle, cycle[0]])
        got = entry_to_mapping(entries[cycle[0]])["when"]
        accepted = "a parameter cannot depend on itself, directly or through others"
        out.bad((cycle[0], "when"), f"conditions form a cycle {path}", got, accepted)
    return out


def parse_space(
    mapping: Mapping[Any, Any], *, float_names: Collection[str] = ()
) -> tuple[dict[str, Entry], ProblemLog]:
    """Parse a ``space:`` mapping into entries, collecting every problem (located relative to
    the space). Entries that could not be parsed are left out."""
    out = ProblemLog()
    entries: dict[str, Entry] = {}
    raw_when: dict[str, Any] = {}
    broken: list[str] = []
    for name, spec in mapping.items():
        if not isinstance(name, str) or not name:
            out.bad((str(name),), "a parameter name must be a string", name, "a name such as lr")
            continue
        entry, when = _parse_entry(name, spec, name in float_names, out)
        if entry is None:
            broken.append(name)
            continue
        entries[name] = entry
        if when is not None:
            raw_when[name] = when
    out.extend(check_structure(entries, raw_when, broken))
    return entries, out


def dependency_order(entries: Mapping[str, Entry]) -> tuple[str, ...]:
    """Names with every condition's parameter first, otherwise in definition order."""
    order: list[str] = []
    done: set[str] = set()
    pending = list(entries)
    while pending:
        for name in pending:
            entry = entries[name]
            if isinstance(entry, Fixed) or all(c.name in done for c in entry.when):
                order.append(name)
                done.add(name)
                pending.remove(name)
                break
        else:  # cycles are refused before a space is built
            raise AssertionError(f"cyclic conditions among {pending}")
    return tuple(order)
