"""``dltune tune`` and ``dltune lr-find`` end to end, on the bundled digits example."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import dltune
from dltune.cli import cli
from dltune.torch import load_model
from dltune.torch import study_folder

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path: the example's relative paths (checkpoints/, dltune.db) land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLTUNE_STORAGE", raising=False)
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _write(path: Path, config: dict[str, object]) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_tune_the_digits_example_end_to_end(workdir: Path) -> None:
    code, out = _run(
        "tune", str(EXAMPLE), "--trials", "3", "--epochs", "2", "--workers", "2", "--top-k", "2"
    )
    assert code == 0, out
    assert "3 trials: " in out
    assert "best val_accuracy: " in out
    assert "retrained with fresh seeds" in out and "chosen: trial " in out
    assert "test accuracy " in out
    assert "dltune trials digits-cnn --storage sqlite:///dltune.db" in out
    assert "dltune best digits-cnn --storage sqlite:///dltune.db" in out
    assert "dltune report digits-cnn --storage sqlite:///dltune.db" in out
    assert "dltune dashboard --storage sqlite:///dltune.db" in out
    model = Path("checkpoints") / study_folder("digits-cnn") / "best-model.pt"
    assert f"model checkpoint: {model} (the run with seed" in out
    assert load_model(workdir / model) is not None
    study = dltune.load_study("digits-cnn", "sqlite:///dltune.db")
    assert len(study.trials) == 3
    retrain = study.system_attrs["retrain"]
    assert len(retrain["candidates"]) <= 2 and retrain["chosen"] is not None
    code, out = _run("best", "digits-cnn")
    assert code == 0 and "retrained.test_accuracy" in out and "(3 of 3 seeds)" in out
    # Resuming extends the same study to the new budget.
    code, out = _run(
        "tune", str(EXAMPLE), "--trials", "4", "--epochs", "2", "--top-k", "0", "--workers", "1"
    )
    assert code == 0, out
    assert "1 trial(s) already" not in out and "3 trial(s) already finished" in out
    assert len(dltune.load_study("digits-cnn", "sqlite:///dltune.db").trials) == 4


def _diverging_config(workdir: Path) -> str:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["space"] = {"optimizer": "sgd", "lr": 10.0, "momentum": 0.9, "width": 16}
    config["budget"] = {"trials": 2, "workers": 1}
    config["task"]["epochs"] = 3
    return _write(workdir / "diverge.yaml", config)


def test_diverged_trials_show_as_such(workdir: Path) -> None:
    path = _diverging_config(workdir)
    code, out = _run("tune", path)
    assert code == 2, out
    assert "2 trials: 0 complete, 0 pruned, 2 diverged, 0 not learning, 0 fail" in out
    assert "has no COMPLETE trial" in out
    code, out = _run("trials", "digits-cnn", "--state", "DIVERGED")
    assert code == 0, out
    assert out.count("PRUNED (diverged)") == 2 and "diverged at epoch" in out
    code, out = _run("trials", "digits-cnn", "--format", "json")
    assert {t["outcome"] for t in json.loads(out)} == {"diverged"}


def test_a_bad_config_runs_nothing_and_stores_nothing(workdir: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["space"]["lr"] = {"low": -1.0, "high": 0.1, "log": True}
    config["task"]["epoch"] = 3
    code, out = _run("tune", _write(workdir / "bad.yaml", config))
    assert code == 2
    assert "space.lr.low" in out and "task.epoch" in out
    assert not (workdir / "dltune.db").exists()


def test_lr_find_prints_a_range_and_tune_records_and_uses_it(workdir: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["space"]["optimizer"] = {"choices": ["sgd", "adam"]}
    config["space"]["momentum"]["when"] = {"optimizer": "sgd"}
    config["space"]["beta1"]["when"] = {"optimizer": "adam"}
    config["lr_find"] = {"steps": 30}
    path = _write(workdir / "lr.yaml", config)
    code, out = _run("lr-find", path)
    assert code == 0, out
    assert out.count("lr range test, ") == 2 and "suggested lr range over all optimizers" in out
    code, out = _run(
        "tune",
        path,
        "--lr-find",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--top-k",
        "0",
    )
    assert code == 0, out
    study = dltune.load_study("digits-cnn", "sqlite:///dltune.db")
    found = study.system_attrs["lr_find"]
    assert set(found) == {"sgd", "adam"}
    low = max(1e-4, min(r["low"] for r in found.values()))
    high = min(0.3, max(r["high"] for r in found.values()))
    for trial in study.trials:
        assert low <= trial.params["lr"] <= high


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(workdir: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["task"].update(model="mlp", epochs=2)
    config["budget"] = {"trials": 40, "workers": 1}
    config["retrain"] = {"top_k": 0}
    path = _write(workdir / "interrupt.yaml", config)
    command = [sys.executable, "-m", "dltune", "tune", path]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=workdir)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # the line display (stderr is not a terminal)
        lines.append(line)
        if line.startswith("trial 1 "):
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted; " in rest and "Rerun the same command to resume." in rest
    study = dltune.load_study("digits-cnn", "sqlite:///dltune.db")
    states = {t.state for t in study.trials}
    assert dltune.TrialState.RUNNING not in states
    n_done = len(study.trials)
    assert 2 <= n_done < 40
    code, out = _run("tune", path, "--trials", str(n_done + 1))
    assert code == 0, out
    assert f"{n_done} trial(s) already finished" in out
    assert len(dltune.load_study("digits-cnn", "sqlite:///dltune.db").trials) == n_done + 1


# -- the dashboard link --------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("terminal", [False, True])
def test_a_dashboard_started_while_tuning_is_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    from rich.console import Console

    from dltune.cli._display import TuneDisplay
    from dltune.dashboard import find_dashboard
    from dltune.dashboard._discovery import register
    from dltune.dashboard._discovery import unregister

    monkeypatch.setenv("DLTUNE_DASHBOARD_DIR", str(tmp_path / "dashboards"))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=200)
    display = TuneDisplay(
        dltune.create_study(),
        5,
        None,
        console,
        find_dashboard=lambda: find_dashboard(url),
        dashboard_check_seconds=0.05,
    )
    assert display.live is terminal
    with display:
        time.sleep(0.2)
        assert display.dashboard_url is None
        path = register("http://127.0.0.1:8123/", url)  # this (live) process serves it
        _wait_for(lambda: display.dashboard_url == "http://127.0.0.1:8123/", "the link")
        shown = Console(file=io.StringIO(), width=200, record=True)
        shown.print(display.render())
        assert "dashboard  http://127.0.0.1:8123/" in shown.export_text()
        time.sleep(0.2)  # more looks find the same dashboard
        unregister(path)
        _wait_for(lambda: display.dashboard_url is None, "the link to go")
    text = out.getvalue()
    if not terminal:
        assert text.count("dashboard: http://127.0.0.1:8123/") == 1
    else:
        assert "http://127.0.0.1:8123/" in text  # the panel showed it


def test_the_display_keeps_tuning_when_the_dashboard_lookup_fails() -> None:
    from rich.console import Console

    from dltune.cli._display import TuneDisplay

    def broken() -> str | None:
        raise PermissionError("the runtime folder is not readable")

    console = Console(file=io.StringIO(), force_terminal=False)
    display = TuneDisplay(dltune.create_study(), 5, None, console, find_dashboard=broken)
    assert display.check_dashboard() is None
