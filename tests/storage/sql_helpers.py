"""Shared constants and helpers of the SQL storage tests (test_sql*.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from dltune.space import FloatDistribution
from dltune.storage import SQLStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

MIN = StudyDirection.MINIMIZE
#: Liveness settings short enough for tests: a trial goes stale 0.3 s after its last heartbeat.
HEARTBEAT = 0.1
GRACE = 0.3
PAST_GRACE = GRACE + 0.2
#: A revision no dltune has: the stamp of a database written by a future dltune.
FUTURE_REVISION = "9999_from_the_future"

#: Opens a storage on the test's database (keyword options as SQLStorage's).
Opener = Callable[..., SQLStorage]

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def execute_raw(url: str, *statements: str) -> None:
    """Run SQL on the storage's database behind the storage's back, in one transaction."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def template(state: TrialState, values: list[float] | None = None) -> FrozenTrial:
    return FrozenTrial(-1, -1, state, values)


def populate(storage: SQLStorage) -> tuple[int, int]:
    """A study with finished, running and waiting trials; ``(study_id, running trial id)``."""
    study_id = storage.create_new_study([MIN], "populated")
    storage.set_study_attr(study_id, "owner", "me", system=False)
    for value in (3.0, 1.0, 2.0):
        storage.create_new_trial(study_id, template(TrialState.COMPLETE, [value]))
    running = storage.claim_trial(study_id)
    assert running is not None
    storage.set_trial_param(running.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
    storage.create_new_trial(study_id, template(TrialState.WAITING))
    return study_id, running.trial_id


def claim(storage: SQLStorage, study_id: int) -> FrozenTrial:
    trial = storage.claim_trial(study_id)
    assert trial is not None
    return trial


def write_calls(
    storage: SQLStorage, study_id: int, trial_id: int
) -> dict[str, Callable[[], object]]:
    """One call of every write method of the storage."""
    dist = FloatDistribution(0.0, 1.0)
    return {
        "create_new_study": lambda: storage.create_new_study([MIN], "another"),
        "delete_study": lambda: storage.delete_study(study_id),
        "set_study_attr": lambda: storage.set_study_attr(study_id, "k", 1, system=False),
        "claim_trial": lambda: storage.claim_trial(study_id),
        "create_new_trial": lambda: storage.create_new_trial(study_id),
        "create_new_trial(template)": lambda: storage.create_new_trial(
            study_id, template(TrialState.COMPLETE, [0.0])
        ),
        "set_trial_param": lambda: storage.set_trial_param(trial_id, "y", 0.5, dist),
        "set_trial_state_values": lambda: storage.set_trial_state_values(
            trial_id, TrialState.COMPLETE, [1.0]
        ),
        "set_trial_intermediate_value": lambda: storage.set_trial_intermediate_value(
            trial_id, 0, 1.0
        ),
        "set_trial_attr": lambda: storage.set_trial_attr(trial_id, "k", 1, system=True),
        "record_heartbeat": lambda: storage.record_heartbeat(trial_id),
        "fail_stale_trials": lambda: storage.fail_stale_trials(study_id),
    }


def snapshot(storage: SQLStorage) -> list[Any]:
    """Everything the storage's read methods return, to compare two storages' views."""
    out: list[Any] = [storage.get_all_studies()]
    for study in storage.get_all_studies():
        sid = study.study_id
        out += [
            storage.get_study_id_from_name(study.study_name),
            storage.get_study_name_from_id(sid),
            storage.get_study_directions(sid),
            storage.get_study_attrs(sid, system=False),
            storage.get_study_attrs(sid, system=True),
            storage.get_all_trials(sid),
            storage.get_all_trials(sid, (TrialState.RUNNING,)),
            storage.get_n_trials(sid),
            storage.get_n_trials(sid, (TrialState.COMPLETE,)),
            storage.get_best_trial(sid),
        ]
        out += [storage.get_trial(t.trial_id) for t in storage.get_all_trials(sid)]
    return out


def file_state(path: Path) -> tuple[str, int, int]:
    """The content hash, size and modification time of a file."""
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns
