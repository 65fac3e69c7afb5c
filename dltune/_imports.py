"""Import optional dependencies through one helper that explains how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from dltune.exceptions import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to get it.

    Args:
        module: The module to import, e.g. ``"pandas"``.
        extra: The dltune extra that installs it, e.g. ``"pandas"``.
        feature: What needs it, for the message.

    Raises:
        MissingDependencyError: Naming the feature, the package and the install line.

    Example:
        >>> require("json", extra="none", feature="doctest").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the package {module!r}, which is not installed; "
            f"install it with: pip install 'dltune[{extra}]'"
        ) from exc
