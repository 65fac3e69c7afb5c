"""The objective that trains a task: what ``Study.optimize`` runs for a ``dltune tune`` config."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from dltune.storage._base import RETRY_OF_KEY
from dltune.torch._hparams import HParams
from dltune.torch._task import Task
from dltune.torch._trainer import train

if TYPE_CHECKING:
    from dltune._trial import Trial

__all__ = ["HPARAMS_KEY", "SEED_KEY", "TorchObjective", "checkpoint_path"]

#: System attribute holding a trial's full hyperparameters (suggested and fixed).
HPARAMS_KEY = "hparams"
#: System attribute holding the seed a trial trained with.
SEED_KEY = "seed"


@runtime_checkable
class _Space(Protocol):
    def suggest(self, trial: Trial) -> dict[str, Any]: ...


def checkpoint_path(task: Task, study_name: str, number: int) -> Path | None:
    """Where the trainer checkpoints trial ``number`` of a study (``None``: no checkpoints)."""
    if task.checkpoint_dir is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name)
    return task.checkpoint_dir / safe / f"trial-{number}.pt"


class TorchObjective:
    """``objective(trial)``: suggest hyperparameters, train the task, return its metric.

    The space is a :class:`dltune.config.SearchSpace` (what a YAML config describes) or any
    callable ``space(trial) -> dict`` of :class:`HParams` fields, define-by-run. ``fixed``
    values apply under the suggested ones. Each trial trains with the seed ``seed + number``;
    a retried trial continues from the checkpoint of the trial it retries.

    Args:
        task: What to train.
        space: Where the hyperparameters come from.
        fixed: Hyperparameters that are not searched.
        seed: The base of the trials' seeds.

    Example:
        >>> import dltune
        >>> from dltune.torch import Task, TorchObjective
        >>> def space(trial):
        ...     return {"lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}
        >>> task = Task(epochs=1, checkpoint_dir=None)
        >>> objective = TorchObjective(task, space, fixed={"width": 16})
        >>> study = dltune.create_study(direction="maximize", seed=0)
        >>> study.optimize(objective, n_trials=2)
        >>> sorted(study.best_trial.system_attrs["hparams"])[:3]
        ['activation', 'batch_size', 'beta1']
    """

    def __init__(
        self,
        task: Task,
        space: _Space | Callable[[Trial], Mapping[str, Any]],
        *,
        fixed: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task={task!r} must be a dltune.torch.Task")
        if not (isinstance(space, _Space) or callable(space)):
            raise TypeError(
                f"space={space!r} must be a SearchSpace or a callable space(trial) -> dict"
            )
        self.task = task
        self.space = space
        self.fixed = dict(fixed or {})
        HParams.from_params({}, **self.fixed)  # fail now, not in the first trial
        self.seed = int(seed)

    def hparams(self, trial: Trial) -> HParams:
        """Suggest this trial's hyperparameters."""
        space = self.space
        params = space.suggest(trial) if isinstance(space, _Space) else space(trial)
        return HParams.from_params(dict(params), **self.fixed)

    def __call__(self, trial: Trial) -> float:
        hparams = self.hparams(trial)
        seed = self.seed + trial.number
        trial.set_system_attr(HPARAMS_KEY, hparams.to_dict())
        trial.set_system_attr(SEED_KEY, seed)
        study_name = trial.study.study_name
        retry_of = trial.system_attrs.get(RETRY_OF_KEY)
        resume_from = (
            None if retry_of is None else checkpoint_path(self.task, study_name, int(retry_of))
        )
        result = train(
            self.task,
            hparams,
            seed=seed,
            trial=trial,
            checkpoint=checkpoint_path(self.task, study_name, trial.number),
            resume_from=resume_from,
        )
        trial.set_user_attr(
            "metrics",
            {
                "val_accuracy": result.val_accuracy,
                "val_loss": result.val_loss,
                "train_loss": result.history[-1].train_loss,
                "epochs": len(result.history),
                "resumed_from_epoch": result.resumed_from_epoch,
                "n_params": result.n_params,
                "seconds": round(result.seconds, 3),
            },
        )
        return result.value
