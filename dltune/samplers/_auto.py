"""The default sampler: picks TPE, a Gaussian process or CMA-ES by the space and the budget."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from dltune.exceptions import MissingDependencyError
from dltune.samplers._base import BaseSampler
from dltune.samplers._base import check_seed
from dltune.samplers._cmaes import CMAESSampler
from dltune.samplers._gp import GPSampler
from dltune.samplers._tpe import TPESampler
from dltune.space import CategoricalDistribution
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.space import BaseDistribution
    from dltune.trial import FrozenTrial
    from dltune.view import StudyView

__all__ = ["AutoSampler", "SpaceProfile", "choose_sampler"]

#: Beyond this many trials a Gaussian process costs too much per trial (its fit is cubic).
GP_MAX_TRIALS = 300
#: The study note (``sampler:auto``) that records each choice.
NOTE_KEY = "auto"


@dataclass(frozen=True)
class SpaceProfile:
    """What the choice looks at in a study's space, read from its finished trials.

    Attributes:
        is_known: Whether any trial has finished (else nothing is known of the space yet).
        n_numeric: Float and int parameters.
        n_categorical: Categorical parameters (single-valued ones not counted).
        is_conditional: Whether some parameter exists in some finished trials only.
    """

    is_known: bool
    n_numeric: int = 0
    n_categorical: int = 0
    is_conditional: bool = False

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> SpaceProfile:
        """The profile of the finished trials among ``trials``."""
        finished = [t for t in trials if t.state.is_finished() and t.distributions]
        if not finished:
            return cls(is_known=False)
        union: dict[str, BaseDistribution] = {}
        names = [frozenset(t.distributions) for t in finished]
        for trial in finished:
            union.update(trial.distributions)
        return cls._of_union(union, len(set(names)) > 1)

    @classmethod
    def _of_union(cls, union: dict[str, BaseDistribution], is_conditional: bool) -> SpaceProfile:
        n_categorical = sum(
            isinstance(d, CategoricalDistribution) and not d.is_single() for d in union.values()
        )
        n_numeric = sum(
            not isinstance(d, CategoricalDistribution) and not d.is_single()
            for d in union.values()
        )
        return cls(True, n_numeric, n_categorical, is_conditional)


class _FinishedSpace:
    """:meth:`SpaceProfile.of` and the finished count of one study's trials, kept up to date
    from the trials that finished since the last call: finished trials never change, so an ask
    costs what is new, not the size of the study (recomputing took ~1 s per ask at 100,000
    trials).

    Trials come in number order; the first ``_done`` are finished and counted. A list that does
    not continue the one counted (shorter, or another trial where the counted ones end: a view
    cut lower than before) is counted afresh.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._union: dict[str, tuple[int, BaseDistribution]] = {}  # name -> (number, last)
        self._name_sets: set[frozenset[str]] = set()
        self._counted: set[int] = set()  # trial ids
        self._done = 0
        self._last_done: int | None = None  # trial id of trials[_done - 1]
        self._seen = 0  # length of the last list

    def update(self, trials: Sequence[FrozenTrial]) -> tuple[SpaceProfile, int]:
        """The profile of the finished trials among ``trials``, and how many there are."""
        if len(trials) < self._seen or (
            self._done and trials[self._done - 1].trial_id != self._last_done
        ):
            self._reset()
        self._seen = len(trials)
        for trial in trials[self._done :]:
            if trial.state.is_finished() and trial.trial_id not in self._counted:
                self._count(trial)
        while self._done < len(trials) and trials[self._done].trial_id in self._counted:
            self._last_done = trials[self._done].trial_id
            self._done += 1
        if not self._name_sets:
            return SpaceProfile(is_known=False), len(self._counted)
        union = {name: dist for name, (_, dist) in self._union.items()}
        return SpaceProfile._of_union(union, len(self._name_sets) > 1), len(self._counted)

    def _count(self, trial: FrozenTrial) -> None:
        self._counted.add(trial.trial_id)
        if not trial.distributions:
            return
        self._name_sets.add(frozenset(trial.distributions))
        for name, dist in trial.distributions.items():  # the highest number's, as of() has it
            if trial.number >= self._union.get(name, (-1, dist))[0]:
                self._union[name] = (trial.number, dist)


def choose_sampler(
    profile: SpaceProfile,
    *,
    n_trials: int | None,
    n_finished: int,
    is_multi_objective: bool,
) -> tuple[str, str]:
    """The sampler for the next trial, ``("tpe" | "gp" | "cmaes", why)``.

    * Multi-objective studies, conditional spaces, and spaces where categoricals are at least
      half the parameters: TPE (it models choices and parameters that come and go natively).
    * A long run (a budget over 300 trials) over a purely numeric space: CMA-ES, whose cost per
      trial stays flat and which converges well given many trials. With categoricals: TPE.
    * Otherwise, a budget of at most 300 (or none given): the Gaussian process, the most
      sample-efficient on small, mostly continuous budgets; past 300 finished trials, TPE.

    Example:
        >>> choose_sampler(SpaceProfile(True, 5, 0), n_trials=100, n_finished=20,
        ...                is_multi_objective=False)[0]
        'gp'
    """
    if is_multi_objective:
        return "tpe", "a multi-objective study"
    if profile.is_known and profile.is_conditional:
        return "tpe", "a conditional space (some parameters exist only in some trials)"
    if profile.is_known and profile.n_categorical * 2 >= max(profile.n_numeric, 1) + (
        profile.n_categorical
    ):
        return "tpe", "a space where categorical parameters are at least half"
    if n_trials is not None and n_trials > GP_MAX_TRIALS:
        if profile.is_known and profile.n_categorical == 0:
            return "cmaes", f"a long run ({n_trials} trials) over a numeric space"
        if profile.is_known:
            return "tpe", f"a long run ({n_trials} trials) with categorical parameters"
        return "tpe", f"a long run ({n_trials} trials); nothing known of the space yet"
    if n_finished >= GP_MAX_TRIALS:
        return "tpe", f"past {GP_MAX_TRIALS} trials a Gaussian process costs too much per trial"
    return "gp", "a small budget over a mostly numeric space"


