"""GPU-aware local runs on CPU: pinned fake device ids, leases across runs, detection, errors."""

from __future__ import annotations

import functools
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.console import Console

import dltune
from dltune.cli._display import TuneDisplay
from dltune.execution import LocalExecutor
from dltune.execution._gpu import GPUError
from dltune.execution._gpu import GPULease
from dltune.execution._gpu import detect_gpus
from dltune.execution._gpu import lease_dir
from dltune.execution._gpu import resolve_gpus
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import gpu_objectives  # noqa: E402

HELPER = str(HERE / "gpu_objectives.py")
HOST = socket.gethostname()


@pytest.fixture(autouse=True)
def _gpu_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Leases in this test's folder; no GPU settings inherited from the machine."""
    folder = tmp_path / "leases"
    monkeypatch.setenv("DLTUNE_GPU_LEASE_DIR", str(folder))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    return folder


def _study(tmp_path: Path) -> dltune.Study:
    return dltune.create_study(
        study_name="gpus",
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        sampler=RandomSampler(seed=0),
        pruner=NopPruner(),
    )


@contextmanager
def _held(*gpus: str) -> Iterator[list[GPULease]]:
    """Hold these GPUs' leases as another dltune run would (flock conflicts between two open
    files, in one process as across processes)."""
    leases = [GPULease(gpu) for gpu in gpus]
    try:
        assert all(lease.try_acquire() for lease in leases)
        yield leases
    finally:
        for lease in leases:
            lease.release()


