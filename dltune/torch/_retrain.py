"""Retrain the top-k configurations with fresh seeds and score them on the test split.

A search picks the luckiest run: the best validation score of many is biased upwards, by seed
noise as much as by the hyperparameters. Retraining the k best configurations from scratch with
new seeds, and choosing by the *mean* validation result, corrects for that; the test split,
untouched by the search, then gives an honest estimate of the chosen configuration.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch

from dltune.exceptions import TrialStopped
from dltune.torch._hparams import HParams
from dltune.torch._objective import HPARAMS_KEY
from dltune.torch._task import Task
from dltune.torch._trainer import TrainResult
from dltune.torch._trainer import train
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["RETRAIN_KEY", "CandidateResult", "RetrainReport", "retrain_top_k"]

_logger = logging.getLogger(__name__)

#: Study system attribute where the retraining's report is kept.
RETRAIN_KEY = "retrain"
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
        model_path: Where the chosen configuration's best-validation model was saved.
    """

    metric: str
    direction: str
    candidates: list[CandidateResult]
    chosen: int | None
    model_path: str | None

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


def retrain_top_k(
    study: Study,
    task: Task,
    *,
    k: int = 3,
    n_seeds: int = 3,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    model_path: str | Path | None = None,
    on_run: Callable[[CandidateResult, int, TrainResult | None], None] | None = None,
) -> RetrainReport:
    """Retrain the ``k`` best configurations ``n_seeds`` times each; score them on test.

    The chosen configuration has the best mean validation result (not the best test result:
    the test split stays a clean estimate). The report is kept on the study under the
    ``retrain`` system attribute, and the chosen configuration's best-validation model is saved
    to ``model_path`` (``{"model": state_dict, "hparams": ..., "task": ...}``, loadable with
    ``torch.load(path, weights_only=True)``).

    Args:
        study: A finished (or stopped) study whose trials hold their hyperparameters.
        task: The task, as searched (the full epochs are trained).
        k: How many configurations.
        n_seeds: Runs per configuration.
        seed: The base of the fresh seeds.
        fixed: Hyperparameters to use for trials that did not record theirs.
        model_path: Where to save the chosen model; ``None`` does not save.
        on_run: Called after each run (for a progress display).

    Raises:
        ValueError: For ``k`` or ``n_seeds`` below 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be an integer >= 1")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds={n_seeds!r} must be an integer >= 1")
    maximize = task.direction == "maximize"
    candidates: list[CandidateResult] = []
    best_models: list[tuple[float, dict[str, Any]] | None] = []
    for trial in top_k_trials(study, k):
        stored = trial.system_attrs.get(HPARAMS_KEY)
        hparams = (
            HParams.from_params(stored)
            if isinstance(stored, dict)
            else HParams.from_params(trial.params, **(fixed or {}))
        )
        seeds = [seed + _SEED_OFFSET + 1000 * trial.number + i for i in range(n_seeds)]
        cand = CandidateResult(
            trial_number=trial.number,
            search_value=float(trial.value or 0.0),
            params=dict(trial.params),
            hparams=hparams.to_dict(),
            seeds=seeds,
            val=[],
            test_accuracy=[],
            test_loss=[],
            stopped=[],
        )
        best_model: tuple[float, dict[str, Any]] | None = None
        for run_seed in seeds:
            result: TrainResult | None
            try:
                result = train(task, hparams, seed=run_seed, evaluate_test=True, keep_model=True)
            except TrialStopped as exc:
                result = None
                cand.val.append(None)
                cand.test_accuracy.append(None)
                cand.test_loss.append(None)
                cand.stopped.append(str(exc))
            else:
                cand.val.append(result.value)
                cand.test_accuracy.append(result.test_accuracy)
                cand.test_loss.append(result.test_loss)
                score = result.value if maximize else -result.value
                if result.model is not None and (best_model is None or score > best_model[0]):
                    best_model = (score, result.model.state_dict())
            if on_run is not None:
                on_run(cand, len(cand.val) - 1, result)
        candidates.append(cand)
        best_models.append(best_model)

    def rank(i: int) -> float:
        mean = candidates[i].val_mean_std[0]
        if mean is None:
            return -float("inf")
        return mean if maximize else -mean

    ranked = [i for i in range(len(candidates)) if candidates[i].val_mean_std[0] is not None]
    chosen = max(ranked, key=rank) if ranked else None
    saved: str | None = None
    if chosen is not None and model_path is not None and best_models[chosen] is not None:
        path = Path(model_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model_state = best_models[chosen]
        assert model_state is not None
        torch.save(
            {
                "model": model_state[1],
                "hparams": candidates[chosen].hparams,
                "task": {
                    "dataset": task.dataset,
                    "model": task.model if isinstance(task.model, str) else "custom",
                    "epochs": task.epochs,
                    "metric": task.metric,
                },
            },
            path,
        )
        saved = str(path)
    report = RetrainReport(task.metric, task.direction, candidates, chosen, saved)
    study.set_system_attr(RETRAIN_KEY, report.to_json())
    return report
