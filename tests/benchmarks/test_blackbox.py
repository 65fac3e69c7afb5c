"""The black-box benchmark (``python -m benchmarks blackbox``) end to end, in its quick mode.

Run as a user runs it, in a child process from the repository root, with the samplers every
checkout has (dltune's and Optuna's random search), into a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- BEGIN blackbox -->", "<!-- END blackbox -->"
OPTIMIZERS = ("dltune random", "Optuna RandomSampler")


def _benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "blackbox", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def _section(path: Path) -> list[str]:
    text = path.read_text()
    assert BEGIN in text and END in text
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip().splitlines()


def _table(lines: list[str], heading: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table under ``heading``, its header row first."""
    start = lines.index(heading) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_quick_run_reports_the_tables_and_rebuilds_them_from_the_raw_results(
    tmp_path: Path,
) -> None:
    work, results = tmp_path / "work", tmp_path / "RESULTS.md"
    common = ["--quick", "--blackbox-work-dir", str(work)]
    samplers = ["--blackbox-samplers", "random", "--blackbox-optuna-samplers", "random"]

    done = _benchmark(*common, *samplers, "--output", str(results))

    assert done.returncode == 0, done.stderr[-3000:]
    lines = _section(results)
    assert lines[0].startswith("## Black-box optimisation on BBOB")
    assert lines[2].startswith("- Command: `python -m benchmarks blackbox --quick")
    regret_table = _table(lines, "### Median final regret over 1 seed, budget 50")
    assert regret_table[0] == ["Function", "Dim", *OPTIMIZERS]
    assert [row[:2] for row in regret_table[1:]] == [["f1 sphere", "2"], ["f8 Rosenbrock", "2"]]
    for row in regret_table[1:]:
        assert all(float(cell.strip("*")) >= 0 for cell in row[2:]), row
    ranks = _table(
        lines, "### Mean rank (1 = best; rank of the median regret among all optimizers)"
    )
    assert sorted(row[0] for row in ranks[1:]) == sorted(OPTIMIZERS)
    # Two optimizers: their mean ranks add up to 3 on every problem.
    assert sum(float(row[1].strip("*")) for row in ranks[1:]) == pytest.approx(3.0)
    wins = _table(lines, "### Win rate of each dltune sampler against Optuna's")
    assert wins[1][:2] == list(OPTIMIZERS)
    assert "### Targets" in lines
    assert any(line.startswith("### CPU per trial") for line in lines)
    assert (
        "- Runs that found a value below f_opt (a negative regret): 0 (none, as it must be)."
        in lines
    )

    raw = json.loads((work / "blackbox-quick-regret.json").read_text())
    assert len(raw["runs"]) == 4  # 2 problems x 2 optimizers x 1 seed
    assert all(len(run["values"]) == 50 and run["error"] is None for run in raw["runs"])
    assert (work / "blackbox-quick-cost.json").exists()

    rebuilt_path = tmp_path / "REBUILT.md"
    rebuilt = _benchmark(*common, "--blackbox-report-only", "--output", str(rebuilt_path))

    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    again = _section(rebuilt_path)
    assert [line for line in again if not line.startswith("- Section rebuilt")] == lines


def test_an_unknown_dltune_sampler_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    done = _benchmark(
        "--quick",
        "--blackbox-samplers",
        "nosuch",
        "--blackbox-work-dir",
        str(tmp_path),
        "--output",
        str(tmp_path / "RESULTS.md"),
    )

    assert done.returncode != 0
    assert "--blackbox-samplers='nosuch': unknown sampler 'nosuch'; valid names: random" in (
        done.stderr
    )
    assert not (tmp_path / "RESULTS.md").exists()
