"""AutoSampler: the conformance suite, the choice rules, and the record on the study."""

from __future__ import annotations

from typing import Any

import pytest

import dltune
from dltune import Trial
from dltune.samplers import AutoSampler
from dltune.samplers import BaseSampler
from dltune.samplers._auto import SpaceProfile
from dltune.samplers._auto import choose_sampler
from dltune.testing import SamplerConformance


class TestAutoSampler(SamplerConformance):
    def make_sampler(self, seed: int) -> BaseSampler:
        return AutoSampler(seed=seed)


class TestAutoSamplerLongBudget(SamplerConformance):
    """Told a long budget, it runs CMA-ES (numeric spaces) or TPE."""

    def make_sampler(self, seed: int) -> BaseSampler:
        return AutoSampler(seed=seed, n_trials=2000)


NUMERIC = SpaceProfile(True, n_numeric=6, n_categorical=1)


@pytest.mark.parametrize(
    ("profile", "n_trials", "n_finished", "multi", "expected"),
    [
        (NUMERIC, 100, 20, False, "gp"),
        (NUMERIC, None, 20, False, "gp"),
        (NUMERIC, None, 300, False, "tpe"),  # past the GP's size
        (SpaceProfile(True, 6, 0), 5000, 20, False, "cmaes"),
        (NUMERIC, 5000, 20, False, "tpe"),  # long, with a categorical
        (SpaceProfile(True, 3, 3), 50, 5, False, "tpe"),  # categorical-heavy
        (SpaceProfile(True, 6, 1, is_conditional=True), 50, 5, False, "tpe"),
        (NUMERIC, 50, 5, True, "tpe"),  # multi-objective
        (SpaceProfile(False), 50, 0, False, "gp"),  # nothing known: by the budget
        (SpaceProfile(False), 5000, 0, False, "tpe"),
    ],
)
def test_choice_rules(
    profile: SpaceProfile, n_trials: int | None, n_finished: int, multi: bool, expected: str
) -> None:
    name, reason = choose_sampler(
        profile, n_trials=n_trials, n_finished=n_finished, is_multi_objective=multi
    )
    assert name == expected, reason
    assert reason


def test_profile_reads_conditional_and_categorical_spaces() -> None:
    def objective(trial: Trial) -> float:
        opt = trial.suggest_categorical("opt", ["sgd", "adam"])
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.99)
        return lr

    study = dltune.create_study(sampler=dltune.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=8)
    profile = SpaceProfile.of(study.trials)
    assert profile.is_known and profile.is_conditional
    assert (profile.n_numeric, profile.n_categorical) == (2, 1)


def _records(study: dltune.Study) -> list[dict[str, Any]]:
    return list(study.system_attrs["sampler:auto"])


def test_records_the_choice_and_switches_on_a_conditional_space() -> None:
    def objective(trial: Trial) -> float:
        opt = trial.suggest_categorical("opt", ["sgd", "adam"])
        x = trial.suggest_float("x", -1, 1)
        if opt == "sgd":
            trial.suggest_float("momentum", 0.0, 0.99)
        return x * x

    study = dltune.create_study(sampler=AutoSampler(seed=0, n_trials=20))
    study.optimize(objective, n_trials=20)
    records = _records(study)
    assert records[0] == {
        "sampler": "gp",
        "reason": "a small budget over a mostly numeric space",
        "from_trial": 0,
    }
    # once both branches were seen, the space is known to be conditional: TPE from then on
    assert records[-1]["sampler"] == "tpe"
    assert "conditional" in records[-1]["reason"]
    assert len(records) == 2


def test_create_study_defaults_to_auto_and_tune_passes_the_budget() -> None:
    study = dltune.create_study(seed=3)
    assert isinstance(study.sampler, AutoSampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert _records(study)[0]["sampler"] == "gp"

    from dltune.config import parse_config

    config = parse_config(
        {
            "study": "s",
            "budget": {"trials": 1000},
            "task": {"dataset": "digits", "model": "mlp"},
            "space": {"lr": {"low": 1e-4, "high": 1.0, "log": True}},
        }
    )
    sampler = config.build_sampler()
    assert isinstance(sampler, AutoSampler)
    assert sampler.n_trials == 1000


def test_reproducible_with_a_seed() -> None:
    def run() -> list[dict[str, Any]]:
        study = dltune.create_study(sampler=AutoSampler(seed=11, n_trials=15))
        study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 0.5) ** 2, n_trials=15)
        return [t.params for t in study.trials]

    assert run() == run()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_trials": 0}, ValueError, r"n_trials=0 must be >= 1 \(or None: unknown\)"),
        ({"n_trials": 2.5}, TypeError, r"n_trials=2.5 must be an int or None"),
        ({"n_trials": True}, TypeError, r"n_trials=True must be an int or None"),
        ({"seed": "1"}, TypeError, r"seed='1' must be an int or None"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        AutoSampler(**kwargs)
