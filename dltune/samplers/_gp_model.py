"""The Gaussian process of :class:`~dltune.samplers.GPSampler`: kernel, fit and posterior.

Inputs are points of the unit cube. The kernel is Matern 5/2 with one lengthscale per
dimension (ARD), a signal variance and a noise variance::

    k(x, x') = s2 * (1 + sqrt(5) r + 5/3 r^2) * exp(-sqrt(5) r),
    r^2 = sum_k d_k(x_k, x'_k) / l_k^2,

where ``d_k`` is the squared difference for a numeric dimension and a Hamming distance (0 if
equal, 1 otherwise) for a categorical one. The hyperparameters ``theta = (log l_1..l_d, log s2,
log noise)`` maximise the log marginal likelihood of the outputs (Yeo-Johnson warped, then
standardised: :func:`warp_outputs`) plus weak log-normal priors (so a handful of points does
not yield lengthscales of zero or infinity), by L-BFGS-B with the analytic gradient.
Everything is vectorised numpy: one evaluation costs one Cholesky factorisation and
``O(n^2 d)`` arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GPPosterior",
    "PairDistances",
    "default_theta",
    "fit_theta",
    "log_marginal_posterior",
    "matern52",
    "posterior",
    "standardize",
    "warp_outputs",
]

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)

#: Bounds of the log hyperparameters (outputs are standardised, inputs in the unit cube).
LOG_LENGTHSCALE_BOUNDS = (math.log(1e-3), math.log(1e3))
LOG_SIGNAL_BOUNDS = (math.log(1e-2), math.log(1e2))
LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(1.0))

#: Log-normal priors (location, scale of the log). The lengthscale's median grows as sqrt(d),
#: as in Hvarfner et al. (2024), "Vanilla Bayesian Optimization Performs Great in High
#: Dimensions", so that two random points stay about as correlated in any dimension. Their
#: wider prior (location sqrt(2) higher, scale sqrt(3)) did as well on 2-D and 5-D BBOB
#: problems but worse in 10-D, where it sent early trials to the corners.
LENGTHSCALE_PRIOR_LOC = 0.0
LENGTHSCALE_PRIOR_SCALE = 1.0
SIGNAL_PRIOR = (0.0, 1.0)
NOISE_PRIOR = (math.log(1e-4), 2.0)

#: Diagonal jitter relative to the signal variance, raised tenfold while a Cholesky fails.
_JITTER = 1e-10
_MAX_JITTER = 1e-2


def matern52(r2: np.ndarray) -> np.ndarray:
    """The Matern 5/2 correlation at squared scaled distances ``r2``."""
    r = np.sqrt(r2)
    corr: np.ndarray = (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * np.exp(-_SQRT5 * r)
    return corr


def _matern52_slope(r2: np.ndarray) -> np.ndarray:
    """``-d matern52 / d r2``: finite at ``r = 0`` (where the kernel is smooth)."""
    r = np.sqrt(r2)
    slope: np.ndarray = (5.0 / 6.0) * (1.0 + _SQRT5 * r) * np.exp(-_SQRT5 * r)
    return slope


def standardize(y: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance (a constant ``y`` becomes zeros)."""
    std = float(np.std(y))
    centred = y - float(np.mean(y))
    return centred / std if std > 1e-12 * max(1.0, float(np.max(np.abs(y)))) else centred * 0.0


#: The range of the Yeo-Johnson parameter (wide: a few huge losses call for a strong one).
_MAX_LAMBDA = 20.0


def _yeo_johnson(y: np.ndarray, lmbda: float) -> np.ndarray:
    out = np.empty_like(y)
    pos = y >= 0.0
    log_pos = np.log1p(y[pos])
    log_neg = np.log1p(-y[~pos])
    out[pos] = log_pos if abs(lmbda) < 1e-8 else np.expm1(lmbda * log_pos) / lmbda
    if abs(2.0 - lmbda) < 1e-8:
        out[~pos] = -log_neg
    else:
        out[~pos] = -np.expm1((2.0 - lmbda) * log_neg) / (2.0 - lmbda)
    return out


