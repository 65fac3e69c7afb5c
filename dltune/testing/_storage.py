"""The storage conformance suite: what every :class:`~dltune.storage.BaseStorage` must do."""

from __future__ import annotations

from dltune.testing._storage_studies import StudyChecks
from dltune.testing._storage_trials import TrialChecks
from dltune.testing._storage_values import ValueChecks

__all__ = ["StorageConformance"]


class StorageConformance(StudyChecks, TrialChecks, ValueChecks):
    """Checks every operation of the storage contract in :class:`~dltune.storage.BaseStorage`.

    Subclass it under a name pytest collects and implement :meth:`make_storage`; override
    :meth:`row_counts` to also count rows behind the storage's back (a SQL storage counts its
    tables), so that refused inputs are shown to write nothing at all.

    Example:
        >>> from dltune.storage import InMemoryStorage
        >>> class TestInMemoryStorage(StorageConformance):
        ...     def make_storage(self) -> InMemoryStorage:
        ...         return InMemoryStorage()
    """
