"""The SQL storage's paths for large studies give the same records as the plain ones.

Finished trials are read from one snapshot row each (``_sql_snapshots``), unfinished ones from
their child rows, 500 at a time; the best trial comes from an index; the trial budget and the
trial count from a few index lookups; each process keeps finished trials in number order.
Every test compares these against a path that cannot share their bugs: the child rows read with
the snapshots deleted, the in-memory storage, or plain Python over the trials.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from sql_helpers import MIN
from sql_helpers import Opener
from sql_helpers import execute_raw
from sqlalchemy import create_engine
from sqlalchemy import text

from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.storage import InMemoryStorage
from dltune.storage import SQLStorage
from dltune.storage import upgrade_storage
from dltune.storage._base import BaseStorage
from dltune.storage._sql_cache import MAX_RECHECK
from dltune.storage._sql_load import CHUNK
from dltune.storage._sql_schema import run_upgrade
from dltune.storage._sql_snapshots import SNAPSHOT_COLUMNS
from dltune.storage._sql_snapshots import pack
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

MAX = StudyDirection.MAXIMIZE
INF = math.inf
NAN = math.nan
DISTS: dict[str, BaseDistribution] = {
    "choice": CategoricalDistribution((None, True, 2, 2.5, "adam")),
    "flag": CategoricalDistribution((False, True)),
    "lr": FloatDistribution(1e-5, 1.0, log=True),
    "grid": FloatDistribution(0.0, 1.0, step=0.25),
    "layers": IntDistribution(1, 64, log=True),
    "width": IntDistribution(16, 256, step=16),
}


def canon(value: Any) -> Any:
    """A value compared exactly: floats by repr (NaN equals NaN, -0.0 differs from 0.0), dicts
    with their order."""
    if isinstance(value, FrozenTrial):
        return canon([getattr(value, name) for name in value.__dataclass_fields__])
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dict):
        return [("dict", canon(k), canon(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    return (type(value).__name__, value)


def fresh_read(url: str, study_id: int) -> list[Any]:
    """The study's trials as a new process would read them."""
    storage = SQLStorage(url)
    try:
        return [canon(t) for t in storage.get_all_trials(study_id)]
    finally:
        storage.close()


def rows_read(url: str, study_id: int) -> list[Any]:
    """The same, from the child rows alone (snapshots deleted)."""
    execute_raw(url, "DELETE FROM trial_snapshots")
    return fresh_read(url, study_id)


def finished(
    state: TrialState,
    values: list[float] | None = None,
    params: dict[str, Any] | None = None,
    steps: dict[int, float] | None = None,
    user: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
) -> FrozenTrial:
    params = params or {}
    return FrozenTrial(
        -1,
        -1,
        state,
        values,
        params,
        {name: DISTS[name] for name in params},
        steps or {},
        user or {},
        system or {},
    )


def assorted(storage: BaseStorage, study_id: int) -> None:
    """Trials of every kind through the API, finished and not, in odd orders."""
    everything = {"choice": None, "flag": False, "lr": 3e-4, "grid": 0.75, "layers": 5}
    storage.create_new_trial(
        study_id,
        finished(
            TrialState.COMPLETE,
            [0.1 + 0.2],
            {**everything, "width": 64},
            {9: NAN, 0: INF, 4: -INF, 2: -0.0, 7: 5e-324, 3: 1.7976931348623157e308},
            {"nested": {"a": [1, 2.5, None]}, "z": "last", "a": "first"},
            {"worker": "host:1", "reason": "why \u2728"},
        ),
    )
    storage.create_new_trial(study_id, finished(TrialState.FAIL))  # no children at all
    storage.create_new_trial(study_id, finished(TrialState.PRUNED, steps={5: 1.0, 1: 2.0}))
    for choice in ("adam", 2, 2.5, True):
        storage.create_new_trial(
            study_id, finished(TrialState.COMPLETE, [-0.0], {"choice": choice, "flag": True})
        )
    running = storage.claim_trial(study_id, worker="host:2")
    assert running is not None
    for name, value in (("width", 32.0), ("lr", 0.5), ("choice", 4.0)):
        storage.set_trial_param(running.trial_id, name, value, DISTS[name])
    for step in (3, 1, 2):
        storage.set_trial_intermediate_value(running.trial_id, step, float(step))
    # a distribution other than the registered one (compatible: another range)
    wide = storage.claim_trial(study_id)
    assert wide is not None
    storage.set_trial_param(wide.trial_id, "layers", 100.0, IntDistribution(1, 128, log=True))
    storage.set_trial_param(wide.trial_id, "lr", 0.5, DISTS["lr"])
    storage.set_trial_state_values(wide.trial_id, TrialState.COMPLETE, [INF])
    storage.create_new_trial(study_id, finished(TrialState.WAITING, system={"fixed": 1}))
    retry = finished(TrialState.COMPLETE, [1.0, -INF], system={"retry_of": 1})
    storage.create_new_trial(study_id, retry)


