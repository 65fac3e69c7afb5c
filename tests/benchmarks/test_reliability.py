"""The reliability benchmark (``python -m benchmarks.reliability``): its arithmetic, its report
and a quick run of everything it measures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import reliability  # type: ignore[import-untyped]  # no py.typed

REPO = Path(__file__).resolve().parents[2]


def _run(config: str, k: int, wall: float, span: float, n_complete: int) -> reliability.Run:
    return reliability.Run(
        config, k, 4 * k, 1.0, wall, span, {"COMPLETE": n_complete, "FAIL": 4 * k - n_complete}
    )


def test_efficiency_counts_complete_trials_over_worker_time() -> None:
    run = _run("dltune-processes", 8, wall=5.0, span=4.0, n_complete=32)
    assert run.efficiency == pytest.approx(32 / 40)
    assert run.steady == pytest.approx(1.0)
    failed = _run("dltune-processes", 8, wall=4.0, span=4.0, n_complete=16)
    assert failed.efficiency == pytest.approx(0.5)


def test_report_judges_the_largest_k_and_shows_the_gap() -> None:
    runs = [
        _run("dltune-processes", 1, 4.0, 4.0, 4),
        _run("dltune-processes", 8, 4.0 / 0.9, 4.0 / 0.97, 32),
        _run("optuna-processes", 1, 4.0, 4.0, 4),
        _run("optuna-processes", 8, 8.0, 5.0, 32),
    ]
    configs = ["dltune-processes", "optuna-processes"]
    text = "\n".join(reliability.efficiency_report(runs, configs, [1, 8], 4, 1.0, "not used"))
    assert "at 8 workers" in text
    assert (
        "| dltune, SQLite, k processes: start signal to last exit | 90.0% | ≥ 95.0% | "
        "**MISS** (gap 5.0 points) |" in text
    )
    assert "steady state (first trial start to last trial end) | 97.0% | ≥ 95.0% | PASS |" in text
    # dltune 90% against Optuna's 32 / (8 x 8) = 50% at k = 8
    assert "| SQLite, k processes | 8 | 1.800 | 90.0% | 50.0% |" in text


@pytest.mark.slow
@pytest.mark.timeout(400)  # ~60 s on 2 idle cores: 8 efficiency runs and scenarios 1-3, small
def test_quick_run_reports_every_part(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reliability", "--quick", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "<!-- BEGIN reliability -->" in text and "<!-- END reliability -->" in text
    assert "## Reliability: parallel efficiency and fault injection" in text
    for label in reliability.LABELS.values():
        if "PostgreSQL" not in label:
            assert f"| {label} | 1 |" in text and f"| {label} | 2 |" in text, label
    for heading in ("### 1. 3 `dltune worker` processes", "### 2. 4 processes", "### 3. "):
        assert heading in text
    assert "**FAILED**" not in text, "a scenario raised"
