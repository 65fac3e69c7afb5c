"""Storage conformance: studies and attributes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given

from dltune.exceptions import DuplicatedStudyError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialNotFoundError
from dltune.storage import BaseStorage
from dltune.testing._storage_base import _JSON
from dltune.testing._storage_base import _KEYS
from dltune.testing._storage_base import _STORAGE_SETTINGS
from dltune.testing._storage_base import MAX
from dltune.testing._storage_base import MIN
from dltune.testing._storage_base import VERBATIM_NAMES
from dltune.testing._storage_base import StorageChecks
from dltune.trial import TrialState

__all__ = ["StudyChecks"]


class StudyChecks(StorageChecks):
    """Creating, finding, listing and deleting studies; study and trial attributes."""

    # -- studies -----------------------------------------------------------------------------

    def test_create_and_look_up_study(self, storage: BaseStorage) -> None:
        first = storage.create_new_study([MIN], "first")
        second = storage.create_new_study([MAX, MIN], "second")
        assert first != second
        assert storage.get_study_id_from_name("first") == first
        assert storage.get_study_id_from_name("second") == second
        assert storage.get_study_name_from_id(second) == "second"
        assert storage.get_study_directions(first) == [MIN]
        assert storage.get_study_directions(second) == [MAX, MIN]
        assert storage.get_all_trials(first) == []
        assert storage.get_n_trials(first) == 0

    def test_duplicate_study_is_refused(self, storage: BaseStorage) -> None:
        study_id = storage.create_new_study([MIN], "dup")
        before = self.row_counts(storage)
        with pytest.raises(DuplicatedStudyError, match=r"'dup' already exists"):
            storage.create_new_study([MAX], "dup")
        assert self.row_counts(storage) == before
        assert storage.get_study_directions(study_id) == [MIN]

    def test_unknown_study_name(self, storage: BaseStorage) -> None:
        with pytest.raises(StudyNotFoundError, match=r"no study named 'nope'.*holds no study"):
            storage.get_study_id_from_name("nope")
        storage.create_new_study([MIN], "there")
        with pytest.raises(StudyNotFoundError, match=r"no study named 'nope'.*'there'"):
            storage.get_study_id_from_name("nope")

    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda s, i: s.get_study_directions(i), id="get_study_directions"),
            pytest.param(lambda s, i: s.get_study_name_from_id(i), id="get_study_name_from_id"),
            pytest.param(lambda s, i: s.get_all_trials(i), id="get_all_trials"),
            pytest.param(lambda s, i: s.get_n_trials(i), id="get_n_trials"),
            pytest.param(lambda s, i: s.create_new_trial(i), id="create_new_trial"),
            pytest.param(lambda s, i: s.claim_trial(i), id="claim_trial"),
            pytest.param(lambda s, i: s.delete_study(i), id="delete_study"),
            pytest.param(lambda s, i: s.get_study_attrs(i, system=False), id="get_study_attrs"),
            pytest.param(
                lambda s, i: s.set_study_attr(i, "k", 1, system=False), id="set_study_attr"
            ),
        ],
    )
    def test_unknown_study_id(
        self, storage: BaseStorage, call: Callable[[BaseStorage, int], object]
    ) -> None:
        storage.create_new_study([MIN], "other")
        before = self.row_counts(storage)
        with pytest.raises(StudyNotFoundError, match=r"no study with id 987654"):
            call(storage, 987654)
        assert self.row_counts(storage) == before

    def test_delete_study(self, storage: BaseStorage) -> None:
        keep = storage.create_new_study([MIN], "keep")
        gone = storage.create_new_study([MIN], "gone")
        kept = storage.create_new_trial(keep)
        trial = storage.create_new_trial(gone)
        storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
        storage.get_trial(trial.trial_id)  # a storage may cache finished trials
        storage.get_all_trials(gone)
        storage.delete_study(gone)
        assert [s.study_name for s in storage.get_all_studies()] == ["keep"]
        with pytest.raises(StudyNotFoundError, match=r"no study named 'gone'"):
            storage.get_study_id_from_name("gone")
        with pytest.raises(StudyNotFoundError, match=r"no study with id"):
            storage.get_all_trials(gone)
        with pytest.raises(TrialNotFoundError, match=rf"no trial with id {trial.trial_id}"):
            storage.get_trial(trial.trial_id)
        assert storage.get_trial(kept.trial_id).state == TrialState.RUNNING
        again = storage.create_new_study([MAX], "gone")  # the name is free again
        assert storage.get_study_directions(again) == [MAX]
        assert storage.get_all_trials(again) == []

    def test_list_studies(self, storage: BaseStorage) -> None:
        assert storage.get_all_studies() == []
        a = storage.create_new_study([MIN], "a")
        b = storage.create_new_study([MAX, MIN], "b")
        storage.set_study_attr(b, "owner", "me", system=False)
        storage.set_study_attr(b, "sampler", "random", system=True)
        storage.create_new_trial(b)
        storage.create_new_trial(b)
        studies = storage.get_all_studies()
        assert [(s.study_id, s.study_name) for s in studies] == [(a, "a"), (b, "b")]
        assert [s.directions for s in studies] == [[MIN], [MAX, MIN]]
        assert [s.n_trials for s in studies] == [0, 2]
        assert studies[1].user_attrs == {"owner": "me"}
        assert studies[1].system_attrs == {"sampler": "random"}
        assert studies[0].datetime_start is None
        assert studies[1].datetime_start is not None

    @pytest.mark.parametrize(
        "name", [n for _, n in VERBATIM_NAMES], ids=[i for i, _ in VERBATIM_NAMES]
    )
    def test_study_name_kept_verbatim(self, storage: BaseStorage, name: str) -> None:
        storage.create_new_study([MIN], "study")  # a lookalike that must not match
        study_id = storage.create_new_study([MIN], name)
        assert storage.get_study_id_from_name(name) == study_id
        assert storage.get_study_name_from_id(study_id) == name
        assert name in [s.study_name for s in storage.get_all_studies()]
        with pytest.raises(DuplicatedStudyError, match=r"already exists"):
            storage.create_new_study([MIN], name)

    def test_names_differing_in_case_and_space_are_distinct(self, storage: BaseStorage) -> None:
        ids = {storage.create_new_study([MIN], n) for n in ("s", "S", "s ", " s", "s\n")}
        assert len(ids) == 5
        assert storage.get_study_name_from_id(storage.get_study_id_from_name("s ")) == "s "

    @pytest.mark.parametrize("name", ["nul\x00name", "\x00", "x" * 100 + "\x00"])
    def test_nul_in_study_name_is_refused(self, storage: BaseStorage, name: str) -> None:
        before = self.row_counts(storage)
        with pytest.raises(ValueError, match=r"contains a NUL character"):
            storage.create_new_study([MIN], name)
        assert self.row_counts(storage) == before
        assert storage.get_all_studies() == []

    def test_empty_study_name_is_refused(self, storage: BaseStorage) -> None:
        with pytest.raises(ValueError, match=r"study_name='' is empty"):
            storage.create_new_study([MIN], "")
        assert storage.get_all_studies() == []

    # -- attributes --------------------------------------------------------------------------

    @_STORAGE_SETTINGS
    @given(key=_KEYS, value=_JSON)
    def test_study_attr_round_trip(self, storage: BaseStorage, key: str, value: Any) -> None:
        study_id = storage.create_new_study([MIN], f"attrs-{len(storage.get_all_studies())}")
        storage.set_study_attr(study_id, key, value, system=False)
        storage.set_study_attr(study_id, key, ["system", value], system=True)
        assert storage.get_study_attrs(study_id, system=False) == {key: value}
        assert storage.get_study_attrs(study_id, system=True) == {key: ["system", value]}

    @_STORAGE_SETTINGS
    @given(key=_KEYS, value=_JSON)
    def test_trial_attr_round_trip(
        self, storage: BaseStorage, study_id: int, key: str, value: Any
    ) -> None:
        trial = storage.create_new_trial(study_id)
        storage.set_trial_attr(trial.trial_id, key, value, system=False)
        storage.set_trial_attr(trial.trial_id, key, {"system": value}, system=True)
        stored = storage.get_trial(trial.trial_id)
        assert stored.user_attrs == {key: value}
        assert stored.system_attrs[key] == {"system": value}
        (listed,) = [t for t in storage.get_all_trials(study_id) if t.trial_id == trial.trial_id]
        assert listed.user_attrs == {key: value}

    def test_attr_overwrite(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        for value in (1, "two", [3]):
            storage.set_trial_attr(trial.trial_id, "k", value, system=False)
            storage.set_study_attr(study_id, "k", value, system=False)
        assert storage.get_trial(trial.trial_id).user_attrs == {"k": [3]}
        assert storage.get_study_attrs(study_id, system=False) == {"k": [3]}

    @pytest.mark.parametrize(
        "value",
        [object(), {1, 2}, b"bytes", {"nested": object()}],
        ids=["object", "set", "bytes", "nested-object"],
    )
    def test_non_json_attr_is_refused(
        self, storage: BaseStorage, study_id: int, value: object
    ) -> None:
        trial = storage.create_new_trial(study_id)
        before = self.row_counts(storage)
        for system in (False, True):
            with pytest.raises(TypeError, match=r"attribute 'bad_key'.*not JSON-serializable"):
                storage.set_study_attr(study_id, "bad_key", value, system=system)
            with pytest.raises(TypeError, match=r"attribute 'bad_key'.*not JSON-serializable"):
                storage.set_trial_attr(trial.trial_id, "bad_key", value, system=system)
        assert self.row_counts(storage) == before

    def test_non_str_attr_key_is_refused(self, storage: BaseStorage, study_id: int) -> None:
        trial = storage.create_new_trial(study_id)
        before = self.row_counts(storage)
        with pytest.raises(TypeError, match=r"attribute key 1 must be a str"):
            storage.set_study_attr(study_id, 1, "v", system=False)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"attribute key 1 must be a str"):
            storage.set_trial_attr(trial.trial_id, 1, "v", system=False)  # type: ignore[arg-type]
        assert self.row_counts(storage) == before
