"""The storage base: the single point of truth and of coordination.

Workers on one machine or many talk only to the storage, so every operation that coordinates
them (numbering trials, enforcing the study-wide trial budget, failing trials whose worker died)
is one atomic storage call. Samplers, pruners and analyses read frozen records from it.
"""

from __future__ import annotations

import abc
from collections.abc import Container
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from dltune.space import BaseDistribution
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["BaseStorage", "FrozenStudy"]

#: Keys of ``FrozenTrial.system_attrs`` that storages themselves maintain.
REASON_KEY = "reason"
RETRY_OF_KEY = "retry_of"
FIXED_PARAMS_KEY = "fixed_params"
WORKER_KEY = "worker"
#: Set on a PRUNED trial a guard stopped: ``"diverged"`` or ``"not_learning"``.
STOPPED_BY_KEY = "stopped_by"
#: Set on a trial that continues a paused (PRUNED) trial to a higher budget: the paused trial's
#: number. The continuation has the same params and resumes from the paused trial's checkpoint.
RESUME_OF_KEY = "resume_of"
#: On trials of multi-objective studies that reported one value per objective:
#: ``{str(step): [value, ...]}``; ``intermediate_values[step]`` holds the first objective's.
REPORTED_VALUES_KEY = "reported_values"


@dataclass(slots=True)
class FrozenStudy:
    """A summary of one study in a storage.

    Attributes:
        study_id: The storage's identifier of the study.
        study_name: The study's unique name.
        directions: One direction per objective.
        user_attrs: Attributes set with ``Study.set_user_attr``.
        system_attrs: Attributes dltune keeps (the sampler's choice, ...).
        n_trials: How many trials the study holds, in any state.
        datetime_start: When the first trial started, or ``None``.
    """

    study_id: int
    study_name: str
    directions: list[StudyDirection]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    n_trials: int = 0
    datetime_start: datetime | None = None