def test_snapshots_read_as_the_child_rows_do(url: str, open_storage: Opener) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "assorted")
    assorted(storage, study_id)
    written = [canon(t) for t in storage.get_all_trials(study_id)]
    snapshots = fresh_read(url, study_id)
    assert snapshots == written
    assert rows_read(url, study_id) == written
    trials = storage.get_all_trials(study_id)
    assert list(trials[0].params) == sorted(trials[0].params)
    assert list(trials[0].intermediate_values) == [0, 2, 3, 4, 7, 9]
    assert list(trials[0].user_attrs) == ["a", "nested", "z"]
    assert list(trials[2].intermediate_values) == [1, 5]  # reported out of order
    assert trials[8].distributions["layers"] == IntDistribution(1, 128, log=True)
    assert trials[8].params == {"layers": 100, "lr": 0.5}
    assert list(trials[7].intermediate_values) == [1, 2, 3]  # running: from the child rows
    assert trials[10].system_attrs == {"retry_of": 1}
    assert trials[10].values == [1.0, -INF]


def test_a_snapshot_of_an_unknown_format_is_read_from_the_child_rows(
    url: str, open_storage: Opener
) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "format")
    assorted(storage, study_id)
    written = fresh_read(url, study_id)
    # a snapshot written by a later dltune is passed over
    first = "WHERE trial_id = (SELECT MIN(trial_id) FROM trial_snapshots)"
    execute_raw(url, f"UPDATE trial_snapshots SET format = 99, step_values = NULL {first}")
    assert fresh_read(url, study_id) == written


@pytest.mark.parametrize(
    "damage",
    ["step_values = NULL", "param_names = '[\"nowhere\"]'", "system_attrs = '[]'"],
    ids=["no values of the steps", "an unregistered name", "attributes not an object"],
)
def test_a_damaged_snapshot_is_read_from_the_child_rows(
    damage: str, url: str, open_storage: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "damaged")
    assorted(storage, study_id)
    written = fresh_read(url, study_id)
    first = "WHERE trial_id = (SELECT MIN(trial_id) FROM trial_snapshots)"
    execute_raw(url, f"UPDATE trial_snapshots SET {damage} {first}")
    assert fresh_read(url, study_id) == written
    assert "trial 0: unreadable snapshot" in caplog.text


def test_the_snapshot_is_written_with_the_finish(url: str, open_storage: Opener) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "finish")
    trial = storage.claim_trial(study_id)
    assert trial is not None
    storage.set_trial_param(trial.trial_id, "lr", 0.01, DISTS["lr"])
    storage.set_trial_intermediate_value(trial.trial_id, 0, NAN)
    counted = "SELECT COUNT(*) FROM trial_snapshots"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(counted)).scalar() == 0
        storage.set_trial_state_values(trial.trial_id, TrialState.PRUNED, reason="slow")
        with engine.connect() as conn:
            assert conn.execute(text(counted)).scalar() == 1
            row = conn.execute(text("SELECT * FROM trial_snapshots")).one()
    finally:
        engine.dispose()
    expected = pack([], [("lr", 0.01, _LR)], [(0, None, 2)], [(True, "reason", '"slow"')], {})
    assert expected["param_distributions"] is not None  # a distribution of its own
    expected = pack(
        [], [("lr", 0.01, _LR)], [(0, None, 2)], [(True, "reason", '"slow"')], {"lr": _LR}
    )
    assert dict(zip(SNAPSHOT_COLUMNS, row[1:], strict=True)) == expected
    again = storage.get_trial(trial.trial_id)
    assert again.reason == "slow" and math.isnan(again.intermediate_values[0])


