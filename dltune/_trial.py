"""The define-by-run handle an objective receives: ``trial.suggest_*``, ``report``, ..."""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import numpy as np

from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import BaseDistribution
from dltune.space import CategoricalChoice
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.storage._base import FIXED_PARAMS_KEY
from dltune.storage._base import REPORTED_VALUES_KEY
from dltune.storage._base import RESUME_OF_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.view import StudyView

__all__ = [
    "STUDY_SEED_KEY",
    "TRIAL_SEED_KEY",
    "Trial",
    "keep_study_seed",
    "promote",
    "trial_seed",
]

#: The study system attribute holding the seed given to ``create_study(seed=...)``.
STUDY_SEED_KEY = "seed"
#: The trial system attribute recording the seed :attr:`Trial.seed` returned.
TRIAL_SEED_KEY = "trial_seed"

_logger = logging.getLogger(__name__)
_D = TypeVar("_D", bound=BaseDistribution)


def _build(call: str, name: str, factory: Callable[[], _D]) -> _D:
    """Build a distribution, naming the call and the parameter in any error."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{call}: name={name!r} must be a non-empty str")
    try:
        return factory()
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{call}({name!r}): {exc}") from None


def _number(value: Any) -> float:
    """``value`` as a float, refusing bools and strings (which float() would take)."""
    if isinstance(value, bool):
        raise TypeError(f"report: value={value!r} must be a number")
    if isinstance(value, str | bytes):
        raise TypeError(f"report: value={value!r} of type {type(value).__name__} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"report: value={value!r} of type {type(value).__name__} must be a number"
        ) from None


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number`` in a study created with ``seed=study_seed``.

    ``numpy.random.SeedSequence([study_seed, number])``'s first 32-bit word: well mixed (seeds
    of trials 0, 1, 2 are unrelated), in the range every library takes (``torch.manual_seed``,
    ``numpy.random.seed``, ``random.seed``), and independent of the streams the samplers draw
    from the same seed.

    Example:
        >>> trial_seed(0, 1) == trial_seed(0, 1), trial_seed(0, 1) == trial_seed(0, 2)
        (True, False)
    """
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


def keep_study_seed(
    storage: BaseStorage, study_id: int, study_name: str, seed: int | None
) -> int | None:
    """Store ``seed`` as the study seed if it has none; check it against the one it has.

    Returns:
        The study seed (``None`` if it has none and none was given).

    Raises:
        ValueError: If the study has another seed.
    """
    stored = storage.get_study_attrs(study_id, system=True).get(STUDY_SEED_KEY)
    if stored is None:
        if seed is not None:
            storage.set_study_attr(study_id, STUDY_SEED_KEY, seed, system=True)
        return seed
    if seed is not None and stored != seed:
        raise ValueError(
            f"study {study_name!r} exists with seed {stored!r}, not seed={seed!r}; pass "
            f"seed={stored!r} or None to continue it, or use another name"
        )
    return int(stored)


