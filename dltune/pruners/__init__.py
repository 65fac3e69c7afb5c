"""Pruners: stop hopeless trials early.

:data:`PRUNERS` maps the names a config uses (``pruner: {type: median}``) to the classes.
"""

from __future__ import annotations

from collections.abc import Callable

from dltune._registry import Registry
from dltune.pruners._base import BasePruner
from dltune.pruners._nop import NopPruner
from dltune.pruners._percentile import MedianPruner
from dltune.pruners._percentile import PercentilePruner

__all__ = [
    "PRUNERS",
    "BasePruner",
    "MedianPruner",
    "NopPruner",
    "PercentilePruner",
]

#: Pruner classes (or factories) by the name a config gives as ``pruner.type``; the other keys
#: of ``pruner:`` are the constructor's keyword arguments.
PRUNERS: Registry[Callable[..., BasePruner]] = Registry("pruner")
PRUNERS.add("nop", NopPruner, aliases=("none",))
PRUNERS.add("median", MedianPruner)
PRUNERS.add("percentile", PercentilePruner)
