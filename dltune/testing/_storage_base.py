"""The storage conformance suite's shared parts: factory hooks, fixtures, data, helpers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from dltune.storage import BaseStorage
from dltune.testing._rows import count_rows
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["StorageChecks"]

MIN = StudyDirection.MINIMIZE
MAX = StudyDirection.MAXIMIZE
INF = math.inf

#: Study names a storage must keep verbatim: (test id, name).
VERBATIM_NAMES = [
    ("quotes", 'it\'s a "quoted" `name`'),
    ("sql-injection", "x'); DROP TABLE studies; --"),
    ("like-wildcards", "100%_match\\"),
    ("whitespace", "  padded\tname\n"),
    ("emoji", "\U0001f9ea study \u2728 \u4e2d\u6587 \u05e2\u05d1\u05e8\u05d9\u05ea"),
    ("10kB", "n" * 10_000),
    ("case", "Study"),
]

_STORAGE_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    # One storage serves every example (each uses fresh keys or trials), and subclasses run the
    # same test methods: both are intended.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)

_KEYS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=20
).map(lambda s: f"k_{s}")
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _template(state: TrialState, values: list[float] | None = None, **kw: Any) -> FrozenTrial:
    return FrozenTrial(number=-1, trial_id=-1, state=state, values=values, **kw)


class StorageChecks:
    """The hooks and fixtures every part of :class:`~dltune.testing.StorageConformance` uses."""

    def make_storage(self) -> BaseStorage:
        """Return a new, empty storage. Called once per test."""
        raise NotImplementedError("subclasses of StorageConformance implement make_storage()")

    def row_counts(self, storage: BaseStorage) -> dict[str, int]:
        """What ``storage`` holds, as counts; equal before and after a refused call."""
        return count_rows(storage)

    @pytest.fixture
    def storage(self) -> Iterator[BaseStorage]:
        """The storage under test, closed afterwards."""
        storage = self.make_storage()
        try:
            yield storage
        finally:
            storage.close()

    @pytest.fixture
    def study_id(self, storage: BaseStorage) -> int:
        """A single-objective study to minimize."""
        return storage.create_new_study([MIN], "conformance")
