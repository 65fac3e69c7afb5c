"""Log expected improvement and its maximisation over the unit cube, for ``GPSampler``.

Expected improvement underflows to zero far from the incumbent, which leaves a gradient-based
optimiser with nothing to follow. Its logarithm, computed as in Ament et al. (2023),
"Unexpected Improvements to Expected Improvement for Bayesian Optimization", stays finite and
smooth for any ``z``: ``log EI = log sigma + log h(z)`` with ``h(z) = phi(z) + z Phi(z)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.special

from dltune.samplers._gp_model import GPPosterior

__all__ = ["AcqSpace", "log_ei", "log_ei_grad", "log_h", "maximize_log_ei"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_PI_2 = 0.5 * math.log(0.5 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
#: Below this z, 1 - |z| erfcx(|z|/sqrt2) sqrt(pi/2) loses every digit: use its asymptote 1/z^2.
_ASYMPTOTE_Z = -1.0 / math.sqrt(np.finfo(float).eps)


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """``log(1 - exp(a))`` for ``a < 0``, accurate near 0 and for very negative ``a``."""
    out: np.ndarray = np.where(
        a > -math.log(2.0),
        np.log(-np.expm1(np.minimum(a, -1e-300))),
        np.log1p(-np.exp(np.minimum(a, 0.0))),
    )
    return out


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(phi(z) + z Phi(z))``, finite for every finite ``z``.

    Example:
        >>> float(np.exp(log_h(np.array([0.0]))[0]))  # phi(0)
        0.3989422804014327
    """
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(
        np.exp(-0.5 * zu * zu) / math.sqrt(2 * math.pi) + zu * scipy.special.ndtr(zu)
    )
    mid = ~upper & (z > _ASYMPTOTE_Z)
    zm = z[mid]
    log_tail = np.log(scipy.special.erfcx(-zm * _INV_SQRT2) * -zm) + _HALF_LOG_PI_2
    out[mid] = -0.5 * zm * zm - _HALF_LOG_2PI + _log1mexp(log_tail)
    far = ~upper & ~mid
    zf = z[far]
    out[far] = -0.5 * zf * zf - _HALF_LOG_2PI - 2.0 * np.log(-zf)
    return out


def _dlog_h(z: np.ndarray, log_h_z: np.ndarray) -> np.ndarray:
    """``d log h / dz = Phi(z) / h(z)``, from logs so it stays finite."""
    ratio: np.ndarray = np.exp(scipy.special.log_ndtr(z) - log_h_z)
    return ratio


def log_ei(post: GPPosterior, xq: np.ndarray, best: float) -> np.ndarray:
    """Log expected improvement below ``best`` (outputs are minimised) at ``xq`` ``(m, d)``."""
    mean, var = post.mean_var(xq)
    sigma = np.sqrt(var)
    value: np.ndarray = np.log(sigma) + log_h((best - mean) / sigma)
    return value


