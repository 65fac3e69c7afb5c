"""Samplers: where to look next."""

from dltune.samplers._base import BaseSampler
from dltune.samplers._grid import GridSampler
from dltune.samplers._qmc import QMCSampler
from dltune.samplers._random import RandomSampler

__all__ = [
    "BaseSampler",
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
]
