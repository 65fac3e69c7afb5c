"""The sampler conformance suite: what every :class:`~dltune.samplers.BaseSampler` must do."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cloudpickle

import dltune
from dltune._trial import Trial
from dltune.samplers import BaseSampler
from dltune.space import BaseDistribution
from dltune.space import CategoricalChoice
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.storage import InMemoryStorage
from dltune.study import Study
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView

__all__ = ["EVERY_KIND_SPACE", "ConditionalSpace", "SamplerConformance", "suggest"]

#: One distribution of every kind and option, including single-valued ones and a categorical
#: mixing None, bools, ints, floats and strings (``True`` and ``1`` are different choices).
EVERY_KIND_SPACE: Mapping[str, BaseDistribution] = MappingProxyType(
    {
        "float": FloatDistribution(-3.5, 2.25),
        "float_log": FloatDistribution(1e-5, 1e-1, log=True),
        "float_step": FloatDistribution(0.0, 1.0, step=0.1),
        "float_single": FloatDistribution(1.5, 1.5),
        "int": IntDistribution(-10, 10),
        "int_log": IntDistribution(1, 1024, log=True),
        "int_step": IntDistribution(0, 100, step=5),
        "int_single": IntDistribution(3, 3),
        "categorical": CategoricalDistribution(("sgd", "adam", "rmsprop")),
        "categorical_mixed": CategoricalDistribution((None, True, False, 0, 1, 2.5, "a")),
        "categorical_single": CategoricalDistribution(("only",)),
    }
)


@dataclass(frozen=True)
class ConditionalSpace:
    """A define-by-run space: a categorical ``root`` picks which branch's parameters exist.

    Attributes:
        root: The name of the categorical parameter asked for first.
        branches: ``root choice -> {name: distribution}`` asked for after it.
    """

    root: str
    branches: Mapping[CategoricalChoice, Mapping[str, BaseDistribution]]

    @property
    def root_distribution(self) -> CategoricalDistribution:
        """The root's distribution: one choice per branch."""
        return CategoricalDistribution(tuple(self.branches))

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter of every branch, and the root."""
        out: dict[str, BaseDistribution] = {self.root: self.root_distribution}
        for branch in self.branches.values():
            out.update(branch)
        return out


DEFAULT_CONDITIONAL_SPACE = ConditionalSpace(
    root="optimizer",
    branches={
        "sgd": {
            "sgd_lr": FloatDistribution(1e-4, 1.0, log=True),
            "momentum": FloatDistribution(0.0, 0.99),
        },
        "adam": {
            "adam_lr": FloatDistribution(1e-5, 1e-1, log=True),
            "n_warmup": IntDistribution(1, 5),
        },
        "constant": {},
    },
)


def suggest(trial: Trial, name: str, distribution: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` with the ``suggest_*`` call that builds ``distribution``.

    Raises:
        TypeError: For a distribution of another kind.

    Example:
        >>> import dltune
        >>> study = dltune.create_study(seed=0)
        >>> trial = study.ask()
        >>> suggest(trial, "n", IntDistribution(3, 3))
        3
    """
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, list(distribution.choices))
    raise TypeError(f"distribution={distribution!r} is of no kind suggest() knows")


def check_contained(name: str, distribution: BaseDistribution, value: Any) -> None:
    """Assert that ``value`` is an external value of ``distribution``, of the right type."""
    if isinstance(distribution, FloatDistribution):
        assert type(value) is float, f"{name}: {value!r} is not a float"
    elif isinstance(distribution, IntDistribution):
        assert type(value) is int, f"{name}: {value!r} is not an int"
    elif isinstance(distribution, CategoricalDistribution):
        choice = distribution.choices[distribution.index(value)]
        assert type(value) is type(choice), f"{name}: {value!r} is not the choice {choice!r}"
    internal = distribution.to_internal(value)  # raises ValueError if outside
    assert distribution.contains(internal), f"{name}: {value!r} is outside {distribution!r}"


def _objective(space: Mapping[str, BaseDistribution]) -> Callable[[Trial], float]:
    """Ask for every parameter of ``space``, check it, and return a value that depends on all."""

    def objective(trial: Trial) -> float:
        total = 0.0
        for name, dist in space.items():
            value = suggest(trial, name, dist)
            check_contained(name, dist, value)
            total += (dist.to_unit(dist.to_internal(value)) - 0.3) ** 2
        return total

    return objective


def _history(study: Study) -> list[tuple[int, TrialState, dict[str, Any], list[float] | None]]:
    return [(t.number, t.state, t.params, t.values) for t in study.trials]


