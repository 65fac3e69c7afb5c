"""The divergence benchmark (``python -m benchmarks divergence``): its surface and its report."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import divergence  # type: ignore[import-untyped]  # no py.typed

REPO = Path(__file__).resolve().parents[2]


def test_surface_diverges_above_the_limit_and_is_best_below_it() -> None:
    base = {"optimizer": "adam", "weight_decay": 1e-4, "batch_size": 64}
    with pytest.raises(divergence.Diverged):
        divergence.surface({**base, "lr": 0.03})
    best = divergence.surface({**base, "lr": 0.005})  # a quarter of the limit 0.02
    worse = divergence.surface({**base, "lr": 0.0005})
    assert best < worse
    assert math.isclose(best, 0.05, abs_tol=0.01)
    # momentum lowers sgd's limit
    sgd = {**base, "optimizer": "sgd", "lr": 0.5}
    divergence.surface({**sgd, "momentum": 0.0})
    with pytest.raises(divergence.Diverged):
        divergence.surface({**sgd, "momentum": 0.9})


@pytest.mark.slow
def test_quick_run_reports_every_sampler(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "divergence", "--quick", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "**Learning diverged trials as bad helps:" in text
    for name in divergence.RUNNERS:
        assert f"| {name} |" in text
