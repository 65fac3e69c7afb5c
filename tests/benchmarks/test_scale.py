"""The scale benchmark (``benchmarks/scale.py``): its study, its bulk insert and its report."""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from benchmarks import _scale_data  # type: ignore[import-untyped]  # no py.typed
from benchmarks import _scale_write
from benchmarks import scale
from benchmarks._scale_report import percentile  # type: ignore[import-untyped]


def test_the_generated_study_is_mixed_and_conditional() -> None:
    study = _scale_data.generate(600, n_steps=20, seed=3)
    outcomes = study.outcomes()
    assert set(outcomes) == {"complete", "pruned", "diverged", "fail"}
    assert outcomes["complete"] > outcomes["diverged"] > outcomes["fail"] > 0
    trials = [_scale_data.template(study, i) for i in range(study.n_trials)]
    kinds = Counter(type(d).__name__ for d in trials[0].distributions.values())
    assert kinds["CategoricalDistribution"] == 5 and kinds["IntDistribution"] == 5
    for t in trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert len(t.params) == (20 if "momentum" in t.params else 19)
        assert t.datetime_start < t.datetime_complete
        n = len(t.intermediate_values)
        assert n == 20 if t.state.name == "COMPLETE" else 1 <= n < 20
        if t.system_attrs.get("stopped_by") == "diverged":
            assert math.isnan(t.intermediate_values[n - 1])
    again = _scale_data.generate(600, n_steps=20, seed=3)
    assert again.states == study.states and again.start == study.start


def test_bulk_insert_matches_what_the_api_stores(tmp_path: Path) -> None:
    study = _scale_data.generate(300, n_steps=12)
    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    _scale_write.write_dltune(url, study, "bulk")
    assert _scale_write.check_dltune_twins(url, study, "bulk") == []
    # the check sees a difference in any table: a report (read from the snapshot, so only the
    # rows differ), then the snapshot itself (which the public API reads)
    first = "WHERE trial_id = (SELECT trial_id FROM trials WHERE number = 0)"
    for statement, kinds in (
        (f"UPDATE trial_intermediate_values SET value = value + 1e-12 {first} AND step = 3",
         ["rows"]),
        (f"UPDATE trial_snapshots SET system_attrs = '{{\"worker\":\"h:9\"}}' {first}",
         ["rows", "API read", "template"]),
    ):  # fmt: skip
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()
        found = _scale_write.check_dltune_twins(url, study, "bulk")
        assert [line.split(":")[0] for line in found] == kinds
        assert all(line.split(": ")[1] == "trial 0" for line in found)


def test_optuna_bulk_insert_reads_back_as_optuna_writes_it(tmp_path: Path) -> None:
    study = _scale_data.generate(200, n_steps=12)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    _scale_write.write_optuna(url, study, "bulk")
    assert _scale_write.check_optuna_twins(url, study, "bulk") == []


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 201)]
    assert percentile(values, 99) == 198.0
    assert percentile(values, 50) == 100.0
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 99))


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    scale.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match=r"--scale-backends='sqlite,mysql': unknown \['mysql'\]"):
        scale.settings_of(_args("--scale-backends", "sqlite,mysql"))


def _quick(backend: str) -> str:
    messages: list[str] = []
    section: str = scale.run(
        _args("--quick", "--scale-backends", backend), "test", messages.append
    )
    assert any("load" in m for m in messages)
    return section


def _check_section(section: str, backend: str) -> None:
    name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
    assert section.startswith("## Large studies: 2,000 trials x 20 parameters x 50 reports")
    assert section.count("twin check ok") == 3, section
    rows: dict[str, Any] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith(f"| {name}") and len(cells) == 4:
            rows[cells[0]] = cells[1:]
    load = next(k for k in rows if k.startswith(f"{name}, 2,000 trials: load_study + trials"))
    assert rows[load][1:] == ["< 5 s", "PASS"]
    best = rows[f"{name}, 2,000 trials: best_trial, cold (worst), by SQL on an index"]
    assert best[2] in ("PASS", "**MISS**") and best[0].endswith(" ms")
    assert f"{name}, 1,000 trials: dltune / Optuna, load_study + trials, wall" in rows
    # both tools found the same best trial of the same study
    tables = [line for line in section.splitlines() if line.startswith(("| dltune", "| optuna"))]
    table = [[c.strip() for c in t.strip("|").split("|")] for t in tables]
    best_of = {c[0] + c[2]: c[-1] for c in table if len(c) == 10 and c[3] not in scale.SAMPLERS}
    assert best_of["dltune1,000"] == best_of["optuna1,000"]


@pytest.mark.slow
def test_quick_run_on_sqlite() -> None:
    """~45 s: 2,000 and 1,000 trials written, then 15 fresh measuring processes."""
    _check_section(_quick("sqlite"), "sqlite")


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_run_on_postgres(postgres_url: str) -> None:
    """~60 s: as on SQLite, in new databases of the test server."""
    _check_section(_quick("postgres"), "postgres")
