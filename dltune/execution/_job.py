"""What an executor runs: one study's workers, with the objective and the budget."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from dltune.pruners import BasePruner
    from dltune.samplers import BaseSampler
    from dltune.storage import BaseStorage
    from dltune.study import Objective
    from dltune.study import Study

__all__ = ["OptimizeJob"]


@dataclass
class OptimizeJob:
    """Everything a worker needs to join a study and run trials.

    Attributes:
        storage: The study's storage.
        study_name: The study.
        sampler: A copy of the study's sampler.
        pruner: A copy of the study's pruner.
        objective: The objective.
        n_trials: The study's trial budget (``None``: unbounded).
        deadline: Epoch seconds after which no trial starts (``None``: none).
        catch: ``None`` to keep going after any exception; else the exception types that do not
            stop the study.
        batch_size: ``k`` for a batch-synchronous run: a trial of batch ``n // k`` starts once
            every trial of the earlier batches finished, and its sampler and pruner see only
            those (see :func:`~dltune.execution.run_worker`); ``None``: trials start at once.
    """

    storage: BaseStorage
    study_name: str
    sampler: BaseSampler
    pruner: BasePruner
    objective: Objective
    n_trials: int | None
    deadline: float | None
    catch: tuple[type[Exception], ...] | None
    batch_size: int | None = None

    @classmethod
    def build(
        cls,
        study: Study,
        objective: Any,
        n_trials: int | None,
        timeout: float | None,
        catch: Iterable[type[Exception]] | None,
        *,
        batch_size: int | None = None,
    ) -> OptimizeJob:
        """Validate ``optimize``'s arguments into a job.

        Raises:
            TypeError: For a non-callable objective or a wrong argument type.
            ValueError: For a negative ``n_trials``, a non-positive ``timeout`` or
                ``batch_size``.
        """
        if not callable(objective):
            raise TypeError(f"func={objective!r} is not callable; pass objective(trial) -> value")
        if n_trials is not None:
            if isinstance(n_trials, bool) or not isinstance(n_trials, int):
                raise TypeError(f"n_trials={n_trials!r} must be an int or None")
            if n_trials < 0:
                raise ValueError(f"n_trials={n_trials!r} must be >= 0")
        deadline = None
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout={timeout!r} must be a number of seconds or None")
            if not timeout > 0:
                raise ValueError(f"timeout={timeout!r} must be > 0 seconds")
            deadline = time.time() + float(timeout)
        catch_tuple = None
        if catch is not None:
            catch_tuple = tuple(catch)
            for exc_type in catch_tuple:
                if not (isinstance(exc_type, type) and issubclass(exc_type, Exception)):
                    raise TypeError(f"catch holds {exc_type!r}, which is not an Exception class")
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int):
                raise TypeError(
                    f"batch_size={batch_size!r} must be an int (the trials per batch) or None"
                )
            if batch_size < 1:
                raise ValueError(
                    f"batch_size={batch_size!r} must be >= 1 (usually the number of workers), "
                    "or None to run without batches"
                )
        return cls(
            study._storage,
            study.study_name,
            study.sampler,
            study.pruner,
            objective,
            n_trials,
            deadline,
            catch_tuple,
            batch_size,
        )