def test_many_unfinished_trials_are_read_in_chunks(url: str, open_storage: Opener) -> None:
    """More running trials than one IN chunk and than a refresh rechecks one by one."""
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "chunks")
    n = 2 * CHUNK + 1
    assert n > MAX_RECHECK
    for i in range(n):
        template = finished(TrialState.RUNNING, params={"lr": 10.0 ** (-1 - i % 4)})
        template.intermediate_values = {i % 3: float(i)}
        storage.create_new_trial(study_id, template)
    first = storage.get_all_trials(study_id)
    assert [t.number for t in first] == list(range(n))
    assert all(t.intermediate_values == {i % 3: float(i)} for i, t in enumerate(first))
    # finish some across the watermark, out of order, then read again here and afresh
    for number in (n - 1, 7, 0, 1, CHUNK, 2):
        storage.set_trial_state_values(first[number].trial_id, TrialState.COMPLETE, [1.0])
    again = [canon(t) for t in storage.get_all_trials(study_id)]
    assert again == fresh_read(url, study_id)
    states = [t.state for t in storage.get_all_trials(study_id)]
    assert states.count(TrialState.COMPLETE) == 6 and states[3] == TrialState.RUNNING
    assert again == rows_read(url, study_id)


def test_trials_by_state_keep_number_order(open_storage: Opener) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "states")
    for state in [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL] * 3:
        storage.create_new_trial(
            study_id, finished(state, [1.0] if state.name == "COMPLETE" else None)
        )
    claimed = storage.claim_trial(study_id)
    assert claimed is not None
    storage.create_new_trial(study_id, finished(TrialState.WAITING))
    storage.set_trial_state_values(claimed.trial_id, TrialState.FAIL)  # above the watermark
    everything = storage.get_all_trials(study_id)
    for states in (
        (TrialState.COMPLETE,),
        (TrialState.FAIL,),
        [TrialState.WAITING],
        {TrialState.COMPLETE, TrialState.PRUNED},
        tuple(TrialState),
        (),
    ):
        got = [t.number for t in storage.get_all_trials(study_id, states)]
        assert got == [t.number for t in everything if t.state in states], states
    assert storage.get_n_trials(study_id) == len(everything) == 11


# -- the best trial ----------------------------------------------------------------------------


BEST_CASES = {
    "ties go to the earliest": ([3.0, 1.0, 2.0, 1.0], MIN),
    "-inf is the best minimum": ([1.0, -INF, -5.0, -INF], MIN),
    "+inf is the best maximum": ([1.0, INF, 5.0, INF], MAX),
    "+inf is the worst minimum": ([INF, 2.0], MIN),
    "-inf is the worst maximum": ([-INF, -2.0], MAX),
    "only infinities": ([INF, INF], MIN),
    "zero ties with minus zero": ([1.0, 0.0, -0.0], MIN),
    "minus zero ties with zero": ([1.0, -0.0, 0.0], MAX),
    "maximize ties": ([-1.0, 7.5, 7.5], MAX),
    "negative values": ([-1e300, -1e-300, -5e-324], MAX),
}


