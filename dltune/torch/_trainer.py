"""The trainer: one training run of a task with a set of hyperparameters.

It reports the validation metric every epoch to the trial (so any pruner works), stops a run that
diverges or does not learn (see :class:`dltune.torch.Guards`), checkpoints every epoch so a
retried or promoted trial resumes where it stopped, and is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch import nn

from dltune.exceptions import TrialPruned
from dltune.exceptions import TrialStopped
from dltune.torch._checkpoint import CHECKPOINT_FORMAT
from dltune.torch._checkpoint import load_checkpoint
from dltune.torch._checkpoint import save_checkpoint
from dltune.torch._hparams import HParams
from dltune.torch._task import Guards
from dltune.torch._task import Task
from dltune.torch.components import build_loss
from dltune.torch.components import build_optimizer
from dltune.torch.components import build_scheduler
from dltune.torch.components import check_names
from dltune.torch.datasets import Dataset
from dltune.torch.datasets import load_dataset
from dltune.torch.models import build_model

if TYPE_CHECKING:
    from dltune._trial import Trial

__all__ = ["MUTABLE_FIELDS", "EpochRecord", "TrainResult", "resolve_device", "train"]

_logger = logging.getLogger(__name__)

#: Evaluation batch size (no gradients, so larger than any training batch).
_EVAL_BATCH = 1024
#: The hyperparameters a run may change mid-training (``train(..., start_from=...)``): they live
#: in the optimizer's parameter groups, not in the model or the schedule's shape.
MUTABLE_FIELDS = ("lr", "momentum", "beta1", "beta2", "weight_decay")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured.

    Attributes:
        epoch: 1-based epoch number (the step reported to the trial).
        train_loss: Mean training loss over the epoch's batches.
        val_loss: Validation loss after the epoch.
        val_accuracy: Validation accuracy after the epoch.
        lr: The learning rate at the end of the epoch.
        seconds: Wall time of the epoch (training and validation).
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, float]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "lr": self.lr,
            "seconds": self.seconds,
        }


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes:
        hparams: The hyperparameters trained with.
        seed: The seed trained with.
        history: One record per epoch trained, including epochs restored from a checkpoint.
        value: The task's metric after the last epoch (what the objective returns).
        test_loss: Test loss, when ``evaluate_test`` was asked for.
        test_accuracy: Test accuracy, when ``evaluate_test`` was asked for.
        resumed_from_epoch: The epoch a checkpoint restored (0 when trained from scratch).
        model: The trained model (on the CPU).
        n_params: Trainable parameter count.
        seconds: Wall time of this call.
    """

    hparams: HParams
    seed: int
    history: list[EpochRecord]
    value: float
    test_loss: float | None = None
    test_accuracy: float | None = None
    resumed_from_epoch: int = 0
    model: nn.Module | None = field(default=None, repr=False)
    n_params: int = 0
    seconds: float = 0.0

    @property
    def val_accuracy(self) -> float:
        return self.history[-1].val_accuracy

    @property
    def val_loss(self) -> float:
        return self.history[-1].val_loss


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the first CUDA device if there is one, else the CPU.

    Raises:
        ValueError: For a device torch does not know, or CUDA asked for where there is none.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a device; accepted: auto, cpu, cuda, cuda:N"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but torch sees no CUDA device")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported; accepted: auto, cpu, cuda, cuda:N")
    return resolved


