"""Gaussian-process Bayesian optimisation: the sampler that needs the fewest trials."""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune.samplers._base import BaseSampler
from dltune.samplers._base import DelegatesIndependent
from dltune.samplers._base import check_seed
from dltune.samplers._base import rung_points
from dltune.samplers._base import trial_rng
from dltune.samplers._gp_acq import AcqSpace
from dltune.samplers._gp_acq import maximize_log_ei
from dltune.samplers._gp_model import default_theta
from dltune.samplers._gp_model import fit_theta
from dltune.samplers._gp_model import posterior
from dltune.samplers._gp_model import warp_outputs
from dltune.samplers._history import History
from dltune.samplers._history import UnitCache
from dltune.samplers._history import collect
from dltune.samplers._history import intersection_space
from dltune.samplers._history import is_counted
from dltune.samplers._history import objective_sign
from dltune.samplers._random import RandomSampler
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["GPSampler"]

_logger = logging.getLogger(__name__)

#: The note (on each trial the model proposed) holding the fitted hyperparameters, from which
#: the next fit starts; in storage, so every worker and a fresh copy start alike.
THETA_NOTE = "gp_theta"
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: ParEGO's weight on the sum in the augmented Chebyshev scalarisation.
_PAREGO_RHO = 0.05
#: The best observed points around which candidates are perturbed.
_N_CENTERS = 5
#: The fitting schedule (see ``_fit``): up to this many points every fit also starts from
#: the prior's mode; then only every few trials.
_ALWAYS_COLD_START = 64
_COLD_START_EVERY = 16
#: Past this many points, the hyperparameters are refitted every few trials only.
_REFIT_EVERY_FROM = 100
_REFIT_EVERY = 4
#: L-BFGS-B iterations of a fit, and of a fit from the warm start alone.
_MAX_FIT_ITER = 200
_MAX_WARM_FIT_ITER = 20
#: Random points tried when a start-up point was tried already.
_N_RETRIES = 64


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}={value!r} must be an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be >= {minimum}")
    return int(value)


