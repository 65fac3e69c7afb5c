"""Conformance suites for storages, samplers and pruners, to run over your own plug-ins.

Each suite is a pytest test class with a factory hook. Subclass it in a test module under a name
pytest collects (``Test...``), implement the factory, and every implementation gets the same
checks dltune's own storages, samplers and pruners pass.

This package needs pytest and Hypothesis (``pip install 'dltune[dev]'``); ``import dltune`` never
imports it.

Example:
    >>> from dltune.storage import InMemoryStorage
    >>> from dltune.testing import StorageConformance
    >>> class TestMyStorage(StorageConformance):
    ...     def make_storage(self) -> InMemoryStorage:
    ...         return InMemoryStorage()
"""

from __future__ import annotations

import pytest

# The suites' plain asserts get pytest's detailed failure messages, as in a test module. This
# must run before the suite modules are imported.
pytest.register_assert_rewrite(
    "dltune.testing._pruner",
    "dltune.testing._rows",
    "dltune.testing._sampler",
    "dltune.testing._storage",
    "dltune.testing._storage_base",
    "dltune.testing._storage_studies",
    "dltune.testing._storage_trials",
    "dltune.testing._storage_values",
)

from dltune.testing._pruner import PrunerConformance  # noqa: E402
from dltune.testing._rows import CountedStorage  # noqa: E402
from dltune.testing._rows import copy_sqlite  # noqa: E402
from dltune.testing._rows import count_rows  # noqa: E402
from dltune.testing._rows import count_sql_rows  # noqa: E402
from dltune.testing._sampler import EVERY_KIND_SPACE  # noqa: E402
from dltune.testing._sampler import ConditionalSpace  # noqa: E402
from dltune.testing._sampler import SamplerConformance  # noqa: E402
from dltune.testing._sampler import suggest  # noqa: E402
from dltune.testing._storage import StorageConformance  # noqa: E402

__all__ = [
    "EVERY_KIND_SPACE",
    "ConditionalSpace",
    "CountedStorage",
    "PrunerConformance",
    "SamplerConformance",
    "StorageConformance",
    "copy_sqlite",
    "count_rows",
    "count_sql_rows",
    "suggest",
]