def _yeo_johnson_nll(lmbda: float, y: np.ndarray, log_jacobian: float) -> float:
    """Negative profile log likelihood of a normal fit to the transformed ``y``."""
    var = float(np.var(_yeo_johnson(y, lmbda)))
    if not var > 0.0 or not math.isfinite(var):
        return math.inf
    return 0.5 * len(y) * math.log(var) - (lmbda - 1.0) * log_jacobian


def warp_outputs(y: np.ndarray) -> np.ndarray:
    """Standardised outputs after a Yeo-Johnson transform fitted to make them look normal.

    The transform is monotone, so the order of the trials is kept, and it spreads out a
    skewed sample (most losses small, a long tail of bad ones) that would otherwise flatten
    the landscape near the optimum. Its parameter is the maximum-likelihood one in
    ``[-20, 20]``.
    """
    y_std = standardize(y)
    if not y_std.any():
        return y_std
    log_jacobian = float(np.sum(np.sign(y_std) * np.log1p(np.abs(y_std))))
    import scipy.optimize  # here, not at start-up: scipy.optimize is slow to import

    result = scipy.optimize.minimize_scalar(
        _yeo_johnson_nll,
        bounds=(-_MAX_LAMBDA, _MAX_LAMBDA),
        args=(y_std, log_jacobian),
        method="bounded",
        options={"xatol": 1e-4},
    )
    with np.errstate(over="ignore", invalid="ignore"):
        warped = _yeo_johnson(y_std, float(result.x))
    if not np.isfinite(warped).all():
        return y_std
    return standardize(warped)


def default_theta(d: int) -> np.ndarray:
    """The prior's mode: where every fit starts (besides a warm start)."""
    return np.concatenate([np.full(d, _lengthscale_loc(d)), [SIGNAL_PRIOR[0]], [NOISE_PRIOR[0]]])


def _lengthscale_loc(d: int) -> float:
    return LENGTHSCALE_PRIOR_LOC + 0.5 * math.log(d)


def _bounds(d: int) -> list[tuple[float, float]]:
    return [LOG_LENGTHSCALE_BOUNDS] * d + [LOG_SIGNAL_BOUNDS, LOG_NOISE_BOUNDS]


def _cholesky(k: np.ndarray, signal: float) -> np.ndarray:
    """Lower Cholesky factor of ``k``, adding diagonal jitter until it succeeds."""
    jitter = _JITTER * signal
    while True:
        try:
            return np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            if jitter > _MAX_JITTER * signal:
                raise
            k = k + jitter * np.eye(len(k))
            jitter *= 10.0


