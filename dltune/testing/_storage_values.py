"""Storage conformance: values, reading, the best trial, liveness and concurrency."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dltune.exceptions import TrialNotFoundError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import IntDistribution
from dltune.storage import BaseStorage
from dltune.testing._storage_base import _ANY_FLOAT
from dltune.testing._storage_base import _STORAGE_SETTINGS
from dltune.testing._storage_base import INF
from dltune.testing._storage_base import MAX
from dltune.testing._storage_base import MIN
from dltune.testing._storage_base import StorageChecks
from dltune.testing._storage_base import _same_float
from dltune.testing._storage_base import _template
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["ValueChecks"]


class ValueChecks(StorageChecks):
    """Objective and intermediate values, filters and counts, the best trial, threads."""

    # -- values ------------------------------------------------------------------------------

    @_STORAGE_SETTINGS
    @given(step=st.integers(min_value=0, max_value=2**62), value=_ANY_FLOAT)
    def test_intermediate_value_round_trip(
        self, storage: BaseStorage, study_id: int, step: int, value: float
    ) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_intermediate_value(trial.trial_id, 0, -1.0)
        storage.set_trial_intermediate_value(trial.trial_id, step, value)
        stored = storage.get_trial(trial.trial_id).intermediate_values
        assert set(stored) == {0, step}
        assert _same_float(stored[step], value)

    def test_intermediate_values_special_floats(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        reported = {0: math.nan, 1: INF, 2: -INF, 3: 0.5, 4: 5e-324, 5: 1.7976931348623157e308}
        for step, value in reported.items():
            storage.set_trial_intermediate_value(trial.trial_id, step, value)
        storage.set_trial_intermediate_value(trial.trial_id, 3, 0.25)  # overwrites
        storage.set_trial_state_values(trial.trial_id, TrialState.PRUNED)
        stored = storage.get_trial(trial.trial_id).intermediate_values
        assert sorted(stored) == sorted(reported)
        reported[3] = 0.25
        for step, value in reported.items():
            assert _same_float(stored[step], value), step

    @_STORAGE_SETTINGS
    @given(values=st.lists(st.floats(allow_nan=False), min_size=2, max_size=2))
    def test_values_round_trip(self, storage: BaseStorage, values: list[float]) -> None:
        study_id = storage.create_new_study([MIN, MAX], f"v-{len(storage.get_all_studies())}")
        trial = storage.create_new_trial(study_id)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, values)
        assert storage.get_trial(trial.trial_id).values == values
        assert storage.get_all_trials(study_id)[0].values == values

    @pytest.mark.parametrize("value", [INF, -INF, 0.0, -1e300, 5e-324])
    def test_special_values_round_trip_exactly(
        self, storage: BaseStorage, study_id: int, value: float
    ) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [value])
        stored = storage.get_trial(trial.trial_id)
        assert stored.values == [value]
        assert stored.state == TrialState.COMPLETE

    @pytest.mark.parametrize("values", [[math.nan], [1.0, math.nan]], ids=["nan", "second-nan"])
    def test_nan_value_is_refused(self, storage: BaseStorage, values: list[float]) -> None:
        study_id = storage.create_new_study([MIN] * len(values), "nan")
        trial = storage.create_new_trial(study_id)
        before = self.row_counts(storage)
        with pytest.raises(ValueError, match=r"NaN cannot be stored"):
            storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, values)
        assert self.row_counts(storage) == before
        assert storage.get_trial(trial.trial_id).state == TrialState.RUNNING

    def test_complete_without_values_is_refused(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        before = self.row_counts(storage)
        with pytest.raises(ValueError, match=r"COMPLETE trial needs its values"):
            storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE)
        assert self.row_counts(storage) == before
        assert storage.get_trial(trial.trial_id).state == TrialState.RUNNING

    @pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
    def test_finish_a_finished_trial(
        self, storage: BaseStorage, study_id: int, state: TrialState
    ) -> None:
        trial = storage.create_new_trial(study_id)
        values = [2.0] if state == TrialState.COMPLETE else None
        storage.set_trial_state_values(trial.trial_id, state, values, reason="first")
        finished = storage.get_trial(trial.trial_id)
        assert finished.state == state
        assert finished.reason == "first"
        assert finished.datetime_complete is not None
        assert finished.datetime_start is not None
        assert finished.datetime_start <= finished.datetime_complete
        before = self.row_counts(storage)
        for new_state, new_values in (
            (TrialState.COMPLETE, [1.0]),
            (TrialState.FAIL, None),
            (TrialState.PRUNED, None),
            (TrialState.RUNNING, None),
        ):
            with pytest.raises(UpdateFinishedTrialError, match=rf"already {state.name}"):
                storage.set_trial_state_values(trial.trial_id, new_state, new_values, "again")
        assert self.row_counts(storage) == before
        again = storage.get_trial(trial.trial_id)
        assert (again.state, again.values, again.reason) == (state, values, "first")

    def test_fail_keeps_reason(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        reason = 'ValueError: it\'s "bad" \u2728'
        storage.set_trial_state_values(trial.trial_id, TrialState.FAIL, reason=reason)
        stored = storage.get_trial(trial.trial_id)
        assert (stored.state, stored.values, stored.reason) == (TrialState.FAIL, None, reason)

    # -- reading -----------------------------------------------------------------------------

    def test_get_trial_not_found(self, storage: BaseStorage, study_id: int) -> None:
        storage.create_new_trial(study_id)
        with pytest.raises(TrialNotFoundError, match=r"no trial with id 987654") as info:
            storage.get_trial(987654)
        assert isinstance(info.value, KeyError)

    def test_state_filter_and_counts(self, storage: BaseStorage, study_id: int) -> None:
        states = [
            TrialState.COMPLETE,
            TrialState.WAITING,
            TrialState.FAIL,
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.RUNNING,
        ]
        for state in states:
            values = [1.0] if state == TrialState.COMPLETE else None
            storage.create_new_trial(study_id, _template(state, values))
        assert [t.state for t in storage.get_all_trials(study_id)] == states
        assert [t.number for t in storage.get_all_trials(study_id)] == list(range(6))
        complete = storage.get_all_trials(study_id, (TrialState.COMPLETE,))
        assert [t.number for t in complete] == [0, 3]
        finished = {TrialState.FAIL, TrialState.PRUNED}
        assert [t.number for t in storage.get_all_trials(study_id, finished)] == [2, 4]
        assert storage.get_all_trials(study_id, ()) == []
        assert storage.get_n_trials(study_id) == 6
        assert storage.get_n_trials(study_id, (TrialState.COMPLETE,)) == 2
        assert storage.get_n_trials(study_id, [TrialState.WAITING, TrialState.RUNNING]) == 2
        assert storage.get_n_trials(study_id, ()) == 0

    def test_reads_see_later_changes(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        assert storage.get_all_trials(study_id)[0].state == TrialState.RUNNING
        storage.set_trial_param(trial.trial_id, "x", 1.0, IntDistribution(0, 3))
        storage.set_trial_intermediate_value(trial.trial_id, 0, 0.5)
        assert storage.get_all_trials(study_id)[0].params == {"x": 1}
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [0.5])
        (done,) = storage.get_all_trials(study_id)
        assert (done.state, done.values, done.intermediate_values) == (
            TrialState.COMPLETE,
            [0.5],
            {0: 0.5},
        )
        assert storage.get_n_trials(study_id, (TrialState.COMPLETE,)) == 1

    def test_returned_records_are_copies(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
        got = storage.get_trial(trial.trial_id)
        got.params["x"] = 1
        got.user_attrs["y"] = 2
        assert got.values is not None
        got.values.append(3.0)
        fresh = storage.get_trial(trial.trial_id)
        assert (fresh.params, fresh.user_attrs, fresh.values) == ({}, {}, [1.0])

    @pytest.mark.parametrize(
        ("direction", "values", "best"),
        [
            (MIN, [3.0, 1.0, 2.0, 1.0], 1),
            (MAX, [3.0, 5.0, 2.0, 5.0], 1),
            (MIN, [INF, 3.0, -INF, 2.0, -INF], 2),
            (MAX, [-INF, 3.0, INF, INF], 2),
            (MIN, [INF, INF], 0),
            (MAX, [-INF, -INF], 0),
            (MIN, [INF, 1e308, -1e308], 2),
            (MAX, [-INF, -1e308], 1),
            (MIN, [-0.0, 0.0], 0),
        ],
    )
    def test_best_trial(
        self, storage: BaseStorage, direction: StudyDirection, values: list[float], best: int
    ) -> None:
        study_id = storage.create_new_study([direction], "best")
        assert storage.get_best_trial(study_id) is None
        storage.create_new_trial(study_id, _template(TrialState.FAIL))
        for value in values:
            storage.create_new_trial(study_id, _template(TrialState.PRUNED))
            storage.create_new_trial(study_id, _template(TrialState.COMPLETE, [value]))
        storage.create_new_trial(study_id)  # RUNNING
        found = storage.get_best_trial(study_id)
        assert found is not None
        assert found.state == TrialState.COMPLETE
        assert found.number == 2 + 2 * best
        assert found.values == [values[best]]

    def test_best_trial_follows_new_trials(self, storage: BaseStorage, study_id: int) -> None:
        for value in (2.0, 1.0, 3.0):
            trial = storage.create_new_trial(study_id)
            storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [value])
            best = storage.get_best_trial(study_id)
            assert best is not None
            assert best.values == [min(2.0, value) if value != 3.0 else 1.0]

    def test_best_trial_of_multi_objective_study(self, storage: BaseStorage) -> None:
        study_id = storage.create_new_study([MIN, MAX], "multi")
        storage.create_new_trial(study_id, _template(TrialState.COMPLETE, [1.0, 2.0]))
        with pytest.raises(ValueError, match=r"2 objectives, so no single best trial"):
            storage.get_best_trial(study_id)

    # -- liveness ----------------------------------------------------------------------------

    def test_liveness_hooks(self, storage: BaseStorage, study_id: int) -> None:
        running = storage.create_new_trial(study_id)
        finished = storage.create_new_trial(study_id)
        storage.set_trial_state_values(finished.trial_id, TrialState.COMPLETE, [1.0])
        before = self.row_counts(storage)
        storage.record_heartbeat(running.trial_id)
        storage.record_heartbeat(finished.trial_id)  # a no-op once finished
        assert storage.fail_stale_trials(study_id) == []  # both beat just now
        assert self.row_counts(storage) == before
        assert storage.get_trial(running.trial_id).state == TrialState.RUNNING
        assert storage.get_trial(finished.trial_id).values == [1.0]

    # -- concurrency -------------------------------------------------------------------------

    def test_threads_claim_unique_numbers(self, storage: BaseStorage, study_id: int) -> None:
        barrier = threading.Barrier(8)

        def claim_25() -> list[int]:
            barrier.wait()
            numbers = []
            for _ in range(25):
                trial = storage.claim_trial(study_id)
                assert trial is not None
                numbers.append(trial.number)
            return numbers

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(claim_25) for _ in range(8)]
            numbers = [n for f in futures for n in f.result()]
        assert sorted(numbers) == list(range(200))
        assert [t.number for t in storage.get_all_trials(study_id)] == list(range(200))

    def test_threads_do_not_overshoot_the_budget(
        self, storage: BaseStorage, study_id: int
    ) -> None:
        for _ in range(5):
            storage.create_new_trial(study_id, _template(TrialState.WAITING))
        barrier = threading.Barrier(8)

        def claim_until_spent() -> int:
            barrier.wait()
            n = 0
            while storage.claim_trial(study_id, max_trials=30) is not None:
                n += 1
            return n

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(claim_until_spent) for _ in range(8)]
            claimed = sum(f.result() for f in futures)
        assert claimed == 30
        trials = storage.get_all_trials(study_id)
        assert [t.number for t in trials] == list(range(30))
        assert all(t.state == TrialState.RUNNING for t in trials)
