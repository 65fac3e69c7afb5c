"""Fault injection 3: the PostgreSQL server restarts in the middle of a study.

A private throwaway cluster (initdb + pg_ctl on 127.0.0.1 in a temporary directory, so that
it can be restarted without disturbing the suite's shared server) serves 4 ``dltune worker``
processes on a shared budget. Once a third of the budget exists the server is stopped in fast
mode (sessions cut, open transactions rolled back), left down for 2 s and started again. The
workers must ride it out: reconnect, re-run the interrupted transactions, and end the budget
exactly, with nothing lost or duplicated. A trial whose claim committed but whose answer was
lost would be left RUNNING by nobody; it must then fail as stale and be retried in its place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_helpers import WorkerOptions  # noqa: E402
from reliability_pg import PgCluster  # noqa: E402
from reliability_pg import pg_unavailable  # noqa: E402
from reliability_scenarios import run_restart_scenario  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A private cluster; skips (loudly, with the reason) when PostgreSQL cannot be had, or
    fails instead when DLTUNE_TEST_REQUIRE_POSTGRES=1."""
    reason = pg_unavailable()
    if reason is not None:
        message = f"NO POSTGRESQL RESTART TEST: {reason}"
        if os.environ.get("DLTUNE_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (DLTUNE_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    server = PgCluster()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.timeout(300)  # ~25 s on 2 idle cores
def test_workers_ride_out_a_server_restart(cluster: PgCluster, tmp_path: Path) -> None:
    options = WorkerOptions(url=cluster.url, study_name="restart", n_trials=150)
    report = run_restart_scenario(cluster, options, n_workers=4, log_dir=tmp_path)
    found = report.census
    assert 0 < report.trials_at_stop < report.n_trials, "the restart did not fall mid-study"
    assert report.problems == [], "errors in the workers' stderr"
    assert report.exit_codes == [0] * 4
    assert found.count("COMPLETE") == report.n_trials, found
    assert found.count("RUNNING") == 0 and found.count("WAITING") == 0, found
    assert found.duplicate_numbers == [] and found.missing_numbers == [], found
    assert found.n_budget == report.n_trials, found
    # Anything the restart cut off failed as stale and was retried with its params.
    assert set(found.reasons) <= {"stale"}, found
    assert found.count("FAIL") == found.n_stale == found.n_retries, found
    assert found.unretried == [] and found.params_mismatch == [], found
