"""Presets: a sampler and a pruner that work well together, ready for ``create_study(**...)``.

A preset is a plain function returning the keyword arguments, not a new kind of object: what it
builds are the ordinary sampler and pruner classes, configured to cooperate.
"""

from __future__ import annotations

from typing import Any

from dltune.pruners import HyperbandPruner
from dltune.samplers import GPSampler
from dltune.samplers import TPESampler

__all__ = ["bohb"]

_SAMPLERS = ("tpe", "gp")


def bohb(
    *,
    max_resource: int,
    min_resource: int = 1,
    reduction_factor: int = 3,
    sampler: str = "tpe",
    seed: int | None = None,
    min_points_in_rung: int | None = None,
) -> dict[str, Any]:
    """Model-based multi-fidelity search in the manner of BOHB (Falkner et al., 2018).

    Hyperband decides how long each trial trains (brackets of successive halving, trials
    assigned to a bracket from their number); the sampler proposes new trials from a model
    fitted on the *highest rung that has enough results*: early in the study on the values
    every trial reported after ``min_resource`` epochs, later on the values of the trials that
    got further. In the config: ``sampler: {type: tpe, multi_fidelity: true}`` and
    ``pruner: {type: hyperband}`` (``max_resource`` defaults to the task's epochs there).

    Args:
        max_resource: The most a trial trains (epochs, or whatever step it reports).
        min_resource: The least a trial trains before it can be stopped.
        reduction_factor: 1 / the fraction of trials each rung promotes (``eta``).
        sampler: ``"tpe"`` or ``"gp"``.
        seed: Seeds the sampler and Hyperband's bracket assignment.
        min_points_in_rung: Results a rung needs before the model fits on it (default: the
            sampler's ``n_startup_trials``, 10).

    Returns:
        ``{"sampler": ..., "pruner": ...}`` for :func:`dltune.create_study`.

    Raises:
        ValueError: For an unknown sampler, or arguments the sampler or pruner refuses.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(**bohb(max_resource=27, seed=0))
        >>> type(study.sampler).__name__, type(study.pruner).__name__
        ('TPESampler', 'HyperbandPruner')
    """
    if sampler not in _SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not one of {', '.join(map(repr, _SAMPLERS))}")
    pruner = HyperbandPruner(
        min_resource=min_resource,
        max_resource=max_resource,
        reduction_factor=reduction_factor,
        seed=seed,
    )
    factory = TPESampler if sampler == "tpe" else GPSampler
    model = factory(seed=seed, multi_fidelity=True, min_points_in_rung=min_points_in_rung)
    return {"sampler": model, "pruner": pruner}
