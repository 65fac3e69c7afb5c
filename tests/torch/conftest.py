"""Fixtures for the trainer's tests: one torch thread, small fast tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dltune.torch import Task


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread (2 cores, shared) and a fixed torch seed for every test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def digits_task(tmp_path: Path) -> Task:
    """Digits with a small MLP for 3 epochs, checkpoints in tmp_path."""
    return Task(
        dataset="digits",
        model="mlp",
        epochs=3,
        data_dir=tmp_path / "data",
        checkpoint_dir=tmp_path / "checkpoints",
        device="cpu",
    )
