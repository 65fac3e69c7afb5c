"""Retrain the top-k configurations with fresh seeds and score them on the test split.

A search picks the luckiest run: the best validation score of many is biased upwards, by seed
noise as much as by the hyperparameters. Retraining the k best configurations from scratch with
new seeds, and choosing by the *mean* validation result, corrects for that; the test split,
untouched by the search, then gives an honest estimate of the chosen configuration.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import statistics
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import cloudpickle
import torch
from torch import nn

from dltune.exceptions import TrialStopped
from dltune.torch._checkpoint import load_weights_only
from dltune.torch._hparams import HParams
from dltune.torch._objective import HPARAMS_KEY
from dltune.torch._task import ModelFactory
from dltune.torch._task import Task
from dltune.torch._trainer import train
from dltune.torch.datasets import load_dataset
from dltune.torch.models import build_model
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = [
    "MODEL_FORMAT",
    "RETRAIN_KEY",
    "CandidateResult",
    "RetrainReport",
    "load_model",
    "retrain_top_k",
]

_logger = logging.getLogger(__name__)

#: Study system attribute where the retraining's report is kept.
RETRAIN_KEY = "retrain"
#: Marks a file saved by :func:`retrain_top_k` (``torch.load(path, weights_only=True)``).
MODEL_FORMAT = "dltune-model-1"
#: Retraining seeds start here (plus the base seed), far from the search's ``seed + number``.
_SEED_OFFSET = 1_000_000


@dataclass
class CandidateResult:
    """One configuration retrained with several seeds.

    Attributes:
        trial_number: The search trial it comes from.
        search_value: That trial's value in the search.
        params: The trial's params (what the search suggested).
        hparams: The full hyperparameters.
        seeds: The fresh seeds.
        val: Final validation metric per seed (``None`` for a run a guard stopped).
        test_accuracy: Test accuracy per seed (``None`` for a stopped run).
        test_loss: Test loss per seed.
        stopped: The guard's reason per stopped run.
    """

    trial_number: int
    search_value: float
    params: dict[str, Any]
    hparams: dict[str, Any]
    seeds: list[int]
    val: list[float | None]
    test_accuracy: list[float | None]
    test_loss: list[float | None]
    stopped: list[str]

    @staticmethod
    def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
        done = [v for v in values if v is not None]
        if not done:
            return None, None
        return statistics.fmean(done), statistics.pstdev(done) if len(done) > 1 else 0.0

    @property
    def val_mean_std(self) -> tuple[float | None, float | None]:
        return self._mean_std(self.val)

    @property
    def test_accuracy_mean_std(self) -> tuple[float | None, float | None]:
        return self._mean_std(self.test_accuracy)


@dataclass
class RetrainReport:
    """The retraining's outcome.

    Attributes:
        metric: The metric compared (``val_accuracy`` or ``val_loss``).
        direction: ``maximize`` or ``minimize``.
        candidates: One entry per retrained configuration, in search-rank order.
        chosen: Index into ``candidates`` of the one with the best mean validation result.
        model_path: Where the chosen configuration's best-validation run's model was saved.
        model_run: Which of the chosen configuration's runs that model is.
    """

    metric: str
    direction: str
    candidates: list[CandidateResult]
    chosen: int | None
    model_path: str | None
    model_run: int | None = None

    @property
    def best(self) -> CandidateResult | None:
        return None if self.chosen is None else self.candidates[self.chosen]

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "candidates": [asdict(c) for c in self.candidates],
            "chosen": self.chosen,
            "model_path": self.model_path,
            "model_run": self.model_run,
        }


def top_k_trials(study: Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials with distinct hyperparameters, best first."""
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    complete = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if t.value is not None]
    complete.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    seen: set[str] = set()
    out = []
    for t in complete:
        key = json.dumps(t.system_attrs.get(HPARAMS_KEY, t.params), sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        out.append(t)
        if len(out) == k:
            break
    return out


def _run(payload: bytes) -> bytes:
    """One retraining run, in a worker process (arguments and result by cloudpickle)."""
    task, hparams, seed = cloudpickle.loads(payload)
    try:
        result = train(task, hparams, seed=seed, evaluate_test=True, keep_model=True)
    except TrialStopped as exc:
        stopped: bytes = cloudpickle.dumps((None, None, None, None, str(exc)))
        return stopped
    assert result.model is not None
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    done: bytes = cloudpickle.dumps(
        (result.value, result.test_accuracy, result.test_loss, state, None)
    )
    return done


def _map(payloads: list[bytes], n_jobs: int) -> Iterator[bytes]:
    """Run ``_run`` over the payloads, in order, in ``n_jobs`` fresh processes (or here)."""
    if n_jobs == 1 or len(payloads) == 1:
        yield from map(_run, payloads)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
    with concurrent.futures.ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
        yield from pool.map(_run, payloads)


def retrain_top_k(
    study: Study,
    task: Task,
    *,
    k: int = 3,
    n_seeds: int = 3,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    model_path: str | Path | None = None,
    n_jobs: int = 1,
    on_run: Callable[[CandidateResult, int], None] | None = None,
) -> RetrainReport:
    """Retrain the ``k`` best configurations ``n_seeds`` times each; score them on test.

    The chosen configuration has the best mean validation result among those whose every run
    finished (a configuration that diverged on some seeds ranks below them: dropping its failed
    runs would reward exactly the luck this step corrects for). The test split, untouched by
    the choice, then estimates it. The report is kept on the study under the ``retrain``
    system attribute, and the chosen configuration's best-validation model is saved to
    ``model_path`` (see :func:`load_model`).

    Args:
        study: A finished (or stopped) study whose trials hold their hyperparameters.
        task: The task, as searched (the full epochs are trained).
        k: How many configurations.
        n_seeds: Runs per configuration.
        seed: The base of the fresh seeds.
        fixed: Hyperparameters to use for trials that did not record theirs.
        model_path: Where to save the chosen model; ``None`` does not save.
        n_jobs: Runs in parallel, each in a fresh process (1: here, one after another).
        on_run: Called after each run with the candidate and the run's index.

    Raises:
        ValueError: For ``k``, ``n_seeds`` or ``n_jobs`` below 1.
    """
    for name, value in (("k", k), ("n_seeds", n_seeds), ("n_jobs", n_jobs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    maximize = task.direction == "maximize"
    candidates: list[CandidateResult] = []
    hparams_of: list[HParams] = []
    for trial in top_k_trials(study, k):
        stored = trial.system_attrs.get(HPARAMS_KEY)
        hparams = (
            HParams.from_params(stored)
            if isinstance(stored, dict)
            else HParams.from_params(trial.params, **(fixed or {}))
        )
        hparams_of.append(hparams)
        candidates.append(
            CandidateResult(
                trial_number=trial.number,
                search_value=float(trial.value or 0.0),
                params=dict(trial.params),
                hparams=hparams.to_dict(),
                seeds=[seed + _SEED_OFFSET + 1000 * trial.number + i for i in range(n_seeds)],
                val=[],
                test_accuracy=[],
                test_loss=[],
                stopped=[],
            )
        )
    payloads = [
        cloudpickle.dumps((task, hparams, run_seed))
        for cand, hparams in zip(candidates, hparams_of, strict=True)
        for run_seed in cand.seeds
    ]
    best_models: list[tuple[float, int, dict[str, Any]] | None] = [None] * len(candidates)
    for index, raw in enumerate(_map(payloads, n_jobs)):
        c, run = divmod(index, n_seeds)
        cand = candidates[c]
        value, test_accuracy, test_loss, state, stopped = cloudpickle.loads(raw)
        cand.val.append(value)
        cand.test_accuracy.append(test_accuracy)
        cand.test_loss.append(test_loss)
        if stopped is not None:
            cand.stopped.append(stopped)
        elif state is not None:
            score = value if maximize else -value
            if best_models[c] is None or score > best_models[c][0]:  # type: ignore[index]
                best_models[c] = (score, run, state)
        if on_run is not None:
            on_run(cand, run)

    def rank(i: int) -> tuple[bool, float]:
        mean = candidates[i].val_mean_std[0]
        assert mean is not None
        return (not candidates[i].stopped, mean if maximize else -mean)

    ranked = [i for i in range(len(candidates)) if candidates[i].val_mean_std[0] is not None]
    chosen = max(ranked, key=rank) if ranked else None
    saved: str | None = None
    saved_run: int | None = None
    best = None if chosen is None else best_models[chosen]
    if chosen is not None and model_path is not None and best is not None:
        _, run, state = best
        cand = candidates[chosen]
        data = load_dataset(
            task.dataset, task.data_dir, download=task.download, split_seed=task.split_seed
        )
        path = Path(model_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": MODEL_FORMAT,
                "model": state,
                "hparams": cand.hparams,
                "input_shape": list(data.input_shape),
                "n_classes": data.n_classes,
                "dataset": task.dataset,
                "model_name": task.model if isinstance(task.model, str) else None,
                "seed": cand.seeds[run],
                "val": cand.val[run],
                "test_accuracy": cand.test_accuracy[run],
            },
            path,
        )
        saved, saved_run = str(path), run
    report = RetrainReport(task.metric, task.direction, candidates, chosen, saved, saved_run)
    study.set_system_attr(RETRAIN_KEY, report.to_json())
    return report


def load_model(path: str | Path, model: ModelFactory | None = None) -> nn.Module:
    """Rebuild the model :func:`retrain_top_k` (or ``dltune tune``) saved, weights loaded.

    Loads with ``weights_only=True``: no code in the file runs.

    Args:
        path: The saved file (``best-model.pt``).
        model: The factory of a custom model (a built-in model is rebuilt by its name).

    Raises:
        CheckpointError: If the file cannot be loaded safely (a ``ValueError`` naming it): one
            crafted to run code on load is refused, never loaded.
        ValueError: If the file is not a saved dltune model, or a custom model's factory is
            missing.
    """
    saved = load_weights_only(path, "model file")
    if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
        raise ValueError(f"{str(path)!r} is not a model saved by dltune (format {MODEL_FORMAT})")
    factory = model if model is not None else saved["model_name"]
    if factory is None:
        raise ValueError(
            f"{str(path)!r} holds a custom model: pass its factory, load_model(path, model=...)"
        )
    hparams = HParams.from_params(saved["hparams"])
    net = build_model(factory, hparams, tuple(saved["input_shape"]), int(saved["n_classes"]))
    net.load_state_dict(saved["model"])
    net.eval()
    return net
