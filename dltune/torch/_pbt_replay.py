"""Replay a PBT hyperparameter schedule: retrain from scratch, changing the hyperparameters at
the recorded epochs."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dltune.torch._hparams import HParams
from dltune.torch._task import Task
from dltune.torch._trainer import MUTABLE_FIELDS
from dltune.torch._trainer import TrainResult
from dltune.torch._trainer import train

__all__ = ["Schedule", "replay_schedule", "schedule_from_json", "schedule_to_json"]

#: A hyperparameter schedule: ``(start_epoch, hparams)`` in order, the first at epoch 0; the
#: hyperparameters of an item hold from its start epoch (0-based: epochs ``start + 1`` on) to
#: the next item's.
Schedule = list[tuple[int, HParams]]


def schedule_to_json(schedule: Sequence[tuple[int, HParams]]) -> list[dict[str, Any]]:
    """The schedule as JSON-ready dicts ``{"start_epoch": ..., "hparams": {...}}``.

    Example:
        >>> schedule_to_json([(0, HParams(lr=0.1))])[0]["hparams"]["lr"]
        0.1
    """
    return [{"start_epoch": start, "hparams": hp.to_dict()} for start, hp in schedule]


def schedule_from_json(data: Any) -> Schedule:
    """Read a schedule back from :func:`schedule_to_json`'s form (what a study records).

    Raises:
        ValueError: If ``data`` is not a list of such dicts.

    Example:
        >>> schedule_from_json([{"start_epoch": 0, "hparams": {"lr": 0.1}}])[0][1].lr
        0.1
    """
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise ValueError(f"schedule={data!r} must be a list of {{start_epoch, hparams}} dicts")
    out: Schedule = []
    for i, item in enumerate(data):
        if not (isinstance(item, Mapping) and {"start_epoch", "hparams"} <= set(item)):
            raise ValueError(
                f"schedule[{i}]={item!r} must be a dict with keys start_epoch and hparams"
            )
        out.append((item["start_epoch"], HParams.from_params(dict(item["hparams"]))))
    return out


def _check(task: Task, schedule: Any) -> Schedule:
    if isinstance(schedule, Sequence) and schedule and isinstance(schedule[0], Mapping):
        schedule = schedule_from_json(schedule)
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence) or not schedule:
        raise ValueError(
            f"schedule={schedule!r} must be a non-empty list of (start_epoch, HParams)"
        )
    out: Schedule = []
    for i, item in enumerate(schedule):
        if not (isinstance(item, Sequence) and len(item) == 2 and isinstance(item[1], HParams)):
            raise ValueError(f"schedule[{i}]={item!r} must be a pair (start_epoch, HParams)")
        start, hp = item
        previous = out[-1][0] if out else -1
        if isinstance(start, bool) or not isinstance(start, int) or not start > previous:
            raise ValueError(
                f"schedule[{i}] starts at epoch {start!r}; start epochs must be integers that "
                "increase"
            )
        if start >= task.epochs:
            raise ValueError(
                f"schedule[{i}] starts at epoch {start!r}, not before task.epochs={task.epochs}"
            )
        if out:
            first = out[0][1].to_dict()
            differ = [
                k for k, v in hp.to_dict().items() if k not in MUTABLE_FIELDS and first[k] != v
            ]
            if differ:
                raise ValueError(
                    f"schedule[{i}] changes {', '.join(differ)}; only "
                    f"{', '.join(MUTABLE_FIELDS)} may change during a run"
                )
        out.append((start, hp))
    if out[0][0] != 0:
        raise ValueError(f"schedule[0] starts at epoch {out[0][0]!r}; it must start at 0")
    return out


def replay_schedule(
    task: Task,
    schedule: Sequence[tuple[int, HParams]] | Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    evaluate_test: bool = False,
    keep_model: bool = False,
) -> TrainResult:
    """Retrain ``task`` from scratch following a hyperparameter schedule.

    Trains with the first item's hyperparameters up to the second item's start epoch, puts the
    second item's learning rate, momentum and weight decay into the optimizer (as PBT did), and
    so on to ``task.epochs``. This reproduces the *schedule* PBT found, not its weights: in PBT
    the weights were copied between members along the way (and each member saw its own batches),
    so the replayed model is a fresh run of the same schedule, to be scored on its own
    (``evaluate_test``). Segment ``i`` draws its batches and dropout from ``seed + start_epoch``.

    Args:
        task: What to train (its ``checkpoint_dir`` is not used: the segments hand over through
            a temporary folder).
        schedule: ``[(start_epoch, HParams), ...]`` as :attr:`PBTResult.schedule` gives, or the
            JSON form a PBT study records (``study.system_attrs["pbt_schedule"]``).
        seed: Seeds the weights and the batches.
        evaluate_test: Measure the test split at the end.
        keep_model: Return the trained model.

    Returns:
        The run's result: the history of every epoch, ``hparams`` of the last item.

    Raises:
        ValueError: For an empty schedule, start epochs that do not begin at 0, do not increase
            or reach ``task.epochs``, or items that differ in more than the mutable fields.

    Example:
        >>> from dltune.torch import HParams, Task
        >>> task = Task(epochs=2, checkpoint_dir=None)
        >>> run = replay_schedule(task, [(0, HParams(lr=0.01, width=16)),
        ...                              (1, HParams(lr=0.005, width=16))])
        >>> [round(r.lr, 4) for r in run.history]
        [0.01, 0.005]
    """
    items = _check(task, schedule)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dltune-replay-") as folder:
        previous: Path | None = None
        for i, (start, hp) in enumerate(items):
            last = i == len(items) - 1
            path = Path(folder) / f"segment-{i}.pt"
            result = train(
                task,
                hp,
                seed=seed + start,
                checkpoint=None if last else path,
                start_from=previous,
                epochs_to=task.epochs if last else items[i + 1][0],
                evaluate_test=evaluate_test and last,
                keep_model=keep_model and last,
            )
            previous = path
    result.seed = seed
    result.resumed_from_epoch = 0
    result.seconds = time.perf_counter() - started
    return result
