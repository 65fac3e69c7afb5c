"""Exceptions raised by dltune.

Every exception the library raises on purpose derives from :class:`DLTuneError`, so a user can
catch them all at once. Input errors are also ``ValueError``/``TypeError`` subclasses where that
is the natural type, so ordinary ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = [
    "DLTuneError",
    "DuplicatedStudyError",
    "MissingDependencyError",
    "ReadOnlyStorageError",
    "SchemaVersionError",
    "StorageError",
    "StudyNotFoundError",
    "TrialNotFoundError",
    "TrialPruned",
    "TrialStopped",
    "UnknownNameError",
    "UpdateFinishedTrialError",
]


class DLTuneError(Exception):
    """Base class of every error dltune raises on purpose."""


class TrialPruned(DLTuneError):  # noqa: N818 - the name Optuna users already know
    """Raised inside an objective to stop the trial early; it is stored as PRUNED.

    Example:
        >>> import dltune
        >>> def objective(trial: dltune.Trial) -> float:
        ...     trial.report(1.0, step=0)
        ...     if trial.should_prune():
        ...         raise dltune.TrialPruned()
        ...     return 1.0
    """


class TrialStopped(TrialPruned):
    """A guard stopped the trial: it diverged, or it is not learning.

    Stored as PRUNED with the reason, and with ``kind`` (``"diverged"`` or ``"not_learning"``)
    under the ``stopped_by`` system attribute, so summaries can count these trials apart from
    the ones a pruner stopped (see :attr:`dltune.FrozenTrial.outcome`).

    Example:
        >>> import dltune
        >>> err = dltune.TrialStopped("diverged at epoch 2 step 17: loss=nan", kind="diverged")
        >>> err.kind, str(err)
        ('diverged', 'diverged at epoch 2 step 17: loss=nan')
    """

    KINDS = ("diverged", "not_learning")

    def __init__(self, reason: str, *, kind: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind={kind!r} is not one of {', '.join(self.KINDS)}")
        super().__init__(reason)
        self.kind = kind


class UnknownNameError(DLTuneError, ValueError):
    """A name no registry entry (or alias) answers to: an optimizer, a data set, a sampler...

    The message lists the valid names.
    """


class StorageError(DLTuneError):
    """The storage backend failed in a way retries could not fix."""


class ReadOnlyStorageError(StorageError):
    """A write was attempted on a storage opened read-only (or from a newer schema)."""


class SchemaVersionError(StorageError):
    """The database schema is older or newer than this version of dltune understands."""


class StudyNotFoundError(DLTuneError, KeyError):
    """No study of the given name or id exists in the storage."""

    def __str__(self) -> str:  # KeyError quotes its message; keep ours readable
        return str(self.args[0]) if self.args else ""


class DuplicatedStudyError(DLTuneError, ValueError):
    """A study of that name already exists (pass ``load_if_exists=True`` to reuse it)."""


class TrialNotFoundError(DLTuneError, KeyError):
    """No trial with the given id exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UpdateFinishedTrialError(DLTuneError, RuntimeError):
    """A trial that is already finished (COMPLETE, PRUNED or FAIL) cannot be changed."""


class MissingDependencyError(DLTuneError, ImportError):
    """An optional dependency needed by a feature is not installed."""
