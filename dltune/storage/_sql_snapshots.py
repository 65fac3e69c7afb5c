"""Finished trials in one row each: the ``trial_snapshots`` table, written and read.

Reading a study of 100,000 trials with 50 reports each from the child tables means five million
rows, and building a Python object per row costs more than everything else together. A trial
never changes once finished, so the transaction that finishes it also writes its snapshot: its
values, parameters, reports and attributes packed into one row (numbers as little-endian
float64/int64 arrays, exact for NaN, infinities and -0.0; attributes as the JSON they are stored
as). Loading a study then reads one row per finished trial. The child tables stay the record:
SQL queries (the best trial) use them, and unfinished trials are read from them.

Format 1 (``trial_snapshots.format``), every column NULL when there is nothing to keep:

* ``objective_values``: float64 per objective, in objective order.
* ``param_names``: a JSON array of the names, sorted; ``param_values``: their internal values
  as float64; ``param_distributions``: NULL if every parameter has the distribution the study
  registered for its name (``study_params``), else a JSON array holding, per parameter, NULL
  for the registered one or the distribution's JSON text.
* ``steps`` (int64) and ``step_values`` (float64): the reports in step order.
* ``user_attrs``, ``system_attrs``: a JSON object of the stored JSON texts, keys sorted.
"""

from __future__ import annotations

import functools
import json
import json.scanner
import operator
import sys
from array import array
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.space import distribution_from_json
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._sql_schema import decode_float
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

__all__ = ["FORMAT", "SNAPSHOT_COLUMNS", "Registered", "Shapes", "pack", "parse_distribution"]

#: The format this dltune writes and reads; other formats are read from the child tables.
FORMAT = 1
#: The columns of ``trial_snapshots`` a snapshot fills, after ``trial_id``.
SNAPSHOT_COLUMNS = (
    "format",
    "objective_values",
    "param_names",
    "param_values",
    "param_distributions",
    "steps",
    "step_values",
    "user_attrs",
    "system_attrs",
)
_BIG_ENDIAN = sys.byteorder == "big"
_STATES = {state.value: state for state in TrialState}
#: Gives a study's registered distributions, ``name -> JSON`` (read only when needed).
Registered = Callable[[], Mapping[str, str]]


def _pack_array(code: str, numbers: list[float] | list[int]) -> bytes | None:
    if not numbers:
        return None
    packed = array(code, numbers)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _native(row: Sequence[Any]) -> tuple[Any, ...]:
    """A snapshot row with its arrays in this machine's (big-endian) byte order."""
    out = list(row)
    for i in _ARRAY_COLUMNS:
        if out[i] is not None:
            swapped = array("q" if i == _STEPS else "d", out[i])
            swapped.byteswap()
            out[i] = swapped.tobytes()
    return tuple(out)


#: Positions in a row of :meth:`Shapes.build` of the array columns, and of the steps.
_ARRAY_COLUMNS = (7, 9, 11, 12)
_STEPS = 11
#: Steps 0, 1, 2, ... as stored: most trials report every step from 0, whose numbers then
#: need no unpacking (a comparison of bytes says so).
_RANGE = array("q", range(4096)).tobytes()
_fromtimestamp = datetime.fromtimestamp


# typeshed types make_scanner as a class taking itself; it takes a decoder.
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads_object(text: str) -> dict[str, Any]:
    """``json.loads`` of a JSON object written by :func:`pack`: its C scanner, called directly
    (no whitespace to strip around it), which halves the cost of small objects.

    Objects of plain values (strings, numbers, booleans, None) repeat across trials (the
    worker that ran them, say): those are parsed once and copied.
    """
    flat = _FLAT_OBJECTS.get(text)
    if flat is not None:
        return flat.copy()
    parsed, end = _scan(text, 0)
    if end != len(text) or type(parsed) is not dict:
        raise ValueError(f"not a JSON object: {text[:80]!r}")
    if len(text) < 200 and all(type(v) in _PLAIN for v in parsed.values()):
        if len(_FLAT_OBJECTS) > 4096:
            _FLAT_OBJECTS.clear()
        _FLAT_OBJECTS[text] = parsed.copy()
    return parsed


#: Parsed attribute objects whose values are immutable, by their text (see _loads_object).
_FLAT_OBJECTS: dict[str, dict[str, Any]] = {}
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _attrs_json(rows: Iterable[tuple[str, str]]) -> str | None:
    """``{key: value}`` as a JSON object, from keys and the JSON text of each value."""
    items = sorted(rows)
    if not items:
        return None
    return "{" + ",".join(f"{json.dumps(key)}:{text}" for key, text in items) + "}"


