"""Executors: where a study's workers run.

:class:`DaskExecutor` imports ``distributed`` only when one is created, so importing this
package does not need Dask.
"""

from dltune.execution._base import BaseExecutor
from dltune.execution._dask import DaskExecutor
from dltune.execution._dask import SchedulerConnectionError
from dltune.execution._job import OptimizeJob
from dltune.execution._local import LocalExecutor
from dltune.execution._objective_ref import ObjectiveRef
from dltune.execution._worker import run_worker

__all__ = [
    "BaseExecutor",
    "DaskExecutor",
    "LocalExecutor",
    "ObjectiveRef",
    "OptimizeJob",
    "SchedulerConnectionError",
    "run_worker",
]
