"""One process's cache of a SQL storage's finished trials, kept in number order.

A finished trial never changes again, so each process reads it once. The trials numbered below
a study's *watermark* (its lowest unfinished number) are all finished; they are kept as one list
in number order (and one per state), which only ever grows at its end. A refresh then costs what
changed (new trials, and those unfinished at the previous read), not the size of the study: at
100,000 trials, asking for the study's trials copies a list of references.
"""

from __future__ import annotations

import threading
from collections.abc import Container
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import Select

from dltune.trial import FrozenTrial
from dltune.trial import TrialState

__all__ = ["MAX_RECHECK", "TrialCache"]

#: Above this many unfinished trials, a refresh re-reads every trial from the watermark on.
MAX_RECHECK = 500


_RUNNING = TrialState.RUNNING
_WAITING = TrialState.WAITING


def _is_finished(trial: FrozenTrial) -> bool:
    # identity tests: hashing an enum member runs Python code, 100,000 times per cold read
    return trial.state is not _RUNNING and trial.state is not _WAITING


@dataclass
class _StudyTrials:
    prefix: list[FrozenTrial] = field(default_factory=list)  # numbers 0 .. watermark - 1
    #: The prefix split by state, keyed by the state's value.
    by_state: dict[str, list[FrozenTrial]] = field(default_factory=dict)
    above: dict[int, FrozenTrial] = field(default_factory=dict)  # finished, >= watermark
    next_number: int = 0  # one past the highest number seen
    unfinished: list[FrozenTrial] = field(default_factory=list)  # as of the last read

    def add(self, trial: FrozenTrial) -> None:
        watermark = len(self.prefix)
        if trial.number == watermark and not self.above:  # reading a study in order
            self.prefix.append(trial)
            self._state_list(trial).append(trial)
        elif trial.number >= watermark:
            self.above[trial.number] = trial
            while watermark in self.above:
                done = self.above.pop(watermark)
                self.prefix.append(done)
                self._state_list(done).append(done)
                watermark += 1

    def _state_list(self, trial: FrozenTrial) -> list[FrozenTrial]:
        found = self.by_state.get(trial.state._value_)
        if found is None:
            found = self.by_state[trial.state._value_] = []
        return found


class TrialCache:
    """The finished trials of every study this process read, thread-safe.

    A refresh reads the trials numbered from the study's watermark that are new or were
    unfinished at the previous read (:meth:`changed_query`), and loads those not cached.

    Example:
        >>> from dltune.storage._sql_queries import Statements
        >>> q = Statements("sqlite")
        >>> cache = TrialCache(q.trials_changed, q.trials_since)
        >>> done = [FrozenTrial(n, 10 + n, TrialState.COMPLETE, [0.5]) for n in (1, 0)]
        >>> cache.merge(1, 2, [*done, FrozenTrial(2, 12, TrialState.RUNNING)])
        >>> [t.number for t in cache.trials(1)], cache.changed_query(1)[1]["wm"]
        ([0, 1, 2], 2)
    """

    def __init__(self, trials_changed: Select[Any], trials_since: Select[Any]) -> None:
        self._changed = trials_changed
        self._since = trials_since
        self._lock = threading.Lock()
        self._studies: dict[int, _StudyTrials] = {}
        self._by_id: dict[int, FrozenTrial] = {}

    def get(self, trial_id: int) -> FrozenTrial | None:
        """The cached finished trial (not a copy), or ``None``."""
        return self._by_id.get(trial_id)

    def is_empty(self, study_id: int) -> bool:
        """Whether no trial of the study is cached."""
        study = self._studies.get(study_id)
        return study is None or not (study.prefix or study.above)

    def add(self, study_id: int, trial: FrozenTrial) -> None:
        """Cache ``trial`` if it is finished."""
        if _is_finished(trial):
            with self._lock:
                if trial.trial_id not in self._by_id:
                    self._by_id[trial.trial_id] = trial
                    self._studies.setdefault(study_id, _StudyTrials()).add(trial)

    def drop(self, study_id: int) -> None:
        """Forget a deleted study."""
        with self._lock:
            study = self._studies.pop(study_id, None)
            if study is not None:
                for trial in [*study.prefix, *study.above.values()]:
                    self._by_id.pop(trial.trial_id, None)

    def changed_query(self, study_id: int) -> tuple[Select[Any], dict[str, Any]]:
        """The statement and parameters reading the trials that may have changed."""
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyTrials())
            params: dict[str, Any] = {"sid": study_id, "wm": len(study.prefix)}
            if len(study.unfinished) > MAX_RECHECK:
                return self._since, params
            params["next"] = study.next_number
            params["recheck"] = [t.number for t in study.unfinished]
            return self._changed, params

    def merge(self, study_id: int, last_number: int | None, loaded: list[FrozenTrial]) -> None:
        """Cache the finished trials of a refresh; keep its unfinished ones for the next view.

        ``last_number`` is the highest number the refresh saw (``None``: it saw no trial).
        """
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyTrials())
            unfinished = []
            by_id = self._by_id
            prefix, by_state = study.prefix, study.by_state
            for trial in loaded:
                state = trial.state
                if state is _RUNNING or state is _WAITING:
                    unfinished.append(trial)
                elif trial.trial_id not in by_id:
                    by_id[trial.trial_id] = trial
                    if trial.number == len(prefix) and not study.above:  # in order: inline
                        prefix.append(trial)
                        same_state = by_state.get(state._value_)
                        if same_state is None:
                            same_state = by_state[state._value_] = []
                        same_state.append(trial)
                    else:
                        study.add(trial)
            if last_number is not None:
                study.next_number = max(study.next_number, last_number + 1)
            study.unfinished = unfinished

    def trials(
        self, study_id: int, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        """The study's trials as of the last merge, in number order (optionally by state)."""
        wanted = None if states is None else [s for s in TrialState if s in states]
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyTrials())
            tail = sorted([*study.above.values(), *study.unfinished], key=_number)
            if wanted is None or len(wanted) == len(TrialState):
                return [*study.prefix, *tail]
            if len(wanted) == 1:
                head = study.by_state.get(wanted[0].value, [])
                return [*head, *(t for t in tail if t.state is wanted[0])]
            kept = set(wanted)
            return [t for t in (*study.prefix, *tail) if t.state in kept]


def _number(trial: FrozenTrial) -> int:
    return trial.number
