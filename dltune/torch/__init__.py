"""dltune.torch: a ready PyTorch trainer whose every component is tunable.

Needs the torch extra: ``pip install 'dltune[torch]'``.

Example:
    >>> import dltune
    >>> from dltune.torch import HParams, Task, TorchObjective
    >>> task = Task(dataset="digits", model="mlp", epochs=1, checkpoint_dir=None)
    >>> def space(trial):
    ...     return {"optimizer": trial.suggest_categorical("optimizer", ["sgd", "adam"]),
    ...             "lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}
    >>> study = dltune.create_study(direction="maximize", seed=0)
    >>> study.optimize(TorchObjective(task, space, fixed={"width": 16}), n_trials=2)
    >>> 0.0 <= study.best_value <= 1.0
    True
"""

from __future__ import annotations

from dltune._imports import require

require("torch", extra="torch", feature="dltune.torch")

from dltune.torch._checkpoint import CheckpointError  # noqa: E402
from dltune.torch._checkpoint import load_checkpoint  # noqa: E402
from dltune.torch._hparams import HParams  # noqa: E402
from dltune.torch._hparams import HParamsError  # noqa: E402
from dltune.torch._lr_find import LR_FIND_KEY  # noqa: E402
from dltune.torch._lr_find import LRRangeResult  # noqa: E402
from dltune.torch._lr_find import lr_range_test  # noqa: E402
from dltune.torch._objective import HPARAMS_KEY  # noqa: E402
from dltune.torch._objective import SEED_KEY  # noqa: E402
from dltune.torch._objective import TorchObjective  # noqa: E402
from dltune.torch._objective import checkpoint_path  # noqa: E402
from dltune.torch._objective import study_folder  # noqa: E402
from dltune.torch._pbt import PBT  # noqa: E402
from dltune.torch._pbt import PBT_KEY  # noqa: E402
from dltune.torch._pbt import SCHEDULE_KEY  # noqa: E402
from dltune.torch._pbt_replay import replay_schedule  # noqa: E402
from dltune.torch._pbt_replay import schedule_from_json  # noqa: E402
from dltune.torch._pbt_replay import schedule_to_json  # noqa: E402
from dltune.torch._pbt_result import PBTResult  # noqa: E402
from dltune.torch._pbt_result import PBTSegment  # noqa: E402
from dltune.torch._retrain import RETRAIN_KEY  # noqa: E402
from dltune.torch._retrain import CandidateResult  # noqa: E402
from dltune.torch._retrain import RetrainReport  # noqa: E402
from dltune.torch._retrain import load_model  # noqa: E402
from dltune.torch._retrain import retrain_top_k  # noqa: E402
from dltune.torch._task import Guards  # noqa: E402
from dltune.torch._task import Task  # noqa: E402
from dltune.torch._trainer import MUTABLE_FIELDS  # noqa: E402
from dltune.torch._trainer import EpochRecord  # noqa: E402
from dltune.torch._trainer import TrainResult  # noqa: E402
from dltune.torch._trainer import train  # noqa: E402
from dltune.torch.components import ACTIVATIONS  # noqa: E402
from dltune.torch.components import INITS  # noqa: E402
from dltune.torch.components import LOSSES  # noqa: E402
from dltune.torch.components import OPTIMIZERS  # noqa: E402
from dltune.torch.components import SCHEDULES  # noqa: E402
from dltune.torch.components import apply_init  # noqa: E402
from dltune.torch.components import build_loss  # noqa: E402
from dltune.torch.components import build_optimizer  # noqa: E402
from dltune.torch.components import build_scheduler  # noqa: E402
from dltune.torch.components import make_activation  # noqa: E402
from dltune.torch.datasets import DATASETS  # noqa: E402
from dltune.torch.datasets import Dataset  # noqa: E402
from dltune.torch.datasets import DatasetError  # noqa: E402
from dltune.torch.datasets import DatasetSpec  # noqa: E402
from dltune.torch.datasets import load_dataset  # noqa: E402
from dltune.torch.models import MODELS  # noqa: E402
from dltune.torch.models import build_model  # noqa: E402

__all__ = [
    "ACTIVATIONS",
    "CheckpointError",
    "DATASETS",
    "HPARAMS_KEY",
    "INITS",
    "LOSSES",
    "LR_FIND_KEY",
    "MODELS",
    "MUTABLE_FIELDS",
    "OPTIMIZERS",
    "PBT",
    "PBT_KEY",
    "RETRAIN_KEY",
    "SCHEDULES",
    "SCHEDULE_KEY",
    "SEED_KEY",
    "CandidateResult",
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "EpochRecord",
    "Guards",
    "HParams",
    "HParamsError",
    "LRRangeResult",
    "PBTResult",
    "PBTSegment",
    "RetrainReport",
    "Task",
    "TorchObjective",
    "TrainResult",
    "apply_init",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "checkpoint_path",
    "load_checkpoint",
    "load_dataset",
    "load_model",
    "lr_range_test",
    "make_activation",
    "replay_schedule",
    "retrain_top_k",
    "schedule_from_json",
    "schedule_to_json",
    "study_folder",
    "train",
]
