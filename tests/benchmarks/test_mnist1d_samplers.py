"""The MNIST-1D sampler benchmark: its statistics, its space, and a --quick run end to end."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

import dltune
from benchmarks import mnist1d_samplers as bench  # type: ignore[import-untyped]  # no py.typed
from dltune.samplers import RandomSampler
from dltune.torch import HParams


def _run(sampler: str, seed: int, values: list[float | None], outcome: str = "complete") -> Any:
    trials: list[dict[str, Any]] = [
        {
            "number": i,
            "outcome": outcome if v is None else "complete",
            "value": v,
            "params": {},
            "train_seconds": 1.0,
        }
        for i, v in enumerate(values)
    ]
    return {"sampler": sampler, "seed": seed, "n_trials": len(values), "trials": trials}


PARAMS = {
    "lr": 0.01,
    "optimizer": "sgd",
    "activation": "relu",
    "loss": "cross_entropy",
    "init": "kaiming",
    "batch_size": 32,
    "weight_decay": 1e-4,
    "width": 32,
    "dropout": 0.1,
    "momentum": 0.9,
}


def _full_run(sampler: str, seed: int, values: list[float | None]) -> Any:
    """A run as ``run_one`` returns it; trial i's params differ by lr unless i < 2."""
    run = _run(sampler, seed, values, outcome="diverged")
    for t in run["trials"]:
        t["params"] = {**PARAMS, "lr": 0.01 if t["number"] < 2 else 0.01 + len(sampler)}
    notes = [
        {"sampler": "gp", "reason": "nothing known", "from_trial": 0},
        {"sampler": "tpe", "reason": "a conditional space", "from_trial": 2},
    ]
    extra = {"notes": {"sampler:auto": notes} if sampler == "auto" else {}, "error": None}
    return run | extra | {"test": 0.8, "search_seconds": 10.0, "wall_seconds": 12.0}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_best_value_counts_complete_trials_within_the_first_n() -> None:
    run = _run("tpe", 0, [0.5, None, 0.7, 0.9], outcome="diverged")
    assert bench.best_value(run, 1) == 0.5
    assert bench.best_value(run, 3) == 0.7
    assert bench.best_value(run) == 0.9
    assert math.isnan(bench.best_value(_run("tpe", 0, [None], outcome="fail")))


def test_mean_ranks_share_ties_and_rank_runs_without_a_complete_trial_last() -> None:
    runs = [
        _run("a", 0, [0.9]),
        _run("b", 0, [0.9]),
        _run("c", 0, [None], outcome="diverged"),
        _run("a", 1, [0.8]),
        _run("b", 1, [0.7]),
        _run("c", 1, [0.6]),
    ]
    assert bench.mean_ranks(runs, ["a", "b", "c"]) == {"a": 1.25, "b": 1.75, "c": 3.0}
    assert bench.head_to_head(runs, "a", "b") == (1, 1, 0)


def test_sign_test() -> None:
    assert bench.sign_test(5, 0) == pytest.approx(2 / 32)
    assert bench.sign_test(3, 2) == 1.0
    assert bench.sign_test(0, 0) == 1.0


def test_checkpoints_end_at_the_budget() -> None:
    assert bench.checkpoints(40) == [10, 20, 40]
    assert bench.checkpoints(15) == [10, 15]
    assert bench.checkpoints(6) == [6]


