"""Population-based training: exploit, explore, the recorded schedule, replay, workers, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dltune
from dltune.storage import InMemoryStorage
from dltune.torch import Guards
from dltune.torch import HParams
from dltune.torch import Task
from dltune.torch import checkpoint_path
from dltune.torch import load_checkpoint
from dltune.torch import train
from dltune.torch._objective import _owner
from dltune.torch._pbt import PBT
from dltune.torch._pbt import PBT_KEY
from dltune.torch._pbt import SCHEDULE_KEY
from dltune.torch._pbt import PBTResult
from dltune.torch._pbt_explore import DEFAULT_BOUNDS
from dltune.torch._pbt_explore import check_bounds
from dltune.torch._pbt_explore import explore
from dltune.torch._pbt_explore import perturbed_fields
from dltune.torch._pbt_explore import truncation
from dltune.torch._pbt_replay import replay_schedule
from dltune.torch._pbt_replay import schedule_from_json
from dltune.torch._pbt_replay import schedule_to_json
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

GOOD = HParams(optimizer="sgd", lr=0.05, momentum=0.9, width=16)
BAD = dataclasses.replace(GOOD, lr=1e-4)


@pytest.fixture
def task(digits_task: Task) -> Task:
    """Two epochs, guards off (a slow member must not be stopped), checkpoints kept."""
    return dataclasses.replace(
        digits_task, epochs=2, guards=Guards(enabled=False), keep_checkpoints=True
    )


def _space(trial: dltune.Trial) -> dict[str, Any]:
    return {
        "lr": trial.suggest_float("lr", 1e-3, 0.2, log=True),
        "momentum": trial.suggest_float("momentum", 0.5, 0.95),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
    }


def _segments(study: dltune.Study) -> dict[tuple[int, int], FrozenTrial]:
    return {
        (t.system_attrs[PBT_KEY]["member"], t.system_attrs[PBT_KEY]["generation"]): t
        for t in study.trials
    }


# -- exploit ---------------------------------------------------------------------------------


def test_a_bottom_member_continues_from_the_top_members_checkpoint(task: Task) -> None:
    storage = InMemoryStorage()
    pbt = PBT(task, [GOOD, BAD], interval=1, fraction=0.5, seed=1)
    result = pbt.run(storage=storage, study_name="exploit")
    study = dltune.load_study("exploit", storage)
    seg = _segments(study)
    top, bottom = seg[(0, 0)], seg[(1, 0)]
    assert top.value is not None and bottom.value is not None and top.value > bottom.value
    copied = seg[(1, 1)]
    info = copied.system_attrs[PBT_KEY]
    assert info["parent_member"] == 0 and info["parent_trial"] == top.number
    assert info["exploited"] is True
    assert seg[(0, 1)].system_attrs[PBT_KEY]["exploited"] is False  # the top one continued
    assert sorted(copied.intermediate_values) == [2]  # the real epoch; epoch 1 is not its own
    # Its checkpoint carries the top member's epoch 1: the weights came from there.
    ckpt = checkpoint_path(task, "exploit", copied.number)
    assert ckpt is not None
    state = load_checkpoint(ckpt)
    assert state is not None
    assert state["history"][0]["val_accuracy"] == top.intermediate_values[1]
    assert state["history"][0]["val_accuracy"] != bottom.intermediate_values[1]
    # Continuing the top member's checkpoint by hand with the recorded hyperparameters and seed
    # gives exactly the recorded value.
    again = train(
        dataclasses.replace(task, checkpoint_dir=None),
        HParams.from_params(copied.system_attrs["hparams"]),
        seed=copied.system_attrs["seed"],
        start_from=checkpoint_path(task, "exploit", top.number),
        start_owner=_owner("exploit", top),
        epochs_to=2,
    )
    assert again.value == copied.value
    assert result.epochs_trained == 4
    assert [s.generation for s in result.history[1]] == [0, 1]


def test_a_diverged_member_is_replaced_by_a_top_member(task: Task) -> None:
    wild = dataclasses.replace(GOOD, lr=10.0)
    guarded = dataclasses.replace(task, guards=Guards())
    pbt = PBT(guarded, [GOOD, wild], interval=1, fraction=0.5, bounds={"lr": (1e-4, 10.0)})
    storage = InMemoryStorage()
    pbt.run(storage=storage, study_name="diverged")
    seg = _segments(dltune.load_study("diverged", storage))
    assert seg[(1, 0)].state == TrialState.PRUNED
    assert seg[(1, 1)].state == TrialState.COMPLETE
    assert seg[(1, 1)].system_attrs[PBT_KEY]["parent_member"] == 0


# -- explore ---------------------------------------------------------------------------------


def test_explore_multiplies_by_a_factor_or_resamples_within_bounds() -> None:
    rng = np.random.default_rng(0)
    bounds = {**DEFAULT_BOUNDS, **check_bounds({"lr": (1e-3, 0.1)})}
    base = HParams(optimizer="sgd", lr=0.05, momentum=0.5, weight_decay=0.01)
    fields = perturbed_fields(base, ["lr", "momentum", "beta1", "weight_decay"], {})
    assert fields == ["lr", "momentum", "weight_decay"]  # sgd has no beta1
    for _ in range(50):
        new = explore(base, fields, bounds, rng, resample_probability=0.0)
        assert round(new.lr / base.lr, 9) in (0.8, 1.2)
        assert round(new.momentum / base.momentum, 9) in (0.8, 1.2)
        assert new.beta1 == base.beta1 and new.width == base.width
    high = dataclasses.replace(base, lr=0.095, momentum=0.98)
    clipped = [explore(high, fields, bounds, rng, resample_probability=0.0) for _ in range(30)]
    assert max(h.lr for h in clipped) == 0.1 and max(h.momentum for h in clipped) == 0.99
    drawn = [explore(base, fields, bounds, rng, resample_probability=1.0) for _ in range(50)]
    assert all(1e-3 <= h.lr <= 0.1 and 0 <= h.weight_decay <= 0.1 for h in drawn)
    assert len({h.lr for h in drawn}) == 50


def test_explore_snaps_to_the_grid_of_a_stepped_range() -> None:
    rng = np.random.default_rng(1)
    dist = dltune.space.FloatDistribution(0.0, 0.9, step=0.1)
    new = explore(HParams(momentum=0.5), ["momentum"], {"momentum": dist}, rng)
    assert round(new.momentum * 10, 9) == round(new.momentum * 10)


def test_perturbed_fields_follow_the_optimizer_and_skip_choices() -> None:
    fields = ["lr", "momentum", "beta1", "weight_decay"]
    assert perturbed_fields(HParams(optimizer="adam"), fields, {}) == [
        "lr",
        "beta1",
        "weight_decay",
    ]
    choice = dltune.space.CategoricalDistribution.of([0.01, 0.1])
    assert perturbed_fields(HParams(optimizer="adagrad"), fields, {"lr": choice}) == [
        "weight_decay"
    ]


def test_truncation_selection() -> None:
    assert truncation({0: 1.0, 1: 3.0, 2: 2.0, 3: 0.5}, maximize=False, fraction=0.5) == (
        [2, 1],
        [3, 0],
    )
    assert truncation({0: 1.0, 1: 1.0}, maximize=True, fraction=0.25) == ([1], [0])
    assert truncation({4: 1.0}, maximize=True, fraction=0.25) == ([], [4])


def test_space_members_record_their_hyperparameters_as_params_in_bounds(task: Task) -> None:
    storage = InMemoryStorage()
    pbt = PBT(task, _space, population=4, interval=1, fraction=0.25, fixed={"width": 16})
    pbt.run(storage=storage, study_name="space")
    study = dltune.load_study("space", storage)
    assert len(study.trials) == 8
    for t in study.trials:
        hp = t.system_attrs["hparams"]
        assert {k: hp[k] for k in t.params} == t.params  # params are the segment's hparams
        assert 1e-3 <= hp["lr"] <= 0.2 and 0.5 <= hp["momentum"] <= 0.95
        assert 1e-5 <= hp["weight_decay"] <= 1e-2 and hp["width"] == 16
    exploited = [t for t in study.trials if t.system_attrs[PBT_KEY]["exploited"]]
    assert len(exploited) == 1  # one bottom member of four, once
    parent = study.trials[exploited[0].system_attrs[PBT_KEY]["parent_trial"]]
    assert exploited[0].params != parent.params  # explored
    assert exploited[0].params["lr"] / parent.params["lr"] != 1.0


# -- schedule and replay ---------------------------------------------------------------------


def test_the_schedule_is_recorded_and_follows_the_best_members_ancestry(task: Task) -> None:
    storage = InMemoryStorage()
    three = dataclasses.replace(task, epochs=3)
    result = PBT(three, [GOOD, BAD], interval=1, fraction=0.5, seed=2).run(
        storage=storage, study_name="schedule"
    )
    study = dltune.load_study("schedule", storage)
    assert study.system_attrs[SCHEDULE_KEY] == schedule_to_json(result.schedule)
    assert schedule_from_json(study.system_attrs[SCHEDULE_KEY]) == result.schedule
    best = study.trials[result.best_trial]
    assert best.value == result.best_value and best.system_attrs[PBT_KEY]["end_epoch"] == 3
    # Walk the ancestry by hand: the hparams of each epoch's segment are the schedule's.
    chain, t = [], best
    while True:
        chain.append(t)
        parent = t.system_attrs[PBT_KEY]["parent_trial"]
        if parent is None:
            break
        t = study.trials[parent]
    by_epoch = {
        s.system_attrs[PBT_KEY]["start_epoch"]: HParams.from_params(s.system_attrs["hparams"])
        for s in chain
    }
    assert sorted(by_epoch) == [0, 1, 2]
    in_force = {}
    for start, hp in result.schedule:
        in_force.update({e: hp for e in range(start, 3)})
    assert in_force == by_epoch


def test_replay_changes_the_hyperparameters_at_the_recorded_epochs(task: Task) -> None:
    three = dataclasses.replace(task, epochs=3, checkpoint_dir=None)
    schedule = [(0, GOOD), (1, dataclasses.replace(GOOD, lr=0.02, weight_decay=1e-4))]
    run = replay_schedule(three, schedule, seed=3, evaluate_test=True)
    assert [r.epoch for r in run.history] == [1, 2, 3]
    assert [r.lr for r in run.history] == pytest.approx([0.05, 0.02, 0.02])
    assert run.test_accuracy is not None and run.test_accuracy > 0.5
    assert run.hparams == schedule[1][1] and run.resumed_from_epoch == 0
    as_json = replay_schedule(three, schedule_to_json(schedule), seed=3)
    assert [r.val_loss for r in as_json.history] == [r.val_loss for r in run.history]


def test_start_from_puts_the_new_values_into_the_optimizer(task: Task, tmp_path: Path) -> None:
    hp = dataclasses.replace(GOOD, schedule="cosine")
    source, own = tmp_path / "source.pt", tmp_path / "own.pt"
    straight = train(task, hp, seed=0, checkpoint=source, epochs_to=1)
    assert [r.epoch for r in straight.history] == [1]
    new = dataclasses.replace(hp, lr=0.1, momentum=0.5, weight_decay=1e-3)
    result = train(task, new, seed=0, checkpoint=own, start_from=source)
    full = train(dataclasses.replace(task, checkpoint_dir=None), hp, seed=0)
    assert result.resumed_from_epoch == 1 and result.history[0] == straight.history[0]
    # The cosine schedule keeps its position; its peak is doubled.
    assert result.history[1].lr == pytest.approx(2 * full.history[1].lr)
    state = load_checkpoint(own)
    assert state is not None
    group = state["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["weight_decay"]) == (0.5, 1e-3)
    assert group["initial_lr"] == pytest.approx(0.1)


def test_start_from_refuses_what_it_cannot_continue(task: Task, tmp_path: Path) -> None:
    source = tmp_path / "source.pt"
    train(task, GOOD, seed=0, checkpoint=source, epochs_to=1, owner={"who": "a"})
    wider = dataclasses.replace(GOOD, width=32)
    with pytest.raises(ValueError, match="hyperparameters width differ; only lr, momentum"):
        train(task, wider, start_from=source, start_owner={"who": "a"})
    with pytest.raises(ValueError, match=r"was written by \{'who': 'a'\}, not by start_owner="):
        train(task, GOOD, start_from=source, start_owner={"who": "b"})
    with pytest.raises(ValueError, match="is not a dltune trainer checkpoint"):
        train(task, GOOD, start_from=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="were both given; give one"):
        train(task, GOOD, start_from=source, resume_from=source)
    for bad in (0, 3, True):
        with pytest.raises(ValueError, match=rf"epochs_to={bad!r} must be an integer in 1..2"):
            train(task, GOOD, epochs_to=bad)


# -- determinism and workers -----------------------------------------------------------------


def _run(task: Task, **kwargs: Any) -> PBTResult:
    return PBT(task, _space, population=3, interval=1, fixed={"width": 16}, seed=5).run(**kwargs)


def test_the_same_seed_gives_the_same_schedule(task: Task) -> None:
    first, again = _run(task), _run(task)
    assert first.schedule == again.schedule
    assert first.history == again.history
    assert first.study_name != again.study_name


def test_two_worker_processes_complete_and_the_storage_shows_every_segment(
    task: Task, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'pbt.db'}"
    pbt = PBT(task, _space, population=4, interval=1, fixed={"width": 16}, seed=0)
    result = pbt.run(storage=url, study_name="two", n_jobs=2)
    study = dltune.load_study("two", url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
    seen = set()
    for t in study.trials:
        info = t.system_attrs[PBT_KEY]
        seen.add((info["member"], info["generation"]))
        assert sorted(t.intermediate_values) == [info["end_epoch"]]
        assert t.params and t.system_attrs["hparams"]["width"] == 16
        if info["generation"] == 1:
            assert study.trials[info["parent_trial"]].system_attrs[PBT_KEY]["generation"] == 0
    assert seen == {(m, g) for m in range(4) for g in range(2)}
    assert study.system_attrs[SCHEDULE_KEY] == schedule_to_json(result.schedule)
    assert result.epochs_trained == 8


def test_a_timeout_fails_the_segments_never_started(task: Task) -> None:
    storage = InMemoryStorage()
    pbt = PBT(task, [GOOD, BAD], interval=1)
    with pytest.raises(RuntimeError, match="PBT completed no segment in study 'late'"):
        pbt.run(storage=storage, study_name="late", timeout=1e-9)
    trials = dltune.load_study("late", storage).trials
    assert len(trials) == 4 and {t.state for t in trials} == {TrialState.FAIL}
    assert {t.reason for t in trials} == {"not started: the PBT timeout passed"}


def test_checkpoints_are_removed_unless_kept(task: Task) -> None:
    dropped = dataclasses.replace(task, keep_checkpoints=False)
    PBT(dropped, [GOOD, BAD], interval=1).run(study_name="dropped")
    assert dropped.checkpoint_dir is not None
    assert not list(dropped.checkpoint_dir.rglob("*.pt"))


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"population": 1}, ValueError, "population=1 must be an integer >= 2"),
        ({"interval": 0}, ValueError, "interval=0 must be an integer >= 1"),
        ({"interval": 2}, ValueError, "interval=2 must be below task.epochs=2"),
        ({"fraction": 0.0}, ValueError, r"fraction=0.0 must be in \(0, 0.5\]"),
        ({"fraction": 0.6}, ValueError, r"fraction=0.6 must be in \(0, 0.5\]"),
        ({"fraction": "x"}, ValueError, r"fraction='x' must be a number in \(0, 0.5\]"),
        ({"perturb": ["width"]}, ValueError, r"perturb=\['width'\] must list fields from lr"),
        ({"factors": []}, ValueError, r"factors=\[\] must be a non-empty list of numbers > 0"),
        ({"factors": [0.0]}, ValueError, r"factors=\[0.0\] must be a non-empty list"),
        ({"resample_probability": 2}, ValueError, r"resample_probability=2 must be in \[0, 1\]"),
        ({"bounds": {"width": (1, 2)}}, ValueError, "bounds has 'width', which cannot change"),
        ({"bounds": {"lr": (0.0, 1.0)}}, ValueError, r"bounds\['lr'\]=\(0.0, 1.0\) must be"),
        ({"bounds": {"lr": (0.1, 0.01)}}, ValueError, r"bounds\['lr'\]=\(0.1, 0.01\) must be"),
        ({"fixed": {"lrate": 1}}, ValueError, "unknown hyperparameter"),
        ({"seed": -1}, ValueError, "seed=-1 must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_refused(
    task: Task, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PBT(task, _space, **kwargs)


def test_bad_task_and_space_are_refused(task: Task) -> None:
    with pytest.raises(TypeError, match="task='digits' must be a dltune.torch.Task"):
        PBT("digits", _space)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task.checkpoint_dir=None, but PBT hands weights"):
        PBT(dataclasses.replace(task, checkpoint_dir=None), _space)
    with pytest.raises(TypeError, match="space=3 must be a callable space"):
        PBT(task, 3)
    with pytest.raises(TypeError, match=r"space=\[1, 2\] must be a non-empty list of HParams"):
        PBT(task, [1, 2])
    with pytest.raises(ValueError, match="population=3 but space lists 2 HParams"):
        PBT(task, [GOOD, BAD], population=3)
    with pytest.raises(ValueError, match="fixed=.* applies to a callable space"):
        PBT(task, [GOOD, BAD], fixed={"width": 8})
    with pytest.raises(ValueError, match=r"space\[1\].lr=5.0 is outside \[1e-05, 1.0\]"):
        PBT(task, [GOOD, dataclasses.replace(GOOD, lr=5.0)])


def test_bad_run_arguments_are_refused(task: Task) -> None:
    pbt = PBT(task, [GOOD, BAD], interval=1)
    with pytest.raises(ValueError, match="n_jobs=0 must be an integer >= 1"):
        pbt.run(n_jobs=0)
    with pytest.raises(ValueError, match="timeout=0 must be a number of seconds > 0"):
        pbt.run(timeout=0)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([], "must be a non-empty list of"),
        ([(1, GOOD)], r"schedule\[0\] starts at epoch 1; it must start at 0"),
        ([(0, GOOD), (0, BAD)], r"schedule\[1\] starts at epoch 0; start epochs must be"),
        ([(0, GOOD), (5, BAD)], r"schedule\[1\] starts at epoch 5, not before task.epochs=2"),
        ([(0, GOOD), (1, dataclasses.replace(GOOD, width=8))], r"changes width; only lr"),
        ([(0, "x")], r"schedule\[0\]=\(0, 'x'\) must be a pair"),
        ([{"start": 0}], r"schedule\[0\]=\{'start': 0\} must be a dict with keys"),
    ],
)
def test_bad_schedules_are_refused(task: Task, schedule: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay_schedule(task, schedule)


def test_schedule_from_json_refuses_a_non_list() -> None:
    with pytest.raises(ValueError, match="schedule='x' must be a list of"):
        schedule_from_json("x")
