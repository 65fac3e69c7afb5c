"""What a PBT run leaves: the segments in the study, read back into a result and a schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dltune.storage._base import REASON_KEY
from dltune.torch._hparams import HParams
from dltune.torch._objective import HPARAMS_KEY
from dltune.torch._pbt_replay import Schedule
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = [
    "CONFIG_KEY",
    "PBT_KEY",
    "SCHEDULE_KEY",
    "PBTResult",
    "PBTSegment",
    "collect",
    "hparams_of",
    "member_of",
]

#: Trial system attribute of a PBT segment: member, generation, epochs, and what it started from.
PBT_KEY = "pbt"
#: Study system attribute: the best member's schedule, ``[{"start_epoch", "hparams"}, ...]``.
SCHEDULE_KEY = "pbt_schedule"
#: Study system attribute: the PBT settings of the run.
CONFIG_KEY = "pbt_config"


@dataclass(frozen=True)
class PBTSegment:
    """One member's segment (one trial), as recorded in the study.

    Attributes:
        member: The member (0-based).
        generation: The segment's index in the member's run (0-based).
        trial: The trial's number.
        start_epoch: Epochs trained before it (it trains ``start_epoch + 1`` on).
        end_epoch: The last epoch it trains.
        state: The trial's state name (``COMPLETE``, ``PRUNED`` for a diverged run, ...).
        value: The metric at ``end_epoch``, for a COMPLETE segment.
        hparams: Its hyperparameters (``None`` if it never started).
        parent_member: Whose checkpoint it started from (itself when it continued; ``None`` in
            generation 0).
        parent_trial: The trial number of that checkpoint.
        exploited: Whether it copied another member.
    """

    member: int
    generation: int
    trial: int
    start_epoch: int
    end_epoch: int
    state: str
    value: float | None
    hparams: HParams | None
    parent_member: int | None
    parent_trial: int | None
    exploited: bool


@dataclass
class PBTResult:
    """What :meth:`PBT.run` found.

    Attributes:
        study_name: The study that holds every segment.
        best_value: The best final member's metric.
        best_member: That member.
        best_trial: The number of its last segment's trial.
        schedule: Its ancestry's hyperparameters, ``[(start_epoch, HParams), ...]`` (consecutive
            equal hyperparameters merged); see :func:`replay_schedule`.
        history: Each member's segments in generation order.
        epochs_trained: Epochs trained by the whole population.
        seconds: Wall time of the run.
    """

    study_name: str
    best_value: float
    best_member: int
    best_trial: int
    schedule: Schedule
    history: dict[int, list[PBTSegment]]
    epochs_trained: int
    seconds: float


def member_of(trial: FrozenTrial) -> int:
    """The member a segment trial belongs to."""
    return int(trial.system_attrs[PBT_KEY]["member"])


def hparams_of(trial: FrozenTrial) -> HParams:
    """The hyperparameters a segment trial trained with."""
    return HParams.from_params(trial.system_attrs[HPARAMS_KEY])


def _segment(trial: FrozenTrial, interval: int, epochs: int) -> PBTSegment:
    info = trial.system_attrs[PBT_KEY]
    hp = trial.system_attrs.get(HPARAMS_KEY)
    generation = int(info["generation"])
    return PBTSegment(
        member=int(info["member"]),
        generation=generation,
        trial=trial.number,
        start_epoch=generation * interval,
        end_epoch=min((generation + 1) * interval, epochs),
        state=trial.state.name,
        value=trial.values[0] if trial.values else None,
        hparams=None if hp is None else HParams.from_params(hp),
        parent_member=info.get("parent_member"),
        parent_trial=info.get("parent_trial"),
        exploited=bool(info.get("exploited", False)),
    )


def collect(
    study: Study, *, interval: int, epochs: int, maximize: bool, seconds: float
) -> PBTResult:
    """Read a PBT run back from its study: histories, the best final member, its schedule.

    The best final member is the best COMPLETE segment among those that got furthest (all
    reach ``epochs`` unless a timeout stopped the run); its schedule follows ``parent_trial``
    back to generation 0.

    Raises:
        RuntimeError: If no segment completed, with the first failure's reason.
    """
    trials = [t for t in study.get_trials() if isinstance(t.system_attrs.get(PBT_KEY), dict)]
    segments = {t.number: _segment(t, interval, epochs) for t in trials}
    complete = [s for s in segments.values() if s.state == TrialState.COMPLETE.name]
    if not complete:
        reasons = [t.system_attrs.get(REASON_KEY) for t in trials]
        first = next((r for r in reasons if r), "no segment ran")
        raise RuntimeError(f"PBT completed no segment in study {study.study_name!r}: {first}")
    sign = -1.0 if maximize else 1.0
    best = min(complete, key=lambda s: (-s.end_epoch, sign * (s.value or 0.0), s.member))
    chain = [best]
    while chain[-1].parent_trial is not None:
        chain.append(segments[chain[-1].parent_trial])
    schedule: Schedule = []
    for s in reversed(chain):
        assert s.hparams is not None  # a segment that started has its hparams
        if not schedule or schedule[-1][1] != s.hparams:
            schedule.append((s.start_epoch, s.hparams))
    history: dict[int, list[PBTSegment]] = {}
    for s in sorted(segments.values(), key=lambda s: (s.member, s.generation)):
        history.setdefault(s.member, []).append(s)
    return PBTResult(
        study_name=study.study_name,
        best_value=float(best.value),  # type: ignore[arg-type]  # COMPLETE: has a value
        best_member=best.member,
        best_trial=best.trial,
        schedule=schedule,
        history=history,
        epochs_trained=sum(len(t.intermediate_values) for t in trials),
        seconds=seconds,
    )