def log_ei_grad(post: GPPosterior, xq: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
    """Log expected improvement at ``xq`` and its gradient ``(m, d)``."""
    mean, var, dmean, dvar = post.mean_var_grad(xq)
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    lh = log_h(z)
    rho = _dlog_h(z, lh)
    dsigma_over_sigma = dvar / (2.0 * var[:, None])
    dz = -dmean / sigma[:, None] - z[:, None] * dsigma_over_sigma
    return np.log(sigma) + lh, dsigma_over_sigma + rho[:, None] * dz


@dataclass(frozen=True)
class AcqSpace:
    """What the optimiser must know of the space's dimensions.

    Attributes:
        n_choices: ``(d,)`` the number of choices of a categorical dimension, 0 otherwise.
        n_cells: ``(d,)`` the number of values of an evenly gridded numeric dimension (an int
            or a stepped float, not on a log scale), 0 for a continuous or a log-int one.
    """

    n_choices: np.ndarray
    n_cells: np.ndarray

    @property
    def is_cat(self) -> np.ndarray:
        """Which dimensions are categorical."""
        return self.n_choices > 0

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Move categorical and evenly gridded coordinates to the centre of their cell."""
        out: np.ndarray = x.copy()
        cells = np.where(self.is_cat, self.n_choices, self.n_cells)
        grid = cells > 0
        if grid.any():
            n = cells[grid].astype(float)
            index = np.clip(np.floor(out[:, grid] * n), 0.0, n - 1.0)
            out[:, grid] = (index + 0.5) / n
        return out


def _candidates(
    space: AcqSpace,
    rng: np.random.Generator,
    n_candidates: int,
    centers: np.ndarray,
    inv_ls2: np.ndarray,
) -> np.ndarray:
    """Sobol points of the cube plus Gaussian perturbations of ``centers`` (the best points)."""
    d = len(space.n_choices)
    with warnings.catch_warnings():
        # Sobol warns when the count is not a power of two; the points are still fine.
        warnings.simplefilter("ignore", UserWarning)
        from scipy.stats import qmc  # here: scipy.stats costs ~1 s to import at start-up

        sobol = qmc.Sobol(d, scramble=True, seed=rng).random(n_candidates)
    parts = [sobol]
    if len(centers):
        n_local = max(1, n_candidates // (2 * len(centers)))
        local = np.repeat(centers, n_local, axis=0)
        # Steps on the scale of the fitted lengthscales, at a few magnitudes.
        scale = np.minimum(1.0 / np.sqrt(inv_ls2), 1.0)
        magnitude = rng.choice(np.array([0.02, 0.1, 0.3]), size=(len(local), 1))
        local = local + rng.standard_normal(local.shape) * scale * magnitude
        if space.is_cat.any():
            flip = (rng.random(local.shape) < 1.0 / d) & space.is_cat
            local = np.where(flip, rng.random(local.shape), local)
        parts.append(np.clip(local, 0.0, 1.0))
    return space.snap(np.concatenate(parts))


def _local_gradient_step(
    post: GPPosterior, best: float, starts: np.ndarray, free: np.ndarray, max_iter: int
) -> np.ndarray:
    """Maximise log EI from every start at once over the ``free`` dimensions (L-BFGS-B on
    the sum, which is separable across starts)."""
    if not free.any():
        return starts
    x: np.ndarray = starts.copy()

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x[:, free] = flat.reshape(len(x), -1)
        value, grad = log_ei_grad(post, x, best)
        return -float(value.sum()), -grad[:, free].ravel()

    import scipy.optimize  # here, not at start-up: scipy.optimize is slow to import

    result = scipy.optimize.minimize(
        objective,
        starts[:, free].ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * int(free.sum()) * len(x),
        options={"maxiter": max_iter},
    )
    x[:, free] = np.clip(result.x, 0.0, 1.0).reshape(len(x), -1)
    return x


def _categorical_sweep(
    post: GPPosterior, best: float, x: np.ndarray, values: np.ndarray, space: AcqSpace
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Try every choice of every categorical dimension at each point; keep improvements."""
    changed = False
    for dim in np.flatnonzero(space.is_cat):
        n = int(space.n_choices[dim])
        trial = np.repeat(x, n, axis=0)
        trial[:, dim] = np.tile((np.arange(n) + 0.5) / n, len(x))
        scores = log_ei(post, trial, best).reshape(len(x), n)
        pick = np.argmax(scores, axis=1)
        better = scores[np.arange(len(x)), pick] > values + 1e-12
        if better.any():
            changed = True
            x = x.copy()
            x[better, dim] = (pick[better] + 0.5) / n
            values = np.where(better, scores[np.arange(len(x)), pick], values)
    return x, values, changed


def maximize_log_ei(
    post: GPPosterior,
    best: float,
    space: AcqSpace,
    rng: np.random.Generator,
    *,
    centers: np.ndarray,
    n_candidates: int,
    n_restarts: int,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Points of the cube ranked by log EI, best first, with their values.

    Scores Sobol candidates and perturbations of ``centers``, then improves the top
    ``n_restarts`` by L-BFGS-B over the numeric dimensions alternated with a discrete search
    over the categorical ones. Every returned point is snapped to its grid cells (see
    :meth:`AcqSpace.snap`); the caller takes the first it has not seen yet.
    """
    cand = _candidates(space, rng, n_candidates, centers, post.inv_ls2)
    values = log_ei(post, cand, best)
    order = np.argsort(-values, kind="stable")
    top = order[:n_restarts]
    x, x_values = cand[top], values[top]
    free = ~space.is_cat
    for _ in range(3):
        x = _local_gradient_step(post, best, x, free, max_iter)
        x_values = log_ei(post, x, best)
        x, x_values, changed = _categorical_sweep(post, best, x, x_values, space)
        if not changed:
            break
    snapped = space.snap(x)
    snapped_values = log_ei(post, snapped, best)
    # A local step may end worse than its start after snapping: keep both.
    points = np.concatenate([snapped, cand])
    scores = np.concatenate([snapped_values, values])
    ranking = np.argsort(-scores, kind="stable")
    return points[ranking], scores[ranking]
