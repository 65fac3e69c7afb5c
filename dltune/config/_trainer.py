"""Checks that bind a config to the trainer of :mod:`dltune.torch`.

``dltune tune`` trains with :mod:`dltune.torch`, so a config's space must name
:class:`~dltune.torch.HParams` fields with values the trainer accepts, and its task must name
registered data sets and models. These modules need torch: they are imported here, lazily, so a
missing torch surfaces as :class:`~dltune.exceptions.MissingDependencyError` with its pip line.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from dltune._registry import Registry
from dltune.config._errors import Loc
from dltune.config._errors import Problem
from dltune.config._errors import ProblemLog
from dltune.config._errors import Problems
from dltune.config._parse import Entry
from dltune.config._parse import Fixed
from dltune.config._parse import entry_to_mapping
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

__all__ = [
    "check_registered",
    "check_space",
    "float_names",
    "hparam_types",
    "metrics",
]

#: HParams fields whose values are names in a component registry of dltune.torch.components.
COMPONENT_REGISTRIES = {
    "optimizer": "OPTIMIZERS",
    "schedule": "SCHEDULES",
    "activation": "ACTIVATIONS",
    "loss": "LOSSES",
    "init": "INITS",
}
_TYPE_TEXT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a name"}


@functools.cache
def hparam_types() -> dict[str, str]:
    """``field -> "int" | "float" | "bool" | "str"`` for every HParams field."""
    from dltune.torch._hparams import HParams

    out: dict[str, str] = {}
    for name, hint in typing.get_type_hints(HParams).items():
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # float | None
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[name] = hint.__name__ if isinstance(hint, type) else "str"
    return out


def float_names() -> frozenset[str]:
    """The float hyperparameters (their integer bounds still mean a float range)."""
    return frozenset(n for n, t in hparam_types().items() if t == "float")


def metrics() -> dict[str, str]:
    """``metric -> direction`` of what the trainer reports."""
    from dltune.torch._task import METRICS

    return dict(METRICS)


def check_registered(registry: Registry[Any], name: Any) -> str:
    """The canonical name of ``name`` in ``registry``.

    Raises:
        Problems: Naming the bad value and listing the valid names.
    """
    if not isinstance(name, str) or name not in registry:
        valid = registry.names()
        raise Problems([Problem.unknown((), registry.kind, name, valid, registry.describe())])
    return registry.canonical(name)


def _check_value(out: ProblemLog, loc: Loc, name: str, value: Any) -> None:
    """One value (a bound, a choice, a fixed value) as the trainer would receive it."""
    from dltune.torch import components
    from dltune.torch._hparams import HParams

    if name in COMPONENT_REGISTRIES and isinstance(value, str):
        registry: Registry[Any] = getattr(components, COMPONENT_REGISTRIES[name])
        if value not in registry:
            out.unknown(loc, registry.kind, value, registry.names(), registry.describe())
        return
    accepted = _TYPE_TEXT.get(hparam_types()[name], "a valid value")
    try:
        HParams(**{name: value})
    except (TypeError, ValueError) as exc:  # HParamsError, or a check of another kind
        message, prefix = str(exc), f"{name}={value!r} "
        if not message.startswith(prefix):
            out.bad(loc, message, value, accepted)
            return
        problem, sep, valid = message[len(prefix) :].partition("; accepted: ")
        out.bad(loc, f"{name} {problem}", value, f"accepted: {valid}" if sep else accepted)


def check_space(names: Sequence[Any], entries: Mapping[str, Entry]) -> ProblemLog:
    """Check a parsed space against the trainer (locations relative to the space).

    Args:
        names: Every name of the ``space:`` mapping (also those that did not parse).
        entries: The entries that parsed.
    """
    from dltune.torch._hparams import HParams

    out = ProblemLog()
    valid = HParams.field_names()
    types_ = hparam_types()
    for name in names:
        if name not in types_:
            out.unknown((str(name),), "hyperparameter", name, valid, ", ".join(valid))
            continue
        entry = entries.get(name)
        if entry is None:
            continue
        if isinstance(entry, Fixed):
            _check_value(out, (name,), name, entry.value)
            continue
        dist, kind = entry.distribution, types_[name]
        if isinstance(dist, CategoricalDistribution):
            for i, choice in enumerate(dist.choices):
                _check_value(out, (name, "choices", i), name, choice)
        elif kind in ("str", "bool"):
            accepted = "{choices: [...]} or one fixed value"
            got = entry_to_mapping(entry)
            out.bad((name,), f"{name} takes {_TYPE_TEXT[kind]}, not a range", got, accepted)
        elif kind == "int" and isinstance(dist, FloatDistribution):
            accepted = "integer low, high and step, without type: float"
            got = entry_to_mapping(entry)
            out.bad((name,), f"{name} takes integers, not a float range", got, accepted)
        else:
            assert isinstance(dist, FloatDistribution | IntDistribution)  # all we build
            _check_value(out, (name, "low"), name, dist.low)
            _check_value(out, (name, "high"), name, dist.high)
    return out