def pack(
    values: Iterable[tuple[int, float | None, int]],
    params: Iterable[tuple[str, float, str]],
    steps: Iterable[tuple[int, float | None, int]],
    attrs: Iterable[tuple[bool, str, str]],
    registered: Mapping[str, str],
) -> dict[str, Any]:
    """A finished trial's snapshot columns, from its child rows.

    Args:
        values: ``(objective, value, kind)`` rows of ``trial_values``.
        params: ``(name, internal value, distribution JSON)`` rows of ``trial_params``.
        steps: ``(step, value, kind)`` rows of ``trial_intermediate_values``.
        attrs: ``(is_system, key, value JSON)`` rows of ``trial_attrs``.
        registered: The study's ``name -> distribution JSON`` (``study_params``).

    Example:
        >>> row = pack([(0, 1.5, 0)], [("x", 0.5, "{}")], [], [], {"x": "{}"})
        >>> row["param_names"], row["param_distributions"], row["steps"]
        ('["x"]', None, None)
    """
    ordered = sorted(params)
    dists = [None if registered.get(n) == text else text for n, _, text in ordered]
    reports = sorted((step, decode_float(v, k)) for step, v, k in steps)
    attr_rows = list(attrs)
    return {
        "format": FORMAT,
        "objective_values": _pack_array("d", [decode_float(v, k) for _, v, k in sorted(values)]),
        "param_names": json.dumps([n for n, _, _ in ordered]) if ordered else None,
        "param_values": _pack_array("d", [float(v) for _, v, _ in ordered]),
        "param_distributions": None if not any(dists) else json.dumps(dists),
        "steps": _pack_array("q", [s for s, _ in reports]),
        "step_values": _pack_array("d", [v for _, v in reports]),
        "user_attrs": _attrs_json((k, t) for is_system, k, t in attr_rows if not is_system),
        "system_attrs": _attrs_json((k, t) for is_system, k, t in attr_rows if is_system),
    }


@functools.lru_cache(maxsize=4096)
def parse_distribution(text: str) -> BaseDistribution:
    """Parse a stored distribution once per process (distributions are immutable)."""
    return distribution_from_json(text)


def _getter(positions: list[int]) -> Callable[[list[float]], tuple[float, ...]]:
    """``items[p] for p in positions`` as a tuple, at C speed for two or more."""
    if len(positions) < 2:
        return lambda items: tuple(items[p] for p in positions)
    return operator.itemgetter(*positions)


@dataclass(frozen=True)
class _Shape:
    """What the trials sharing one parameter set (names and distributions) share, and how to
    turn their internal values into values with C-level loops: integers are ``round(x)``,
    categorical choices a lookup of ``x``; floats are their internal value."""

    names: tuple[str, ...]
    distributions: dict[str, BaseDistribution]
    int_names: tuple[str, ...]
    int_values: Callable[[list[float]], tuple[float, ...]]
    choice_names: tuple[str, ...]
    choice_values: Callable[[list[float]], tuple[float, ...]]
    choices: tuple[dict[float, Any], ...]
    #: ``(position, to_external)`` of the parameters of any other distribution.
    others: tuple[tuple[int, Callable[[float], Any]], ...]

    @classmethod
    def of(cls, distributions: dict[str, BaseDistribution]) -> _Shape:
        """The shape of trials with these parameters, in this order."""
        ints: list[int] = []
        cats: list[int] = []
        others: list[tuple[int, Callable[[float], Any]]] = []
        for i, dist in enumerate(distributions.values()):
            if type(dist) is IntDistribution:
                ints.append(i)  # to_external is int(round(x)), which round(x) is for a float
            elif type(dist) is CategoricalDistribution:
                cats.append(i)  # to_external is choices[int(x)]
            elif type(dist) is not FloatDistribution:  # whose to_external is float(x)
                others.append((i, dist.to_external))
        names = tuple(distributions)
        dists = list(distributions.values())
        return cls(
            names,
            distributions,
            tuple(names[i] for i in ints),
            _getter(ints),
            tuple(names[i] for i in cats),
            _getter(cats),
            tuple(
                {float(k): c for k, c in enumerate(dists[i].choices)}  # type: ignore[attr-defined]
                for i in cats
            ),
            tuple(others),
        )

    def params(self, internal: list[float]) -> dict[str, Any]:
        """The parameters of internal values in :attr:`names` order (a fresh dict).

        Raises:
            KeyError, IndexError, TypeError, ValueError, OverflowError: On a value its
                distribution has no external value for.
        """
        params = dict(zip(self.names, internal, strict=True))
        if self.int_names:
            params.update(zip(self.int_names, map(round, self.int_values(internal)), strict=True))
        if self.choice_names:
            chosen = map(operator.getitem, self.choices, self.choice_values(internal))
            params.update(zip(self.choice_names, chosen, strict=True))
        for i, to_external in self.others:
            params[self.names[i]] = to_external(internal[i])
        return params


