"""Studies: create, load, delete, list; ask/tell; optimize; the best trial(s)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from dltune._trial import STUDY_SEED_KEY
from dltune._trial import Trial
from dltune._trial import keep_study_seed
from dltune._trial import promote
from dltune.exceptions import DuplicatedStudyError
from dltune.pruners import BasePruner
from dltune.pruners import MedianPruner
from dltune.samplers import AutoSampler
from dltune.samplers import BaseSampler
from dltune.samplers._base import check_seed
from dltune.storage import BaseStorage
from dltune.storage import FrozenStudy
from dltune.storage import get_storage
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.trial import INTERRUPTED
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import check_value
from dltune.trial import pareto_trials
from dltune.view import StudyView

if TYPE_CHECKING:
    import pandas as pd

    from dltune.execution import BaseExecutor

__all__ = [
    "Objective",
    "Study",
    "create_study",
    "delete_study",
    "get_all_study_names",
    "list_studies",
    "load_study",
]

_logger = logging.getLogger(__name__)

Objective = Callable[[Trial], Any]
Callback = Callable[["Study", FrozenTrial], None]


class Study:
    """A named optimization problem and all its trials, kept in a storage.

    Create one with :func:`create_study` or :func:`load_study` rather than directly.

    Attributes:
        sampler: Proposes parameters for new trials.
        pruner: Decides whether a running trial should stop early.
    """

    def __init__(
        self,
        study_name: str,
        storage: str | BaseStorage | None,
        sampler: BaseSampler | None = None,
        pruner: BasePruner | None = None,
    ) -> None:
        self._storage = get_storage(storage)
        self._study_id = self._storage.get_study_id_from_name(study_name)
        self.study_name = study_name
        self._seed: int | None = None
        self.sampler: BaseSampler = sampler if sampler is not None else AutoSampler(self.seed)
        self.pruner: BasePruner = pruner if pruner is not None else MedianPruner()
        _check_plugin("sampler", self.sampler, BaseSampler)
        _check_plugin("pruner", self.pruner, BasePruner)
        self._view = StudyView(self._storage, self._study_id)
        self._stop_requested = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stop_requested"] = False
        return state

    # -- reading -----------------------------------------------------------------------------

    @property
    def directions(self) -> list[StudyDirection]:
        """One direction per objective."""
        return self._view.directions

    @property
    def direction(self) -> StudyDirection:
        """The direction of a single-objective study.

        Raises:
            RuntimeError: For multi-objective studies (use ``directions``).
        """
        return self._view.direction

    @property
    def seed(self) -> int | None:
        """The study seed given to :func:`create_study` (kept with the study), or ``None``.

        Each trial's :attr:`Trial.seed` derives from it.
        """
        if self._seed is None:  # set once, so read until found
            seed = self.system_attrs.get(STUDY_SEED_KEY)
            self._seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        return self._seed

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, in number order."""
        return self.get_trials()

    def get_trials(self, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        """The trials in number order, optionally only those in ``states``.

        Example:
            >>> import dltune
            >>> study = dltune.create_study()
            >>> study.get_trials(states=(dltune.TrialState.COMPLETE,))
            []
        """
        return self._storage.get_all_trials(self._study_id, states)

    @property
    def best_trial(self) -> FrozenTrial:
        """The COMPLETE trial with the best value (the earliest on ties).

        Raises:
            ValueError: If no trial is complete yet, or the study has several objectives.
        """
        best = self._storage.get_best_trial(self._study_id)
        if best is None:
            raise ValueError(
                f"study {self.study_name!r} has no COMPLETE trial yet, so no best trial"
            )
        return best

    @property
    def best_value(self) -> float:
        """The best trial's value."""
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's parameters."""
        return self.best_trial.params

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The COMPLETE trials no other trial beats in every objective (the Pareto front)."""
        return pareto_trials(self.get_trials((TrialState.COMPLETE,)), self.directions)

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The study's user attributes."""
        return self._storage.get_study_attrs(self._study_id, system=False)

    @property
    def system_attrs(self) -> dict[str, Any]:
        """The study's system attributes."""
        return self._storage.get_study_attrs(self._study_id, system=True)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Keep a JSON-serializable value with the study."""
        self._storage.set_study_attr(self._study_id, key, value, system=False)

    def set_system_attr(self, key: str, value: Any) -> None:
        """Keep a value for dltune and its plug-ins with the study."""
        self._storage.set_study_attr(self._study_id, key, value, system=True)

    def trials_dataframe(self) -> pd.DataFrame:
        """All trials as a pandas DataFrame: number, state, value(s), times, params, user attrs.

        Raises:
            MissingDependencyError: If pandas is not installed.
        """
        from dltune._imports import require

        pd = require("pandas", extra="pandas", feature="Study.trials_dataframe()")
        rows = []
        multi = len(self.directions) > 1
        for t in self.trials:
            row: dict[str, Any] = {
                "number": t.number,
                "state": t.state.name,
                "datetime_start": t.datetime_start,
                "datetime_complete": t.datetime_complete,
                "duration": t.duration_seconds,
            }
            if multi:
                for i in range(len(self.directions)):
                    row[f"values_{i}"] = None if t.values is None else t.values[i]
            else:
                row["value"] = None if t.values is None else t.values[0]
            row.update({f"params_{k}": v for k, v in t.params.items()})
            row.update({f"user_attrs_{k}": v for k, v in t.user_attrs.items()})
            row["reason"] = t.reason
            rows.append(row)
        return pd.DataFrame(rows)

    # -- ask and tell ------------------------------------------------------------------------

    def ask(self) -> Trial:
        """Start a new trial (an enqueued one first) and return its handle.

        Example:
            >>> import dltune
            >>> study = dltune.create_study()
            >>> trial = study.ask()
            >>> x = trial.suggest_float("x", 0, 1)
            >>> study.tell(trial, x).state
            <TrialState.COMPLETE: 'COMPLETE'>
        """
        frozen = self._storage.claim_trial(self._study_id)
        assert frozen is not None  # no budget given, so a trial is always claimed
        return self._start(frozen)

    def _start(self, frozen: FrozenTrial, view: StudyView | None = None) -> Trial:
        """The handle of a claimed trial whose sampler and pruner read ``view`` (the whole
        study by default; the earlier batches in a batch-synchronous run)."""
        view = self._view if view is None else view
        frozen = promote(self, frozen, view)
        self.sampler.before_trial(view, frozen)
        return Trial(self, frozen, view)

    def tell(
        self,
        trial: Trial | int,
        values: float | Sequence[float] | None = None,
        state: TrialState | None = None,
        *,
        reason: str | None = None,
    ) -> FrozenTrial:
        """Finish a trial with its value(s) or a state.

        Args:
            trial: The handle from :meth:`ask`, or its number.
            values: The objective value (or one per objective). Values that are not numbers
                (NaN, ``None``, a string) or of the wrong count fail the trial with the reason,
                as an objective returning them would; infinities are kept.
            state: ``COMPLETE`` (the default when values are given), ``PRUNED`` or ``FAIL``.
            reason: Why the trial ended, kept with it.

        Returns:
            The finished trial.

        Raises:
            ValueError: If state is RUNNING/WAITING, or values are given with PRUNED/FAIL.
            UpdateFinishedTrialError: If the trial is already finished.
        """
        trial_id = self._trial_id_of(trial)
        if state is None:
            state = TrialState.COMPLETE if values is not None else TrialState.FAIL
        if not isinstance(state, TrialState) or not state.is_finished():
            raise ValueError(f"state={state!r} must be COMPLETE, PRUNED or FAIL")
        final_values: list[float] | None = None
        if state == TrialState.COMPLETE:
            final_values, why = self._check_values(values)
            if final_values is None:
                state, reason = TrialState.FAIL, why
        elif values is not None:
            raise ValueError(f"values={values!r} cannot be given with state={state.name}")
        frozen = trial._frozen() if isinstance(trial, Trial) else self._storage.get_trial(trial_id)
        self._finish(frozen, state, final_values, reason)
        return self._storage.get_trial(trial_id)

    def _finish(
        self,
        frozen: FrozenTrial,
        state: TrialState,
        values: list[float] | None,
        reason: str | None,
        view: StudyView | None = None,
    ) -> None:
        """Store how a trial ended (checked values) and tell the sampler; log failures once."""
        self.sampler.after_trial(self._view if view is None else view, frozen, state, values)
        self._storage.set_trial_state_values(frozen.trial_id, state, values, reason)
        if state == TrialState.FAIL and reason != INTERRUPTED:
            _logger.warning(
                "trial %d failed with params %r: %s", frozen.number, frozen.params, reason
            )

    def _check_values(self, values: Any) -> tuple[list[float] | None, str | None]:
        n = len(self.directions)
        raw: list[Any]
        if isinstance(values, Sequence) and not isinstance(values, str | bytes):
            raw = list(values)
        else:
            raw = [values]
        if len(raw) != n:
            return None, (
                f"the objective returned {len(raw)} value(s) {values!r}; the study has {n} "
                f"objective(s)"
            )
        out = []
        for value in raw:
            number, why = check_value(value)
            if number is None:
                return None, why
            out.append(number)
        return out, None

    def _trial_id_of(self, trial: Trial | int) -> int:
        if isinstance(trial, Trial):
            return trial._trial_id
        if isinstance(trial, bool) or not isinstance(trial, int):
            raise TypeError(f"trial={trial!r} must be a Trial or a trial number")
        for t in self.get_trials():
            if t.number == trial:
                return t.trial_id
        raise ValueError(f"trial number {trial!r} does not exist in study {self.study_name!r}")

    def enqueue_trial(
        self,
        params: dict[str, Any],
        user_attrs: dict[str, Any] | None = None,
        *,
        skip_if_exists: bool = False,
    ) -> None:
        """Queue a trial with fixed parameter values; the next free worker runs it.

        Parameters the objective asks for but ``params`` lacks are sampled as usual.

        Args:
            params: ``name -> value``, JSON-serializable.
            user_attrs: Attributes to give the trial.
            skip_if_exists: Do nothing if a trial with these params is queued or done already.

        Raises:
            TypeError: If ``params`` is not a dict with str keys or a value is not
                JSON-serializable.
        """
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise TypeError(f"params={params!r} must be a dict with str keys")
        if skip_if_exists and any(
            t.params == params or t.system_attrs.get(FIXED_PARAMS_KEY) == params
            for t in self.get_trials()
        ):
            return
        template = FrozenTrial(
            number=-1,
            trial_id=-1,
            state=TrialState.WAITING,
            user_attrs=dict(user_attrs or {}),
            system_attrs={FIXED_PARAMS_KEY: dict(params)},
        )
        self._storage.create_new_trial(self._study_id, template)

    def add_trial(self, trial: FrozenTrial) -> None:
        """Add a finished trial made elsewhere (for example a known-good baseline).

        Raises:
            ValueError: If the trial is not finished, or is COMPLETE without valid values.
        """
        if not trial.state.is_finished():
            raise ValueError(f"trial state {trial.state.name} must be COMPLETE, PRUNED or FAIL")
        if trial.state == TrialState.COMPLETE:
            values, why = self._check_values(trial.values)
            if values is None:
                raise ValueError(f"cannot add a COMPLETE trial: {why}")
        self._storage.create_new_trial(self._study_id, trial)

    # -- optimize ----------------------------------------------------------------------------

    def optimize(
        self,
        func: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        callbacks: Iterable[Callback] | None = None,
        catch: Iterable[type[Exception]] | None = None,
        *,
        executor: BaseExecutor | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Run trials until the study holds ``n_trials`` trials or ``timeout`` seconds passed.

        ``n_trials`` is the study's total budget, not a count per call: trials already in the
        study (from an earlier, interrupted run, or from other workers) count, and ``k`` workers
        never overshoot it. Rerunning the same command after a crash resumes the study and
        finishes with exactly ``n_trials`` trials. Failed trials count; retries of stale trials
        (``max_retries`` on the storage) take the place of the trial they retry.

        A trial whose objective raises, or returns something that is not a number, is stored as
        FAIL with the reason and logged once with its number and params; the study goes on. Give
        ``catch`` for Optuna's behaviour instead: exceptions of other types are stored and then
        re-raised, stopping the study.

        Reproducibility: with a study ``seed`` (and seeded plug-ins), and the objective's own
        randomness seeded from :attr:`Trial.seed`, one worker replays exactly; with several,
        proposals depend on which trials finished first. ``batch_size=k`` fixes that: trial
        ``n`` is in batch ``n // k``, and a trial of batch ``b`` starts once every trial below
        ``b * k`` finished, its sampler and pruner seeing only those. Any number of workers on
        any executor (``dltune worker`` too, given the same ``k``) then gives trial by trial
        the params, values and states of a one-worker run with that ``k``; run k workers.
        Faults, ``timeout``, :meth:`stop` and trials enqueued mid-run break exact replay (a
        retry takes a later number). CMA-ES replays when ``k`` divides its population size. A
        pausing pruner (ASHA) continues a paused trial in the batch's lowest-numbered fresh
        trial that it would promote it to; the others sample.

        Args:
            func: ``objective(trial) -> value`` (or a sequence of values for several
                objectives); raise :class:`dltune.TrialPruned` to stop early.
            n_trials: The study's trial budget; ``None`` runs until ``timeout`` or
                :meth:`stop`.
            timeout: Stop starting trials after this many seconds.
            n_jobs: Worker processes (``-1``: one per core). With 1 the objective runs here.
            callbacks: ``callback(study, frozen_trial)``, called in this process after each
                trial finishes, in any worker. Call ``study.stop()`` in one to end early.
            catch: See above.
            executor: Where to run the workers; defaults to local processes.
            batch_size: Run in batches of this many trials, each seeing only the earlier
                batches, for a replayable parallel run (see above); ``None``: as trials finish.

        Raises:
            ValueError: For a negative ``n_trials``, a non-positive ``timeout``, ``n_jobs`` or
                ``batch_size``.
            TypeError: If ``func`` is not callable.

        Example:
            >>> import dltune
            >>> study = dltune.create_study(seed=0)
            >>> study.optimize(lambda t: t.suggest_float("x", -2, 2) ** 2, n_trials=20)
            >>> study.best_value < 0.5
            True
        """
        from dltune.execution import LocalExecutor
        from dltune.execution import OptimizeJob

        job = OptimizeJob.build(self, func, n_trials, timeout, catch, batch_size=batch_size)
        callback_list = list(callbacks or [])
        for cb in callback_list:
            if not callable(cb):
                raise TypeError(f"callback {cb!r} is not callable")
        if executor is None:
            executor = LocalExecutor(n_jobs)
        elif n_jobs != 1:
            raise ValueError(f"n_jobs={n_jobs!r} cannot be combined with executor={executor!r}")
        self._stop_requested = False

        def on_finished(trial_id: int) -> bool:
            if callback_list:
                frozen = self._storage.get_trial(trial_id)
                for cb in callback_list:
                    cb(self, frozen)
            return self._stop_requested

        executor.run(job, on_finished)

    def stop(self) -> None:
        """Ask :meth:`optimize` to start no new trial; running trials finish."""
        self._stop_requested = True


def _check_plugin(arg: str, value: object, base: type) -> None:
    if not isinstance(value, base):
        raise TypeError(f"{arg}={value!r} must be an instance of {base.__name__}")


def _directions(
    direction: str | StudyDirection | None,
    directions: Sequence[str | StudyDirection] | None,
) -> list[StudyDirection]:
    if direction is not None and directions is not None:
        raise ValueError("give direction or directions, not both")
    if directions is None:
        return [StudyDirection.parse(direction or "minimize")]
    if isinstance(directions, str) or not directions:
        raise ValueError(f"directions={directions!r} must be a non-empty list of directions")
    return [StudyDirection.parse(d) for d in directions]


def create_study(
    study_name: str | None = None,
    storage: str | BaseStorage | None = None,
    direction: str | StudyDirection | None = None,
    sampler: BaseSampler | None = None,
    pruner: BasePruner | None = None,
    load_if_exists: bool = False,
    seed: int | None = None,
    *,
    directions: Sequence[str | StudyDirection] | None = None,
) -> Study:
    """Create a study (or, with ``load_if_exists``, continue one of the same name).

    Args:
        study_name: A unique name; generated when ``None``.
        storage: A URL (``sqlite:///dltune.db``, ``postgresql+psycopg://...``), a storage
            object, or ``None`` for memory.
        direction: ``"minimize"`` (default) or ``"maximize"``.
        sampler: Defaults to :class:`~dltune.samplers.AutoSampler` seeded with ``seed``: a
            Gaussian process for small numeric spaces, TPE for conditional or categorical ones
            and long runs; its choice is recorded on the study.
        pruner: Defaults to :class:`~dltune.pruners.MedianPruner`.
        load_if_exists: Continue an existing study of that name instead of raising.
        seed: The study seed, kept with the study (:attr:`Study.seed`): each trial's
            :attr:`Trial.seed` derives from it and the trial's number, and it seeds the
            default sampler. A sampler you pass keeps its own seed: seed it too. Continuing a
            study keeps its seed (``None`` here), or sets one if it had none.
        directions: One direction per objective, for multi-objective studies.

    Raises:
        DuplicatedStudyError: If the name exists and ``load_if_exists`` is false.
        ValueError: For a bad direction or seed, or an existing study with other directions
            or another seed.
        TypeError: For a seed that is not an int.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(direction="maximize", seed=42)
        >>> study.direction
        <StudyDirection.MAXIMIZE: 'MAXIMIZE'>
    """
    dirs = _directions(direction, directions)
    if seed is not None:
        seed = check_seed(seed)
    for arg, plugin, base in (("sampler", sampler, BaseSampler), ("pruner", pruner, BasePruner)):
        if plugin is not None:
            _check_plugin(arg, plugin, base)  # before anything is written
    backend = get_storage(storage)
    name = study_name if study_name is not None else f"no-name-{uuid.uuid4()}"
    try:
        study_id = backend.create_new_study(dirs, name)
    except DuplicatedStudyError:
        if not load_if_exists:
            raise
        study_id = backend.get_study_id_from_name(name)
        existing = backend.get_study_directions(study_id)
        if existing != dirs:
            raise ValueError(
                f"study {name!r} exists with directions {[d.name for d in existing]}, not "
                f"{[d.name for d in dirs]}; use another name or the same directions"
            ) from None
        _logger.info("continuing the existing study %r", name)
    keep_study_seed(backend, study_id, name, seed)
    return Study(name, backend, sampler, pruner)  # the default sampler takes the study seed


def load_study(
    study_name: str | None,
    storage: str | BaseStorage,
    sampler: BaseSampler | None = None,
    pruner: BasePruner | None = None,
) -> Study:
    """Open an existing study.

    Args:
        study_name: Its name; ``None`` works when the storage holds exactly one study.
        storage: Where it is.
        sampler: Defaults to an :class:`~dltune.samplers.AutoSampler` seeded with the study
            seed.
        pruner: Defaults to :class:`~dltune.pruners.MedianPruner`.

    Raises:
        StudyNotFoundError: Listing the names that exist.
    """
    backend = get_storage(storage)
    if study_name is None:
        studies = backend.get_all_studies()
        if len(studies) != 1:
            raise ValueError(
                f"study_name=None needs a storage with exactly one study; it holds "
                f"{[s.study_name for s in studies][:10]!r}"
            )
        study_name = studies[0].study_name
    return Study(study_name, backend, sampler, pruner)


def delete_study(study_name: str, storage: str | BaseStorage) -> None:
    """Delete a study and all its trials.

    Raises:
        StudyNotFoundError: Listing the names that exist.
    """
    backend = get_storage(storage)
    backend.delete_study(backend.get_study_id_from_name(study_name))


def list_studies(storage: str | BaseStorage) -> list[FrozenStudy]:
    """Summaries of every study in a storage, oldest first."""
    return get_storage(storage).get_all_studies()


def get_all_study_names(storage: str | BaseStorage) -> list[str]:
    """The names of every study in a storage."""
    return [s.study_name for s in list_studies(storage)]