class AutoSampler(BaseSampler):
    """Chooses TPE, the Gaussian process or CMA-ES for each trial, and records why.

    The choice (:func:`choose_sampler`) looks at the study's finished trials (is the space
    conditional, how many parameters are categorical), whether it has several objectives, and
    the budget when it is known (``dltune tune`` passes ``budget.trials``). Every change of
    choice is appended to the study's system attribute ``sampler:auto`` as
    ``{"sampler", "reason", "from_trial"}``, so ``dltune studies`` and the report can say
    which sampler ran. All three samplers read the same history from storage, so a switch
    (to TPE after 300 trials, say) loses nothing learned.

    Args:
        seed: Seeds every sampler it may choose.
        n_trials: The study's budget, if known.

    Raises:
        TypeError: If ``n_trials`` is not an int or None.
        ValueError: If ``n_trials`` is below 1.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(sampler=AutoSampler(seed=0, n_trials=12))
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=12)
        >>> study.system_attrs["sampler:auto"][0]["sampler"]
        'gp'
    """

    def __init__(self, seed: int | None = None, *, n_trials: int | None = None) -> None:
        self._seed = check_seed(seed)
        if n_trials is not None:
            if isinstance(n_trials, bool) or not isinstance(n_trials, int):
                raise TypeError(f"n_trials={n_trials!r} must be an int or None")
            if n_trials < 1:
                raise ValueError(f"n_trials={n_trials!r} must be >= 1 (or None: unknown)")
        self._n_trials = n_trials
        self._samplers: dict[str, BaseSampler] = {}
        self._chosen: dict[int, str] = {}
        self._recorded: tuple[int, str] | None = None
        self._spaces: dict[int, _FinishedSpace] = {}  # by study id
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_chosen"] = {}
        state["_recorded"] = None
        state["_spaces"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def n_trials(self) -> int | None:
        """The budget the choice assumes, or ``None``."""
        return self._n_trials

    def choice(self, study: StudyView) -> tuple[str, str]:
        """What :func:`choose_sampler` says for the next trial of ``study``."""
        trials = study.get_trials()
        with self._lock:
            space = self._spaces.setdefault(study.study_id, _FinishedSpace())
            profile, finished = space.update(trials)
        return choose_sampler(
            profile,
            n_trials=self._n_trials,
            n_finished=finished,
            is_multi_objective=study.is_multi_objective,
        )

    def _sampler(self, name: str) -> BaseSampler:
        """The sampler called ``name``, built on first use (CMA-ES needs an extra)."""
        sampler = self._samplers.get(name)
        if sampler is None:
            if name == "gp":
                sampler = GPSampler(self._seed)
            elif name == "cmaes":
                # n_startup_trials=1: a switch mid-study starts from the best trials so far
                sampler = CMAESSampler(self._seed, n_startup_trials=1)
            else:
                sampler = TPESampler(self._seed)
            self._samplers[name] = sampler
        return sampler

    def _sampler_for(self, study: StudyView, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            name = self._chosen.get(trial.trial_id)
        if name is None:
            name, reason = self.choice(study)
            if name == "cmaes":
                try:
                    self._sampler(name)
                except MissingDependencyError:
                    name, reason = "tpe", reason + "; CMA-ES needs pip install 'dltune[cmaes]'"
            with self._lock:
                if len(self._chosen) > 1024:  # trials that never finished here
                    self._chosen.clear()
                self._chosen[trial.trial_id] = name
            self._record(study, trial, name, reason)
        return self._sampler(name)

    def _record(self, study: StudyView, trial: FrozenTrial, name: str, reason: str) -> None:
        if self._recorded == (study.study_id, name):
            return  # this process wrote (or read) that choice already
        log = study.get_note(NOTE_KEY)
        history: list[dict[str, Any]] = list(log) if isinstance(log, list) else []
        if not history or history[-1].get("sampler") != name:
            history.append({"sampler": name, "reason": reason, "from_trial": trial.number})
            study.set_note(NOTE_KEY, history)
        self._recorded = (study.study_id, name)

    def before_trial(self, study: StudyView, trial: FrozenTrial) -> None:
        sampler = self._sampler_for(study, trial)
        sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: StudyView, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler_for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: StudyView, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler_for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: StudyView, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        return self._sampler_for(study, trial).sample_independent(study, trial, name, distribution)

    def after_trial(
        self,
        study: StudyView,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            name = self._chosen.pop(trial.trial_id, None)
        if name is not None:
            self._sampler(name).after_trial(study, trial, state, values)
