"""Fault injection 2: many processes create the same study on a new SQLite file at once.

Every racer imports dltune, waits at a barrier (a file appearing), then calls
``create_study(study_name=..., storage=url, load_if_exists=True)`` on a database that does
not exist yet (so they also race to create the schema) and runs two trials by ask/tell.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_scenarios import run_create_race  # noqa: E402

N_TRIALS_EACH = 2


def _race(tmp_path: Path, n_processes: int) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    assert not (tmp_path / "race.db").exists()
    report = run_create_race(url, "race", n_processes, N_TRIALS_EACH, tmp_path)
    assert report.problems == [], "errors in the racers' stderr"
    assert report.exit_codes == [0] * n_processes
    assert report.n_studies == 1
    assert len(report.study_ids) == n_processes and len(set(report.study_ids)) == 1
    n_total = n_processes * N_TRIALS_EACH
    # Each racer got the numbers of the trials it ran, and all of them are stored COMPLETE.
    assert report.numbers == list(range(n_total))
    assert report.census.states == {"COMPLETE": n_total}
    assert report.census.duplicate_numbers == [] and report.census.missing_numbers == []


def test_4_processes_create_one_study(tmp_path: Path) -> None:
    _race(tmp_path, 4)


@pytest.mark.slow
@pytest.mark.timeout(400)  # ~30 s on 2 idle cores (32 imports of dltune); more when loaded
def test_32_processes_create_one_study(tmp_path: Path) -> None:
    _race(tmp_path, 32)
