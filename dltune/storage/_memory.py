"""A storage living in one process's memory: fast, and gone when the process ends."""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Container
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from dltune.exceptions import DuplicatedStudyError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialNotFoundError
from dltune.exceptions import UpdateFinishedTrialError
from dltune.space import BaseDistribution
from dltune.space import check_compatible
from dltune.storage._base import REASON_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.storage._base import WORKER_KEY
from dltune.storage._base import BaseStorage
from dltune.storage._base import FrozenStudy
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState
from dltune.trial import datetime_from_epoch

__all__ = ["InMemoryStorage"]


@dataclass
class _Study:
    study_id: int
    name: str
    directions: list[StudyDirection]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    trial_ids: list[int] = field(default_factory=list)
    # What claim_trial needs, kept up to date so a claim costs O(1), not a scan:
    n_budget_used: int = 0  # trials that are neither WAITING nor retries
    waiting_retries: dict[int, None] = field(default_factory=dict)  # ids, oldest first
    waiting: dict[int, None] = field(default_factory=dict)  # ids, oldest first

    def track(self, trial: FrozenTrial, old_state: TrialState | None) -> None:
        """Update the claim bookkeeping after ``trial`` was added or changed state."""
        is_retry = RETRY_OF_KEY in trial.system_attrs
        queue = self.waiting_retries if is_retry else self.waiting
        if old_state == TrialState.WAITING and trial.state != TrialState.WAITING:
            queue.pop(trial.trial_id, None)
        if trial.state == TrialState.WAITING and old_state != TrialState.WAITING:
            queue[trial.trial_id] = None
        counted = old_state not in (None, TrialState.WAITING)
        if not is_retry and not counted and trial.state != TrialState.WAITING:
            self.n_budget_used += 1


def check_json(key: str, value: Any) -> str:
    """Serialize an attribute value, naming the key when it cannot be stored."""
    if not isinstance(key, str):
        raise TypeError(f"attribute key {key!r} must be a str")
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"attribute {key!r}: value {value!r} of type {type(value).__name__} is not "
            "JSON-serializable; store numbers, strings, lists or dicts of them"
        ) from exc


def check_template(template: FrozenTrial) -> None:
    """Refuse a trial template that a storage could not hold as given (before any write)."""
    if template.values is not None and any(math.isnan(v) for v in template.values):
        raise ValueError(f"values={template.values!r}: NaN cannot be stored; fail the trial")
    missing = sorted(set(template.params) ^ set(template.distributions))
    if missing:
        raise ValueError(
            f"params and distributions must name the same parameters; {missing!r} appear in "
            "only one of them"
        )
    for name, value in template.params.items():
        template.distributions[name].to_internal(value)
    for attrs in (template.user_attrs, template.system_attrs):
        for key, value in attrs.items():
            check_json(key, value)


def check_study_name(study_name: str) -> None:
    """Study names are any non-empty text without NUL characters."""
    if not isinstance(study_name, str):
        raise TypeError(f"study_name={study_name!r} must be a str")
    if not study_name:
        raise ValueError("study_name='' is empty; give a name or None for a generated one")
    if "\x00" in study_name:
        raise ValueError(
            f"study_name={study_name[:40]!r}... contains a NUL character, which databases "
            "cannot store; remove it"
        )