class Shapes:
    """One storage's cache of parameter sets, keyed by study and snapshot text; builds
    :class:`FrozenTrial` records from snapshot rows.

    Most trials of a study share a few parameter sets, so each trial costs a dictionary lookup
    rather than parsing its names and distributions. :meth:`build` runs once per trial of a
    study read cold (100,000 times for a large one), so it is written for speed.

    Example:
        >>> dist = '{"kind":"int","low":1,"high":4,"log":false,"step":1}'
        >>> packed = pack([(0, 0.5, 0)], [("n", 3.0, dist)], [(1, None, 2)], [], {"n": dist})
        >>> row = (7, 0, "COMPLETE", None, None, None, *packed.values())
        >>> trial = Shapes().build(1, row, lambda: {"n": dist})
        >>> trial.params, trial.values, trial.intermediate_values
        ({'n': 3}, [0.5], {1: nan})
    """

    def __init__(self) -> None:
        # study id -> names text, or (names text, distributions text) -> shape
        self._shapes: dict[int, dict[str | tuple[str, str] | None, _Shape]] = {}

    def _shape(
        self, study_id: int, names: str | None, dists: str | None, registered: Registered
    ) -> _Shape:
        name_list: list[str] = json.loads(names) if names else []
        texts: list[str | None] = json.loads(dists) if dists else [None] * len(name_list)
        if any(text is None for text in texts):
            known = registered()
            texts = [known[n] if t is None else t for n, t in zip(name_list, texts, strict=True)]
        parsed = {
            name: parse_distribution(text)
            for name, text in zip(name_list, texts, strict=True)
            if text is not None
        }
        shape = _Shape.of(parsed)
        shapes = self._shapes.setdefault(study_id, {})
        if len(shapes) > 10_000:  # a space whose names never repeat
            shapes.clear()
        shapes[names if dists is None else (names or "", dists)] = shape
        return shape

    def build(self, study_id: int, row: Sequence[Any], registered: Registered) -> FrozenTrial:
        """The trial of a row of ``TRIAL_COLUMNS`` followed by the snapshot's columns (and
        nothing else).

        ``registered()`` gives the study's ``name -> distribution JSON``; it is called only
        for a parameter set not seen before.

        Raises:
            KeyError: If a parameter has no registered distribution and none of its own.
        """
        if _BIG_ENDIAN:
            row = _native(row)
        (trial_id, number, state, start, complete, retry_of, _, values, names, internal,
         dists, steps, step_values, user, system) = row  # fmt: skip
        shapes = self._shapes.get(study_id)
        shape = None if shapes is None else shapes.get(names if dists is None else (names, dists))
        if shape is None:
            shape = self._shape(study_id, names, dists, registered)
        params: dict[str, Any] = {}
        if internal is not None:
            numbers = array("d", internal).tolist()
            try:
                params = shape.params(numbers)
            except (KeyError, IndexError, TypeError, ValueError, OverflowError):
                # a value the fast conversions refuse: as the distribution itself says
                dists_ = shape.distributions.values()
                params = {
                    n: d.to_external(x)
                    for n, d, x in zip(shape.names, dists_, numbers, strict=True)
                }
        system_attrs: dict[str, Any] = {} if retry_of is None else {RETRY_OF_KEY: retry_of}
        if system is not None:
            system_attrs.update(_loads_object(system))
        reports: dict[int, float] = {}
        if steps is not None:
            reported = array("d", step_values).tolist()
            if len(steps) == 8 * len(reported) and _RANGE.startswith(steps):
                reports = dict(enumerate(reported))
            else:
                reports = dict(zip(array("q", steps).tolist(), reported, strict=True))
        return FrozenTrial(
            number,
            trial_id,
            _STATES[state],
            None if values is None else array("d", values).tolist(),
            params,
            shape.distributions.copy(),
            reports,
            {} if user is None else _loads_object(user),
            system_attrs,
            None if start is None else _fromtimestamp(start),
            None if complete is None else _fromtimestamp(complete),
        )


#: Columns :meth:`Shapes.build` reads: the trial's, then the snapshot's.
_ROW_LENGTH = 6 + 9