@pytest.mark.parametrize("values, direction", BEST_CASES.values(), ids=BEST_CASES.keys())
def test_best_trial_matches_the_memory_storage(
    values: list[float], direction: StudyDirection, open_storage: Opener
) -> None:
    stores: list[BaseStorage] = [open_storage(), InMemoryStorage()]
    best = []
    for storage in stores:
        study_id = storage.create_new_study([direction], "best")
        other = storage.create_new_study([direction], "other")  # better values elsewhere
        for value in (-INF, INF, -1e308, 1e308):
            storage.create_new_trial(other, finished(TrialState.COMPLETE, [value]))
        storage.create_new_trial(study_id, finished(TrialState.FAIL, steps={0: NAN}))
        for value in values:
            storage.create_new_trial(study_id, finished(TrialState.COMPLETE, [value]))
        # a better value on a trial that is not COMPLETE does not count
        pruned = storage.claim_trial(study_id)
        assert pruned is not None
        better = -INF if direction == MIN else INF
        storage.set_trial_state_values(pruned.trial_id, TrialState.PRUNED, [better])
        found = storage.get_best_trial(study_id)
        assert found is not None
        best.append((found.number, canon(found.values)))
    assert best[0] == best[1]


def test_best_trial_of_a_study_without_complete_trials(open_storage: Opener) -> None:
    storage = open_storage()
    study_id = storage.create_new_study([MIN], "none")
    assert storage.get_best_trial(study_id) is None
    storage.create_new_trial(study_id, finished(TrialState.FAIL))
    assert storage.get_best_trial(study_id) is None
    multi = storage.create_new_study([MIN, MAX], "multi")
    with pytest.raises(ValueError, match=r"the study has 2 objectives, so no single best trial"):
        storage.get_best_trial(multi)


# -- the budget and the count ------------------------------------------------------------------


def test_budget_counts_neither_waiting_trials_nor_retries(open_storage: Opener) -> None:
    storage = open_storage(max_retries=1)
    study_id = storage.create_new_study([MIN], "budget")
    storage.create_new_trial(study_id, finished(TrialState.COMPLETE, [1.0]))
    storage.create_new_trial(study_id, finished(TrialState.WAITING))  # enqueued: not yet
    storage.create_new_trial(study_id, finished(TrialState.WAITING, system={"retry_of": 0}))
    storage.create_new_trial(study_id, finished(TrialState.FAIL, system={"retry_of": 0}))
    assert storage.get_n_trials(study_id) == 4
    # counted: trial 0 only; a retry is claimed whatever the budget
    retry = storage.claim_trial(study_id, max_trials=1)
    assert retry is not None and retry.number == 2
    assert storage.claim_trial(study_id, max_trials=1) is None
    enqueued = storage.claim_trial(study_id, max_trials=2)
    assert enqueued is not None and enqueued.number == 1
    assert storage.claim_trial(study_id, max_trials=2) is None
    fresh = storage.claim_trial(study_id, max_trials=3)
    assert fresh is not None and fresh.number == 4
    assert storage.claim_trial(study_id, max_trials=3) is None
    assert storage.get_n_trials(study_id) == 5
    assert storage.get_n_trials(study_id, (TrialState.WAITING,)) == 0


# -- upgrading a populated revision 0001 database ----------------------------------------------


