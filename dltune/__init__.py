"""dltune: hyperparameter optimization and model tuning for deep learning.

Example:
    >>> import dltune
    >>> study = dltune.create_study(seed=0)
    >>> study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=10)
    >>> len(study.trials)
    10
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

from dltune._trial import Trial
from dltune._trial import trial_seed
from dltune.exceptions import DLTuneError
from dltune.exceptions import DuplicatedStudyError
from dltune.exceptions import MissingDependencyError
from dltune.exceptions import StorageError
from dltune.exceptions import StudyNotFoundError
from dltune.exceptions import TrialPruned
from dltune.exceptions import TrialStopped
from dltune.exceptions import UnknownNameError
from dltune.study import Study
from dltune.study import create_study
from dltune.study import delete_study
from dltune.study import get_all_study_names
from dltune.study import list_studies
from dltune.study import load_study
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune import analysis as analysis
    from dltune import config as config
    from dltune import dashboard as dashboard
    from dltune import execution as execution
    from dltune import presets as presets
    from dltune import pruners as pruners
    from dltune import samplers as samplers
    from dltune import space as space
    from dltune import storage as storage

__version__ = "0.1.0"

__all__ = [
    "DLTuneError",
    "DuplicatedStudyError",
    "FrozenTrial",
    "MissingDependencyError",
    "StorageError",
    "Study",
    "StudyDirection",
    "StudyNotFoundError",
    "Trial",
    "TrialPruned",
    "TrialStopped",
    "TrialState",
    "UnknownNameError",
    "analysis",
    "config",
    "create_study",
    "dashboard",
    "delete_study",
    "execution",
    "get_all_study_names",
    "list_studies",
    "load_study",
    "presets",
    "pruners",
    "samplers",
    "space",
    "storage",
    "trial_seed",
]

_SUBMODULES = {
    "analysis",
    "config",
    "dashboard",
    "execution",
    "presets",
    "pruners",
    "samplers",
    "space",
    "storage",
    "testing",
    "torch",
}


def __getattr__(name: str) -> Any:
    """Load subpackages on first use, keeping ``import dltune`` light."""
    if name in _SUBMODULES:
        return importlib.import_module(f"dltune.{name}")
    raise AttributeError(f"module 'dltune' has no attribute {name!r}")