def _solve(chol: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``K^-1 y`` from the lower factor of ``K``."""
    # The transpose of a C-ordered lower factor is a Fortran-ordered upper one: no copy.
    import scipy.linalg  # here, not at start-up: scipy.linalg is slow to import

    out, info = scipy.linalg.lapack.dpotrs(chol.T, y, lower=0)
    if info != 0:  # pragma: no cover - the factor came from a successful Cholesky
        raise np.linalg.LinAlgError(f"dpotrs failed with info={info}")
    solution: np.ndarray = out
    return solution


def _upper_inverse(chol: np.ndarray) -> np.ndarray:
    """The upper triangle of ``K^-1`` (zeros below) from the lower factor of ``K``."""
    # LAPACK leaves the other triangle as it was: the zeros numpy's factor has there.
    import scipy.linalg  # here, not at start-up: scipy.linalg is slow to import

    inv, info = scipy.linalg.lapack.dpotri(chol.T, lower=0)
    if info != 0:  # pragma: no cover - the factor came from a successful Cholesky
        raise np.linalg.LinAlgError(f"dpotri failed with info={info}")
    upper: np.ndarray = inv
    return upper


def _symmetric_inverse(chol: np.ndarray) -> np.ndarray:
    upper = _upper_inverse(chol)
    full: np.ndarray = upper + upper.T
    full[np.diag_indices(len(full))] *= 0.5
    return full


@dataclass(frozen=True)
class PairDistances:
    """Per-dimension distances of every pair ``i < j`` of ``n`` points: a kernel matrix is
    symmetric with a known diagonal, so the fit works on half of it.

    Attributes:
        n: The number of points.
        packed: ``(n (n - 1) / 2, d)`` per-dimension distances of the pairs: squared
            differences, or 0/1 mismatches along categorical dimensions.
        rows: ``i`` of each pair.
        cols: ``j`` of each pair.
    """

    n: int
    packed: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, is_cat: np.ndarray) -> PairDistances:
        """The pairs of the rows of ``x``."""
        rows, cols = np.triu_indices(len(x), 1)
        diff = x[rows] - x[cols]
        packed = diff * diff
        if is_cat.any():
            packed[:, is_cat] = np.abs(diff[:, is_cat]) > 1e-9
        return cls(n=len(x), packed=packed, rows=rows, cols=cols)

    def matrix(self, pair_values: np.ndarray, diagonal: float) -> np.ndarray:
        """The symmetric ``(n, n)`` matrix with ``pair_values`` off the diagonal."""
        out = np.empty((self.n, self.n))
        out[self.rows, self.cols] = pair_values
        out[self.cols, self.rows] = pair_values
        out[np.diag_indices(self.n)] = diagonal
        return out


def log_marginal_posterior(
    theta: np.ndarray, pairs: PairDistances, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood plus negative log prior, and its gradient.

    Args:
        theta: ``(d + 2,)`` log lengthscales, log signal variance, log noise variance.
        pairs: The distances of the points.
        y: ``(n,)`` standardised outputs.
    """
    n, d = pairs.n, pairs.packed.shape[1]
    inv_ls2 = np.exp(-2.0 * theta[:d])
    signal = math.exp(theta[d])
    noise = math.exp(theta[d + 1])
    r2 = pairs.packed @ inv_ls2
    r = np.sqrt(r2)
    decay = np.exp(-_SQRT5 * r)
    linear = 1.0 + _SQRT5 * r
    corr = (linear + (5.0 / 3.0) * r2) * decay
    chol = _cholesky(pairs.matrix(signal * corr, signal + noise), signal)
    alpha = _solve(chol, y)
    value = 0.5 * float(y @ alpha) + float(np.log(np.diag(chol)).sum()) + 0.5 * n * _LOG_2PI
    # d value / d theta_i = sum((K^-1 - alpha alpha^T) * dK/dtheta_i) / 2: over the diagonal,
    # and twice over the pairs i < j since dK/dtheta_i is symmetric.
    upper = _upper_inverse(chol)
    w_diag = np.diag(upper) - alpha * alpha
    w_pairs = upper.ravel(order="F")[pairs.rows + pairs.cols * n]
    w_pairs -= alpha[pairs.rows] * alpha[pairs.cols]
    w_pairs *= 2.0
    grad = np.empty(d + 2)
    grad[d] = 0.5 * signal * (float(w_pairs @ corr) + float(w_diag.sum()))
    grad[d + 1] = 0.5 * noise * float(w_diag.sum())
    slope = w_pairs * linear * decay
    grad[:d] = (0.5 * (5.0 / 3.0) * signal) * inv_ls2 * (slope @ pairs.packed)
    loc, scale = _prior(d)
    z = (theta - loc) / scale
    value += 0.5 * float(z @ z)
    grad += z / scale
    return value, grad


def _prior(d: int) -> tuple[np.ndarray, np.ndarray]:
    loc = default_theta(d)
    scale = np.concatenate(
        [np.full(d, LENGTHSCALE_PRIOR_SCALE), [SIGNAL_PRIOR[1]], [NOISE_PRIOR[1]]]
    )
    return loc, scale


def fit_theta(
    x: np.ndarray,
    y: np.ndarray,
    is_cat: np.ndarray,
    starts: list[np.ndarray],
    max_iter: int = 200,
) -> np.ndarray:
    """The hyperparameters maximising the marginal posterior, from the best of ``starts``.

    Deterministic: the same data and starts give the same result.

    Args:
        x: ``(n, d)`` points of the unit cube.
        y: ``(n,)`` standardised outputs.
        is_cat: ``(d,)`` which dimensions are categorical.
        starts: Initial ``theta`` vectors (clipped into the bounds).
        max_iter: L-BFGS-B iterations per start.
    """
    d = x.shape[1]
    pairs = PairDistances.of(x, is_cat)
    bounds = _bounds(d)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    best_theta: np.ndarray = np.clip(starts[0], lo, hi)
    best_value = math.inf
    import scipy.optimize  # here, not at start-up: scipy.optimize is slow to import

    for start in starts:
        result = scipy.optimize.minimize(
            log_marginal_posterior,
            np.clip(start, lo, hi),
            args=(pairs, y),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": 1e-7},
        )
        if math.isfinite(result.fun) and result.fun < best_value:
            best_value = float(result.fun)
            best_theta = np.asarray(result.x, dtype=float)
    return best_theta


@dataclass(frozen=True)
class GPPosterior:
    """The posterior of the latent function given data and fixed hyperparameters.

    Attributes:
        x: ``(n, d)`` training points.
        inv_ls2: ``(d,)`` inverse squared lengthscales.
        signal: Signal variance.
        is_cat: ``(d,)`` which dimensions are categorical.
        alpha: ``(n,)`` ``K^-1 y``.
        kinv: ``(n, n)`` ``K^-1`` (noise included).
        x_scaled: ``(n, d_numeric)`` numeric coordinates divided by their lengthscales.
    """

    x: np.ndarray
    inv_ls2: np.ndarray
    signal: float
    is_cat: np.ndarray
    alpha: np.ndarray
    kinv: np.ndarray
    x_scaled: np.ndarray

    def _r2(self, xq: np.ndarray) -> np.ndarray:
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matrix product instead of an (m, n, d) array.
        # Rounding can make it slightly negative; near 0 the kernel is flat in r^2 anyway.
        num = ~self.is_cat
        q = xq[:, num] * np.sqrt(self.inv_ls2[num])
        r2: np.ndarray = (
            np.einsum("ij,ij->i", q, q)[:, None]
            + np.einsum("ij,ij->i", self.x_scaled, self.x_scaled)[None, :]
            - 2.0 * (q @ self.x_scaled.T)
        )
        np.maximum(r2, 0.0, out=r2)
        for dim in np.flatnonzero(self.is_cat):
            r2 += self.inv_ls2[dim] * (np.abs(xq[:, dim, None] - self.x[None, :, dim]) > 1e-9)
        return r2

    def mean_var(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function at ``xq`` ``(m, d)``."""
        means, variances = [], []
        chunk = max(1, 4_000_000 // max(1, len(self.x)))
        for start in range(0, len(xq), chunk):
            kq = self.signal * matern52(self._r2(xq[start : start + chunk]))
            means.append(kq @ self.alpha)
            variances.append(self.signal - np.einsum("ij,ij->i", kq @ self.kinv, kq))
        mean = np.concatenate(means) if means else np.empty(0)
        var = np.concatenate(variances) if variances else np.empty(0)
        return mean, np.maximum(var, 1e-12 * self.signal)

    def mean_var_grad(
        self, xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients ``(m, d)`` at ``xq``; zero gradient along
        categorical dimensions (they move by discrete search, not by gradient)."""
        r2 = self._r2(xq)
        kq = self.signal * matern52(r2)
        slope = -self.signal * _matern52_slope(r2)  # d k / d r2
        w = kq @ self.kinv
        mean = kq @ self.alpha
        raw_var = self.signal - np.einsum("ij,ij->i", w, kq)
        a = slope * self.alpha
        b = slope * w
        scale = 2.0 * np.where(self.is_cat, 0.0, self.inv_ls2)
        dmean = scale * (xq * a.sum(axis=1)[:, None] - a @ self.x)
        dvar = -2.0 * scale * (xq * b.sum(axis=1)[:, None] - b @ self.x)
        floor = 1e-12 * self.signal
        dvar[raw_var <= floor] = 0.0
        return mean, np.maximum(raw_var, floor), dmean, dvar


def posterior(x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, theta: np.ndarray) -> GPPosterior:
    """Condition the GP with hyperparameters ``theta`` on ``(x, y)``."""
    d = x.shape[1]
    inv_ls2 = np.exp(-2.0 * theta[:d])
    signal = math.exp(theta[d])
    noise = math.exp(theta[d + 1])
    pairs = PairDistances.of(x, is_cat)
    chol = _cholesky(
        pairs.matrix(signal * matern52(pairs.packed @ inv_ls2), signal + noise), signal
    )
    return GPPosterior(
        x=x,
        inv_ls2=inv_ls2,
        signal=signal,
        is_cat=is_cat,
        alpha=_solve(chol, y),
        kinv=_symmetric_inverse(chol),
        x_scaled=x[:, ~is_cat] * np.sqrt(inv_ls2[~is_cat]),
    )