def test_space_is_conditional_and_builds_hparams() -> None:
    study = dltune.create_study(sampler=RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = bench.space(trial)
        assert ("momentum" in params) == (params["optimizer"] in ("sgd", "rmsprop"))
        assert ("label_smoothing" in params) == (params["loss"] == "label_smoothing")
        hparams = HParams.from_params(params, **bench.FIXED)
        assert hparams.depth == 2
        seen.add((params["optimizer"], params["loss"]))
        study.tell(trial, 0.0)
    assert not set(bench.CONDITIONAL) & set(bench.FIXED)
    assert len(seen) == 6  # every branch of the space was drawn


def test_unregistered_dltune_sampler_is_skipped_loudly() -> None:
    messages: list[str] = []
    assert bench.available(["no-such-sampler", "tpe", "optuna-gp"], messages.append) == [
        "tpe",
        "optuna-gp",
    ]
    assert "SKIPPING dltune sampler 'no-such-sampler'" in messages[0]


def test_unknown_optuna_sampler_is_an_error() -> None:
    with pytest.raises(SystemExit, match="unknown Optuna sampler 'optuna-nope'; valid: optuna-"):
        bench.available(["optuna-nope"], print)


def test_bad_option_is_an_error() -> None:
    with pytest.raises(
        SystemExit, match="trials=0, seeds=5, epochs=3, jobs=2; a sampler and positive counts"
    ):
        bench.settings_from(_args("--samplers-mnist1d-trials", "0"))


@pytest.mark.slow
def test_quick_run_reports_every_sampler_and_rebuilds_from_its_results(tmp_path: Path) -> None:
    messages: list[str] = []
    args = _args("--quick", "--samplers-mnist1d-work-dir", str(tmp_path))
    section = bench.run(args, "python -m benchmarks samplers-mnist1d --quick", messages.append)

    assert "## Sampler quality on MNIST-1D" in section
    assert "| Sampler | Mean rank (1 = best) | Best val @6 trials, median (range) |" in section
    rows = [line for line in section.splitlines() if line.startswith("| dltune TPE |")]
    assert len(rows) == 2  # the summary and the run
    assert any(line.startswith("| Optuna TPE |") for line in section.splitlines())
    assert "**Best sampler here:" in section
    assert "dltune TPE" in section and "Optuna TPE: mean rank" in section
    saved = json.loads((tmp_path / "samplers-mnist1d-quick.json").read_text())
    assert [len(r["trials"]) for r in saved["runs"]] == [6, 6]
    assert all(r["error"] is None and r["test"] is not None for r in saved["runs"])

    rebuilt = bench.run(
        _args(
            "--quick",
            "--samplers-mnist1d-report-only",
            "--samplers-mnist1d-work-dir",
            str(tmp_path),
        ),
        "rebuild",
        messages.append,
    )
    assert "rebuilt from the saved results with `rebuild`" in rebuilt
    assert section.split("### Which")[1] == rebuilt.split("### Which")[1]


def test_report_states_the_winner_auto_choices_and_shared_starts() -> None:
    names = ["tpe", "auto", "optuna-tpe"]
    values: dict[str, list[float | None]] = {
        "tpe": [0.5, 0.6, 0.9],
        "auto": [0.5, 0.6, 0.7],
        "optuna-tpe": [0.5, 0.8, None],
    }
    runs = [_full_run(n, seed, values[n]) for seed in range(5) for n in names]
    settings = dict(samplers=names, n_trials=3, seeds=5, epochs=3, jobs=2, quick=False)
    data = {"settings": settings, "skipped": ["random"], "runs": runs, "wall_seconds": 60.0}
    section = bench.report(data | {"info": ["- Command: `x`"]})

    assert "**Best sampler here: dltune TPE** (mean rank 1.00 of 3" in section
    assert (
        "dltune TPE **beats** Optuna TPE: mean rank 1.00 vs 2.00, median best validation "
        "accuracy +10.00 points, seeds won-tied-lost 5-0-0 (sign test p = 0.06)"
    ) in section
    assert "dltune Auto **loses to** Optuna TPE: mean rank 3.00 vs 2.00" in section
    assert "a 5-0 split of 5 seeds reaches sign-test p < 0.1" in section
    assert "**Skipped (not registered in dltune): random**" in section
    assert "- seed 0: gp from trial 0 (nothing known) → tpe from trial 2" in section
    assert (
        "dltune Auto proposed the same first trials as dltune TPE with the same seed (per "
        "seed: 2, 2, 2, 2, 2 trials)"
    ) in section
    assert "| dltune Auto | 3.00 | 0.7000 (0.700–0.700) | 0.8000 (0.800–0.800) | 0% (0/15) |" in (
        section
    )
    assert "| Optuna TPE | 2.00 | 0.8000 (0.800–0.800) | 0.8000 (0.800–0.800) | 33% (5/15) |" in (
        section
    )
    assert (
        "| Optuna TPE | 0 | 0.8000 | 0.8000 | 2 | 1 | 0 | 0 | 3 | 2.33 | #1 sgd lr=0.01" in section
    )