class _Tensors:
    """A data set's splits as tensors on one device, kept per process."""

    _cache: dict[tuple[int, str], _Tensors] = {}

    def __init__(self, data: Dataset, device: torch.device) -> None:
        def put(array: np.ndarray[Any, Any], dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(array, dtype=dtype, device=device)  # copies (arrays are frozen)

        self.x_train, self.y_train = (
            put(data.x_train, torch.float32),
            put(data.y_train, torch.long),
        )
        self.x_val, self.y_val = put(data.x_val, torch.float32), put(data.y_val, torch.long)
        self.x_test, self.y_test = put(data.x_test, torch.float32), put(data.y_test, torch.long)

    @classmethod
    def of(cls, data: Dataset, device: torch.device) -> _Tensors:
        key = (id(data), str(device))
        if key not in cls._cache:
            cls._cache.clear()  # one data set per worker at a time: do not pile up copies
            cls._cache[key] = cls(data, device)
        return cls._cache[key]


class _Guard:
    """Applies :class:`Guards` to a run; raises :class:`TrialStopped` with the reason."""

    def __init__(
        self, guards: Guards, n_classes: int, start_loss: float | None, warmup_epochs: int = 0
    ) -> None:
        self.guards = guards
        self.chance = 1.0 / n_classes
        self.start_loss = start_loss
        self.warmup_epochs = warmup_epochs

    def check_step(self, epoch: int, step: int, loss: float, grad_norm: float | None) -> None:
        g = self.guards
        where = f"diverged at epoch {epoch} step {step}"
        if not math.isfinite(loss):
            raise TrialStopped(f"{where}: loss={loss}", kind="diverged")
        if self.start_loss is None:
            self.start_loss = loss
        elif g.enabled and loss > g.loss_ratio * max(self.start_loss, 1e-12):
            raise TrialStopped(
                f"{where}: loss={loss:.4g} > {g.loss_ratio:g}x its start {self.start_loss:.4g}",
                kind="diverged",
            )
        if grad_norm is None:
            return
        if not math.isfinite(grad_norm):
            raise TrialStopped(f"{where}: gradient norm={grad_norm}", kind="diverged")
        if g.enabled and g.max_grad_norm is not None and grad_norm > g.max_grad_norm:
            raise TrialStopped(
                f"{where}: gradient norm={grad_norm:.4g} > {g.max_grad_norm:g}",
                kind="diverged",
            )

    def check_epoch(self, record: EpochRecord) -> None:
        g = self.guards
        if not math.isfinite(record.val_loss):
            raise TrialStopped(
                f"diverged at epoch {record.epoch}: validation loss={record.val_loss}",
                kind="diverged",
            )
        assert self.start_loss is not None  # set by the first step
        if g.enabled and record.train_loss > g.epoch_loss_ratio * self.start_loss:
            raise TrialStopped(
                f"diverged at epoch {record.epoch}: mean training loss {record.train_loss:.4g} "
                f"> {g.epoch_loss_ratio:g}x its start {self.start_loss:.4g}",
                kind="diverged",
            )
        patience = g.patience_epochs
        if not g.enabled or patience == 0 or record.epoch < patience + self.warmup_epochs:
            return
        where = f"not learning after {record.epoch} epoch{'s' if record.epoch > 1 else ''}"
        if record.train_loss >= g.min_improvement * self.start_loss:
            raise TrialStopped(
                f"{where}: training loss {record.train_loss:.4g} is not below its start "
                f"{self.start_loss:.4g}",
                kind="not_learning",
            )
        if record.val_accuracy <= self.chance + g.chance_margin:
            raise TrialStopped(
                f"{where}: validation accuracy {record.val_accuracy:.3f} is at chance "
                f"({self.chance:.3f})",
                kind="not_learning",
            )


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a split, in eval mode, without gradients.

    Always plain cross-entropy, whatever loss the run trains with: focal or label-smoothed
    losses have other scales, and ``val_loss`` must compare trials that use different losses.
    """
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), _EVAL_BATCH):
            xb, yb = x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
            logits = model(xb)
            total_loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    model.train()
    n = max(len(x), 1)
    return total_loss / n, correct / n


def train(
    task: Task,
    hparams: HParams,
    *,
    seed: int = 0,
    trial: Trial | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    owner: Mapping[str, Any] | None = None,
    resume_owner: Mapping[str, Any] | None = None,
    evaluate_test: bool = False,
    keep_model: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    start_from: str | os.PathLike[str] | None = None,
    start_owner: Mapping[str, Any] | None = None,
    epochs_to: int | None = None,
) -> TrainResult:
    """Train ``task``'s model with ``hparams``; report to ``trial`` every epoch.

    Args:
        task: The data set, model, epochs, guards and device.
        hparams: The hyperparameters.
        seed: Seeds the weights, the batch order and dropout: the same seed gives the same run
            (on the CPU). A resumed run continues with the seed of the run it resumes.
        trial: Receives the metric every epoch (``trial.report(value, epoch)``) and is asked
            whether to prune; ``None`` trains without reporting.
        checkpoint: Where to save the state after every epoch (and resume from, if present).
        resume_from: Another checkpoint to start from when ``checkpoint`` does not exist yet
            (a retried trial continues from the trial it retries).
        owner: Who writes ``checkpoint`` (the study, trial id and start time, say): a file
            there that someone else wrote (a deleted study of the same name) is ignored, as is
            one of other data, model or hyperparameters.
        resume_owner: Who must have written ``resume_from``.
        evaluate_test: Also measure the test split at the end.
        keep_model: Return the trained model (on the CPU) in the result.
        on_epoch: Called with each epoch's record.
        start_from: Continue another run's checkpoint with these ``hparams`` when
            ``checkpoint`` does not exist yet (population-based training): the weights, the
            optimizer's and the schedule's state and the history are loaded, then the new
            values of :data:`MUTABLE_FIELDS` (learning rate, momentum, betas, weight decay) are
            put into the optimizer, the learning rate scaled wherever the schedule keeps it. Every
            other hyperparameter must equal the checkpoint's. The data order and dropout start
            afresh from ``seed``. Its epochs are not reported again to ``trial``.
        start_owner: Who must have written ``start_from``.
        epochs_to: Train only up to this epoch (the schedule still spans ``task.epochs``).

    Returns:
        The history and the final metric.

    Raises:
        TrialStopped: If the run diverged or is not learning (the reason says which and where).
        TrialPruned: If the trial's pruner stopped it.
        ValueError: For ``epochs_to`` outside ``1..task.epochs``, ``start_from`` together with
            ``resume_from``, or a ``start_from`` checkpoint that is missing, unreadable, of
            another task or structure, or written by someone other than ``start_owner``.
        HParamsError: For a hyperparameter the components do not accept.
        UnknownNameError: For an unknown component name.

    Example:
        >>> from dltune.torch import HParams, Task, train
        >>> task = Task(dataset="digits", model="mlp", epochs=2, checkpoint_dir=None)
        >>> result = train(task, HParams(lr=0.01, width=32), seed=0)
        >>> len(result.history), result.value > 0.5
        (2, True)
    """
    started = time.perf_counter()
    check_names(hparams)
    end_epoch = task.epochs if epochs_to is None else epochs_to
    if not (isinstance(end_epoch, int) and 1 <= end_epoch <= task.epochs) or end_epoch is True:
        raise ValueError(f"epochs_to={epochs_to!r} must be an integer in 1..{task.epochs}")
    if start_from is not None and resume_from is not None:
        raise ValueError(
            f"start_from={str(start_from)!r} and resume_from={str(resume_from)!r} were both "
            "given; give one"
        )
    if task.threads is not None:
        torch.set_num_threads(task.threads)
    device = resolve_device(task.device)
    data = load_dataset(
        task.dataset, task.data_dir, download=task.download, split_seed=task.split_seed
    )
    tensors = _Tensors.of(data, device)
    n_train = len(tensors.x_train)
    batch_size = min(hparams.batch_size, n_train)
    steps_per_epoch = _steps_per_epoch(n_train, batch_size)

    if device.type == "cuda":
        # Deterministic kernels where cuDNN has them; bitwise replay is promised on the CPU.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    model = build_model(task.model, hparams, data.input_shape, data.n_classes).to(device)
    optimizer = build_optimizer(model.parameters(), hparams)
    scheduler = build_scheduler(optimizer, hparams, steps_per_epoch, task.epochs)
    loss_fn = build_loss(hparams)
    order = torch.Generator().manual_seed(seed)
    history: list[EpochRecord] = []
    start_loss: float | None = None

    ckpt_path = None if checkpoint is None else Path(checkpoint)
    identity = _identity(task, hparams)
    resume_path = None if resume_from is None else Path(resume_from)
    for path, expected_owner in ((ckpt_path, owner), (resume_path, resume_owner)):
        if path is None or not path.exists():
            continue
        state = load_checkpoint(path)
        if state is None:
            continue
        if state.get("identity") != identity or state.get("owner") != _plain(expected_owner):
            _logger.warning(
                "ignoring checkpoint %s: written by another run, not by this one", path
            )
            continue
        seed = int(state["seed"])
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        order.set_state(state["order_rng"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochRecord(**record) for record in state["history"]]
        start_loss = state["start_loss"]
        _logger.info("resuming from %s after epoch %d", path, len(history))
        break
    inherited = False
    if not history and start_from is not None:
        history, start_loss = _start_from(
            Path(start_from), start_owner, task, hparams, model, optimizer, scheduler
        )
        inherited = True
    resumed_from = len(history)
    if trial is not None and not inherited:
        reported = trial.intermediate_values
        for record in history:  # a retry is a new trial: give its pruner the history
            if record.epoch not in reported:
                trial.report(_metric(task, record), record.epoch)

    clip = hparams.grad_clip if hparams.grad_clip else math.inf
    guards = task.guards
    if clip != math.inf:
        # Clipping tames large gradient norms: only a non-finite one is divergence then.
        guards = dataclasses.replace(guards, max_grad_norm=None)
    guard = _Guard(guards, data.n_classes, start_loss, _warmup_epochs(task, hparams))
    measure_grads = clip != math.inf or (guards.enabled and guards.max_grad_norm is not None)
    model.train()
    for epoch in range(resumed_from + 1, end_epoch + 1):
        epoch_started = time.perf_counter()
        permutation = torch.randperm(n_train, generator=order).to(device)
        loss_sum = 0.0
        for step in range(1, steps_per_epoch + 1):
            idx = permutation[(step - 1) * batch_size : step * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(tensors.x_train[idx]), tensors.y_train[idx])
            loss_value = float(loss.detach())
            loss.backward()
            grad_norm: float | None = None
            if measure_grads:
                grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), clip))
            guard.check_step(epoch, step, loss_value, grad_norm)  # before the step is taken
            optimizer.step()
            scheduler.step()
            loss_sum += loss_value
        val_loss, val_accuracy = _evaluate(model, tensors.x_val, tensors.y_val)
        record = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / steps_per_epoch,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=float(optimizer.param_groups[0]["lr"]),
            seconds=time.perf_counter() - epoch_started,
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if trial is not None:
            trial.report(_metric(task, record), epoch)
        guard.check_epoch(record)
        if ckpt_path is not None:
            save_checkpoint(
                ckpt_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "identity": identity,
                    "owner": _plain(owner),
                    "seed": seed,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "order_rng": order.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": [r.to_dict() for r in history],
                    "start_loss": guard.start_loss,
                },
            )
        if trial is not None and epoch < end_epoch and trial.should_prune():
            raise TrialPruned(
                f"pruned at epoch {epoch} by {type(trial.study.pruner).__name__}: "
                f"{task.metric}={_metric(task, record):.4g}"
            )

    result = TrainResult(
        hparams=hparams,
        seed=seed,
        history=history,
        value=_metric(task, history[-1]),
        resumed_from_epoch=resumed_from,
        n_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    if evaluate_test:
        result.test_loss, result.test_accuracy = _evaluate(model, tensors.x_test, tensors.y_test)
    if keep_model:
        result.model = model.cpu()
    result.seconds = time.perf_counter() - started
    return result


def _start_from(
    path: Path,
    expected_owner: Mapping[str, Any] | None,
    task: Task,
    hparams: HParams,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[list[EpochRecord], float | None]:
    """Load another run's state, then apply ``hparams``' mutable fields to the optimizer."""
    state = load_checkpoint(path) if path.exists() else None
    if state is None:
        raise ValueError(f"start_from={str(path)!r} is not a dltune trainer checkpoint")
    theirs, ours = state.get("identity") or {}, _identity(task, hparams)
    if _structure(theirs) != _structure(ours):
        old, new = _structure(theirs).get("hparams", {}), _structure(ours)["hparams"]
        differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        what = f"hyperparameters {', '.join(differ)} differ" if differ else "the task differs"
        raise ValueError(
            f"start_from={str(path)!r} cannot be continued with these hyperparameters: {what}; "
            f"only {', '.join(MUTABLE_FIELDS)} may change"
        )
    if state.get("owner") != _plain(expected_owner):
        raise ValueError(
            f"start_from={str(path)!r} was written by {state.get('owner')!r}, not by "
            f"start_owner={_plain(expected_owner)!r}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    # Every schedule here is the peak learning rate times a shape (LambdaLR's base_lrs, OneCycle's
    # max/initial/min lr in the groups): scaling all of them by new/old sets the new peak and
    # keeps the schedule's position.
    ratio = hparams.lr / float(theirs["hparams"]["lr"])
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] = float(group[key]) * ratio
        if "momentum" in group:
            group["momentum"] = hparams.momentum
        if "betas" in group:
            group["betas"] = (hparams.beta1, hparams.beta2)
        if "weight_decay" in group:
            group["weight_decay"] = hparams.weight_decay
    scheduler.base_lrs = [float(lr) * ratio for lr in scheduler.base_lrs]
    # get_last_lr() reads this (private) list; keep it in step with the groups.
    scheduler._last_lr = [float(group["lr"]) for group in optimizer.param_groups]
    _logger.info("starting from %s after epoch %d", path, len(state["history"]))
    return [EpochRecord(**record) for record in state["history"]], state["start_loss"]


def _structure(identity: Mapping[str, Any]) -> dict[str, Any]:
    """An identity without the hyperparameters a run may change mid-training."""
    fixed = {k: v for k, v in identity.get("hparams", {}).items() if k not in MUTABLE_FIELDS}
    return {**identity, "hparams": fixed}


def _identity(task: Task, hparams: HParams) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the same data, split, model and settings."""
    model = (
        task.model
        if isinstance(task.model, str)
        else getattr(task.model, "__qualname__", type(task.model).__name__)
    )
    return {
        "dataset": task.dataset,
        "split_seed": task.split_seed,
        "model": model,
        "hparams": hparams.to_dict(),
    }


def _plain(owner: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if owner is None else {str(k): owner[k] for k in sorted(owner)}


def _steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Batches per epoch; a last batch of one sample is dropped (batch norm cannot train on
    it), and that sample is in the next epoch's shuffle.
    """
    steps = math.ceil(n_train / batch_size)
    if steps > 1 and n_train % batch_size == 1:
        steps -= 1
    return steps


def _warmup_epochs(task: Task, hparams: HParams) -> int:
    """Whole epochs of learning-rate warm-up, during which a slow start is not 'not learning'."""
    if hparams.schedule.strip().lower() == "onecycle":
        return math.ceil(0.3 * task.epochs)  # OneCycleLR's default rising phase
    if hparams.schedule.strip().lower() == "warmup" and hparams.warmup_epochs == 0:
        return 1
    return math.ceil(hparams.warmup_epochs)


def _metric(task: Task, record: EpochRecord) -> float:
    return record.val_accuracy if task.metric == "val_accuracy" else record.val_loss