def _populate_0001(url: str) -> None:
    """A revision 0001 database with two studies, as dltune 0001 would have written them."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run_upgrade(conn, "0001")
            for statement in _ROWS_0001:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


_LR = '{"kind":"float","low":1e-05,"high":1.0,"log":true,"step":null}'
_WIDE = '{"kind":"float","low":1e-06,"high":1.0,"log":true,"step":null}'
_OPT = '{"kind":"categorical","choices":["sgd","adam"]}'
_ROWS_0001 = [
    "INSERT INTO studies VALUES (1, 'a', '[\"MINIMIZE\"]', 0.0), (2, 'b', '[\"MAXIMIZE\"]', 0.0)",
    f"INSERT INTO study_params VALUES (1, 'lr', '{_LR}'), (1, 'opt', '{_OPT}')",
    "INSERT INTO trials (trial_id, study_id, number, state, datetime_start, datetime_complete,"
    " retry_of) VALUES (1, 1, 0, 'COMPLETE', 1.5, 2.5, NULL), (2, 1, 1, 'FAIL', 3.0, 4.0, 0),"
    " (3, 2, 0, 'COMPLETE', 1.0, 2.0, NULL), (4, 1, 2, 'RUNNING', 5.0, NULL, NULL),"
    " (5, 1, 3, 'COMPLETE', 6.0, 7.0, NULL), (6, 2, 1, 'COMPLETE', 1.0, 2.0, NULL)",
    f"INSERT INTO trial_params VALUES (1, 'lr', 0.001, '{_LR}'), (1, 'opt', 1.0, '{_OPT}'),"
    f" (2, 'lr', 0.5, '{_WIDE}'), (4, 'opt', 0.0, '{_OPT}')",
    "INSERT INTO trial_values VALUES (1, 0, 0.25, 0), (3, 0, NULL, 1), (5, 0, 0.0, 3),"
    " (6, 0, 9.0, 0)",
    "INSERT INTO trial_intermediate_values VALUES (1, 2, 0.5, 0), (1, 0, NULL, 2),"
    " (1, 1, NULL, -1), (4, 0, 1.0, 0)",
    "INSERT INTO trial_attrs VALUES (1, false, 'note', '[1, 2]'), (1, true, 'worker', '\"h:1\"'),"
    " (2, true, 'reason', '\"stale\"')",
]


def test_upgrade_from_0001_fills_the_new_columns_and_snapshots(url: str) -> None:
    _populate_0001(url)
    assert upgrade_storage(url) == ("0001", "0002")
    storage = SQLStorage(url)
    try:
        trials = storage.get_all_trials(1)
        assert [t.state for t in trials] == [
            TrialState.COMPLETE,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.COMPLETE,
        ]
        first = trials[0]
        assert first.params == {"lr": 0.001, "opt": "adam"}
        assert canon(first.intermediate_values) == canon({0: NAN, 1: -INF, 2: 0.5})
        assert first.user_attrs == {"note": [1, 2]} and first.system_attrs == {"worker": "h:1"}
        assert trials[1].system_attrs == {"retry_of": 0, "reason": "stale"}
        assert trials[1].distributions["lr"] == FloatDistribution(1e-6, 1.0, log=True)
        assert canon(trials[3].values) == canon([-0.0])
        best = storage.get_best_trial(1)
        assert best is not None and best.number == 3  # -0.0 < 0.25
        best = storage.get_best_trial(2)
        assert best is not None and best.number == 0  # +inf is the best maximum
        assert storage.get_trial(3).values == [INF]
        assert storage.get_n_trials(1) == 4
    finally:
        storage.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT trial_id, study_id FROM trial_values")).all()
            snapshots = conn.execute(text("SELECT * FROM trial_snapshots ORDER BY 1")).all()
    finally:
        engine.dispose()
    assert sorted(ids) == [(1, 1), (3, 2), (5, 1), (6, 2)]
    assert [row[0] for row in snapshots] == [1, 2, 3, 5, 6]  # the finished ones
    # what the migration packed is what this dltune packs from the same rows
    expected = pack(
        [(0, 0.25, 0)],
        [("lr", 0.001, _LR), ("opt", 1.0, _OPT)],
        [(2, 0.5, 0), (0, None, 2), (1, None, -1)],
        [(False, "note", "[1, 2]"), (True, "worker", '"h:1"')],
        {"lr": _LR, "opt": _OPT},
    )
    assert dict(zip(SNAPSHOT_COLUMNS, snapshots[0][1:], strict=True)) == expected
    assert rows_read(url, 1) == [canon(t) for t in trials]


def test_the_head_revision_constant_is_alembics_head() -> None:
    from dltune.storage import _sql_schema

    assert _sql_schema.MIGRATIONS_DIR == _sql_schema._SHIPPED_MIGRATIONS
    assert _sql_schema.head_revision() == _sql_schema._script().get_current_head() == "0002"
