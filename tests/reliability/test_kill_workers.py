"""Fault injection 1: worker processes SIGKILLed mid-study on one SQLite file.

Workers are real ``dltune worker`` processes sharing the study's budget (``--n-trials`` is the
study's total). A killed worker's trial goes stale after its grace period and, with
``--max-retries``, is retried as a new trial that takes its place in the budget: the study
must end with exactly ``n_trials`` COMPLETE trials, nothing RUNNING or WAITING, unique and
gapless numbers, and no error in any worker's stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_helpers import WorkerOptions  # noqa: E402
from reliability_scenarios import KillReport  # noqa: E402
from reliability_scenarios import run_kill_scenario  # noqa: E402
from reliability_scenarios import run_last_trial_kill  # noqa: E402


def _check_exact(report: KillReport) -> None:
    """Everything the scenario promises, each with the facts in its message."""
    found = report.census
    assert report.problems == [], "errors in the workers' stderr"
    assert report.exit_codes and set(report.exit_codes) == {0}, report.exit_codes
    assert found.count("COMPLETE") == report.n_trials, found
    assert found.count("RUNNING") == 0, found
    assert found.count("WAITING") == 0, f"a retry was never run: {found}"
    assert found.duplicate_numbers == [] and found.missing_numbers == [], found
    assert found.n_budget == report.n_trials, found
    # Every FAIL is a killed trial, and each was replaced by a retry that ran its params.
    assert set(found.reasons) <= {"stale"}, found
    assert found.count("FAIL") == found.n_stale == found.n_retries, found
    assert found.unretried == [] and found.params_mismatch == [], found
    assert found.n_trials == report.n_trials + found.n_retries, found


def test_a_worker_killed_in_its_last_trial_is_retried_by_the_survivors(tmp_path: Path) -> None:
    # The dead worker is not replaced, and the budget is all claimed when it dies: its retry
    # exists only once its grace period (3 s) has passed, after the survivors' last trials
    # (at most 1 s) ended. A survivor that leaves as soon as it can claim nothing more is
    # gone by then, and the retry stays WAITING for ever.
    options = WorkerOptions(
        url=f"sqlite:///{tmp_path / 'last.db'}",
        study_name="last",
        n_trials=9,
        objective="reliability_worker:steady",
        heartbeat_seconds=0.5,
        grace_seconds=3.0,
    )
    report = run_last_trial_kill(options, n_workers=3, log_dir=tmp_path)
    assert len(report.kills) == 1, "no worker was caught mid-trial"
    found = report.census
    assert found.count("RUNNING") == found.count("WAITING") == 0, (
        f"the survivors left without waiting for the dead worker's trial to go stale and "
        f"running its retry: {found}"
    )
    assert found.n_stale == 1, found
    _check_exact(report)


@pytest.mark.slow
@pytest.mark.timeout(400)  # ~50 s on 2 idle cores; several times that on a loaded machine
def test_8_workers_x_200_trials_with_a_kill_every_5_s(tmp_path: Path) -> None:
    options = WorkerOptions(
        url=f"sqlite:///{tmp_path / 'kill.db'}", study_name="kill", n_trials=1600
    )
    report = run_kill_scenario(options, n_workers=8, kill_every=5.0, log_dir=tmp_path)
    assert len(report.kills) >= 4, report.kills
    assert report.census.n_stale >= 1, report.census
    _check_exact(report)
