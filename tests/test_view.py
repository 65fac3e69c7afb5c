"""StudyView: reads, the no-copy trial list, and the samplers' notes."""

from __future__ import annotations

import pytest

from dltune.storage import InMemoryStorage
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.view import StudyView


def _view() -> tuple[InMemoryStorage, StudyView]:
    storage = InMemoryStorage()
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "s")
    return storage, StudyView(storage, study_id)


def test_notes_on_the_study_and_on_a_running_trial() -> None:
    storage, view = _view()
    view.set_note("auto", [{"sampler": "gp"}])
    assert view.get_note("auto") == [{"sampler": "gp"}]
    assert view.system_attrs["sampler:auto"] == [{"sampler": "gp"}]
    trial = storage.create_new_trial(view.study_id)
    view.set_note("gen", 3, trial=trial)
    (stored,) = view.get_trials()
    assert view.get_note("gen", stored) == 3
    assert view.get_note("missing") is None


def test_notes_refuse_finished_trials_and_bad_keys() -> None:
    storage, view = _view()
    trial = storage.create_new_trial(view.study_id)
    storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [1.0])
    (done,) = view.get_trials()
    with pytest.raises(ValueError, match=r"trial 0 is COMPLETE; notes go on RUNNING trials only"):
        view.set_note("gen", 1, trial=done)
    with pytest.raises(TypeError, match=r"key='' must be a non-empty str"):
        view.set_note("", 1)


def test_view_reads_finished_trials_without_copies_but_copies_running_ones() -> None:
    storage, view = _view()
    done = storage.create_new_trial(view.study_id)
    storage.set_trial_state_values(done.trial_id, TrialState.COMPLETE, [1.0])
    storage.create_new_trial(view.study_id)
    first, second = view.get_trials(), view.get_trials()
    assert first[0] is second[0]  # the finished record, not a copy
    assert first[1] is not second[1]  # a running trial changes: a copy each time
    assert storage.get_all_trials(view.study_id)[0] is not first[0]  # the default copies
