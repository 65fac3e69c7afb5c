"""Samplers: where to look next.

:data:`SAMPLERS` maps the names a config uses (``sampler: {type: random}``) to the classes.
"""

from __future__ import annotations

from collections.abc import Callable

from dltune._registry import Registry
from dltune.samplers._auto import AutoSampler
from dltune.samplers._base import BaseSampler
from dltune.samplers._cmaes import CMAESSampler
from dltune.samplers._gp import GPSampler
from dltune.samplers._grid import GridSampler
from dltune.samplers._qmc import QMCSampler
from dltune.samplers._random import RandomSampler
from dltune.samplers._tpe import TPESampler

__all__ = [
    "SAMPLERS",
    "AutoSampler",
    "BaseSampler",
    "CMAESSampler",
    "GPSampler",
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
    "TPESampler",
]

#: Sampler classes (or factories) by the name a config gives as ``sampler.type``; the other
#: keys of ``sampler:`` are the constructor's keyword arguments.
SAMPLERS: Registry[Callable[..., BaseSampler]] = Registry("sampler")
SAMPLERS.add("random", RandomSampler)
SAMPLERS.add("grid", GridSampler)
SAMPLERS.add("qmc", QMCSampler)
SAMPLERS.add("tpe", TPESampler)
SAMPLERS.add("gp", GPSampler)
SAMPLERS.add("cmaes", CMAESSampler, aliases=("cma-es", "cma"))
SAMPLERS.add("auto", AutoSampler)
