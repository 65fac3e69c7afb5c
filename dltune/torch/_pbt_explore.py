"""PBT's two steps as plain, seeded functions: exploit (truncation selection) and explore.

Nothing here reads storage or trains: :mod:`dltune.torch._pbt` feeds these the members' results
read from the study, so the decisions are the same in any worker.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np

from dltune.space import BaseDistribution
from dltune.space import FloatDistribution
from dltune.torch._hparams import HParams
from dltune.torch._hparams import HParamsError
from dltune.torch._trainer import MUTABLE_FIELDS
from dltune.torch.components import OPTIMIZERS

__all__ = ["DEFAULT_BOUNDS", "check_bounds", "explore", "perturbed_fields", "truncation"]

#: Where a perturbed value is clipped (and resampled) when neither ``bounds`` nor the search
#: space gives a range for it.
DEFAULT_BOUNDS: dict[str, FloatDistribution] = {
    "lr": FloatDistribution(1e-5, 1.0, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
    "beta1": FloatDistribution(0.0, 0.99),
    "beta2": FloatDistribution(0.9, 0.9999),
    "weight_decay": FloatDistribution(0.0, 0.1),
}


def check_bounds(bounds: Mapping[str, Sequence[float]] | None) -> dict[str, FloatDistribution]:
    """``name -> (low, high)`` as distributions (log scale for ``lr``), checked.

    Raises:
        ValueError: For a name that cannot be perturbed, or a range that is not valid for it.

    Example:
        >>> check_bounds({"lr": (1e-4, 0.5)})["lr"]
        FloatDistribution(low=0.0001, high=0.5, log=True, step=None)
    """
    out: dict[str, FloatDistribution] = {}
    for name, pair in (bounds or {}).items():
        if name not in MUTABLE_FIELDS:
            raise ValueError(
                f"bounds has {name!r}, which cannot change mid-run; accepted: "
                f"{', '.join(MUTABLE_FIELDS)}"
            )
        try:
            low, high = (float(x) for x in pair)
            HParams(**{name: low})  # type: ignore[arg-type]  # a field name, checked above
            HParams(**{name: high})  # type: ignore[arg-type]
            out[name] = FloatDistribution(low, high, log=name == "lr")
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"bounds[{name!r}]={pair!r} must be (low, high) with low <= high, both valid "
                f"values of {name}: {exc}"
            ) from None
    return out


def perturbed_fields(
    hparams: HParams, fields: Iterable[str], distributions: Mapping[str, BaseDistribution]
) -> list[str]:
    """Which of ``fields`` explore changes for a member with ``hparams``.

    Momentum only for optimizers that use it (SGD, RMSprop), beta1/beta2 only for the Adam
    family; a field the search space draws from something other than a float range (a list of
    choices, say) is left as it is.

    Example:
        >>> perturbed_fields(HParams(optimizer="adam"), ["lr", "momentum", "beta1"], {})
        ['lr', 'beta1']
    """
    uses = OPTIMIZERS.get(hparams.optimizer).uses
    out = []
    for name in fields:
        if name in ("momentum", "beta1", "beta2") and name not in uses:
            continue
        dist = distributions.get(name)
        if dist is not None and not isinstance(dist, FloatDistribution):
            continue
        out.append(name)
    return out


def _sample(dist: FloatDistribution, rng: np.random.Generator) -> float:
    if dist.log:
        return math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
    return float(rng.uniform(dist.low, dist.high))


def _clip(dist: FloatDistribution, value: float) -> float:
    if dist.step is not None:
        value = dist.low + round((value - dist.low) / dist.step) * dist.step
    return min(max(value, dist.low), dist.high)


def explore(
    hparams: HParams,
    fields: Iterable[str],
    bounds: Mapping[str, FloatDistribution],
    rng: np.random.Generator,
    *,
    factors: Sequence[float] = (0.8, 1.2),
    resample_probability: float = 0.25,
) -> HParams:
    """Perturb ``fields`` of ``hparams``: each is resampled from its bounds with probability
    ``resample_probability``, else multiplied by a factor drawn from ``factors``; then clipped
    into its bounds (and onto their grid, if they have a step).

    Args:
        hparams: The hyperparameters copied from a top member.
        fields: The fields to perturb (see :func:`perturbed_fields`).
        bounds: The range of each field.
        rng: The seeded generator of this decision.
        factors: The multipliers to choose from.
        resample_probability: The chance of a fresh draw instead of a multiplication.

    Returns:
        The new hyperparameters.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> new = explore(HParams(lr=0.1), ["lr"], DEFAULT_BOUNDS, rng, resample_probability=0)
        >>> round(new.lr, 6) in (0.08, 0.12)
        True
    """
    changes: dict[str, float] = {}
    for name in fields:
        dist = bounds[name]
        value = float(getattr(hparams, name))
        if rng.random() < resample_probability:
            value = _sample(dist, rng)
        else:
            value *= float(factors[int(rng.integers(len(factors)))])
        changes[name] = _clip(dist, value)
    try:
        return dataclasses.replace(hparams, **changes)  # type: ignore[arg-type]
    except HParamsError as exc:  # bounds are checked, so only an open end can be hit
        raise ValueError(f"explore produced invalid hyperparameters {changes!r}: {exc}") from exc


def truncation(
    values: Mapping[int, float], *, maximize: bool, fraction: float
) -> tuple[list[int], list[int]]:
    """Truncation selection: ``(bottom, top)`` members by value, each ``fraction`` of them.

    At least one member is in each when there are two or more; ties go to the lower member id.
    A lone member is the top and nobody is the bottom.

    Example:
        >>> truncation({0: 0.9, 1: 0.5, 2: 0.7, 3: 0.8}, maximize=True, fraction=0.25)
        ([1], [0])
    """
    ranked = sorted(values, key=lambda m: (-values[m] if maximize else values[m], m))
    if len(ranked) < 2:
        return [], ranked
    k = max(1, int(fraction * len(ranked) + 1e-9))
    return ranked[-k:], ranked[:k]
