"""Named registries: components chosen by name (from a config or a search space).

Every tunable component (optimizer, activation, loss, ...) is looked up by name in one
:class:`Registry`, so every lookup error says what was asked for and lists what is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Generic
from typing import TypeVar

from dltune.exceptions import UnknownNameError

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names (and aliases) to entries of one kind.

    Names are matched case-insensitively, with ``-`` and ``_`` treated alike, so ``"leaky-relu"``,
    ``"Leaky_ReLU"`` and ``"leaky_relu"`` are the same entry.

    Example:
        >>> colors: Registry[int] = Registry("color")
        >>> colors.add("red", 1, aliases=("crimson",))
        >>> colors.get("Crimson")
        1
        >>> colors.get("blue")
        Traceback (most recent call last):
        ...
        dltune.exceptions.UnknownNameError: unknown color 'blue'; valid names: red (alias crimson)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("-", "_")

    def add(self, name: str, entry: T, *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``entry`` under ``name`` (and ``aliases``).

        Raises:
            ValueError: If the name or an alias is taken.
        """
        key = self._key(name)
        for taken in (key, *map(self._key, aliases)):
            if taken in self._entries or taken in self._aliases:
                raise ValueError(f"{self.kind} name {taken!r} is already registered")
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[self._key(alias)] = key

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(entry: T) -> T:
            self.add(name, entry, aliases=aliases)
            return entry

        return decorate

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for.

        Raises:
            UnknownNameError: Naming the bad value and listing the valid names.
        """
        if not isinstance(name, str):
            raise UnknownNameError(
                f"{self.kind} must be a name (a string), got {name!r}; valid names: "
                f"{self.describe()}"
            )
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {self.describe()}")
        return key

    def get(self, name: str) -> T:
        """The entry for ``name`` (or an alias).

        Raises:
            UnknownNameError: Naming the bad value and listing the valid names.
        """
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        """The registered names (not aliases), in registration order."""
        return list(self._entries)

    def aliases(self) -> list[str]:
        """The registered aliases, in registration order."""
        return list(self._aliases)

    def describe(self) -> str:
        """The valid names with their aliases, for error messages."""
        parts = []
        for name in self._entries:
            aliases = sorted(a for a, target in self._aliases.items() if target == name)
            parts.append(f"{name} (alias {', '.join(aliases)})" if aliases else name)
        return ", ".join(parts)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
