"""Pruners: stop hopeless trials early.

:data:`PRUNERS` maps the names a config uses (``pruner: {type: asha, reduction_factor: 3}``)
to the classes (or factories); the other keys of ``pruner:`` are the keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable

from dltune._registry import Registry
from dltune.pruners._base import BasePruner
from dltune.pruners._hyperband import HyperbandPruner
from dltune.pruners._nop import NopPruner
from dltune.pruners._patient import PatientPruner
from dltune.pruners._patient import patient_pruner
from dltune.pruners._percentile import MedianPruner
from dltune.pruners._percentile import PercentilePruner
from dltune.pruners._scores import nondominated_ranks
from dltune.pruners._successive_halving import SuccessiveHalvingPruner
from dltune.pruners._threshold import ThresholdPruner

__all__ = [
    "PRUNERS",
    "BasePruner",
    "HyperbandPruner",
    "MedianPruner",
    "NopPruner",
    "PatientPruner",
    "PercentilePruner",
    "SuccessiveHalvingPruner",
    "ThresholdPruner",
    "nondominated_ranks",
    "patient_pruner",
]

#: Pruner classes (or factories) by the name a config gives as ``pruner.type``; the other keys
#: of ``pruner:`` are the constructor's keyword arguments. ``patient`` takes ``wrapped`` as a
#: name or a mapping of ``type`` and arguments (see :func:`patient_pruner`).
PRUNERS: Registry[Callable[..., BasePruner]] = Registry("pruner")
PRUNERS.add("nop", NopPruner, aliases=("none",))
PRUNERS.add("median", MedianPruner)
PRUNERS.add("percentile", PercentilePruner)
PRUNERS.add("threshold", ThresholdPruner)
PRUNERS.add("patient", patient_pruner)
PRUNERS.add("successive_halving", SuccessiveHalvingPruner, aliases=("asha", "sha"))
PRUNERS.add("hyperband", HyperbandPruner)
