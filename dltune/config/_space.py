"""The define-by-run search space a config describes: parameters, fixed values, conditions."""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from dltune.config._errors import ConfigError
from dltune.config._errors import ProblemLog
from dltune.config._parse import SCALAR_TEXT
from dltune.config._parse import Entry
from dltune.config._parse import Fixed
from dltune.config._parse import Param
from dltune.config._parse import check_structure
from dltune.config._parse import dependency_order
from dltune.config._parse import entry_to_mapping
from dltune.config._parse import is_scalar
from dltune.config._parse import parse_space
from dltune.space import BaseDistribution
from dltune.space import CategoricalChoice
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

if TYPE_CHECKING:
    from dltune._trial import Trial

__all__ = ["SearchSpace"]


class SearchSpace:
    """A define-by-run search space: tuned parameters, fixed values, and conditions.

    A parameter with a condition (``when``) is suggested only in trials where every parameter
    it names is active and has one of the listed values: ``momentum`` can exist for SGD only.
    Build one from the ``space:`` mapping of a config with :meth:`from_mapping` (the usual way),
    or from distributions.

    Args:
        distributions: The tuned parameters.
        fixed: Values that are not tuned (``None``, bools, numbers or strings).
        when: ``name -> {parameter: value or list of values}``: the conditions of a tuned
            parameter. A condition names a categorical parameter or a fixed value.

    Raises:
        ConfigError: Listing every problem (a name both tuned and fixed, a condition on an
            unknown or non-categorical parameter, a value that is not a choice, a cycle).

    Example:
        >>> import dltune
        >>> space = SearchSpace.from_mapping({
        ...     "optimizer": {"choices": ["sgd", "adam"]},
        ...     "momentum": {"low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
        ...     "width": 32,
        ... })
        >>> params = space.suggest(dltune.create_study(seed=0).ask())
        >>> ("momentum" in params) == (params["optimizer"] == "sgd"), params["width"]
        (True, 32)
    """

    _entries: dict[str, Entry]
    _order: tuple[str, ...]

    def __init__(
        self,
        distributions: Mapping[str, BaseDistribution] | None = None,
        *,
        fixed: Mapping[str, CategoricalChoice] | None = None,
        when: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        out = ProblemLog()
        entries: dict[str, Entry] = {}
        for name, dist in (distributions or {}).items():
            if isinstance(dist, BaseDistribution):
                entries[name] = Param(dist)
            else:
                accepted = "a FloatDistribution, IntDistribution or CategoricalDistribution"
                out.bad((name,), "must be a distribution", dist, accepted)
        for name, value in (fixed or {}).items():
            if name in entries:
                out.bad((name,), "is both tuned and fixed", value, "either tuned or fixed")
            elif not is_scalar(value):
                out.bad((name,), "a fixed value must be a single value", value, SCALAR_TEXT)
            else:
                entries[name] = Fixed(value)
        raw_when = dict(when or {})
        for name in list(raw_when):
            if not isinstance(entries.get(name), Param):
                accepted = f"a tuned parameter: {', '.join(self._tuned(entries)) or 'none'}"
                out.bad((name, "when"), "only a tuned parameter has conditions", name, accepted)
                del raw_when[name]
        out.extend(check_structure(entries, raw_when, ()))
        if out:
            raise ConfigError.of([p.under(("space",)) for p in out], "<space>")
        self._set(entries)

    def _set(self, entries: dict[str, Entry]) -> None:
        self._entries = entries
        self._order = dependency_order(entries)

    @staticmethod
    def _tuned(entries: Mapping[str, Entry]) -> list[str]:
        return [n for n, e in entries.items() if isinstance(e, Param)]

    @classmethod
    def _of(cls, entries: dict[str, Entry]) -> SearchSpace:
        """A space from entries already checked."""
        space = cls.__new__(cls)
        space._set(entries)
        return space

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, float_names: Collection[str] = ()
    ) -> SearchSpace:
        """Build from the ``space:`` mapping of a config.

        Each entry is one of:

        - ``{choices: [a, b, ...]}``: categorical (``None``, bools, numbers or strings);
        - ``{low: x, high: y}`` with optional ``log: true``, ``step: s`` and ``type: float|int``:
          an integer range when ``low``, ``high`` (and ``step``) are all integers and ``type``
          is not ``float``, else a float range;
        - a single value (``None``, a bool, a number or a string): fixed, not tuned.

        Tuned entries take ``when: {parameter: value or [values]}``.

        Args:
            mapping: The entries by parameter name.
            float_names: Names whose integer bounds still mean a float range (the trainer's
                float hyperparameters, so ``dropout: {low: 0, high: 1}`` is not ``{0, 1}``).

        Raises:
            ConfigError: Listing every problem, each located as ``space.<name>...``.

        Example:
            >>> space = SearchSpace.from_mapping({"lr": {"low": 1e-4, "high": 0.1, "log": True}})
            >>> space.distributions["lr"]
            FloatDistribution(low=0.0001, high=0.1, log=True, step=None)
        """
        if not isinstance(mapping, Mapping):
            out = ProblemLog()
            out.bad(("space",), "must be a mapping", mapping, "parameter names to their specs")
            raise ConfigError.of(out, "<space>")
        entries, out = parse_space(mapping, float_names=float_names)
        if out:
            raise ConfigError.of([p.under(("space",)) for p in out], "<space>")
        return cls._of(entries)

    # -- reading ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The tuned parameters' names (not the fixed ones), in definition order."""
        return self._tuned(self._entries)

    @property
    def fixed(self) -> dict[str, CategoricalChoice]:
        """The fixed values by name."""
        return {n: e.value for n, e in self._entries.items() if isinstance(e, Fixed)}

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """The tuned parameters' distributions by name."""
        return {n: e.distribution for n, e in self._entries.items() if isinstance(e, Param)}

    @property
    def conditions(self) -> dict[str, dict[str, tuple[CategoricalChoice, ...]]]:
        """``name -> {parameter: allowed values}`` for each conditional parameter."""
        return {
            n: {c.name: c.values for c in e.when}
            for n, e in self._entries.items()
            if isinstance(e, Param) and e.when
        }

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return list(self._entries.items()) == list(other._entries.items())

    __hash__ = None  # type: ignore[assignment]  # compared by value, like a dict

    def __repr__(self) -> str:
        return f"SearchSpace.from_mapping({self.to_mapping()!r})"

    # -- using -----------------------------------------------------------------------------

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the values of the parameters it depends on.

        Raises:
            KeyError: If ``name`` is not in the space.
        """
        entry = self._entries[name]
        return isinstance(entry, Fixed) or all(c.holds(params) for c in entry.when)

    def suggest(self, trial: Trial) -> dict[str, Any]:
        """Suggest this trial's parameters: the active ones, plus every fixed value.

        Parameters are suggested in dependency order; one whose condition does not hold (or
        names an inactive parameter) is skipped and absent from the result.

        Example:
            >>> import dltune
            >>> space = SearchSpace.from_mapping({"x": {"low": 0, "high": 3}, "y": "a"})
            >>> space.suggest(dltune.create_study(seed=0).ask())["y"]
            'a'
        """
        params: dict[str, Any] = {}
        for name in self._order:
            entry = self._entries[name]
            if isinstance(entry, Fixed):
                params[name] = entry.value
            elif all(c.holds(params) for c in entry.when):
                params[name] = _suggest(trial, name, entry.distribution)
        return params

    def with_bounds(self, name: str, low: float, high: float) -> SearchSpace:
        """A copy where the float parameter ``name`` ranges over ``[low, high]`` (its log
        scale, step and conditions kept): the LR range test narrows ``lr`` with it.

        Raises:
            ValueError: If ``name`` is not a float parameter, or for bounds the distribution
                refuses.

        Example:
            >>> space = SearchSpace.from_mapping({"lr": {"low": 1e-5, "high": 1.0, "log": True}})
            >>> space.with_bounds("lr", 1e-3, 1e-1).distributions["lr"].high
            0.1
        """
        entry = self._entries.get(name)
        if not (isinstance(entry, Param) and isinstance(entry.distribution, FloatDistribution)):
            floats = [n for n, d in self.distributions.items() if isinstance(d, FloatDistribution)]
            raise ValueError(
                f"with_bounds: name={name!r} is not a float parameter of the space; float "
                f"parameters: {', '.join(floats) or 'none'}"
            )
        old = entry.distribution
        try:
            dist = FloatDistribution(low, high, log=old.log, step=old.step)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"with_bounds({name!r}): {exc}") from None
        entries = dict(self._entries)
        entries[name] = replace(entry, distribution=dist)
        return self._of(entries)

    def to_mapping(self) -> dict[str, Any]:
        """The ``space:`` mapping of this space (parsing it gives an equal space).

        Example:
            >>> space = SearchSpace.from_mapping({"width": {"low": 16, "high": 64, "step": 16}})
            >>> space.to_mapping()
            {'width': {'low': 16, 'high': 64, 'step': 16}}
        """
        return {name: entry_to_mapping(entry) for name, entry in self._entries.items()}


def _suggest(trial: Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, CategoricalDistribution)  # the three kinds are all we build
    return trial.suggest_categorical(name, list(dist.choices))