class InMemoryStorage(BaseStorage):
    """Keeps studies in this process; thread-safe. The default when no storage is given.

    Worker processes started by ``Study.optimize(n_jobs=k)`` reach it through the parent
    process, so in-memory studies run in parallel too; other machines cannot join it.

    Example:
        >>> storage = InMemoryStorage()
        >>> storage.create_new_study([StudyDirection.MINIMIZE], "demo")
        0
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[int, _Study] = {}
        self._trials: dict[int, FrozenTrial] = {}
        self._trial_study: dict[int, int] = {}
        self._next_study_id = 0
        self._next_trial_id = 0

    # -- studies -----------------------------------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str) -> int:
        check_study_name(study_name)
        with self._lock:
            if any(s.name == study_name for s in self._studies.values()):
                raise DuplicatedStudyError(
                    f"a study named {study_name!r} already exists; pass load_if_exists=True "
                    "to continue it or choose another name"
                )
            study_id = self._next_study_id
            self._next_study_id += 1
            self._studies[study_id] = _Study(study_id, study_name, list(directions))
            return study_id

    def _study(self, study_id: int) -> _Study:
        try:
            return self._studies[study_id]
        except KeyError:
            raise StudyNotFoundError(f"no study with id {study_id!r}") from None

    def delete_study(self, study_id: int) -> None:
        with self._lock:
            study = self._study(study_id)
            for trial_id in study.trial_ids:
                del self._trials[trial_id]
                del self._trial_study[trial_id]
            del self._studies[study_id]

    def get_study_id_from_name(self, study_name: str) -> int:
        with self._lock:
            for study in self._studies.values():
                if study.name == study_name:
                    return study.study_id
            names = [s.name for s in self._studies.values()][:10]
        raise StudyNotFoundError(
            f"no study named {study_name!r}; the storage holds {names!r}"
            if names
            else f"no study named {study_name!r}; the storage holds no study"
        )

    def get_study_name_from_id(self, study_id: int) -> str:
        with self._lock:
            return self._study(study_id).name

    def get_all_studies(self) -> list[FrozenStudy]:
        with self._lock:
            out = []
            for s in self._studies.values():
                starts = [
                    self._trials[t].datetime_start
                    for t in s.trial_ids
                    if self._trials[t].datetime_start is not None
                ]
                out.append(
                    FrozenStudy(
                        s.study_id,
                        s.name,
                        list(s.directions),
                        copy.deepcopy(s.user_attrs),
                        copy.deepcopy(s.system_attrs),
                        len(s.trial_ids),
                        min(starts) if starts else None,  # type: ignore[type-var]
                    )
                )
            return out

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        with self._lock:
            return list(self._study(study_id).directions)

    def set_study_attr(self, study_id: int, key: str, value: Any, *, system: bool) -> None:
        text = check_json(key, value)
        with self._lock:
            study = self._study(study_id)
            (study.system_attrs if system else study.user_attrs)[key] = json.loads(text)

    def get_study_attrs(self, study_id: int, *, system: bool) -> dict[str, Any]:
        with self._lock:
            study = self._study(study_id)
            return copy.deepcopy(study.system_attrs if system else study.user_attrs)

    # -- trials ------------------------------------------------------------------------------

    def _add(self, study: _Study, trial: FrozenTrial) -> FrozenTrial:
        trial.trial_id = self._next_trial_id
        self._next_trial_id += 1
        trial.number = len(study.trial_ids)
        self._trials[trial.trial_id] = trial
        self._trial_study[trial.trial_id] = study.study_id
        study.trial_ids.append(trial.trial_id)
        study.track(trial, None)
        return trial.copy()

    def create_new_trial(self, study_id: int, template: FrozenTrial | None = None) -> FrozenTrial:
        with self._lock:
            study = self._study(study_id)
            if template is None:
                trial = FrozenTrial(-1, -1, TrialState.RUNNING)
                trial.datetime_start = datetime_from_epoch(time.time())
            else:
                check_template(template)
                trial = copy.deepcopy(template)
                for name, dist in trial.distributions.items():
                    self._check_distribution(study, name, dist)
                for name, dist in trial.distributions.items():
                    study.distributions.setdefault(name, dist)
            return self._add(study, trial)

    def claim_trial(
        self, study_id: int, *, max_trials: int | None = None, worker: str | None = None
    ) -> FrozenTrial | None:
        with self._lock:
            study = self._study(study_id)
            queue = study.waiting_retries
            if not queue:
                if max_trials is not None and study.n_budget_used >= max_trials:
                    return None
                queue = study.waiting
            trial = self._trials[next(iter(queue))] if queue else None
            old_state = None if trial is None else trial.state
            if trial is None:
                trial = FrozenTrial(-1, -1, TrialState.RUNNING)
            trial.state = TrialState.RUNNING
            trial.datetime_start = datetime_from_epoch(time.time())
            if worker is not None:
                trial.system_attrs[WORKER_KEY] = worker
            if old_state is None:
                return self._add(study, trial)
            study.track(trial, old_state)
            return trial.copy()

    def _trial(self, trial_id: int) -> FrozenTrial:
        try:
            return self._trials[trial_id]
        except KeyError:
            raise TrialNotFoundError(f"no trial with id {trial_id!r}") from None

    def _running(self, trial_id: int) -> FrozenTrial:
        trial = self._trial(trial_id)
        if trial.state.is_finished():
            raise UpdateFinishedTrialError(
                f"trial {trial.number} is already {trial.state.name} and cannot be changed"
            )
        return trial

    def _check_distribution(self, study: _Study, name: str, dist: BaseDistribution) -> None:
        old = study.distributions.get(name)
        if old is not None:
            check_compatible(name, old, dist)

    def set_trial_param(
        self, trial_id: int, name: str, internal: float, distribution: BaseDistribution
    ) -> None:
        with self._lock:
            trial = self._running(trial_id)
            study = self._studies[self._trial_study[trial_id]]
            self._check_distribution(study, name, distribution)
            study.distributions.setdefault(name, distribution)
            trial.params[name] = distribution.to_external(internal)
            trial.distributions[name] = distribution

    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        reason: str | None = None,
    ) -> None:
        if values is not None:
            values = [float(v) for v in values]
            if any(math.isnan(v) for v in values):
                raise ValueError(f"values={values!r}: NaN cannot be stored; fail the trial")
        if state == TrialState.COMPLETE and values is None:
            raise ValueError("a COMPLETE trial needs its values")
        with self._lock:
            trial = self._running(trial_id)
            old_state = trial.state
            trial.state = state
            if values is not None:
                trial.values = list(values)
            if reason is not None:
                trial.system_attrs[REASON_KEY] = reason
            now = datetime_from_epoch(time.time())
            if state == TrialState.RUNNING:
                trial.datetime_start = now
            elif state.is_finished():
                trial.datetime_complete = now
            self._studies[self._trial_study[trial_id]].track(trial, old_state)

    def set_trial_intermediate_value(self, trial_id: int, step: int, value: float) -> None:
        with self._lock:
            self._running(trial_id).intermediate_values[step] = float(value)

    def set_trial_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        text = check_json(key, value)
        with self._lock:
            trial = self._running(trial_id)
            (trial.system_attrs if system else trial.user_attrs)[key] = json.loads(text)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            return self._trial(trial_id).copy()

    def get_all_trials(
        self, study_id: int, states: Container[TrialState] | None = None, *, copy: bool = True
    ) -> list[FrozenTrial]:
        with self._lock:
            study = self._study(study_id)
            trials = (self._trials[t] for t in study.trial_ids)
            if not copy:  # running (and waiting) trials change under the lock: copy those
                running, waiting = TrialState.RUNNING, TrialState.WAITING
                return [
                    t.copy() if t.state is running or t.state is waiting else t
                    for t in trials
                    if states is None or t.state in states
                ]
            return [t.copy() for t in trials if states is None or t.state in states]

    def get_n_trials(self, study_id: int, states: Container[TrialState] | None = None) -> int:
        with self._lock:
            study = self._study(study_id)
            if states is None:
                return len(study.trial_ids)
            return sum(1 for t in study.trial_ids if self._trials[t].state in states)
