"""Fault injection 8: a checkpoint file crafted to run code when it is loaded.

The file (a pickle whose ``__reduce__`` calls ``os.system`` to create a marker file) is placed
where the trainer resumes a trial from, given as a retried trial's predecessor or as a
population-based-training parent, and given to the retrained-model loader. Each refuses it with
an error naming the file; the marker is never created. Each crafted file is first shown to run
its code when loaded the unsafe way, so that the refusals below are refusals of a real attack.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import dltune  # noqa: E402
from dltune.exceptions import DLTuneError  # noqa: E402
from dltune.torch import CheckpointError  # noqa: E402
from dltune.torch import HParams  # noqa: E402
from dltune.torch import Task  # noqa: E402
from dltune.torch import TorchObjective  # noqa: E402
from dltune.torch import checkpoint_path  # noqa: E402
from dltune.torch import load_model  # noqa: E402
from dltune.torch import train  # noqa: E402
from dltune.torch._retrain import MODEL_FORMAT  # noqa: E402
from dltune.trial import TrialState  # noqa: E402

SMALL = HParams(lr=0.01, width=16, batch_size=64)


class Exploit:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def torch_saved(path: Path, marker: Path, content: dict[str, Any]) -> None:
    torch.save({**content, "payload": Exploit(marker)}, path)


def raw_pickle(path: Path, marker: Path, content: dict[str, Any]) -> None:
    path.write_bytes(pickle.dumps({**content, "payload": Exploit(marker)}, protocol=2))


CRAFTS = [torch_saved, raw_pickle]


def craft(make: Callable[[Path, Path, dict[str, Any]], None], path: Path, marker: Path) -> Path:
    """Write the crafted file and prove that an unsafe load runs its code; the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"format": 1, "model": {}, "format_name": MODEL_FORMAT}
    make(path, marker, content)
    with contextlib.suppress(Exception):  # a raw pickle runs its code, then fails to load
        torch.load(path, weights_only=False)  # what dltune must never do
    assert marker.exists(), "the crafted file does not run code: the test proves nothing"
    marker.unlink()
    return path


def refused(what: str, path: Path, prefix: str = "") -> str:
    return (
        rf"^{prefix}{what} {re.escape(repr(str(path)))} cannot be loaded safely: it is not a "
        r"weights-only torch file \((Trying to load unsupported GLOBAL posix\.system|"
        r"Unsupported operand \d+).*\), and loading it fully could run code hidden in it; it "
        r"was not loaded \(delete it unless you trust it\)$"
    )


@pytest.fixture
def task(tmp_path: Path) -> Task:
    return Task(
        dataset="digits",
        model="mlp",
        epochs=1,
        data_dir=tmp_path / "data",
        checkpoint_dir=tmp_path / "checkpoints",
        device="cpu",
    )


@pytest.mark.parametrize("make", CRAFTS)
def test_trial_resuming_from_a_crafted_checkpoint_fails_naming_it(
    make: Callable[[Path, Path, dict[str, Any]], None], task: Task, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    study = dltune.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="crafted", direction="maximize"
    )
    path = checkpoint_path(task, "crafted", 0)
    assert path is not None
    craft(make, path, marker)
    study.optimize(TorchObjective(task, lambda trial: {}, fixed={"width": 16}), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.reason is not None
    assert re.match(refused("checkpoint", path, prefix="CheckpointError: "), trial.reason)
    assert not marker.exists()
    assert path.exists()  # refused, left for the user to look at


@pytest.mark.parametrize("argument", ["checkpoint", "resume_from", "start_from"])
def test_trainer_refuses_a_crafted_file_in_every_place_it_loads_from(
    argument: str, task: Task, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = craft(torch_saved, tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match=refused("checkpoint", path)) as info:
        train(task, SMALL, seed=0, **{argument: path})  # type: ignore[arg-type]
    assert isinstance(info.value, DLTuneError) and isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()


@pytest.mark.parametrize("make", CRAFTS)
def test_model_loader_refuses_a_crafted_model_file(
    make: Callable[[Path, Path, dict[str, Any]], None], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = craft(make, tmp_path / "best-model.pt", marker)
    for given in (path, str(path)):
        with pytest.raises(CheckpointError, match=refused("model file", path)):
            load_model(given)
    assert not marker.exists()


def test_a_corrupt_checkpoint_is_refused_naming_it(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    torch.save({"format": 1, "model": {"w": torch.zeros(64)}}, path)
    path.write_bytes(path.read_bytes()[:100])  # cut short
    expected = (
        rf"^checkpoint {re.escape(repr(str(path)))} cannot be loaded safely: it is not a "
        r"weights-only torch file \(.+\), and loading it fully could run code"
    )
    with pytest.raises(CheckpointError, match=expected):
        train(task, SMALL, seed=0, checkpoint=path)
    with pytest.raises(CheckpointError, match=expected.replace("checkpoint", "model file", 1)):
        load_model(path)
