"""``dltune tune --executor dask/--gpus/--synchronous`` and ``dltune worker --batch-size``: the
CLI wiring of Dask tasks, GPU-pinned local workers and batch-synchronous runs (the mechanisms
have their own tests)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import dltune
from dltune.cli import cli
from dltune.trial import TrialState

distributed = pytest.importorskip("distributed")

from distributed import Client  # noqa: E402
from distributed import LocalCluster  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "execution"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLTUNE_STORAGE", raising=False)
    monkeypatch.setenv("DLTUNE_GPU_LEASE_DIR", str(tmp_path / "leases"))
    return tmp_path


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(  # type: ignore[no-untyped-call]  # unannotated in distributed
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with cluster:
        yield cluster


def _config(workdir: Path, **changes: Any) -> str:
    """Tiny one-epoch trials of a small MLP on the bundled digits: seconds, not minutes."""
    config: dict[str, Any] = {
        "study": "tiny",
        "storage": f"sqlite:///{workdir / 'tiny.db'}",
        "seed": 0,
        "budget": {"trials": 4, "workers": 1},
        "sampler": "random",
        "pruner": "nop",
        "task": {"dataset": "digits", "model": "mlp", "epochs": 1, "device": "cpu"},
        "space": {"lr": {"low": 1e-3, "high": 1e-1, "log": True}, "width": 16},
        "retrain": {"top_k": 0},
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = workdir / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _trials(workdir: Path) -> list[dltune.FrozenTrial]:
    return dltune.load_study(study_name="tiny", storage=f"sqlite:///{workdir / 'tiny.db'}").trials


@pytest.mark.parametrize(
    ("args", "changes", "match"),
    [
        (["--gpus", "0,0"], {}, r"--gpus 0,0: .*'0'"),
        (["--gpus", "0,1", "--workers", "3"], {}, r"--gpus 0,1: .*3"),
        (["--gpus", "0", "--executor", "dask"], {}, r"--gpus 0 applies to local workers"),
        (["--gpus", "0"], {"task": {"device": "cuda:1"}}, r"task.device 'cuda:1' cannot be"),
    ],
)
def test_bad_gpu_options_are_refused_before_anything_runs(
    workdir: Path, args: list[str], changes: dict[str, Any], match: str
) -> None:
    pytest.importorskip("torch")
    code, out = _run("tune", _config(workdir, **changes), *args)
    assert code == 2, out
    assert re.search(match, out), out
    assert not (workdir / "tiny.db").exists() or not _trials(workdir)


def test_tune_pins_one_worker_per_gpu_and_runs_synchronously(workdir: Path) -> None:
    pytest.importorskip("torch")
    code, out = _run("tune", _config(workdir), "--gpus", "3,5", "--synchronous")
    assert code == 0, out
    trials = _trials(workdir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    # Two worker processes (one per fake GPU), each a child of its own.
    assert len({t.system_attrs["worker"] for t in trials}) == 2
    # The study seed reached the trials: each has its derived seed.
    study = dltune.load_study(study_name="tiny", storage=f"sqlite:///{workdir / 'tiny.db'}")
    assert study.seed == 0


def test_worker_batch_size_runs_batches_and_names_a_bad_value(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'w.db'}"
    common = ["worker", "--study", "w", "--storage", url, "--objective", "sync_objectives:jittery"]
    code, out = _run(*common, "--batch-size", "0", "--create", "--direction", "minimize")
    assert code == 2 and "--batch-size" in out, out
    code, out = _run(
        *common,
        "--batch-size",
        "2",
        "--n-trials",
        "5",
        "--seed",
        "3",
        "--create",
        "--direction",
        "minimize",
    )
    assert code == 0, out
    study = dltune.load_study(study_name="w", storage=url)
    assert len(study.trials) == 5 and study.seed == 3
    code, out = _run(*common, "--seed", "4", "--create", "--direction", "minimize")
    assert code == 2 and "seed 3" in out, out


# -- --executor dask ------------------------------------------------------------------------


def test_tune_runs_trials_on_a_dask_scheduler(workdir: Path, cluster: LocalCluster) -> None:
    pytest.importorskip("torch")
    address = cluster.scheduler_address
    code, out = _run(
        "tune",
        _config(workdir, budget={"trials": 2}),
        "--executor",
        "dask",
        "--scheduler-address",
        address,
    )
    assert code == 0, out
    assert "2 trials: 2 complete" in out
    with Client(cluster) as client:  # type: ignore[no-untyped-call]  # unannotated in distributed
        workers = {f"dask:{worker}" for worker in client.nthreads()}
    trials = _trials(workdir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert {t.system_attrs["worker"] for t in trials} <= workers
    assert all(t.value is not None and 0.0 <= t.value <= 1.0 for t in trials)  # accuracy


@pytest.mark.slow
def test_tune_without_an_address_starts_a_local_cluster(workdir: Path) -> None:
    pytest.importorskip("torch")
    code, out = _run(
        "tune", _config(workdir, budget={"trials": 2}), "--executor", "dask", "--trials", "1"
    )
    assert code == 0, out
    (trial,) = _trials(workdir)
    assert trial.state == TrialState.COMPLETE
    assert trial.system_attrs["worker"].startswith("dask:tcp://")


def test_a_scheduler_address_needs_the_dask_executor(workdir: Path) -> None:
    pytest.importorskip("torch")
    code, out = _run(
        "tune", _config(workdir, budget={"trials": 2}), "--scheduler-address", "tcp://h:8786"
    )
    assert code == 2
    assert "--scheduler-address tcp://h:8786 needs --executor dask (got --executor local)" in out
    assert not (workdir / "tiny.db").exists()
