"""Trainer checkpoints: written atomically, read as weights only (no code in a file runs)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from dltune.exceptions import DLTuneError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "load_checkpoint",
    "load_weights_only",
    "save_checkpoint",
]

_logger = logging.getLogger(__name__)

#: Bumped when the checkpoint layout changes; older files are ignored, not misread.
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a reader (a resuming worker) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CheckpointError(DLTuneError, ValueError):
    """A checkpoint or model file refused: it cannot be loaded as weights only (a file crafted
    to run code on load, or a corrupt one), and is never loaded another way."""


# torch's text around the reason advises weights_only=False: not advice to pass on.
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def load_weights_only(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers, no code runs.

    Raises:
        CheckpointError: Naming the file, if it holds anything else or is not a torch file.
    """
    try:
        with warnings.catch_warnings():  # torch warns of pickle protocols it did not write
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = next((x for x in lines if not x.startswith(_TORCH_ADVICE)), type(exc).__name__)
        raise CheckpointError(
            f"{what} {os.fspath(path)!r} cannot be loaded safely: it is not a weights-only torch "
            f"file ({why.removeprefix('WeightsUnpickler error: ')}), and loading it fully could "
            "run code hidden in it; it was not loaded (delete it unless you trust it)"
        ) from exc


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """Read a trainer checkpoint with :func:`load_weights_only`; ``None`` for a file of another
    format version.

    Raises:
        CheckpointError: For a file crafted to run code on load, or a corrupt one.
    """
    state = load_weights_only(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        _logger.warning("ignoring checkpoint %s: not a dltune trainer checkpoint", path)
        return None
    return state