class BaseStorage(abc.ABC):
    """Where studies and trials live.

    Implementations must make :meth:`claim_trial` atomic across processes (and machines, for
    server databases): trial numbers are ``0..N-1`` with no gaps or duplicates, and the budget
    passed to it is never overshot however many workers claim at once.

    Heartbeats: a storage shared by processes sets ``heartbeat_seconds``; workers then call
    :meth:`record_heartbeat` for each running trial, which moves the trial's deadline to the
    storage clock's now plus *this worker's* ``grace_seconds``. :meth:`fail_stale_trials`, run by
    any worker or reader, marks RUNNING trials past their own deadline as FAIL with reason
    ``'stale'``; a reaper never applies its own grace period to another worker's trial. A trial
    claimed through a storage with ``max_retries`` carries that many retries: when it goes stale
    its params are enqueued again as a new trial linked to it (``retry_of``), with one retry
    fewer.
    """

    #: Seconds between heartbeats of a running trial; ``None`` when the storage needs none.
    heartbeat_seconds: float | None = None
    #: A RUNNING trial whose last heartbeat is older than this is stale.
    grace_seconds: float = 60.0
    #: How many times a stale trial's params are retried as a new trial (0: never).
    max_retries: int = 0

    # -- studies -----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str) -> int:
        """Create a study and return its id.

        Raises:
            DuplicatedStudyError: If a study of that name exists.
        """

    @abc.abstractmethod
    def delete_study(self, study_id: int) -> None:
        """Delete a study and all its trials.

        Raises:
            StudyNotFoundError: If it does not exist.
        """

    @abc.abstractmethod
    def get_study_id_from_name(self, study_name: str) -> int:
        """Look a study up by name.

        Raises:
            StudyNotFoundError: Listing the names that do exist.
        """

    @abc.abstractmethod
    def get_all_studies(self) -> list[FrozenStudy]:
        """Every study in the storage, oldest first."""

    @abc.abstractmethod
    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        """The study's directions, one per objective."""

    @abc.abstractmethod
    def set_study_attr(self, study_id: int, key: str, value: Any, *, system: bool) -> None:
        """Set a JSON-serializable user (``system=False``) or system attribute of a study."""

    @abc.abstractmethod
    def get_study_attrs(self, study_id: int, *, system: bool) -> dict[str, Any]:
        """The study's user (``system=False``) or system attributes."""

    def get_study_name_from_id(self, study_id: int) -> str:
        """The name of a study; override for speed."""
        for study in self.get_all_studies():
            if study.study_id == study_id:
                return study.study_name
        from dltune.exceptions import StudyNotFoundError

        raise StudyNotFoundError(f"no study with id {study_id!r}")

    # -- trials ------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_new_trial(self, study_id: int, template: FrozenTrial | None = None) -> FrozenTrial:
        """Add a trial with the next number, copying ``template`` (state, params, values, ...).

        Without a template the trial is RUNNING and empty. With one, its number and id are
        ignored and replaced; this is how ``enqueue_trial`` (a WAITING template) and ``add_trial``
        (a finished one) write.
        """

    @abc.abstractmethod
    def claim_trial(
        self, study_id: int, *, max_trials: int | None = None, worker: str | None = None
    ) -> FrozenTrial | None:
        """Atomically start the next trial for a worker, or return ``None`` if the budget is spent.

        In one transaction: a WAITING retry (``retry_of`` set) is claimed first, whatever the
        budget, since it replaces a trial already counted. Otherwise, if fewer than
        ``max_trials`` trials (``None``: no limit) that are not retries exist outside WAITING, the
        oldest WAITING trial is claimed, or else a new trial is created. A claimed trial is
        RUNNING, has ``datetime_start`` and a fresh heartbeat.
        """

    @abc.abstractmethod
    def set_trial_param(
        self, trial_id: int, name: str, internal: float, distribution: BaseDistribution
    ) -> None:
        """Record a parameter of a RUNNING trial.

        Raises:
            ValueError: If ``name`` was defined in the study with an incompatible distribution
                (see :func:`dltune.space.check_compatible`); nothing is written then.
            UpdateFinishedTrialError: If the trial is finished.
        """

    @abc.abstractmethod
    def set_trial_state_values(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None = None,
        reason: str | None = None,
    ) -> None:
        """Finish a RUNNING trial (or start a WAITING one), atomically.

        Args:
            trial_id: The trial.
            state: The new state.
            values: The objective values, required (finite or infinite, never NaN) for COMPLETE.
            reason: Why it ended, kept as system attr ``reason``.

        Raises:
            UpdateFinishedTrialError: If the trial already finished, for example failed as
                stale while its worker was paused; the earlier outcome stands.
        """

    @abc.abstractmethod
    def set_trial_intermediate_value(self, trial_id: int, step: int, value: float) -> None:
        """Record (or overwrite) the value reported at ``step``; NaN and infinities are kept."""

    @abc.abstractmethod
    def set_trial_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        """Set a JSON-serializable user (``system=False``) or system attribute of a trial."""

    @abc.abstractmethod
    def get_trial(self, trial_id: int) -> FrozenTrial:
        """One trial by id.

        Raises:
            TrialNotFoundError: If it does not exist.
        """

    @abc.abstractmethod
    def get_all_trials(
        self, study_id: int, states: Container[TrialState] | None = None, *, copy: bool = True
    ) -> list[FrozenTrial]:
        """The study's trials in number order, optionally only those in ``states``.

        With ``copy=False`` a storage may hand out the records it keeps instead of copies
        (faster for samplers, which read a thousand trials per proposal): the caller must then
        treat them as read-only.
        """

    def get_n_trials(self, study_id: int, states: Container[TrialState] | None = None) -> int:
        """How many trials the study has (in ``states``); override for speed."""
        return len(self.get_all_trials(study_id, states))

    def get_best_trial(self, study_id: int) -> FrozenTrial | None:
        """The COMPLETE trial with the best value of a single-objective study; override for speed.

        Ties go to the earliest trial.

        Raises:
            ValueError: If the study has several objectives.
        """
        directions = self.get_study_directions(study_id)
        if len(directions) != 1:
            raise ValueError(
                f"the study has {len(directions)} objectives, so no single best trial; "
                "use study.best_trials for the Pareto front"
            )
        sign = 1.0 if directions[0] == StudyDirection.MINIMIZE else -1.0
        best: FrozenTrial | None = None
        for trial in self.get_all_trials(study_id, (TrialState.COMPLETE,)):
            assert trial.values is not None
            if best is None or sign * trial.values[0] < sign * _first(best):
                best = trial
        return best

    # -- liveness ----------------------------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:  # noqa: B027 - optional hook
        """Note that the worker of a RUNNING trial is alive (a no-op once it finished).

        Does nothing by default."""

    def fail_stale_trials(self, study_id: int) -> list[int]:
        """Fail RUNNING trials past their heartbeat deadline; enqueue their retries.

        Returns the numbers of the trials failed. Does nothing (returns ``[]``) by default, for
        storages living inside one process.
        """
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Does nothing by default."""


def _first(trial: FrozenTrial) -> float:
    assert trial.values is not None
    return trial.values[0]
