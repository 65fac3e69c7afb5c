"""Storage conformance: creating and claiming trials, and their parameters."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.storage import BaseStorage
from dltune.storage._base import RETRY_OF_KEY
from dltune.testing._storage_base import MIN
from dltune.testing._storage_base import StorageChecks
from dltune.testing._storage_base import _template
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

__all__ = ["TrialChecks"]


class TrialChecks(StorageChecks):
    """Trial numbers, templates, the claim and its budget, parameters and their distributions."""

    # -- creating and claiming trials --------------------------------------------------------

    def test_numbers_are_0_to_n_minus_1_per_study(self, storage: BaseStorage) -> None:
        a = storage.create_new_study([MIN], "a")
        b = storage.create_new_study([MIN], "b")
        made: list[FrozenTrial | None] = []
        for i in range(6):
            made.append(storage.create_new_trial(a) if i % 2 else storage.claim_trial(a))
            made.append(storage.claim_trial(b) if i % 2 else storage.create_new_trial(b))
        assert all(t is not None for t in made)
        numbers = {sid: [t.number for t in storage.get_all_trials(sid)] for sid in (a, b)}
        assert numbers == {a: list(range(6)), b: list(range(6))}
        ids = [t.trial_id for t in made if t is not None]
        assert len(set(ids)) == len(ids)
        for trial in made:
            assert trial is not None
            assert trial.state == TrialState.RUNNING
            assert trial.datetime_start is not None
            assert trial.datetime_complete is None
            assert trial.values is None
            assert storage.get_trial(trial.trial_id).number == trial.number

    def test_create_trial_from_templates(self, storage: BaseStorage, study_id: int) -> None:
        dist = FloatDistribution(0.0, 1.0)
        waiting = storage.create_new_trial(
            study_id,
            _template(TrialState.WAITING, user_attrs={"u": 1}, system_attrs={"fixed": {"x": 1}}),
        )
        done = storage.create_new_trial(
            study_id,
            FrozenTrial(
                number=42,
                trial_id=42,
                state=TrialState.COMPLETE,
                values=[0.25],
                params={"x": 0.5},
                distributions={"x": dist},
                intermediate_values={0: 1.0, 3: 0.5},
                user_attrs={"note": "baseline"},
            ),
        )
        pruned = storage.create_new_trial(study_id, _template(TrialState.PRUNED))
        assert [waiting.number, done.number, pruned.number] == [0, 1, 2]
        w = storage.get_trial(waiting.trial_id)
        assert w.state == TrialState.WAITING
        assert w.datetime_start is None
        assert w.user_attrs == {"u": 1}
        assert w.system_attrs["fixed"] == {"x": 1}
        d = storage.get_trial(done.trial_id)
        assert (d.number, d.state, d.values) == (1, TrialState.COMPLETE, [0.25])
        assert d.trial_id != 42
        assert d.params == {"x": 0.5}
        assert d.distributions == {"x": dist}
        assert d.intermediate_values == {0: 1.0, 3: 0.5}
        assert d.user_attrs == {"note": "baseline"}
        assert storage.get_trial(pruned.trial_id).state == TrialState.PRUNED

    def test_template_with_nan_value_is_refused(self, storage: BaseStorage, study_id: int) -> None:
        before = self.row_counts(storage)
        with pytest.raises(ValueError, match=r"NaN cannot be stored"):
            storage.create_new_trial(study_id, _template(TrialState.COMPLETE, [math.nan]))
        assert self.row_counts(storage) == before

    def test_template_with_incompatible_param_is_refused(
        self, storage: BaseStorage, study_id: int
    ) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_param(trial.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        before = self.row_counts(storage)
        template = _template(
            TrialState.COMPLETE,
            [1.0],
            params={"x": 1, "y": 2},
            distributions={"x": IntDistribution(0, 3), "y": IntDistribution(0, 3)},
        )
        with pytest.raises(ValueError, match=r"parameter 'x' was already defined"):
            storage.create_new_trial(study_id, template)
        assert self.row_counts(storage) == before
        # 'y' was not registered by the refused template: any distribution is fine for it.
        other = storage.create_new_trial(study_id)
        storage.set_trial_param(other.trial_id, "y", 0.0, CategoricalDistribution(("a",)))

    def test_claim_new_trial(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.claim_trial(study_id, worker="host:1")
        assert trial is not None
        assert (trial.number, trial.state) == (0, TrialState.RUNNING)
        assert trial.datetime_start is not None
        stored = storage.get_trial(trial.trial_id)
        assert stored.state == TrialState.RUNNING
        assert stored.datetime_start is not None

    def test_claim_oldest_waiting_first(self, storage: BaseStorage, study_id: int) -> None:
        w0 = storage.create_new_trial(study_id, _template(TrialState.WAITING))
        w1 = storage.create_new_trial(study_id, _template(TrialState.WAITING))
        storage.create_new_trial(study_id)  # number 2, RUNNING
        claimed = [storage.claim_trial(study_id) for _ in range(3)]
        assert [c.number if c else None for c in claimed] == [0, 1, 3]
        assert [c.trial_id if c else None for c in claimed[:2]] == [w0.trial_id, w1.trial_id]
        for c in claimed:
            assert c is not None
            assert c.state == TrialState.RUNNING
            assert c.datetime_start is not None
            assert storage.get_trial(c.trial_id).state == TrialState.RUNNING

    def test_claim_waiting_keeps_its_attrs(self, storage: BaseStorage, study_id: int) -> None:
        template = _template(
            TrialState.WAITING, user_attrs={"u": "x"}, system_attrs={"fixed_params": {"a": 1}}
        )
        storage.create_new_trial(study_id, template)
        claimed = storage.claim_trial(study_id)
        assert claimed is not None
        assert claimed.user_attrs == {"u": "x"}
        assert claimed.system_attrs["fixed_params"] == {"a": 1}

    def test_claim_retry_before_older_waiting(self, storage: BaseStorage, study_id: int) -> None:
        first = storage.claim_trial(study_id)
        assert first is not None
        storage.set_trial_state_values(first.trial_id, TrialState.FAIL, reason="stale")
        storage.create_new_trial(study_id, _template(TrialState.WAITING))  # number 1
        retry = storage.create_new_trial(
            study_id, _template(TrialState.WAITING, system_attrs={RETRY_OF_KEY: first.number})
        )
        claimed = storage.claim_trial(study_id)
        assert claimed is not None
        assert (claimed.number, claimed.trial_id) == (2, retry.trial_id)
        assert claimed.system_attrs[RETRY_OF_KEY] == first.number
        after = storage.claim_trial(study_id)
        assert after is not None
        assert after.number == 1

    def test_claim_retry_whatever_the_budget(self, storage: BaseStorage, study_id: int) -> None:
        first = storage.claim_trial(study_id, max_trials=1)
        assert first is not None
        storage.set_trial_state_values(first.trial_id, TrialState.FAIL, reason="stale")
        assert storage.claim_trial(study_id, max_trials=1) is None
        storage.create_new_trial(
            study_id, _template(TrialState.WAITING, system_attrs={RETRY_OF_KEY: first.number})
        )
        retry = storage.claim_trial(study_id, max_trials=1)
        assert retry is not None
        assert retry.number == 1
        assert storage.claim_trial(study_id, max_trials=1) is None
        assert storage.get_n_trials(study_id) == 2

    def test_claim_budget_does_not_count_retries(
        self, storage: BaseStorage, study_id: int
    ) -> None:
        first = storage.claim_trial(study_id, max_trials=2)
        assert first is not None
        storage.set_trial_state_values(first.trial_id, TrialState.FAIL, reason="stale")
        storage.create_new_trial(
            study_id, _template(TrialState.WAITING, system_attrs={RETRY_OF_KEY: first.number})
        )
        retry = storage.claim_trial(study_id, max_trials=2)
        assert retry is not None
        assert retry.number == 1
        # Two trials outside WAITING, but one is a retry: one budget slot is left.
        second = storage.claim_trial(study_id, max_trials=2)
        assert second is not None
        assert second.number == 2
        assert storage.claim_trial(study_id, max_trials=2) is None
        assert storage.get_n_trials(study_id) == 3

    def test_claim_budget_counts_every_started_state(
        self, storage: BaseStorage, study_id: int
    ) -> None:
        storage.create_new_trial(study_id)  # RUNNING
        storage.create_new_trial(study_id, _template(TrialState.COMPLETE, [1.0]))
        storage.create_new_trial(study_id, _template(TrialState.PRUNED))
        storage.create_new_trial(study_id, _template(TrialState.FAIL))
        before = self.row_counts(storage)
        assert storage.claim_trial(study_id, max_trials=4) is None
        assert self.row_counts(storage) == before
        claimed = storage.claim_trial(study_id, max_trials=5)
        assert claimed is not None
        assert claimed.number == 4
        assert storage.claim_trial(study_id, max_trials=5) is None

    def test_claim_budget_ignores_waiting(self, storage: BaseStorage, study_id: int) -> None:
        for _ in range(3):
            storage.create_new_trial(study_id, _template(TrialState.WAITING))
        claimed = [storage.claim_trial(study_id, max_trials=2) for _ in range(3)]
        assert [c.number if c else None for c in claimed] == [0, 1, None]
        states = [t.state for t in storage.get_all_trials(study_id)]
        assert states == [TrialState.RUNNING, TrialState.RUNNING, TrialState.WAITING]

    def test_claim_with_zero_budget(self, storage: BaseStorage, study_id: int) -> None:
        before = self.row_counts(storage)
        assert storage.claim_trial(study_id, max_trials=0) is None
        assert self.row_counts(storage) == before

    def test_start_waiting_trial(self, storage: BaseStorage, study_id: int) -> None:
        waiting = storage.create_new_trial(study_id, _template(TrialState.WAITING))
        storage.set_trial_state_values(waiting.trial_id, TrialState.RUNNING)
        started = storage.get_trial(waiting.trial_id)
        assert started.state == TrialState.RUNNING
        assert started.datetime_start is not None

    # -- parameters --------------------------------------------------------------------------

    def test_param_round_trip(self, storage: BaseStorage, study_id: int) -> None:
        cases: list[tuple[str, float, BaseDistribution, Any]] = [
            ("f", 0.125, FloatDistribution(-1.0, 1.0), 0.125),
            ("flog", 1e-4, FloatDistribution(1e-5, 1.0, log=True), 1e-4),
            ("fstep", 0.3, FloatDistribution(0.0, 1.0, step=0.1), 0.3),
            ("i", -3.0, IntDistribution(-5, 5), -3),
            ("ilog", 64.0, IntDistribution(1, 1024, log=True), 64),
            ("istep", 15.0, IntDistribution(0, 100, step=5), 15),
            ("none", 0.0, CategoricalDistribution((None, True, 1, 1.5, "a")), None),
            ("true", 1.0, CategoricalDistribution((None, True, 1, 1.5, "a")), True),
            ("one", 2.0, CategoricalDistribution((None, True, 1, 1.5, "a")), 1),
            ("float", 3.0, CategoricalDistribution((None, True, 1, 1.5, "a")), 1.5),
            ("str", 4.0, CategoricalDistribution((None, True, 1, 1.5, "a")), "a"),
            ("false", 0.0, CategoricalDistribution((False, 0)), False),
            ("zero", 1.0, CategoricalDistribution((False, 0)), 0),
        ]
        trial = storage.create_new_trial(study_id)
        for name, internal, dist, _ in cases:
            storage.set_trial_param(trial.trial_id, name, internal, dist)
        for stored in (storage.get_trial(trial.trial_id), storage.get_all_trials(study_id)[0]):
            for name, _, dist, external in cases:
                assert stored.params[name] == external
                assert type(stored.params[name]) is type(external), name
                assert stored.distributions[name] == dist

    def test_incompatible_param_is_refused(self, storage: BaseStorage, study_id: int) -> None:
        first = storage.create_new_trial(study_id)
        storage.set_trial_param(first.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        storage.set_trial_param(first.trial_id, "c", 0.0, CategoricalDistribution(("a", "b")))
        second = storage.create_new_trial(study_id)
        before = self.row_counts(storage)
        refused: list[BaseDistribution] = [
            IntDistribution(0, 1),
            FloatDistribution(0.1, 1.0, log=True),
            CategoricalDistribution((0.5,)),
        ]
        for dist in refused:
            with pytest.raises(ValueError, match=r"parameter 'x' was already defined"):
                storage.set_trial_param(second.trial_id, "x", 0.5, dist)
            with pytest.raises(ValueError, match=r"parameter 'x' was already defined"):
                storage.set_trial_param(first.trial_id, "x", 0.5, dist)
        with pytest.raises(ValueError, match=r"parameter 'c' was already defined"):
            storage.set_trial_param(second.trial_id, "c", 0.0, CategoricalDistribution(("a",)))
        assert self.row_counts(storage) == before
        assert storage.get_trial(second.trial_id).params == {}
        assert storage.get_trial(first.trial_id).params == {"x": 0.5, "c": "a"}

    def test_compatible_param_changes_are_accepted(
        self, storage: BaseStorage, study_id: int
    ) -> None:
        first = storage.create_new_trial(study_id)
        storage.set_trial_param(first.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        second = storage.create_new_trial(study_id)
        wider = FloatDistribution(-5.0, 5.0, step=0.5)
        storage.set_trial_param(second.trial_id, "x", -4.5, wider)
        assert storage.get_trial(second.trial_id).params == {"x": -4.5}
        assert storage.get_trial(second.trial_id).distributions == {"x": wider}
        third = storage.create_new_trial(study_id)
        with pytest.raises(ValueError, match=r"parameter 'x' was already defined"):
            storage.set_trial_param(third.trial_id, "x", 1.0, FloatDistribution(1, 2, log=True))

    def test_param_names_are_per_study(self, storage: BaseStorage) -> None:
        a = storage.create_new_study([MIN], "a")
        b = storage.create_new_study([MIN], "b")
        ta, tb = storage.create_new_trial(a), storage.create_new_trial(b)
        storage.set_trial_param(ta.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        storage.set_trial_param(tb.trial_id, "x", 1.0, CategoricalDistribution(("p", "q")))
        assert storage.get_trial(tb.trial_id).params == {"x": "q"}

    def test_param_of_finished_trial_is_refused(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
        before = self.row_counts(storage)
        with pytest.raises(UpdateFinishedTrialError, match=r"already COMPLETE"):
            storage.set_trial_param(trial.trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
        assert self.row_counts(storage) == before
