"""A storage reached through a connection to the process that owns it.

``optimize(n_jobs=k)`` on an in-memory study runs its workers in child processes; they reach
the parent's :class:`~dltune.storage.InMemoryStorage` through this proxy, one request at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Container
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from dltune.space import BaseDistribution
from dltune.storage._base import BaseStorage
from dltune.storage._base import FrozenStudy
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["RemoteStorage", "serve_storage_call"]


class RemoteStorage(BaseStorage):
    """Forwards every storage call over ``conn`` to :func:`serve_storage_call` in the owner."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send(("call", method, args, kwargs))
            ok, result = self._conn.recv()
        if not ok:
            raise result
        return result

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str) -> int:
        return int(self._call("create_new_study", list(directions), study_name))

    def delete_study(self, study_id: int) -> None:
        self._call("delete_study", study_id)

    def get_study_id_from_name(self, study_name: str) -> int:
        return int(self._call("get_study_id_from_name", study_name))

    def get_study_name_from_id(self, study_id: int) -> str:
        return str(self._call("get_study_name_from_id", study_id))

    def get_all_studies(self) -> list[FrozenStudy]:
        return list(self._call("get_all_studies"))

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return list(self._call("get_study_directions", study_id))

    def set_study_attr(self, study_id: int, key: str, value: Any, *, system: bool) -> None:
        self._call("set_study_attr", study_id, key, value, system=system)

    def get_study_attrs(self, study_id: int, *, system: bool) -> dict[str, Any]:
        return dict(self._call("get_study_attrs", study_id, system=system))

    def create_new_trial(self, study_id: int, template: FrozenTrial | None = None) -> FrozenTrial:
        result: FrozenTrial = self._call("create_new_trial", study_id, template)
        return result

    def claim_trial(
        self, study_id: int, *, max_trials: int | None = None, worker: str | None = None
    ) -> FrozenTrial | None:
        result: FrozenTrial | None = self._call(
            "claim_trial", study_id, max_trials=max_trials, worker=worker
        )
        return result

    def set_trial_param(
        self, trial_id: int, name: str, internal: float, distribution: BaseDistribution
    ) -> None:
        self._call("set_trial_param", trial_id, name, internal, distribution)

    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        reason: str | None = None,
    ) -> None:
        vals = None if values is None else list(values)
        self._call("set_trial_state_values", trial_id, state, vals, reason)

    def set_trial_intermediate_value(self, trial_id: int, step: int, value: float) -> None:
        self._call("set_trial_intermediate_value", trial_id, step, value)

    def set_trial_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        self._call("set_trial_attr", trial_id, key, value, system=system)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        result: FrozenTrial = self._call("get_trial", trial_id)
        return result

    def get_all_trials(
        self, study_id: int, states: Container[TrialState] | None = None, *, copy: bool = True
    ) -> list[FrozenTrial]:
        # every answer is a fresh object from the parent process: ``copy`` changes nothing
        wanted = None if states is None else [s for s in TrialState if s in states]
        return list(self._call("get_all_trials", study_id, wanted))

    def get_n_trials(self, study_id: int, states: Container[TrialState] | None = None) -> int:
        wanted = None if states is None else [s for s in TrialState if s in states]
        return int(self._call("get_n_trials", study_id, wanted))

    def get_best_trial(self, study_id: int) -> FrozenTrial | None:
        result: FrozenTrial | None = self._call("get_best_trial", study_id)
        return result


_ALLOWED = frozenset(
    name
    for name in vars(RemoteStorage)
    if not name.startswith("_") and callable(getattr(RemoteStorage, name))
)


def serve_storage_call(storage: BaseStorage, message: tuple[Any, ...]) -> tuple[bool, Any]:
    """Run one forwarded call on the real storage: ``(True, result)`` or ``(False, error)``."""
    _, method, args, kwargs = message
    if method not in _ALLOWED:
        return False, ValueError(f"storage method {method!r} cannot be called remotely")
    try:
        return True, getattr(storage, method)(*args, **kwargs)
    except Exception as exc:
        return False, exc