class SamplerConformance:
    """Checks that a sampler proposes valid values, reproducibly, in every kind of space.

    Subclass it under a name pytest collects and implement :meth:`make_sampler`. A sampler that
    supports only some spaces (a grid) overrides :meth:`search_space` and
    :meth:`conditional_space` to declare the spaces it covers.

    Example:
        >>> from dltune.samplers import RandomSampler
        >>> class TestRandomSampler(SamplerConformance):
        ...     def make_sampler(self, seed: int) -> RandomSampler:
        ...         return RandomSampler(seed=seed)
    """

    #: Trials per study in the tests; enough to leave any start-up phase.
    n_trials: int = 24

    def make_sampler(self, seed: int) -> BaseSampler:
        """Return a new sampler seeded with ``seed``. Called several times per test."""
        raise NotImplementedError("subclasses of SamplerConformance implement make_sampler()")

    def search_space(self) -> dict[str, BaseDistribution]:
        """The parameters every trial asks for; by default one of every kind."""
        return dict(EVERY_KIND_SPACE)

    def conditional_space(self) -> ConditionalSpace:
        """The define-by-run space of the conditional tests."""
        return DEFAULT_CONDITIONAL_SPACE

    def _study(self, seed: int, **kwargs: Any) -> Study:
        return dltune.create_study(sampler=self.make_sampler(seed), **kwargs)

    def test_values_inside_every_distribution(self) -> None:
        space = self.search_space()
        study = self._study(0)
        objective = _objective(space)
        for _ in range(self.n_trials):
            handle = study.ask()
            study.tell(handle, objective(handle))
        trials = study.trials
        assert [t.state for t in trials] == [TrialState.COMPLETE] * self.n_trials
        for trial in trials:
            assert trial.distributions == space
            for name, dist in space.items():
                check_contained(name, dist, trial.params[name])

    def test_sample_independent_inside_every_distribution(self) -> None:
        space = self.search_space()
        sampler = self.make_sampler(1)
        storage = InMemoryStorage()
        study_id = storage.create_new_study([StudyDirection.MINIMIZE], "independent")
        view = StudyView(storage, study_id)
        for _ in range(4):
            frozen = storage.create_new_trial(study_id)
            sampler.before_trial(view, frozen)
            for name, dist in space.items():
                value = sampler.sample_independent(view, frozen, name, dist)
                check_contained(name, dist, value)
            storage.set_trial_state_values(frozen.trial_id, TrialState.COMPLETE, [0.0])

    def test_conditional_space(self) -> None:
        space = self.conditional_space()

        def objective(trial: Trial) -> float:
            branch = suggest(trial, space.root, space.root_distribution)
            check_contained(space.root, space.root_distribution, branch)
            total = 0.0
            for name, dist in space.branches[branch].items():
                value = suggest(trial, name, dist)
                check_contained(name, dist, value)
                total += dist.to_unit(dist.to_internal(value))
            return total

        study = self._study(2)
        study.optimize(objective, n_trials=self.n_trials, catch=())
        trials = study.trials
        assert [t.state for t in trials] == [TrialState.COMPLETE] * self.n_trials
        for trial in trials:
            branch = trial.params[space.root]
            assert set(trial.params) == {space.root, *space.branches[branch]}

    def test_same_seed_same_trials(self) -> None:
        objective = _objective(self.search_space())
        histories = []
        for _ in range(2):
            study = self._study(7)
            study.optimize(objective, n_trials=self.n_trials, catch=())
            histories.append(_history(study))
        assert histories[0] == histories[1]

    def test_different_seeds_differ(self) -> None:
        objective = _objective(self.search_space())
        params = []
        for seed in (1, 2):
            study = self._study(seed)
            study.optimize(objective, n_trials=self.n_trials, catch=())
            params.append([t.params for t in study.trials])
        assert params[0] != params[1]

    def test_runs_to_the_budget(self) -> None:
        study = self._study(3)
        objective = _objective(self.search_space())
        study.optimize(objective, n_trials=self.n_trials, catch=())
        assert len(study.trials) == self.n_trials
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        study.optimize(objective, n_trials=self.n_trials, catch=())
        assert len(study.trials) == self.n_trials

    def test_multi_objective_study(self) -> None:
        space = self.search_space()
        single = _objective(space)

        def objective(trial: Trial) -> tuple[float, float]:
            value = single(trial)
            return value, -value

        study = self._study(4, directions=["minimize", "maximize"])
        study.optimize(objective, n_trials=8, catch=())
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8

    def test_picklable_copy_behaves_the_same(self) -> None:
        objective = _objective(self.search_space())
        original = self.make_sampler(5)
        copy = cloudpickle.loads(cloudpickle.dumps(original))
        histories = []
        for sampler in (original, copy):
            study = dltune.create_study(sampler=sampler)
            study.optimize(objective, n_trials=8, catch=())
            histories.append(_history(study))
        assert histories[0] == histories[1]

    def test_is_exhausted_is_a_bool(self) -> None:
        study = self._study(6)
        assert study.sampler.is_exhausted(study._view) is False

    def test_after_trial_sees_every_outcome(self) -> None:
        space = self.search_space()
        study = self._study(8)
        for i in range(6):
            trial = study.ask()
            for name, dist in space.items():
                check_contained(name, dist, suggest(trial, name, dist))
            if i % 3 == 0:
                study.tell(trial, state=TrialState.FAIL)
            elif i % 3 == 1:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, 1.0)
        trial = study.ask()  # the sampler copes with a history of every state
        for name, dist in space.items():
            check_contained(name, dist, suggest(trial, name, dist))
        assert isinstance(study.tell(trial, 0.0), FrozenTrial)
