"""Reading config files: YAML with YAML-1.2 floats and refused duplicate keys."""

from __future__ import annotations

import os
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from dltune.config._errors import ConfigError
from dltune.config._errors import Problem

__all__ = ["ConfigLoader", "read_yaml"]

# PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: "1e-4" and "1e4"
# load as strings. YAML 1.2 (and every config writer's intuition) reads them as numbers.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class ConfigLoader(yaml.SafeLoader):
    """A safe loader that reads ``1e-4`` and ``1e4`` as floats and refuses duplicate keys.

    Example:
        >>> yaml.load("lr: 1e-4\\nsteps: 1e4", Loader=ConfigLoader)
        {'lr': 0.0001, 'steps': 10000.0}
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Load a YAML file with :class:`ConfigLoader`.

    Raises:
        ConfigError: If the file cannot be read, or is not valid YAML (naming line and column).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem.bad(
            (), f"cannot read the file: {reason}", source, "a readable YAML file"
        )
        raise ConfigError.of([problem], source) from None
    try:
        return yaml.load(text, Loader=ConfigLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_describe(exc)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"], source) from None


def _where(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """``line L, column C: invalid YAML: <problem> (<context> that starts at line ...)``."""
    mark = exc.problem_mark or exc.context_mark
    text = f"{_where(mark)}: invalid YAML: " if mark else "invalid YAML: "
    text += exc.problem or exc.context or "cannot parse"
    if exc.context and exc.problem:
        start = f" that starts at {_where(exc.context_mark)}" if exc.context_mark else ""
        text += f" ({exc.context}{start})"
    return text
