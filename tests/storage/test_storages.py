"""Every storage through the conformance suite, and what only SQL storages share."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dltune.storage import BaseStorage
from dltune.storage import InMemoryStorage
from dltune.testing import StorageConformance
from dltune.testing import copy_sqlite
from dltune.testing import count_rows
from dltune.testing import count_sql_rows
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.storage import SQLStorage


class TestInMemoryStorage(StorageConformance):
    def make_storage(self) -> BaseStorage:
        return InMemoryStorage()


class _SQLConformance(StorageConformance):
    """Counts the database's rows too: a refused input must not leave a single row behind."""

    url: str

    def make_storage(self) -> BaseStorage:
        from dltune.storage import SQLStorage

        return SQLStorage(self.url)

    def row_counts(self, storage: BaseStorage) -> dict[str, int]:
        tables = {f"table {name}": n for name, n in count_sql_rows(self.url).items()}
        return {**count_rows(storage), **tables}


class TestSQLiteStorage(_SQLConformance):
    @pytest.fixture(autouse=True)
    def _url(self, sqlite_template: Path, tmp_path: Path) -> None:
        self.url = copy_sqlite(sqlite_template, tmp_path)


@pytest.mark.postgres
class TestPostgreSQLStorage(_SQLConformance):
    @pytest.fixture(autouse=True)
    def _url(self, fresh_postgres_url: str) -> None:
        self.url = fresh_postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return copy_sqlite(sqlite_template, tmp_path)
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def two_handles(sql_url: str) -> Iterator[tuple[SQLStorage, SQLStorage]]:
    from dltune.storage import SQLStorage

    first, second = SQLStorage(sql_url), SQLStorage(sql_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_handles_on_one_database_share_numbers_and_budget(
    two_handles: tuple[SQLStorage, SQLStorage],
) -> None:
    first, second = two_handles
    study_id = first.create_new_study([StudyDirection.MINIMIZE], "shared")
    assert second.get_study_id_from_name("shared") == study_id

    def claim_until_spent(storage: SQLStorage) -> list[int]:
        numbers = []
        while (trial := storage.claim_trial(study_id, max_trials=40)) is not None:
            numbers.append(trial.number)
        return numbers

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(claim_until_spent, s) for s in (first, second) * 2]
        numbers = sorted(n for f in futures for n in f.result())
    assert numbers == list(range(40))
    assert second.get_n_trials(study_id, (TrialState.RUNNING,)) == 40


def test_handle_sees_the_other_handles_writes(two_handles: tuple[SQLStorage, SQLStorage]) -> None:
    first, second = two_handles
    study_id = first.create_new_study([StudyDirection.MINIMIZE], "shared")
    trial = first.create_new_trial(study_id)
    assert second.get_all_trials(study_id)[0].state == TrialState.RUNNING  # second caches now
    first.set_trial_intermediate_value(trial.trial_id, 0, 0.5)
    first.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, [0.5])
    (seen,) = second.get_all_trials(study_id)
    assert (seen.state, seen.values, seen.intermediate_values) == (
        TrialState.COMPLETE,
        [0.5],
        {0: 0.5},
    )
    best = second.get_best_trial(study_id)
    assert best is not None
    assert best.trial_id == trial.trial_id
    first.delete_study(study_id)
    assert second.get_all_studies() == []
