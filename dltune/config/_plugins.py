"""Samplers and pruners by name: keyword arguments checked against the constructor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from dltune._registry import Registry
from dltune.config._errors import ProblemLog
from dltune.config._errors import Problems
from dltune.config._space import SearchSpace
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

__all__ = ["build_plugin", "check_plugin", "grid_values"]

T = TypeVar("T")

#: Grid points per parameter above which a derived grid is refused as a mistake.
_MAX_GRID_VALUES = 10_000


def grid_values(space: SearchSpace) -> dict[str, list[Any]] | None:
    """Every value of every tuned parameter, for a grid sampler given no ``search_space``.

    Returns ``None`` when the space is empty, or holds a float range without ``step`` or a
    range of more than 10,000 values.
    """
    grid: dict[str, list[Any]] = {}
    for name, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution):
            if (dist.high - dist.low) // dist.step >= _MAX_GRID_VALUES:
                return None
            grid[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = round((dist.high - dist.low) / dist.step) + 1
            if n > _MAX_GRID_VALUES:
                return None
            grid[name] = [float(f"{dist.low + k * dist.step:.12g}") for k in range(n)]
        else:
            return None
    return grid or None


def _parameters(factory: Callable[..., Any]) -> tuple[list[str], list[str], bool]:
    """The keyword names a factory takes, the required ones, and whether it takes ``**kw``."""
    names: list[str] = []
    required: list[str] = []
    any_keyword = False
    for param in inspect.signature(factory).parameters.values():
        if param.kind is param.VAR_KEYWORD:
            any_keyword = True
        elif param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            names.append(param.name)
            if param.default is param.empty:
                required.append(param.name)
    return names, required, any_keyword


def _kwargs(
    factory: Callable[..., Any],
    type_: str,
    kind: str,
    given: Mapping[str, Any],
    *,
    seed: int | None,
    space: SearchSpace | None,
    out: ProblemLog,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments to call ``factory`` with: the given ones, the config's seed and
    ``defaults`` (the trial budget as ``n_trials``, the epochs as ``max_resource``) where the
    factory takes them and none was given, a grid derived from the space for
    ``search_space``."""
    names, required, any_keyword = _parameters(factory)
    for key, value in given.items():
        if not any_keyword and key not in names:
            out.unknown_key((key,), key, value, names)
    kwargs = dict(given)
    if seed is not None and "seed" in names and "seed" not in kwargs:
        kwargs["seed"] = seed
    for key, value in (defaults or {}).items():
        if value is not None and key in names and key not in kwargs:
            kwargs[key] = value
    if "search_space" in required and "search_space" not in kwargs and space is not None:
        grid = grid_values(space)
        if grid is not None:
            kwargs["search_space"] = grid
    for key in required:
        if key not in kwargs and not (key == "search_space" and space is None):
            accepted = f"the arguments of {getattr(factory, '__qualname__', factory)!s}"
            if key == "search_space":
                accepted = (
                    "a mapping of parameter name to values; or leave it out with a space of "
                    "choices and ranges with step, at most 10,000 values each"
                )
            out.missing((key,), f"required by the {type_} {kind}", accepted)
    return kwargs


def _refused(exc: Exception, kwargs: Mapping[str, Any], what: str, out: ProblemLog) -> None:
    """Locate a constructor's own error at the argument it names."""
    message = str(exc)
    accepted = f"a value {what} accepts"
    for key, value in kwargs.items():
        prefix = f"{key}={value!r} "
        if message.startswith(prefix):
            problem, _, hint = message[len(prefix) :].partition("; ")
            out.bad((key,), problem, value, hint or accepted)
            return
        if message.startswith((f"{key}=", f"{key}[")):
            out.bad((key,), message, value, accepted)
            return
    out.bad((), f"{what} refused its arguments: {message}", dict(kwargs), accepted)


def check_plugin(
    registry: Registry[Callable[..., Any]],
    type_: str,
    given: Mapping[str, Any],
    *,
    seed: int | None,
    space: SearchSpace | None,
    defaults: Mapping[str, Any] | None = None,
) -> str:
    """Check a ``sampler:``/``pruner:`` section by building the object (which touches no
    storage); return the canonical type name.

    Args:
        registry: Where ``type_`` is looked up.
        type_: The section's ``type``.
        given: The section's other keys.
        seed: The config's seed.
        space: The config's space, ``None`` if it is invalid (then a grid is not derived).
        defaults: Arguments filled in where the factory takes them and none is given.

    Raises:
        Problems: Located relative to the section.
    """
    out = ProblemLog()
    if type_ not in registry:
        valid = [*registry.names(), *registry.aliases()]
        out.unknown(("type",), registry.kind, type_, valid, registry.describe())
        raise Problems(out)
    factory = registry.get(type_)
    kwargs = _kwargs(
        factory, type_, registry.kind, given, seed=seed, space=space, out=out, defaults=defaults
    )
    if not out and not ("search_space" in _parameters(factory)[1] and space is None):
        try:
            factory(**kwargs)
        except (TypeError, ValueError) as exc:
            _refused(exc, kwargs, f"the {type_} {registry.kind}", out)
    if out:
        raise Problems(out)
    return registry.canonical(type_)


def build_plugin(
    registry: Registry[Callable[..., T]],
    type_: str,
    given: Mapping[str, Any],
    *,
    seed: int | None,
    space: SearchSpace | None,
    defaults: Mapping[str, Any] | None = None,
) -> T:
    """Build what :func:`check_plugin` checked.

    Raises:
        Problems: As :func:`check_plugin` (not for a validated config).
    """
    out = ProblemLog()
    factory = registry.get(type_)
    kwargs = _kwargs(
        factory, type_, registry.kind, given, seed=seed, space=space, out=out, defaults=defaults
    )
    if out:
        raise Problems(out)
    return factory(**kwargs)