class GPSampler(DelegatesIndependent):
    """Bayesian optimisation with a Gaussian process and log expected improvement.

    The first ``n_startup_trials`` trials take scrambled Sobol points (the point of a trial
    depends only on the seed and its number). Then each trial fits a Gaussian process (Matern
    5/2, one lengthscale per parameter, a noise term; hyperparameters by maximum marginal
    likelihood with weak priors) to the finished trials over the parameters they all share,
    and proposes the maximiser of log expected improvement. Diverged and failed trials count
    as the worst result, so their region is avoided; running trials are added as fantasies
    (their predicted value as if observed) so parallel workers spread out; a configuration
    already tried is not proposed again while an untried one scores. Categorical parameters
    enter the kernel through a 0/1 distance; integer and stepped parameters are modelled as
    continuous and rounded. A multi-objective study is scalarised per trial with random
    weights (ParEGO's augmented Chebyshev function on objectives normalised to ``[0, 1]``).
    Parameters outside the shared space (conditional ones) go to ``independent_sampler``.

    Each model trial costs ``O(n^3)`` in the number ``n`` of finished trials; the sampler suits
    budgets of up to a few hundred trials of mostly numeric parameters. The fitted
    hyperparameters are kept on each trial as the note ``sampler:gp_theta``; the next fit
    starts from them, so every worker, and a fresh copy of the sampler, fits alike.

    Args:
        seed: Makes the study reproducible with one worker: all randomness is derived from the
            seed and the trial number.
        n_startup_trials: How many trials finish (counted: complete, pruned with a value, or
            failed with params) before the model is used.
        independent_sampler: Samples parameters outside the modelled space; a
            ``RandomSampler(seed)`` by default.
        n_candidates: Quasi-random points scored before the gradient search (plus as many
            perturbations of the best points).
        n_restarts: How many of the best candidates start the gradient search.
        multi_fidelity: Fit on the values of the highest step (rung) that at least
            ``min_points_in_rung`` trials reached, not on final values (BOHB-style, with a
            successive-halving or Hyperband pruner: :func:`dltune.presets.bohb`).
        min_points_in_rung: Trials a rung needs before the model fits on it (default
            ``n_startup_trials``).

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If a count is out of range.

    Example:
        >>> import dltune
        >>> sampler = GPSampler(seed=0, n_startup_trials=4)
        >>> study = dltune.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=8)
        >>> study.best_value < 0.1
        True
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        n_startup_trials: int = 10,
        independent_sampler: BaseSampler | None = None,
        n_candidates: int = 2048,
        n_restarts: int = 10,
        multi_fidelity: bool = False,
        min_points_in_rung: int | None = None,
    ) -> None:
        self._seed = check_seed(seed)
        self._rung_points = rung_points(multi_fidelity, min_points_in_rung, n_startup_trials)
        self._n_startup_trials = _check_int("n_startup_trials", n_startup_trials, 0)
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise TypeError(
                f"independent_sampler={independent_sampler!r} must be a sampler (a BaseSampler) "
                "or None"
            )
        self._independent = (
            RandomSampler(self._seed) if independent_sampler is None else independent_sampler
        )
        self._n_candidates = _check_int("n_candidates", n_candidates, 1)
        self._n_restarts = _check_int("n_restarts", n_restarts, 1)
        self._cache = UnitCache()

    def infer_relative_search_space(
        self, study: StudyView, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return intersection_space(t for t in study.get_trials(_FINISHED) if is_counted(t))

    def sample_relative(
        self, study: StudyView, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials()
        history = collect(
            study,
            search_space,
            self._cache,
            current=trial,
            trials=trials,
            rung_points=self._rung_points,
        )
        x, y = self._training_data(study, trial, history)
        if len(history.trials) < self._n_startup_trials or len(y) == 0:
            unit = self._startup_point(trial, history)
        else:
            try:
                unit = self._propose(study, trial, trials, history, x, y)
            except np.linalg.LinAlgError:
                _logger.warning(
                    "trial %d: the Gaussian process failed numerically; sampling quasi-randomly",
                    trial.number,
                )
                unit = self._startup_point(trial, history)
        return {
            name: dist.to_external(dist.from_unit(float(u)))
            for (name, dist), u in zip(search_space.items(), unit, strict=True)
        }

    # -- start-up --------------------------------------------------------------------------

    def _startup_point(self, trial: FrozenTrial, history: History) -> np.ndarray:
        """Sobol point number ``trial.number``, or random ones if it was tried already."""
        d = len(history.space)
        from scipy.stats import qmc  # here: scipy.stats costs ~1 s to import at start-up

        engine = qmc.Sobol(d, scramble=True, seed=self._seed)
        if trial.number:
            engine.fast_forward(trial.number)
        with warnings.catch_warnings():
            # Sobol's balance warning is about drawing other than powers of two from one
            # engine; here each trial takes one point of a shared sequence.
            warnings.simplefilter("ignore", UserWarning)
            points = [engine.random(1)]
        points.append(trial_rng(self._seed, trial.number, "gp:startup").random((_N_RETRIES, d)))
        return _first_unseen(np.concatenate(points), history)

    # -- the model -------------------------------------------------------------------------

    def _training_data(
        self, study: StudyView, trial: FrozenTrial, history: History
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points and values to minimise; several objectives are scalarised (ParEGO)."""
        if not study.is_multi_objective:
            return history.imputed_score()
        n_objectives = len(study.directions)
        signs = np.array([objective_sign(study, i) for i in range(n_objectives)])
        complete = np.array(
            [
                t.state == TrialState.COMPLETE
                and t.values is not None
                and all(math.isfinite(v) for v in t.values)
                for t in history.trials
            ],
            dtype=bool,
        )
        if not complete.any():
            return np.empty((0, len(history.space))), np.empty(0)
        values = signs * np.array([history.trials[i].values for i in np.flatnonzero(complete)])
        low, high = values.min(axis=0), values.max(axis=0)
        normalized = (values - low) / np.where(high > low, high - low, 1.0)
        weights = trial_rng(self._seed, trial.number, "gp:weights").dirichlet(
            np.ones(n_objectives)
        )
        weighted = normalized * weights
        scalar = weighted.max(axis=1) + _PAREGO_RHO * weighted.sum(axis=1)
        bad = history.is_bad | (history.is_complete & ~complete)
        y = np.full(len(history.trials), float(scalar.max()))
        y[complete] = scalar
        keep = complete | bad
        return history.x[keep], y[keep]

    def _propose(
        self,
        study: StudyView,
        trial: FrozenTrial,
        trials: list[FrozenTrial],
        history: History,
        x: np.ndarray,
        y: np.ndarray,
    ) -> np.ndarray:
        space = history.space
        acq_space = _acq_space(space)
        is_cat = acq_space.is_cat
        y_std = warp_outputs(y)
        warm = _warm_start(study, trial, trials, list(space))
        theta = _fit(x, y_std, is_cat, warm, trial.number)
        study.set_note(THETA_NOTE, {"names": list(space), "theta": theta.tolist()}, trial)
        post = posterior(x, y_std, is_cat, theta)
        best = float(y_std.min())
        if len(history.pending):
            # Kriging believer: running trials count as observed at their predicted mean. That
            # removes their variance and, as the incumbent includes them, their improvement,
            # so this trial looks elsewhere.
            fantasy, _ = post.mean_var(history.pending)
            post = posterior(
                np.concatenate([x, history.pending]),
                np.concatenate([y_std, fantasy]),
                is_cat,
                theta,
            )
            best = min(best, float(fantasy.min()))
        centers = x[np.argsort(y_std, kind="stable")[:_N_CENTERS]]
        rng = trial_rng(self._seed, trial.number, "gp:acquisition")
        points, _ = maximize_log_ei(
            post,
            best,
            acq_space,
            rng,
            centers=centers,
            n_candidates=self._n_candidates,
            n_restarts=self._n_restarts,
        )
        return _first_unseen(points, history)