@contextmanager
def _held_elsewhere(gpu: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the GPU's lease until stdin closes."""
    with subprocess.Popen(
        [sys.executable, HELPER, "hold", gpu],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "held\n"
        yield proc


def _gpus_of(study: dltune.Study) -> list[str]:
    return [t.user_attrs["gpu"] for t in study.trials if t.state == TrialState.COMPLETE]


# -- pinning -----------------------------------------------------------------------------------


def test_each_worker_sees_one_gpu_and_a_gpu_never_runs_two_trials_at_once(
    tmp_path: Path,
) -> None:
    study = _study(tmp_path)
    (tmp_path / "barrier").mkdir()
    objective = functools.partial(gpu_objectives.recording, barrier=str(tmp_path / "barrier"))
    executor = LocalExecutor(gpus=["0", "1"])
    assert executor.n_workers == 2
    study.optimize(objective, n_trials=8, executor=executor)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert {t.user_attrs["gpu"] for t in trials} == {"0", "1"}  # one id each, both used
    assert {t.user_attrs["order"] for t in trials} == {"PCI_BUS_ID"}
    pids: dict[str, set[int]] = {"0": set(), "1": set()}
    for t in trials:
        pids[t.user_attrs["gpu"]].add(t.user_attrs["pid"])
    assert all(len(p) == 1 for p in pids.values()) and os.getpid() not in pids["0"] | pids["1"]
    overlapping = [
        (a, b)
        for a in trials
        for b in trials
        if a.number < b.number
        and a.user_attrs["start"] < b.user_attrs["end"]
        and b.user_attrs["start"] < a.user_attrs["end"]
    ]
    assert overlapping  # the barrier made the first two trials run together
    assert all(a.user_attrs["gpu"] != b.user_attrs["gpu"] for a, b in overlapping)
    assert executor.status() is None and executor.waiting() == []


def test_one_gpu_still_runs_in_a_child_pinned_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # the user's choice stays
    study = _study(tmp_path)
    study.optimize(gpu_objectives.recording, n_trials=2, executor=LocalExecutor(gpus=[7]))
    assert _gpus_of(study) == ["7", "7"]
    assert {t.user_attrs["pid"] for t in study.trials} != {os.getpid()}
    assert {t.user_attrs["order"] for t in study.trials} == {"FASTEST_FIRST"}


# -- leases across runs ------------------------------------------------------------------------


def test_a_gpu_another_run_holds_is_waited_for_and_the_status_says_so(tmp_path: Path) -> None:
    study = _study(tmp_path)
    executor = LocalExecutor(gpus=["0", "1"])
    seen: list[tuple[str | None, list[str]]] = []
    with _held("1"):
        study.optimize(
            gpu_objectives.recording,
            n_trials=4,
            executor=executor,
            callbacks=[lambda s, t: seen.append((executor.status(), executor.waiting()))],
        )
    expected = f"waiting for GPU 1 (in use by {HOST}:{os.getpid()})"
    assert seen == [(expected, [expected])] * 4
    assert _gpus_of(study) == ["0"] * 4
    assert executor.status() is None
    assert GPULease("0").try_acquire()  # the run gave GPU 0 back


def test_a_gpu_freed_mid_run_is_taken_up(tmp_path: Path) -> None:
    study = _study(tmp_path)
    executor = LocalExecutor(gpus=["0", "1"])
    seen: list[str | None] = []

    def other_run(lease: GPULease) -> None:
        """Ends (gives GPU 1 back) once our run waits for it."""
        deadline = time.monotonic() + 60
        while executor.status() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(executor.status())
        lease.release()

    def stop_on_gpu_1(study: dltune.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs["gpu"] == "1":
            study.stop()

    with _held("1") as (lease,):
        thread = threading.Thread(target=other_run, args=(lease,))
        thread.start()
        study.optimize(
            gpu_objectives.recording, timeout=60, executor=executor, callbacks=[stop_on_gpu_1]
        )
        thread.join()
    assert seen == [f"waiting for GPU 1 (in use by {HOST}:{os.getpid()})"]
    assert "1" in _gpus_of(study)


def test_with_every_gpu_taken_nothing_runs_and_the_display_says_why(tmp_path: Path) -> None:
    study = _study(tmp_path)
    executor = LocalExecutor(gpus="0,1")
    out = io.StringIO()
    display = TuneDisplay(
        study,
        None,
        1.0,
        Console(file=out, width=300),
        status=executor.status,
        status_check_seconds=0.05,
    )
    with _held("0", "1"), display:
        study.optimize(
            gpu_objectives.recording, timeout=1.0, executor=executor, callbacks=[display]
        )
    assert study.trials == []
    who = f"{HOST}:{os.getpid()}"
    expected = (
        f"waiting for GPU 0 (in use by {who}); waiting for GPU 1 (in use by {who}); "
        "no trial runs until a GPU is free"
    )
    assert out.getvalue().count(expected) == 1


def test_an_interrupt_stops_the_run_and_gives_the_gpus_back(tmp_path: Path) -> None:
    study = _study(tmp_path)

    def interrupt(study: dltune.Study, trial: FrozenTrial) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the driver

    with _held("1"), pytest.raises(KeyboardInterrupt):
        study.optimize(
            gpu_objectives.recording,
            n_trials=50,
            executor=LocalExecutor(gpus=["0", "1"]),
            callbacks=[interrupt],
        )
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert GPULease("0").try_acquire() and GPULease("1").try_acquire()


def test_a_lease_ends_with_its_holder_even_when_killed() -> None:
    with _held_elsewhere("2") as holder:
        assert not GPULease("2").try_acquire()
        assert GPULease("2").holder() == f"{HOST}:{holder.pid}"
        holder.kill()
        holder.wait()
        assert GPULease("2").try_acquire()


def test_the_lease_folder_is_private_to_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.delenv("DLTUNE_GPU_LEASE_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert lease_dir() == tmp_path / "run" / "dltune" / "gpus"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"dltune-{os.getuid()}"
    assert lease_dir() == folder / "gpus"
    assert GPULease("0").try_acquire()
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_lease_folder_someone_else_planted_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.delenv("DLTUNE_GPU_LEASE_DIR")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"dltune-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(GPUError, match=r"is not a directory owned by this user; remove it"):
        GPULease("0").try_acquire()


def test_an_unusable_lease_folder_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DLTUNE_GPU_LEASE_DIR", str(tmp_path / "a-file"))
    with pytest.raises(GPUError, match=r"cannot use the GPU lease directory .*a-file"):
        _study(tmp_path).optimize(
            gpu_objectives.recording, n_trials=1, executor=LocalExecutor(gpus=[0])
        )


# -- detection ---------------------------------------------------------------------------------


def _fake_nvidia_smi(folder: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real executable named nvidia-smi, first on PATH (a test double of the NVIDIA tool)."""
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_auto_honours_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    executor = LocalExecutor(gpus="auto")
    assert executor.gpus == ("3", "5") and executor.n_workers == 2
    # CUDA shows the devices up to the first bad entry
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "0,GPU-8932f937,-1,2"}) == ("0", "GPU-8932f937")


def test_auto_asks_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = tmp_path / "args"
    _fake_nvidia_smi(tmp_path / "bin", f'echo "$@" > {args}\nprintf "0\\n1\\n"', monkeypatch)
    executor = LocalExecutor(gpus="auto")
    assert executor.gpus == ("0", "1") and executor.n_workers == 2
    assert args.read_text() == "--query-gpu=index --format=csv,noheader\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("exit 0", r"`nvidia-smi --query-gpu=index --format=csv,noheader` listed no GPU"),
        (
            'echo "NVIDIA-SMI has failed because it could not communicate" >&2; exit 9',
            r"failed with code 9: NVIDIA-SMI has failed because it could not communicate",
        ),
        ('echo "No devices were found"', r"printed 'No devices were found\\n', not GPU indices"),
        ("exec sleep 10", r"did not answer in 0.3 s"),
    ],
)
def test_auto_explains_what_nvidia_smi_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    _fake_nvidia_smi(tmp_path / "bin", body, monkeypatch)
    with pytest.raises(GPUError, match=message + r".*drop --gpus \(gpus=None\) to run on the CPU"):
        detect_gpus(timeout_seconds=0.3)


def test_auto_without_any_gpu_says_how_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        GPUError,
        match=r"gpus='auto' found no GPU: CUDA_VISIBLE_DEVICES is not set and nvidia-smi is "
        r"not on PATH\. Name the GPUs \(--gpus 0,1\), or drop --gpus",
    ):
        LocalExecutor(gpus="auto")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    with pytest.raises(GPUError, match=r"CUDA_VISIBLE_DEVICES='-1' hides every GPU"):
        LocalExecutor(gpus="AUTO")


# -- validation --------------------------------------------------------------------------------


def test_gpu_ids_are_normalised() -> None:
    assert resolve_gpus(" 0 , 01") == ("0", "1")
    assert LocalExecutor(gpus=("GPU-8932f937-d72c-4106", 2)).gpus == (
        "GPU-8932f937-d72c-4106",
        "2",
    )
    assert repr(LocalExecutor(2, gpus=[0, 1])) == "LocalExecutor(n_workers=2, gpus=['0', '1'])"


@pytest.mark.parametrize(
    ("gpus", "error", "message"),
    [
        ([], ValueError, r"gpus=\[\] names no GPU; pass 'auto', a comma-separated string"),
        ("0,x", ValueError, r"gpus='0,x' holds 'x', which is not a GPU id; accepted: 'auto'"),
        ([-1], ValueError, r"gpus=\[-1\] holds -1, which is not a GPU id"),
        ("", ValueError, r"gpus='' holds '', which is not a GPU id"),
        (["0", 0], ValueError, r"gpus=\['0', 0\] names GPU '0' twice; list each GPU once"),
        ("1,2,1", ValueError, r"names GPU '1' twice"),
        ([True], TypeError, r"gpus=\[True\] holds True; accepted: 'auto'"),
        ([0.5], TypeError, r"gpus=\[0.5\] holds 0.5; accepted"),
        (0, TypeError, r"gpus=0 is not accepted; pass 'auto', a comma-separated string"),
    ],
)
def test_bad_gpus_are_refused(gpus: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        LocalExecutor(gpus=gpus)  # type: ignore[arg-type]


def test_a_worker_count_that_does_not_match_the_gpus_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"n_workers=3 does not match gpus='0,1': one worker runs per GPU \(2 here\); "
        r"leave n_workers out",
    ):
        LocalExecutor(3, gpus="0,1")
    with pytest.raises(ValueError, match=r"n_workers=-1 does not match gpus=\[0\]"):
        LocalExecutor(-1, gpus=[0])
    with pytest.raises(TypeError, match=r"n_jobs=True must be an int"):
        LocalExecutor(True, gpus=[0])
