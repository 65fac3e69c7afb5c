"""The multi-fidelity benchmark: records, statistics, verdict, trial wrapper, a quick run."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

import dltune
from benchmarks import _multifidelity_report as rep  # type: ignore[import-untyped]  # no py.typed
from benchmarks import multifidelity as bench
from dltune.exceptions import TrialPruned
from dltune.samplers import RandomSampler
from dltune.torch import Task
from dltune.torch import TorchObjective
from dltune.trial import TrialState

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
}


def _trial(number: int, outcome: str, value: float | None, finished: float) -> dict[str, Any]:
    return dict(
        number=number,
        outcome=outcome,
        value=value,
        started=1.0,
        finished=finished,
        epochs=2,
        params=PARAMS,
    )


def _search(method: str, seed: int, hit: float | None, test: float, **kw: Any) -> dict[str, Any]:
    """A search whose trial 0 reaches 0.9 at ``hit`` seconds (never, for ``None``)."""
    reports = [[2.0, 0, 1, 0.5, 0], [3.0, 1, 1, 0.6, 0]]
    if hit is not None:
        reports.append([hit, 0, 2, 0.9, 0])
    data = dict(
        method=method,
        seed=seed,
        budget=100.0,
        wall_seconds=101.0,
        load=1.0,
        trials=[_trial(0, "complete", 0.9 if hit else 0.7, 50.0), _trial(1, "pruned", None, 4.0)],
        reports=reports,
        resumes=[],
        errors=[],
        test=[test, test + 0.002],
        pick={"number": 0, "value": 0.9, "params": PARAMS},
    )
    return data | kw


def _data(hits: dict[str, list[float | None]], tests: dict[str, float]) -> dict[str, Any]:
    searches = [
        _search(m, seed, hit, tests[m]) for m, row in hits.items() for seed, hit in enumerate(row)
    ]
    settings = dict(
        budget=100.0,
        epochs=30,
        seeds=3,
        retrain=2,
        target=0.9,
        methods=list(hits),
        pbt_population=8,
        pbt_interval=3,
        quick=False,
    )
    return dict(settings=settings, target=0.9, searches=searches, info=["- Command: `x`"])


def test_search_times_epochs_resumes_and_the_fallback_pick() -> None:
    s = rep.Search.from_dict(
        _search("asha", 0, 30.0, 0.9)
        | {
            "reports": [
                [5.0, 0, 1, 0.4, 0],
                [9.0, 1, 1, 0.95, 1],  # a restored re-report: not trained here
                [20.0, 1, 2, 0.97, 0],
                [120.0, 1, 3, 0.99, 0],  # after the budget
                [6.0, 2, 1, math.nan, 0],
            ],
            "resumes": [
                {"t": 8.0, "number": 1, "resume_of": 0, "epochs": 1, "seconds": 1.5},
                {"t": 150.0, "number": 3, "resume_of": 2, "epochs": 3, "seconds": 4.0},
            ],
        }
    )
    assert s.time_to(0.95) == 9.0
    assert s.time_to(0.98) is None
    assert s.best_reported() == 0.97
    assert s.best_reported(until=10.0) == 0.95
    assert s.epochs_trained() == 3  # 5.0, 20.0 and the NaN one; not the restored, not 120.0
    assert s.epochs_saved() == (1, 1.5)
    assert s.n_continuations == 1
    assert s.best_value() == 0.9

    nothing_complete = rep.Search.from_dict(
        _search("asha", 0, None, 0.9)
        | {"trials": [_trial(0, "pruned", None, 5.0), _trial(1, "pruned", None, 120.0)]}
    )
    pick = nothing_complete.choose_pick()
    assert pick is not None
    # trial 1 is the best at epoch 1 within the budget, though it finished after it
    assert (pick["number"], pick["note"]) == (1, "no complete trial: best at epoch 1")


def test_pbt_best_value_is_at_the_furthest_epoch_reached_within_the_budget() -> None:
    segments = [
        _trial(0, "complete", 0.80, 10.0),
        _trial(1, "complete", 0.70, 20.0),
        _trial(2, "complete", 0.75, 21.0),
        _trial(3, "complete", 0.95, 130.0),  # after the budget
    ]
    reports = [[10.0, 0, 3, 0.8, 0], [20.0, 1, 6, 0.7, 0], [21.0, 2, 6, 0.75, 0]]
    reports.append([130.0, 3, 9, 0.95, 0])
    pick = {"number": 3, "value": 0.95, "schedule": [{"start_epoch": 0, "hparams": PARAMS}]}
    s = rep.Search.from_dict(
        _search("pbt", 0, None, 0.9) | {"trials": segments, "reports": reports, "pick": pick}
    )
    assert s.best_value() == 0.75


def test_speedup_of_medians_and_lower_bound_when_the_reference_never_gets_there() -> None:
    assert rep.speedup([40.0, 60.0, 50.0], [10.0, 30.0, 20.0], 100.0) == (2.5, False)
    assert rep.speedup([math.inf] * 3, [10.0, 25.0, 20.0], 100.0) == (5.0, True)
    value, bound = rep.speedup([40.0], [math.inf], 100.0)
    assert math.isnan(value) and not bound


def test_pilot_target_is_the_median_of_the_best_by_the_fraction() -> None:
    pilot = [
        rep.Search.from_dict(_search("random", s, hit, 0.9))
        for s, hit in enumerate([70.0, 80.0, None])
    ]
    # best by 75 s: 0.9 (seed 0), 0.6 (seed 1: 0.9 comes at 80 s), 0.6 (seed 2)
    assert bench.pilot_target(pilot, 0.75) == 0.6
    with pytest.raises(SystemExit, match="the pilot reported no value; give --mf-target"):
        bench.pilot_target([], 0.75)


def test_rotation_moves_the_first_method_back_each_seed() -> None:
    assert bench.rotation(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert bench.rotation(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert bench.rotation(["a", "b", "c"], 4) == ["b", "c", "a"]


def test_report_verdict_met_and_every_column() -> None:
    data = _data(
        {
            "random": [80.0, None, 90.0],
            "asha": [10.0, 15.0, 12.0],
            "bohb": [20.0, 30.0, 25.0],
            "optuna-hyperband": [40.0, 30.0, 50.0],
        },
        {"random": 0.90, "asha": 0.95, "bohb": 0.94, "optuna-hyperband": 0.93},
    )
    section = rep.report(data)
    assert "dltune's best method here, by median time to validation accuracy ≥ 0.9000: " in section
    assert "**dltune TPE + ASHA**" in section
    assert (
        "- **MET** ≥ 2x faster to the target than Optuna TPE + Hyperband: median 12.0 s vs 40.0 "
        "s, speed-up 3.33x."
    ) in section
    assert "- **MET** ≥ 5x faster to the target than dltune random, no pruning: median 12.0 s" in (
        section
    )
    assert "**Verdict: all targets MET.**" in section
    for header in rep.SUMMARY_HEADERS + rep.ABSOLUTE_HEADERS:
        assert f"| {header} |" in section or f" {header} |" in section
    assert "| dltune random, no pruning | 90.0 s (80.0 s–> 100 s) | 2/3 | " in section


def test_report_verdict_missed_when_slower_or_less_accurate() -> None:
    data = _data(
        {"random": [50.0, 60.0, 40.0], "asha": [20.0, 25.0, 30.0], "optuna-hyperband": [30.0] * 3},
        {"random": 0.90, "asha": 0.91, "optuna-hyperband": 0.93},
    )
    section = rep.report(data)
    assert "- **MISSED** ≥ 2x faster to the target than Optuna TPE + Hyperband: median 25.0 s" in (
        section
    )
    assert "speed-up 1.20x." in section
    assert "- **MISSED** equal or better retrained test accuracy: dltune TPE + ASHA" in section
    assert "**Verdict: 3 of 3 targets MISSED.**" in section


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_settings_quick_defaults_yield_to_options() -> None:
    settings = bench.settings_from(_args("--quick", "--mf-epochs", "2", "--mf-methods", "asha"))
    assert settings["epochs"] == 2 and settings["budget"] == bench.QUICK["budget"]
    assert settings["methods"] == ["asha"] and settings["pbt_interval"] == 1
    full = bench.settings_from(_args())
    assert (full["budget"], full["epochs"], full["seeds"], full["target"]) == (90.0, 30, 5, None)


def test_bad_options_are_errors() -> None:
    with pytest.raises(SystemExit, match=r"--mf-methods='asha,nope': unknown \['nope'\]; valid"):
        bench.settings_from(_args("--mf-methods", "asha,nope"))
    with pytest.raises(SystemExit, match="--mf-epochs, --mf-retrain-seeds: out of range in"):
        bench.settings_from(_args("--mf-epochs", "1", "--mf-retrain-seeds", "4"))


def test_timed_objective_logs_reports_resumes_and_stops_at_the_deadline(tmp_path: Path) -> None:
    task = Task(dataset="digits", model="mlp", epochs=2, checkpoint_dir=tmp_path / "ckpt")
    inner = TorchObjective(task, lambda trial: {"lr": 0.05}, fixed={"width": 16})
    study = dltune.create_study(direction="maximize", sampler=RandomSampler(seed=0))
    logs = tmp_path / "logs"
    logs.mkdir()

    first = study.ask()  # the deadline has passed: stopped (paused) after epoch 1
    with pytest.raises(TrialPruned):
        bench.TimedObjective(inner, str(logs), 0.0, task)(first)
    study.tell(first, state=TrialState.PRUNED)

    second = study.ask()  # continues the first, as a promotion would
    second.set_system_attr("resume_of", first.number)
    value = bench.TimedObjective(inner, str(logs), time.time() + 600, task)(second)
    study.tell(second, value)

    reports = bench._read_jsonl(logs, "reports")
    assert [(r[1], r[2], r[4]) for r in reports] == [(0, 1, 0), (1, 1, 1), (1, 2, 0)]
    (resume,) = bench._read_jsonl(logs, "resumes")
    assert (resume["number"], resume["resume_of"], resume["epochs"]) == (1, 0, 1)
    assert resume["seconds"] > 0
    assert study.get_trials()[1].user_attrs["metrics"]["resumed_from_epoch"] == 1


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_quick_run_writes_every_column_and_the_raw_json(tmp_path: Path) -> None:
    messages: list[str] = []
    argv = ("--quick", "--mf-methods", "asha,optuna-sha", "--mf-budget", "20", "--mf-epochs", "2")
    args = _args(*argv, "--mf-work-dir", str(tmp_path))
    section = bench.run(args, "python -m benchmarks multifidelity --quick", messages.append)

    assert section.startswith("## Multi-fidelity search on MNIST-1D")
    for header in rep.SUMMARY_HEADERS + rep.ABSOLUTE_HEADERS:
        assert f" {header} |" in section
    assert sum(line.startswith("| dltune TPE + ASHA | ") for line in section.splitlines()) == 3
    assert "Optuna TPE + SuccessiveHalving" in section
    assert "Quick mode: a smoke test" in section
    saved = json.loads((tmp_path / "multifidelity-quick.json").read_text())
    assert [s["method"] for s in saved["searches"]] == ["asha", "optuna-sha"]
    assert all(s["reports"] and s["trials"] and not s["errors"] for s in saved["searches"])
    assert all(len(s["test"]) == 1 for s in saved["searches"])  # None only if it diverged

    rebuilt = bench.run(
        _args(*argv, "--mf-report-only", "--mf-work-dir", str(tmp_path)), "re", print
    )
    assert "rebuilt from the saved results with `re`" in rebuilt
    assert section.split("### Verdict")[1] == rebuilt.split("### Verdict")[1]
