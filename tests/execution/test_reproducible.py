"""Per-trial seeds (``Trial.seed``, derived from the study seed) and exact replay of a
sequential seeded study."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dltune
from dltune._trial import trial_seed
from dltune.samplers import RandomSampler
from dltune.storage import SQLStorage
from dltune.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))

import sync_objectives  # noqa: E402


def _url(tmp_path: Path, name: str = "study.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def test_a_trial_seed_depends_only_on_the_study_seed_and_the_number() -> None:
    assert trial_seed(3, 7) == trial_seed(3, 7)
    seeds = [trial_seed(3, n) for n in range(200)]
    assert len(set(seeds)) == 200
    assert all(0 <= s < 2**32 for s in seeds)
    assert trial_seed(4, 7) != trial_seed(3, 7)
    assert trial_seed(3, 7) == int(np.random.SeedSequence([3, 7]).generate_state(1)[0])


def test_trials_of_a_seeded_study_get_derived_seeds_recorded_with_them() -> None:
    study = dltune.create_study(seed=5)
    assert study.seed == 5
    trials = [study.ask() for _ in range(3)]
    assert [t.seed for t in trials] == [trial_seed(5, n) for n in range(3)]
    assert trials[0].seed == trials[0].seed
    assert [t.system_attrs["trial_seed"] for t in study.trials] == [t.seed for t in trials]


def test_a_finished_trial_still_tells_its_seed() -> None:
    study = dltune.create_study(seed=5)
    trial = study.ask()
    study.tell(trial, 1.0)
    assert trial.seed == trial_seed(5, 0)  # the record is final: nothing is written
    assert "trial_seed" not in study.trials[0].system_attrs


def test_without_a_study_seed_each_trial_gets_a_random_seed_it_records() -> None:
    study = dltune.create_study()
    assert study.seed is None
    first, second = study.ask(), study.ask()
    assert first.seed != second.seed  # equal with probability 2**-32
    assert [t.system_attrs["trial_seed"] for t in study.trials] == [first.seed, second.seed]


def test_the_study_seed_is_kept_with_the_study(tmp_path: Path) -> None:
    url = _url(tmp_path)
    dltune.create_study("s", url, seed=5)
    loaded = dltune.load_study("s", url)
    assert loaded.seed == 5
    assert loaded.ask().seed == trial_seed(5, 0)
    again = dltune.create_study("s", url, load_if_exists=True)  # no seed: keeps the stored one
    assert again.seed == 5 and again.ask().seed == trial_seed(5, 1)


def test_continuing_a_study_with_another_seed_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    dltune.create_study("s", url, seed=5)
    with pytest.raises(
        ValueError,
        match=r"study 's' exists with seed 5, not seed=6; pass seed=5 or None to continue it",
    ):
        dltune.create_study("s", url, seed=6, load_if_exists=True)
    assert dltune.load_study("s", url).seed == 5


def test_a_study_created_without_a_seed_takes_one_when_continued_with_one(tmp_path: Path) -> None:
    url = _url(tmp_path)
    dltune.create_study("s", url)
    assert dltune.create_study("s", url, seed=3, load_if_exists=True).seed == 3
    assert dltune.load_study("s", url).seed == 3


def test_a_seed_and_a_sampler_can_both_be_given() -> None:
    def first_x(**kwargs: Any) -> float:
        study = dltune.create_study(**kwargs)
        return study.ask().suggest_float("x", 0.0, 1.0)

    study = dltune.create_study(seed=4, sampler=RandomSampler(seed=9))
    assert study.seed == 4 and study.ask().seed == trial_seed(4, 0)
    # the sampler keeps its own seed
    assert first_x(seed=4, sampler=RandomSampler(seed=9)) == first_x(sampler=RandomSampler(seed=9))


@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [
        (-1, ValueError, r"seed=-1 must be >= 0"),
        (True, TypeError, r"seed=True must be an int or None"),
        (1.5, TypeError, r"seed=1.5 must be an int or None"),
    ],
)
def test_the_study_seed_is_checked_also_beside_a_sampler(
    seed: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        dltune.create_study(seed=seed, sampler=RandomSampler(seed=0))


@pytest.mark.parametrize("study_seed", [8, None])
def test_a_retry_keeps_the_seed_of_the_trial_it_retries(
    tmp_path: Path, study_seed: int | None
) -> None:
    storage = SQLStorage(_url(tmp_path), heartbeat_seconds=0.05, grace_seconds=0.1, max_retries=1)
    study = dltune.create_study(storage=storage, seed=study_seed)
    original = study.ask()  # its worker "dies": no heartbeat after the claim
    seed = original.seed
    time.sleep(0.2)
    assert storage.fail_stale_trials(study._study_id) == [0]
    retry = study.ask()
    assert retry.number == 1 and retry.system_attrs["retry_of"] == 0
    assert retry.seed == seed
    if study_seed is not None:
        assert seed == trial_seed(study_seed, 0)


def test_a_continuation_keeps_the_seed_of_the_paused_trial() -> None:
    study = dltune.create_study(seed=2, pruner=sync_objectives.PauseAtStepTwo())
    study.optimize(sync_objectives.resumable, n_trials=2)
    paused, continued = study.trials
    assert paused.state == TrialState.PRUNED and continued.resume_of == 0
    assert continued.user_attrs["seen_seed"] == paused.user_attrs["seen_seed"]
    assert continued.user_attrs["seen_seed"] == trial_seed(2, 0)


def test_worker_processes_derive_the_same_seeds(tmp_path: Path) -> None:
    study = dltune.create_study(storage=_url(tmp_path), seed=21, sampler=RandomSampler(seed=0))
    study.optimize(sync_objectives.record_seed, n_trials=4, n_jobs=2)
    seen = {t.number: t.user_attrs["seen_seed"] for t in study.trials}
    assert seen == {n: trial_seed(21, n) for n in range(4)}


def _replay(study: dltune.Study, n_trials: int) -> dict[int, tuple[Any, ...]]:
    study.optimize(sync_objectives.jittery, n_trials=n_trials)
    return {t.number: (t.state, t.params, t.values, t.intermediate_values) for t in study.trials}


def test_a_sequential_seeded_study_replays_exactly() -> None:
    first = _replay(dltune.create_study(seed=0), 10)
    assert first == _replay(dltune.create_study(seed=0), 10)
    assert first != _replay(dltune.create_study(seed=1), 10)


def test_a_resumed_seeded_study_replays_the_uninterrupted_one(tmp_path: Path) -> None:
    straight = _replay(dltune.create_study(storage=_url(tmp_path, "a.db"), seed=0), 8)
    url = _url(tmp_path, "b.db")
    _replay(dltune.create_study("b", url, seed=0), 3)
    resumed = _replay(dltune.load_study("b", url), 8)  # the default sampler takes the seed
    assert resumed == straight
