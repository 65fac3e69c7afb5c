"""GPSampler: the conformance suite, then the model, the acquisition and the sampler's promises."""

from __future__ import annotations

import math
from typing import Any

import cloudpickle
import numpy as np
import pytest
import scipy.stats

import dltune
from dltune import Trial
from dltune.samplers import BaseSampler
from dltune.samplers import RandomSampler
from dltune.samplers._gp import THETA_NOTE
from dltune.samplers._gp import GPSampler
from dltune.samplers._gp import _fit
from dltune.samplers._gp_acq import AcqSpace
from dltune.samplers._gp_acq import log_ei
from dltune.samplers._gp_acq import log_ei_grad
from dltune.samplers._gp_acq import log_h
from dltune.samplers._gp_acq import maximize_log_ei
from dltune.samplers._gp_model import PairDistances
from dltune.samplers._gp_model import default_theta
from dltune.samplers._gp_model import fit_theta
from dltune.samplers._gp_model import log_marginal_posterior
from dltune.samplers._gp_model import posterior
from dltune.samplers._gp_model import standardize
from dltune.samplers._gp_model import warp_outputs
from dltune.study import Study
from dltune.testing import SamplerConformance
from dltune.trial import TrialState


def _gp(seed: int, n_startup_trials: int) -> GPSampler:
    """Small candidate sets keep the tests fast; the defaults are tuned for quality."""
    return GPSampler(seed=seed, n_startup_trials=n_startup_trials, n_candidates=256, n_restarts=4)


class TestGPSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return _gp(seed, 5)


# -- the model -----------------------------------------------------------------------------


def _mixed_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points with a categorical third dimension (3 choices) and a smooth value."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4))
    x[:, 2] = (rng.integers(0, 3, n) + 0.5) / 3
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + (x[:, 2] > 0.5)
    return x, standardize(y), np.array([False, False, True, False])


