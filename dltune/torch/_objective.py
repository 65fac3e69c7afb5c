"""The objective that trains a task: what ``Study.optimize`` runs for a ``dltune tune`` config."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from dltune.exceptions import TrialPruned
from dltune.exceptions import TrialStopped
from dltune.storage._base import RESUME_OF_KEY
from dltune.storage._base import RETRY_OF_KEY
from dltune.torch._hparams import HParams
from dltune.torch._task import Task
from dltune.torch._trainer import train
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune._trial import Trial
    from dltune.trial import FrozenTrial

__all__ = ["HPARAMS_KEY", "SEED_KEY", "TorchObjective", "checkpoint_path", "study_folder"]

#: System attribute holding a trial's full hyperparameters (suggested and fixed).
HPARAMS_KEY = "hparams"
#: System attribute holding the seed a trial trained with.
SEED_KEY = "seed"


@runtime_checkable
class _Space(Protocol):
    def suggest(self, trial: Trial) -> dict[str, Any]: ...


def checkpoint_path(task: Task, study_name: str, number: int) -> Path | None:
    """Where the trainer checkpoints trial ``number`` of a study (``None``: no checkpoints).

    The folder is the study name made safe for any file system, plus a short hash of the exact
    name, so distinct names never share a folder and no name escapes ``checkpoint_dir``.

    Example:
        >>> from dltune.torch import Task
        >>> str(checkpoint_path(Task(checkpoint_dir="ckpt"), "../x y", 3))
        'ckpt/___x_y-b37c7286/trial-3.pt'
    """
    if task.checkpoint_dir is None:
        return None
    return task.checkpoint_dir / study_folder(study_name) / f"trial-{number}.pt"


def study_folder(study_name: str) -> str:
    """A file-system-safe, collision-free folder name for a study."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in study_name)[:64]
    digest = hashlib.sha1(study_name.encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


def _owner(study_name: str, trial: FrozenTrial) -> dict[str, Any]:
    """Identifies the run that writes a checkpoint: the trial, down to its start time."""
    started = trial.datetime_start.isoformat() if trial.datetime_start else None
    return {"study": study_name, "trial_id": trial.trial_id, "started": started}


class TorchObjective:
    """``objective(trial)``: suggest hyperparameters, train the task, return its metric.

    The space is a :class:`dltune.config.SearchSpace` (what a YAML config describes) or any
    callable ``space(trial) -> dict`` of :class:`HParams` fields, define-by-run. ``fixed``
    values apply under the suggested ones. Each trial trains with the seed ``seed + number``;
    a retried trial continues from the checkpoint of the trial it retries (and with its seed).
    Checkpoints of finished trials (complete, or stopped by a guard) are deleted unless
    ``task.keep_checkpoints``; those of trials a pruner stopped, or that failed, are kept.

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
        trial.set_system_attr(HPARAMS_KEY, hparams.to_dict())
        study_name = trial.study.study_name
        own = checkpoint_path(self.task, study_name, trial.number)
        resume_from, resume_owner = self._predecessor(trial)
        try:
            result = train(
                self.task,
                hparams,
                seed=self.seed + trial.number,
                trial=trial,
                checkpoint=own,
                resume_from=resume_from,
                owner=_owner(study_name, trial._frozen()),
                resume_owner=resume_owner,
            )
        except TrialStopped:
            _remove(own)  # a diverged or stuck run is not worth resuming
            raise
        except TrialPruned:
            self._release(trial, resume_from, own)
            raise
        self._release(trial, resume_from, own)
        # A resumed run keeps the seed of the run it continues.
        trial.set_system_attr(SEED_KEY, result.seed)
        trial.set_user_attr(
            "metrics",
            {
                "val_accuracy": result.val_accuracy,
                "val_loss": result.val_loss,
                "train_loss": result.history[-1].train_loss,
                "epochs": len(result.history),
                "resumed_from_epoch": result.resumed_from_epoch,
                # Training time the checkpoint saved: the restored epochs were not trained again.
                "seconds_saved": round(
                    sum(r.seconds for r in result.history[: result.resumed_from_epoch]), 3
                ),
                "n_params": result.n_params,
                "seconds": round(result.seconds, 3),
            },
        )
        if not self.task.keep_checkpoints:
            _remove(own)  # finished: nothing will resume it
        return result.value

    def _predecessor(self, trial: Trial) -> tuple[Path | None, dict[str, Any] | None]:
        """The checkpoint (and its writer) of the trial this one retries or continues.

        A retry (``retry_of``) continues a FAIL trial whose worker died; a promotion
        (``resume_of``) continues a trial a pruner paused (PRUNED) at a lower budget.
        """
        attrs = trial.system_attrs
        for key, state in ((RETRY_OF_KEY, TrialState.FAIL), (RESUME_OF_KEY, TrialState.PRUNED)):
            number = attrs.get(key)
            if number is None:
                continue
            study = trial.study
            path = checkpoint_path(self.task, study.study_name, int(number))
            if path is None or not path.exists():
                return None, None
            for earlier in study.get_trials(states=(state,)):
                if earlier.number == number:
                    return path, _owner(study.study_name, earlier)
            return None, None
        return None, None

    def _release(self, trial: Trial, resumed: Path | None, own: Path | None) -> None:
        """Delete a paused trial's checkpoint once its continuation has its own."""
        if (
            resumed is not None
            and trial.system_attrs.get(RESUME_OF_KEY) is not None
            and own is not None
            and own.exists()
            and not self.task.keep_checkpoints
        ):
            _remove(resumed)


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
