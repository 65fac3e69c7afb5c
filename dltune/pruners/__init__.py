"""Pruners: stop hopeless trials early."""

from dltune.pruners._base import BasePruner
from dltune.pruners._nop import NopPruner
from dltune.pruners._percentile import MedianPruner
from dltune.pruners._percentile import PercentilePruner

__all__ = [
    "BasePruner",
    "MedianPruner",
    "NopPruner",
    "PercentilePruner",
]
