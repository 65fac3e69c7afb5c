"""Executors: where a study's workers run."""

from dltune.execution._base import BaseExecutor
from dltune.execution._job import OptimizeJob
from dltune.execution._local import LocalExecutor
from dltune.execution._worker import run_worker

__all__ = [
    "BaseExecutor",
    "LocalExecutor",
    "OptimizeJob",
    "run_worker",
]