def _fit(
    x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, warm: np.ndarray | None, number: int
) -> np.ndarray:
    """Fit the hyperparameters on a schedule that keeps large histories cheap.

    The warm start (the previous trial's fit) follows the data: a few steps from it track the
    optimum as a point is added. The prior's mode, tried while fits are cheap and then every
    few trials, keeps the fit from staying in a poor local optimum. With many points, one more
    barely moves the optimum: most trials reuse the warm start as it is.
    """
    n = len(y)
    if warm is None or n <= _ALWAYS_COLD_START:
        starts = [default_theta(x.shape[1])] if warm is None else [warm, default_theta(x.shape[1])]
        return fit_theta(x, y, is_cat, starts, max_iter=_MAX_FIT_ITER)
    if number % _COLD_START_EVERY == 0:
        return fit_theta(x, y, is_cat, [warm, default_theta(x.shape[1])], max_iter=_MAX_FIT_ITER)
    if n > _REFIT_EVERY_FROM and number % _REFIT_EVERY:
        return warm
    return fit_theta(x, y, is_cat, [warm], max_iter=_MAX_WARM_FIT_ITER)


def _first_unseen(points: np.ndarray, history: History) -> np.ndarray:
    """The first of ``points`` that is no trial's configuration yet, else the first."""
    dists = list(history.space.values())
    point: np.ndarray
    for point in points:
        internal = [dist.from_unit(float(u)) for dist, u in zip(dists, point, strict=True)]
        if not history.is_seen(internal):
            return point
    _logger.debug("every candidate was tried already; proposing a duplicate")
    first: np.ndarray = points[0]
    return first


def _acq_space(space: dict[str, BaseDistribution]) -> AcqSpace:
    n_choices = np.zeros(len(space), dtype=int)
    n_cells = np.zeros(len(space), dtype=int)
    for i, dist in enumerate(space.values()):
        if isinstance(dist, CategoricalDistribution):
            n_choices[i] = len(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            n_cells[i] = (dist.high - dist.low) // dist.step + 1
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n_cells[i] = round((dist.high - dist.low) / dist.step) + 1
    return AcqSpace(n_choices=n_choices, n_cells=n_cells)


def _warm_start(
    study: StudyView, trial: FrozenTrial, trials: list[FrozenTrial], names: list[str]
) -> np.ndarray | None:
    """The hyperparameters fitted for the latest earlier trial over the same space."""
    for other in reversed(trials):
        if other.number >= trial.number:
            continue
        note = study.get_note(THETA_NOTE, other)
        if isinstance(note, dict) and note.get("names") == names:
            theta = np.asarray(note.get("theta"), dtype=float)
            if theta.shape == (len(names) + 2,) and np.isfinite(theta).all():
                return theta
    return None