class Trial:
    """One evaluation of the objective, asked for its parameters as it runs.

    Values are drawn by the study's sampler the first time a name is asked for; asking again for
    the same name with the same distribution returns the same value. Enqueued trials return their
    fixed values.

    Example:
        >>> import dltune
        >>> def objective(trial: dltune.Trial) -> float:
        ...     optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
        ...     lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        ...     if optimizer == "sgd":  # a conditional parameter
        ...         trial.suggest_float("momentum", 0.0, 0.99)
        ...     return lr
        >>> study = dltune.create_study(seed=1)
        >>> study.optimize(objective, n_trials=3)
    """

    def __init__(self, study: Study, frozen: FrozenTrial, view: StudyView | None = None) -> None:
        self._study = study
        # What the sampler and the pruner read: the whole study, or in a batch-synchronous
        # run the trials of earlier batches only.
        self._view = study._view if view is None else view
        self._storage = study._storage
        self._trial_id = frozen.trial_id
        self._number = frozen.number
        self._params: dict[str, Any] = dict(frozen.params)
        self._distributions: dict[str, BaseDistribution] = dict(frozen.distributions)
        self._intermediate_values: dict[int, float] = dict(frozen.intermediate_values)
        self._user_attrs: dict[str, Any] = dict(frozen.user_attrs)
        self._system_attrs: dict[str, Any] = dict(frozen.system_attrs)
        self._datetime_start = frozen.datetime_start
        fixed = frozen.system_attrs.get(FIXED_PARAMS_KEY)
        self._fixed: dict[str, Any] = dict(fixed) if isinstance(fixed, dict) else {}
        self._relative_space: dict[str, BaseDistribution] | None = None
        self._relative_params: dict[str, Any] = {}
        self._seed: int | None = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def number(self) -> int:
        """The trial's number in its study (0, 1, 2, ...)."""
        return self._number

    @property
    def params(self) -> dict[str, Any]:
        """The parameters suggested so far."""
        return dict(self._params)

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """The distribution of each parameter suggested so far."""
        return dict(self._distributions)

    @property
    def user_attrs(self) -> dict[str, Any]:
        """Attributes set with :meth:`set_user_attr`."""
        return dict(self._user_attrs)

    @property
    def intermediate_values(self) -> dict[int, float]:
        """A copy of the values reported so far, by step."""
        return dict(self._intermediate_values)

    @property
    def system_attrs(self) -> dict[str, Any]:
        """A copy of the attributes dltune keeps for this trial (``retry_of``, ...)."""
        return dict(self._system_attrs)

    @property
    def datetime_start(self) -> datetime | None:
        """When the trial started."""
        return self._datetime_start

    @property
    def study(self) -> Study:
        """The study the trial belongs to."""
        return self._study

    @property
    def seed(self) -> int:
        """A seed for this trial's own randomness (weights, data order, dropout), in
        ``[0, 2**32)``.

        In a study created with ``seed=s`` it is :func:`trial_seed` ``(s, number)``: the same
        in every run and whichever worker runs the trial. A retry (system attribute
        ``retry_of``) has the seed of the trial it retries, and the continuation of a paused
        trial (``resume_of``) that of the paused trial, so a resumed training run keeps its
        seed. Without a study seed it is a fresh random number. Either way the first read
        records it as the system attribute ``trial_seed``, so the trial can be replayed.

        Example:
            >>> import dltune
            >>> study = dltune.create_study(seed=7)
            >>> trial = study.ask()
            >>> trial.seed == trial.system_attrs["trial_seed"]
            True
            >>> dltune.create_study(seed=7).ask().seed == trial.seed  # same seed, same number
            True
        """
        if self._seed is None:
            self._seed = self._lineage_seed()
            if self._system_attrs.get(TRIAL_SEED_KEY) != self._seed:
                with contextlib.suppress(UpdateFinishedTrialError):  # a finished record stays
                    self.set_system_attr(TRIAL_SEED_KEY, self._seed)
        return self._seed

    def _lineage_seed(self) -> int:
        """The seed recorded on this trial or the trial it retries or continues (followed back
        to the first), else derived from the study seed and that first trial's number."""
        attrs, number = self._system_attrs, self._number
        by_number: dict[int, FrozenTrial] | None = None
        seen = {number}
        while True:
            recorded = attrs.get(TRIAL_SEED_KEY)
            if isinstance(recorded, int) and not isinstance(recorded, bool):
                return recorded
            earlier = attrs.get(RETRY_OF_KEY)
            if earlier is None:
                earlier = attrs.get(RESUME_OF_KEY)
            if not isinstance(earlier, int) or earlier in seen:
                break
            if by_number is None:
                trials = self._storage.get_all_trials(self._study._study_id, copy=False)
                by_number = {t.number: t for t in trials}
            if earlier not in by_number:
                break
            seen.add(earlier)
            attrs, number = by_number[earlier].system_attrs, earlier
        study_seed = self._study.seed
        return secrets.randbits(32) if study_seed is None else trial_seed(study_seed, number)

    def _frozen(self) -> FrozenTrial:
        """The trial as it stands, built locally (no storage read)."""
        return FrozenTrial(
            number=self._number,
            trial_id=self._trial_id,
            state=TrialState.RUNNING,
            params=dict(self._params),
            distributions=dict(self._distributions),
            intermediate_values=dict(self._intermediate_values),
            user_attrs=dict(self._user_attrs),
            system_attrs=dict(self._system_attrs),
            datetime_start=self._datetime_start,
        )

    # -- suggesting --------------------------------------------------------------------------

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """Suggest a float in ``[low, high]``.

        Args:
            name: The parameter's name, unique within the study.
            low: Lower bound, inclusive.
            high: Upper bound, inclusive.
            step: Grid spacing from ``low``; must divide ``high - low``.
            log: Sample on a log scale (``low > 0``).

        Raises:
            ValueError: For invalid bounds, step or log, naming the parameter.
        """
        dist = _build("suggest_float", name, lambda: FloatDistribution(low, high, log, step))
        return float(self._suggest(name, dist))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """Suggest an int in ``[low, high]``.

        Args:
            name: The parameter's name, unique within the study.
            low: Lower bound, inclusive.
            high: Upper bound, inclusive.
            step: Grid spacing from ``low``; must divide ``high - low``.
            log: Sample on a log scale (``low >= 1``, ``step == 1``).

        Raises:
            ValueError: For invalid bounds, step or log, naming the parameter.
        """
        dist = _build("suggest_int", name, lambda: IntDistribution(low, high, log, step))
        return int(self._suggest(name, dist))

    def suggest_categorical(
        self, name: str, choices: Sequence[CategoricalChoice]
    ) -> CategoricalChoice:
        """Suggest one of ``choices`` (None, bool, int, float or str values).

        Raises:
            ValueError: For empty or duplicated choices.
            TypeError: For choices of other types, naming the parameter.
        """
        dist = _build("suggest_categorical", name, lambda: CategoricalDistribution.of(choices))
        return self._suggest(name, dist)  # type: ignore[no-any-return]

    def _suggest(self, name: str, dist: BaseDistribution) -> Any:
        old = self._distributions.get(name)
        if old is not None:
            if old != dist:
                raise ValueError(
                    f"parameter {name!r} was already suggested in this trial as {old!r}; it "
                    f"cannot be suggested again as {dist!r}"
                )
            return self._params[name]
        internal = self._internal_value(name, dist)
        self._storage.set_trial_param(self._trial_id, name, internal, dist)
        value = dist.to_external(internal)
        self._params[name] = value
        self._distributions[name] = dist
        return value

    def _internal_value(self, name: str, dist: BaseDistribution) -> float:
        if name in self._fixed:
            try:
                return dist.to_internal(self._fixed[name])
            except ValueError as exc:
                raise ValueError(f"enqueued parameter {name!r}: {exc}") from None
        view, sampler = self._view, self._study.sampler
        if self._relative_space is None:
            frozen = self._frozen()
            self._relative_space = sampler.infer_relative_search_space(view, frozen)
            if self._relative_space:
                self._relative_params = sampler.sample_relative(view, frozen, self._relative_space)
        if name in self._relative_params and self._relative_space.get(name) == dist:
            return dist.to_internal(self._relative_params[name])
        value = sampler.sample_independent(view, self._frozen(), name, dist)
        return dist.to_internal(value)

    # -- reporting ---------------------------------------------------------------------------

    def report(self, value: float | Sequence[float], step: int) -> None:
        """Report an intermediate objective value (for example the validation loss) at a step.

        Pruners compare trials at the same step. NaN and infinities are recorded as they are.
        Reporting a step twice keeps the first value and logs a warning. In a multi-objective
        study, ``value`` may be one number per objective (accuracy and parameter count, say):
        the first is the step's intermediate value and the whole vector is kept for pruners
        that compare by non-dominated rank.

        Raises:
            TypeError: If ``value`` is not a number (or a sequence of numbers in a
                multi-objective study) or ``step`` not an int.
            ValueError: If ``step`` is negative, or a vector's length is not the number of
                objectives.
        """
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"report: step={step!r} must be an int")
        if step < 0:
            raise ValueError(f"report: step={step!r} must be >= 0")
        vector: list[float] | None = None
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            n = len(self._study.directions)
            if n == 1:
                raise TypeError(
                    f"report: value={value!r} of type {type(value).__name__} must be a number "
                    "(one value per objective is for multi-objective studies)"
                )
            if len(value) != n:
                raise ValueError(
                    f"report: value={value!r} has {len(value)} values; the study has {n} "
                    "objectives"
                )
            vector = [_number(v) for v in value]
            number = vector[0]
        else:
            number = _number(value)
        if step in self._intermediate_values:
            _logger.warning(
                "trial %d reported step %d twice; the first value %r is kept",
                self._number,
                step,
                self._intermediate_values[step],
            )
            return
        self._storage.set_trial_intermediate_value(self._trial_id, step, number)
        self._intermediate_values[step] = number
        if vector is not None:
            reported = dict(self._system_attrs.get(REPORTED_VALUES_KEY) or {})
            reported[str(step)] = vector
            self.set_system_attr(REPORTED_VALUES_KEY, reported)

    def should_prune(self) -> bool:
        """Ask the study's pruner whether to stop now (then ``raise dltune.TrialPruned()``).

        A trial that reported NaN as its last value is always pruned: it stopped learning.
        """
        if not self._intermediate_values:
            return False
        last = self._intermediate_values[max(self._intermediate_values)]
        if math.isnan(last):
            return True
        return bool(self._study.pruner.prune(self._view, self._frozen()))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Keep a JSON-serializable value with the trial (a metric, a path, a note).

        Raises:
            TypeError: If ``key`` is not a str or ``value`` not JSON-serializable.
        """
        self._storage.set_trial_attr(self._trial_id, key, value, system=False)
        self._user_attrs[key] = value

    def set_system_attr(self, key: str, value: Any) -> None:
        """Keep a value for dltune and its plug-ins (not meant for user code)."""
        self._storage.set_trial_attr(self._trial_id, key, value, system=True)
        self._system_attrs[key] = value


# -- starting: a fresh trial may continue a paused one -------------------------------------------


def promote(study: Study, frozen: FrozenTrial, view: StudyView) -> FrozenTrial:
    """Turn a fresh trial into the continuation of a paused one, if the pruner says so.

    A fresh trial (not enqueued, not a retry) asks the pruner for a paused trial to promote.
    The new trial takes its params and ``resume_of``; a trainer then resumes from the paused
    trial's checkpoint. Two workers may promote the same paused trial at once: after writing,
    each looks for another continuation of it, and the later number gives up its claim and
    samples as usual (a rare race can leave two continuations; both are valid training runs
    and pruners count a lineage once). In a batch-synchronous run (``view`` cut at the batch)
    there is no race: see :func:`_taken_in_batch`.

    Returns:
        The trial's record, updated if it continues a paused trial.

    Raises:
        RuntimeError: If the pruner names a trial that is not PRUNED.
    """
    attrs = frozen.system_attrs
    if FIXED_PARAMS_KEY in attrs or any(
        attrs.get(key) is not None for key in (RETRY_OF_KEY, RESUME_OF_KEY)
    ):
        return frozen
    pruner = study.pruner
    paused = pruner.promote(view, frozen)
    if paused is None:
        return frozen
    if paused.state != TrialState.PRUNED:
        raise RuntimeError(
            f"{type(pruner).__name__}.promote returned trial {paused.number} in state "
            f"{paused.state.name}; only a PRUNED (paused) trial can be continued"
        )
    storage, trial_id = study._storage, frozen.trial_id
    if view.trials_before is not None:
        if _taken_in_batch(study, view, frozen, paused):
            return frozen
        storage.set_trial_attr(trial_id, RESUME_OF_KEY, paused.number, system=True)
    elif _lost_race(study, frozen, paused):
        return storage.get_trial(trial_id)
    storage.set_trial_attr(trial_id, FIXED_PARAMS_KEY, dict(paused.params), system=True)
    _logger.info(
        "trial %d continues paused trial %d (promoted by %s)",
        frozen.number,
        paused.number,
        type(pruner).__name__,
    )
    return storage.get_trial(trial_id)


def _lost_race(study: Study, frozen: FrozenTrial, paused: FrozenTrial) -> bool:
    """Claim ``paused`` for ``frozen``; undo and say so if a lower number claimed it too."""
    storage, trial_id = study._storage, frozen.trial_id
    storage.set_trial_attr(trial_id, RESUME_OF_KEY, paused.number, system=True)
    if any(
        t.resume_of == paused.number and t.number < frozen.number
        for t in storage.get_all_trials(study._study_id, (TrialState.RUNNING,), copy=False)
    ):
        storage.set_trial_attr(trial_id, RESUME_OF_KEY, None, system=True)
        return True
    return False


def _taken_in_batch(
    study: Study, view: StudyView, frozen: FrozenTrial, paused: FrozenTrial
) -> bool:
    """Whether a lower-numbered trial of ``frozen``'s batch continues ``paused`` instead.

    Every trial of a batch sees the same view, so the pruner names the same paused trial to
    each fresh trial of a bracket; the lowest-numbered one takes it (whichever started first)
    and the others sample, so one-worker and k-worker runs promote the same trials.
    """
    start = view.trials_before
    assert start is not None  # only called for a cut view
    for t in study._storage.get_all_trials(study._study_id, copy=False):
        if not start <= t.number < frozen.number or t.system_attrs.get(RETRY_OF_KEY) is not None:
            continue
        if FIXED_PARAMS_KEY in t.system_attrs and t.resume_of is None:
            continue  # enqueued: it continues nothing
        pick = study.pruner.promote(view, t)
        if pick is not None and pick.number == paused.number:
            return True
    return False
