"""CMA-ES over the unit cube, through the ``cmaes`` package (the optional extra ``cmaes``)."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune._imports import require
from dltune.samplers._base import BaseSampler
from dltune.samplers._base import DelegatesIndependent
from dltune.samplers._base import check_seed
from dltune.samplers._base import trial_rng
from dltune.samplers._cmaes_run import NOTE_KEY
from dltune.samplers._cmaes_run import Geometry
from dltune.samplers._cmaes_run import Run
from dltune.samplers._cmaes_run import RunSettings
from dltune.samplers._cmaes_run import Watermark
from dltune.samplers._cmaes_run import first_unfinished
from dltune.samplers._cmaes_run import scan_notes
from dltune.samplers._history import UnitCache
from dltune.samplers._history import collect
from dltune.samplers._history import is_counted
from dltune.samplers._history import objective_sign
from dltune.samplers._history import point_key
from dltune.samplers._random import RandomSampler
from dltune.space import FloatDistribution
from dltune.space import IntDistribution

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["CMAESSampler"]

_RESTART_STRATEGIES = ("ipop", None)
#: Draws per trial before a proposal that repeats an earlier point is accepted anyway.
_MAX_RESAMPLES = 100


@dataclass
class _Cache:
    """What a process remembers between trials; a pickled copy starts with an empty one and
    rebuilds the same from the study."""

    #: The optimiser, replayed up to the generations complete when last asked.
    run: Run | None = None
    #: ``(trial id, trials)`` read for the space, reused to sample the same trial.
    stash: tuple[int, list[FrozenTrial]] | None = None
    #: The space every counted finished trial shares, and the trials already in it.
    shared: dict[str, BaseDistribution] | None = None
    shared_ids: set[int] = field(default_factory=set)
    shared_until: Watermark = field(default_factory=Watermark)
    n_counted: int = 0
    #: The last space and its fingerprint.
    fingerprint: tuple[tuple[tuple[str, BaseDistribution], ...], str] | None = None


class CMAESSampler(DelegatesIndependent):
    """CMA-ES (the covariance matrix adaptation evolution strategy) with restarts and margins.

    It works in the unit cube of the numeric parameters every counted finished trial shares
    (float and int distributions; log scales are handled by the cube). Integer and stepped-float
    parameters use CMA-ES with margin (``cmaes.CMAwM``), which keeps some probability on the
    neighbouring values so the search does not freeze on one integer; ``use_margin=False`` uses
    plain ``cmaes.CMA`` and snaps values to the grid. Log-scaled ints, whose cells in the cube
    are unequal, are searched as continuous and snapped. A proposal that repeats a point already
    in the study is redrawn (up to 100 times).

    * **Categorical parameters**, parameters outside the shared space (conditional ones), the
      first trial and the ``n_startup_trials`` go to ``independent_sampler``
      (default :class:`~dltune.samplers.RandomSampler` with the same seed).
    * **Multi-objective studies** run, but every parameter goes to ``independent_sampler``.
    * **Restarts** (``restart_strategy="ipop"``): when the optimiser stops making progress it
      restarts from a random point with a population ``inc_popsize`` times larger.
    * **Pruned, diverged and failed trials** take part in their generation, ranked below
      every complete trial (pruned ones by how far they got, then diverged and failed ones), so
      the search moves away from a diverging region. Trials that died with their worker or were
      interrupted are left out.
    * **Workers**: nothing is kept in the sampler that other processes need. Each trial notes
      (system attribute ``sampler:cmaes``) the restart and generation it was drawn for; any
      process rebuilds the optimiser from these notes. A generation is complete when
      ``popsize`` of its trials have finished; a worker asking before that gets another point
      of the current generation (so workers never wait; points beyond ``popsize`` are kept in
      the study but not used in the update).
    * **Reproducible**: before drawing a trial's point the optimiser's generator is reseeded
      (through the public ``reseed_rng`` of ``cmaes``) from the seed and the trial number, and
      telling involves no randomness; so a point depends only on the seed, the trial number and
      the trials finished when it was asked, whichever worker or process asks.

    Args:
        seed: Seeds the optimiser's draws, the restarts and the default independent sampler.
        x0: Initial mean, as ``{name: value}`` in the parameters' own units; parameters left
            out start at the centre. Default: the centre of the cube, or with
            ``n_startup_trials`` the mean of the best quarter of the startup trials (CMA-ES
            then starts where random search found the best region).
        sigma0: Initial step size as a fraction of the cube's width, in ``(0, 1]``. Default
            ``1/6``: the cube is about six standard deviations wide.
        popsize: Population of the first run, an int >= 4. Default ``4 + floor(3 ln d)``.
        n_startup_trials: Trials sampled by ``independent_sampler`` before CMA-ES starts.
        restart_strategy: ``"ipop"`` (default) or ``None`` for no restarts.
        inc_popsize: Factor (an int >= 1) by which each IPOP restart grows the population.
        use_margin: Use CMA-ES with margin for integer and stepped parameters.
        independent_sampler: Samples what CMA-ES does not (see above).

    Raises:
        TypeError: For an argument of the wrong type.
        ValueError: For an argument out of range or an unknown restart strategy.
        MissingDependencyError: If the ``cmaes`` package is not installed.

    Example:
        >>> import dltune
        >>> sampler = CMAESSampler(seed=0)
        >>> study = dltune.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=30)
        >>> study.best_value < 0.01
        True
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        x0: Mapping[str, float] | None = None,
        sigma0: float | None = None,
        popsize: int | None = None,
        n_startup_trials: int = 0,
        restart_strategy: str | None = "ipop",
        inc_popsize: int = 2,
        use_margin: bool = True,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        require("cmaes", extra="cmaes", feature="CMAESSampler")
        self._seed = check_seed(seed)
        self._x0 = _check_x0(x0)
        self._sigma0 = _check_sigma0(sigma0)
        self._popsize = None if popsize is None else _check_int("popsize", popsize, 4)
        self._n_startup_trials = _check_int("n_startup_trials", n_startup_trials, 0)
        if restart_strategy not in _RESTART_STRATEGIES:
            raise ValueError(
                f"restart_strategy={restart_strategy!r} is not supported; use 'ipop' or None"
            )
        self._restart_strategy = restart_strategy
        self._inc_popsize = _check_int("inc_popsize", inc_popsize, 1)
        if not isinstance(use_margin, bool):
            raise TypeError(f"use_margin={use_margin!r} must be True or False")
        self._use_margin = use_margin
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise TypeError(
                f"independent_sampler={independent_sampler!r} must be a BaseSampler or None"
            )
        self._independent = (
            RandomSampler(self._seed) if independent_sampler is None else independent_sampler
        )
        self._settings = RunSettings(
            seed=self._seed,
            sigma0=self._sigma0,
            popsize=self._popsize,
            restart_strategy=self._restart_strategy,
            inc_popsize=self._inc_popsize,
        )
        self._reset_caches()

    def _reset_caches(self) -> None:
        self._lock = threading.Lock()
        self._cache = _Cache()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_cache"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_caches()

    # -- the hooks ---------------------------------------------------------------------------

    def infer_relative_search_space(
        self, study: StudyView, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if study.is_multi_objective:
            return {}
        trials = study.get_trials()
        with self._lock:
            self._cache.stash = (trial.trial_id, trials)
            shared = self._update_shared(trials)
            n_counted = self._cache.n_counted
        if n_counted < max(1, self._n_startup_trials):
            return {}
        return {
            name: dist
            for name, dist in sorted(shared.items())
            if isinstance(dist, FloatDistribution | IntDistribution) and not dist.is_single()
        }

    def sample_relative(
        self, study: StudyView, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        with self._lock:
            stash, self._cache.stash = self._cache.stash, None
        trials = stash[1] if stash is not None and stash[0] == trial.trial_id else None
        if trials is None:
            trials = study.get_trials()
        with self._lock:
            run = self._replayed_run(study, trials, search_space)
            restart, generation = run.position
            internal, raw = self._propose(run, trial, trials)
            note: dict[str, Any] = {
                "space": run.fingerprint,
                "restart": restart,
                "generation": generation,
                "x": [float(v) for v in raw],
            }
            if (restart, generation) == (0, 0):
                note["x0"] = [float(v) for v in run.x0]
        study.set_note(NOTE_KEY, note, trial=trial)
        return {
            name: dist.to_external(value)
            for (name, dist), value in zip(search_space.items(), internal, strict=True)
        }

    # -- the space -----------------------------------------------------------------------------

    def _update_shared(self, trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
        """The parameters every counted finished trial has, with the same distribution.

        The same as :func:`~dltune.samplers._history.intersection_space` over those trials
        (before leaving out single-valued ones), kept up to date one new trial at a time:
        finished trials never change.
        """
        cache = self._cache
        begin = cache.shared_until.begin(trials)
        if begin == 0:
            cache.shared_ids, cache.shared, cache.n_counted = set(), None, 0
        for t in trials[begin:]:
            if t.trial_id in cache.shared_ids or not t.state.is_finished():
                continue
            cache.shared_ids.add(t.trial_id)
            if not is_counted(t):
                continue
            cache.n_counted += 1
            if cache.shared is None:
                cache.shared = dict(t.distributions)
            else:
                cache.shared = {
                    n: d for n, d in cache.shared.items() if t.distributions.get(n) == d
                }
        cache.shared_until.advance(trials, first_unfinished(trials, begin))
        return cache.shared or {}

    def _fingerprint(self, space: dict[str, BaseDistribution]) -> str:
        """Names the space and the options that shape a run; a run's notes carry it."""
        key = tuple(space.items())
        if self._cache.fingerprint is not None and self._cache.fingerprint[0] == key:
            return self._cache.fingerprint[1]
        settings = (
            sorted((name, repr(dist)) for name, dist in space.items()),
            self._sigma0,
            self._popsize,
            self._restart_strategy,
            self._inc_popsize,
            self._use_margin,
        )
        fingerprint = hashlib.blake2b(repr(settings).encode(), digest_size=8).hexdigest()
        self._cache.fingerprint = (key, fingerprint)
        return fingerprint

    # -- the optimiser -------------------------------------------------------------------------

    def _replayed_run(
        self, study: StudyView, trials: list[FrozenTrial], space: dict[str, BaseDistribution]
    ) -> Run:
        """The run over ``space``, brought up to date with the generations complete now."""
        fingerprint = self._fingerprint(space)
        run = self._cache.run
        if run is not None and run.fingerprint != fingerprint:
            run = None
        geometry = run.geometry if run is not None else Geometry.of(space, self._use_margin)
        start = run.position if run is not None else (0, 0)
        begin = run.scanned.begin(trials) if run is not None else 0
        scan = scan_notes(study, trials, fingerprint, geometry.dim, start, begin)
        if run is None or (scan.x0 is not None and not np.array_equal(scan.x0, run.x0)):
            # No run yet, or another worker started this one from another mean first.
            if run is not None and (start, begin) != ((0, 0), 0):
                scan = scan_notes(study, trials, fingerprint, geometry.dim, (0, 0))
            x0 = scan.x0 if scan.x0 is not None else self._initial_mean(study, space, trials)
            run = Run(self._settings, geometry, fingerprint, x0)
        run.replay(scan.groups, objective_sign(study))
        run.scanned.advance(trials, scan.settled)
        self._cache.run = run
        return run

    def _initial_mean(
        self, study: StudyView, space: dict[str, BaseDistribution], trials: list[FrozenTrial]
    ) -> np.ndarray:
        """``x0`` in the unit cube: given, the best startup trials' mean, or the centre."""
        if self._x0 is not None:
            return np.array([_unit_of_x0(self._x0, n, d) for n, d in space.items()])
        if self._n_startup_trials > 0:
            history = collect(study, space, UnitCache(), trials=trials)
            good = history.x[history.is_complete & np.isfinite(history.score)]
            if len(good):
                return np.asarray(good[: math.ceil(len(good) / 4)].mean(axis=0))
        return np.full(len(space), 0.5)

    def _propose(
        self, run: Run, trial: FrozenTrial, trials: list[FrozenTrial]
    ) -> tuple[list[float], np.ndarray]:
        """A point of the current generation for ``trial``: (internal values, raw x)."""
        seen = self._seen(run, trials) if run.geometry.has_duplicates else None
        run.reseed(int(trial_rng(self._seed, trial.number, "cmaes").integers(2**32)))
        for _ in range(_MAX_RESAMPLES):
            unit, raw = run.ask()
            internal = run.geometry.to_internal(unit)
            if seen is None or point_key(internal) not in seen:
                break
        return internal, raw

    def _seen(self, run: Run, trials: list[FrozenTrial]) -> set[tuple[float, ...]]:
        """Keys of the points of every trial with the whole space (any state)."""
        names, dists = run.geometry.names, run.geometry.dists
        begin = run.seen_until.begin(trials)
        if begin == 0:
            run.seen_keys = set()
        running: set[tuple[float, ...]] = set()
        for t in trials[begin:]:
            if all(t.distributions.get(n) == d for n, d in zip(names, dists, strict=True)):
                key = point_key(
                    [d.to_internal(t.params[n]) for n, d in zip(names, dists, strict=True)]
                )
                (run.seen_keys if t.state.is_finished() else running).add(key)
        # Finished trials past the first running one are read again next time: harmless.
        run.seen_until.advance(trials, first_unfinished(trials, begin))
        return run.seen_keys | running if running else run.seen_keys


def _unit_of_x0(x0: Mapping[str, float], name: str, dist: BaseDistribution) -> float:
    if name not in x0:
        return 0.5
    try:
        return dist.to_unit(dist.to_internal(x0[name]))
    except ValueError:
        raise ValueError(
            f"x0[{name!r}]={x0[name]!r} is not a value of {dist!r}; give one inside it"
        ) from None


def _check_x0(x0: Mapping[str, float] | None) -> dict[str, float] | None:
    if x0 is None:
        return None
    if not isinstance(x0, Mapping):
        raise TypeError(f"x0={x0!r} must be a mapping of parameter names to values, or None")
    for name, value in x0.items():
        if not isinstance(name, str):
            raise TypeError(f"x0 key {name!r} must be a parameter name (a str)")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"x0[{name!r}]={value!r} must be a number")
        if not math.isfinite(value):
            raise ValueError(f"x0[{name!r}]={value!r} must be a finite number")
    return dict(x0)


def _check_sigma0(sigma0: float | None) -> float:
    if sigma0 is None:
        return 1.0 / 6.0
    if isinstance(sigma0, bool) or not isinstance(sigma0, int | float):
        raise TypeError(f"sigma0={sigma0!r} must be a number in (0, 1], or None")
    if not 0.0 < sigma0 <= 1.0:
        raise ValueError(
            f"sigma0={sigma0!r} must be in (0, 1]: a fraction of the unit cube's width "
            "(1/6 by default)"
        )
    return float(sigma0)


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be an int >= {minimum}")
    return value
