"""The executor base: where a study's workers run."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dltune.execution._job import OptimizeJob

__all__ = ["BaseExecutor"]


class BaseExecutor(abc.ABC):
    """Runs a study's worker loops somewhere: this process, local processes, a cluster.

    Workers coordinate only through the study's storage; the executor starts them, relays each
    finished trial to ``on_finished`` in the calling process, and stops starting trials once
    ``on_finished`` returns ``True``.
    """

    def status(self) -> str | None:
        """What the workers are waiting for, if anything (the live display shows it); safe to
        call from any thread while :meth:`run` runs."""
        return None

    @abc.abstractmethod
    def run(self, job: OptimizeJob, on_finished: Callable[[int], bool]) -> None:
        """Run the job to its end; ``on_finished(trial_id)`` returns whether to stop."""