def _central_difference(f: Any, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return np.stack(
        [(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.shape[-1])], axis=-1
    )


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    x, y, is_cat = _mixed_data(15)
    pairs = PairDistances.of(x, is_cat)
    theta = np.random.default_rng(1).normal(size=6) * 0.5
    _, grad = log_marginal_posterior(theta, pairs, y)
    numeric = _central_difference(lambda t: log_marginal_posterior(t, pairs, y)[0], theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_posterior_and_log_ei_gradients_match_finite_differences() -> None:
    x, y, is_cat = _mixed_data(15)
    post = posterior(x, y, is_cat, fit_theta(x, y, is_cat, [default_theta(4)]))
    xq = np.random.default_rng(2).random((5, 4))
    xq[:, 2] = x[:5, 2]  # categorical coordinates stay on their choices
    # The posterior's distances (a matrix product) agree with the fit's (explicit pairs).
    pairs = PairDistances.of(x, is_cat)
    direct = pairs.matrix(pairs.packed @ post.inv_ls2, 0.0)
    np.testing.assert_allclose(post._r2(x), direct, atol=1e-9)
    mean, var, dmean, dvar = post.mean_var_grad(xq)
    np.testing.assert_allclose(post.mean_var(xq)[0], mean)
    np.testing.assert_allclose(post.mean_var(xq)[1], var)
    numeric_mean = _central_difference(lambda z: post.mean_var(z)[0], xq)
    numeric_var = _central_difference(lambda z: post.mean_var(z)[1], xq)
    numeric_mean[:, 2] = numeric_var[:, 2] = 0.0  # no gradient along a categorical dimension
    np.testing.assert_allclose(dmean, numeric_mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dvar, numeric_var, rtol=1e-4, atol=1e-6)
    best = float(y.min())
    value, grad = log_ei_grad(post, xq, best)
    np.testing.assert_allclose(value, log_ei(post, xq, best))
    numeric = _central_difference(lambda z: log_ei(post, z, best), xq)
    numeric[:, 2] = 0.0
    # Far from the data log EI is steep (down to -700 here): finite differences lose digits.
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-6)


def test_log_h_matches_the_direct_formula_and_stays_finite() -> None:
    z = np.linspace(-8.0, 8.0, 161)
    h = scipy.stats.norm.pdf(z) + z * scipy.stats.norm.cdf(z)
    np.testing.assert_allclose(log_h(z), np.log(h), rtol=1e-9)
    # Where EI underflows to 0 the log form stays finite, decreasing, close to its asymptote.
    far = log_h(np.array([-40.0, -39.0, -1e10]))
    assert np.isfinite(far).all()
    assert far[0] < far[1]
    asymptote = -0.5 * 40.0**2 - 0.5 * math.log(2 * math.pi) - 2 * math.log(40.0)
    assert far[0] == pytest.approx(asymptote, abs=1e-2)
    assert scipy.stats.norm.pdf(-40.0) + -40.0 * scipy.stats.norm.cdf(-40.0) == 0.0


def test_warp_outputs_keeps_the_order_and_spreads_a_skewed_sample() -> None:
    y = np.exp(np.linspace(0.0, 8.0, 40))  # a loss over 8 e-folds: most values are small

    def lower_half_share(values: np.ndarray) -> float:
        return float((values[19] - values[0]) / (values[-1] - values[0]))

    warped = warp_outputs(y)
    assert np.all(np.diff(warped) > 0)
    assert warped.mean() == pytest.approx(0.0, abs=1e-9)
    assert warped.std() == pytest.approx(1.0)
    assert lower_half_share(warped) > 5 * lower_half_share(standardize(y))
    assert not warp_outputs(np.full(5, 3.0)).any()
    # The same maximum-likelihood transform as scipy's, a few huge losses included.
    for sample in (y, np.concatenate([np.linspace(0.0, 1.0, 30), [1e6, 1e8]])):
        reference = standardize(scipy.stats.yeojohnson(standardize(sample))[0])
        np.testing.assert_allclose(warp_outputs(sample), reference, atol=1e-4)


def test_fit_finds_the_one_relevant_dimension() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((30, 3))
    y = standardize(np.sin(6.0 * x[:, 0]))
    theta = fit_theta(x, y, np.zeros(3, dtype=bool), [default_theta(3)])
    lengthscales = np.exp(theta[:3])
    assert lengthscales[0] < 0.5 * min(lengthscales[1], lengthscales[2])


def test_fit_is_deterministic_and_warm_start_is_no_worse() -> None:
    x, y, is_cat = _mixed_data(20)
    cold = fit_theta(x, y, is_cat, [default_theta(4)])
    np.testing.assert_array_equal(cold, fit_theta(x, y, is_cat, [default_theta(4)]))
    pairs = PairDistances.of(x, is_cat)
    warm = fit_theta(x, y, is_cat, [cold + 0.1, default_theta(4)])
    assert log_marginal_posterior(warm, pairs, y)[0] <= log_marginal_posterior(cold, pairs, y)[0]


def test_fit_schedule_reuses_the_warm_start_between_refits_of_large_histories() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((120, 2))
    y = standardize(np.sin(5.0 * x[:, 0]) + x[:, 1])
    is_cat = np.zeros(2, dtype=bool)
    warm = default_theta(2)
    np.testing.assert_array_equal(_fit(x, y, is_cat, warm, number=5), warm)
    refitted = _fit(x, y, is_cat, warm, number=4)
    pairs = PairDistances.of(x, is_cat)
    assert (
        log_marginal_posterior(refitted, pairs, y)[0] < log_marginal_posterior(warm, pairs, y)[0]
    )


def test_identical_points_and_constant_values_are_stable() -> None:
    x = np.full((20, 2), 0.3)
    y = standardize(np.full(20, 5.0))
    assert not y.any()
    is_cat = np.zeros(2, dtype=bool)
    theta = fit_theta(x, y, is_cat, [default_theta(2)])
    post = posterior(x, y, is_cat, theta)
    xq = np.random.default_rng(4).random((8, 2))
    assert np.isfinite(log_ei(post, xq, 0.0)).all()
    assert np.isfinite(log_ei_grad(post, xq, 0.0)[1]).all()


def test_maximize_log_ei_finds_the_promising_region() -> None:
    x = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.7, 0.5], [0.9, 0.5]])
    y = standardize((x[:, 0] - 0.62) ** 2)
    is_cat = np.zeros(2, dtype=bool)
    post = posterior(x, y, is_cat, fit_theta(x, y, is_cat, [default_theta(2)]))
    space = AcqSpace(n_choices=np.zeros(2, dtype=int), n_cells=np.zeros(2, dtype=int))
    points, values = maximize_log_ei(
        post,
        float(y.min()),
        space,
        np.random.default_rng(0),
        centers=x[:1],
        n_candidates=64,
        n_restarts=3,
    )
    assert np.all(np.diff(values) <= 0)
    assert 0.5 < points[0, 0] < 0.75


def test_acq_space_snaps_choices_and_cells() -> None:
    space = AcqSpace(n_choices=np.array([3, 0, 0]), n_cells=np.array([0, 4, 0]))
    snapped = space.snap(np.array([[0.99, 0.3, 0.123], [0.0, 1.0, 0.5]]))
    np.testing.assert_allclose(snapped, [[5 / 6, 0.375, 0.123], [1 / 6, 0.875, 0.5]])


# -- the sampler ---------------------------------------------------------------------------


def _quadratic(trial: Trial) -> float:
    return (trial.suggest_float("x", -3, 3) - 1.2) ** 2 + (
        trial.suggest_float("y", -3, 3) + 0.7
    ) ** 2


def test_beats_random_search_on_a_quadratic() -> None:
    best = {}
    for name, sampler in (
        ("gp", _gp(0, 8)),
        ("random", RandomSampler(seed=0)),
    ):
        study = dltune.create_study(sampler=sampler)
        study.optimize(_quadratic, n_trials=30)
        best[name] = study.best_value
    assert best["gp"] < 1e-2
    assert best["gp"] < 0.1 * best["random"]


def test_no_duplicates_until_the_space_is_exhausted() -> None:
    def objective(trial: Trial) -> float:
        n = trial.suggest_int("n", 0, 3)
        c = trial.suggest_categorical("c", ["a", "b", "c"])
        return n + {"a": 0.0, "b": 0.5, "c": 1.0}[str(c)]

    study = dltune.create_study(sampler=_gp(1, 3))
    study.optimize(objective, n_trials=12)
    configs = [(t.params["n"], t.params["c"]) for t in study.trials]
    assert len(set(configs)) == 12


def _study_with(points: list[tuple[float, float]], **kwargs: Any) -> Study:
    """A study of GPSampler over x, y in [0, 1] whose first trials are ``points``, complete."""
    study = dltune.create_study(sampler=_gp(3, 4))
    for x, y in points:
        _tell_at(study, x, y, (x - 0.6) ** 2 + (y - 0.4) ** 2)
    return study


def _tell_at(
    study: Study, x: float, y: float, value: float | None, **tell: Any
) -> dltune.trial.FrozenTrial | Trial:
    study.enqueue_trial({"x": x, "y": y})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.suggest_float("y", 0, 1)
    if value is None and not tell:
        return trial  # left RUNNING
    return study.tell(trial, value, **tell)


def _propose(study: Study) -> np.ndarray:
    trial = study.ask()
    return np.array([trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)])


GRID = [(0.2 + 0.3 * i, 0.2 + 0.3 * j) for i in range(3) for j in range(3)]


def test_running_trials_change_the_proposal() -> None:
    alone = _study_with(GRID)
    for corner in ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0)):  # ignored: same trial numbers below
        _tell_at(alone, *corner, None, state=TrialState.FAIL, reason="interrupted")
    proposal = _propose(alone)
    busy = _study_with(GRID)
    pending = [proposal + [dx, 0.0] for dx in (-0.01, 0.0, 0.01)]
    for point in pending:  # three workers evaluate that proposal and points next to it
        _tell_at(busy, float(point[0]), float(point[1]), None)
    elsewhere = _propose(busy)
    assert min(np.linalg.norm(elsewhere - point) for point in pending) > 0.02


def test_failed_trials_push_proposals_away() -> None:
    # Values fall towards x = 1; failures (say, divergence) fill the band x >= 0.75.
    line = [(0.1 * i, 0.5) for i in range(1, 7)]
    band = [(x, y) for x in (0.75, 0.85, 0.95) for y in (0.2, 0.5, 0.8)]
    proposals = {}
    for reason in ("diverged", "interrupted"):  # an interrupted trial is no evidence
        study = dltune.create_study(sampler=_gp(5, 4))
        for x, y in line:
            _tell_at(study, x, y, -x)
        for x, y in band:
            _tell_at(study, x, y, None, state=TrialState.FAIL, reason=reason)
        proposals[reason] = _propose(study)
    assert proposals["diverged"][0] < 0.72
    assert proposals["interrupted"][0] > 0.72


def test_identical_trials_do_not_break_the_model() -> None:
    study = _study_with([(0.3, 0.3)] * 20)
    proposal = _propose(study)
    assert not np.allclose(proposal, [0.3, 0.3])


def test_a_pickled_copy_mid_study_proposes_the_same() -> None:
    study = _study_with(GRID)
    copy = cloudpickle.loads(cloudpickle.dumps(study.sampler))
    _propose(study)  # the model writes its fit as a note, from which the next fit starts
    assert study.trials[-1].system_attrs[f"sampler:{THETA_NOTE}"]["names"] == ["x", "y"]
    frozen = study._storage.create_new_trial(study._study_id)
    space = study.sampler.infer_relative_search_space(study._view, frozen)
    first = study.sampler.sample_relative(study._view, frozen, space)
    assert copy.sample_relative(study._view, frozen, space) == first


def test_multi_objective_uses_the_model() -> None:
    study = dltune.create_study(sampler=_gp(6, 5), directions=["minimize"] * 2)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1)), 12)
    notes = [t.system_attrs.get(f"sampler:{THETA_NOTE}") for t in study.trials]
    assert notes[:5] == [None] * 5
    assert all(note is not None for note in notes[5:])


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": "0"}, TypeError, r"seed='0' must be an int or None"),
        ({"n_startup_trials": -1}, ValueError, r"n_startup_trials=-1 must be >= 0"),
        ({"n_startup_trials": 2.5}, TypeError, r"n_startup_trials=2.5 must be an int >= 0"),
        ({"n_startup_trials": True}, TypeError, r"n_startup_trials=True must be an int"),
        ({"n_candidates": 0}, ValueError, r"n_candidates=0 must be >= 1"),
        ({"n_restarts": "4"}, TypeError, r"n_restarts='4' must be an int >= 1"),
        (
            {"independent_sampler": "random"},
            TypeError,
            r"independent_sampler='random' must be a sampler \(a BaseSampler\) or None",
        ),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        GPSampler(**kwargs)
