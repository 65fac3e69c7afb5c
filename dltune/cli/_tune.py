"""``dltune tune`` and ``dltune lr-find``: run a YAML config."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
from typing import TYPE_CHECKING
from typing import Any

import click

from dltune.cli._commands import cli
from dltune.cli._common import DEFAULT_STORAGE
from dltune.cli._common import STORAGE_ENV
from dltune.cli._common import UserError
from dltune.cli._common import _verbose_option
from dltune.cli._common import mask_url

if TYPE_CHECKING:
    from rich.console import Console

    from dltune.config import TuneConfig
    from dltune.execution import BaseExecutor
    from dltune.storage import BaseStorage
    from dltune.study import Objective
    from dltune.study import Study
    from dltune.torch import LRRangeResult
    from dltune.torch import RetrainReport
    from dltune.torch import Task
    from dltune.torch import TorchObjective

_logger = logging.getLogger("dltune.cli")


def _require_extra() -> None:
    """`dltune tune` trains with torch, validates with pydantic and displays with rich."""
    from dltune._imports import require

    for module in ("torch", "pydantic", "rich"):
        require(module, extra="torch", feature="dltune tune")


def _load(path: str, **overrides: Any) -> TuneConfig:
    from dltune.config import load_config

    config = load_config(path)
    given = {k: v for k, v in overrides.items() if v is not None}
    return config.with_overrides(**given) if given else config


def _storage_url(flag: str | None, config: TuneConfig) -> str:
    """--storage, else the config's, else $DLTUNE_STORAGE, else the SQLite default."""
    return flag or config.storage or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def _open(url: str, retries: int) -> BaseStorage:
    """The storage; a trial whose worker dies is retried ``retries`` times, resuming from
    its last checkpoint."""
    from dltune.storage import SQLStorage

    return SQLStorage(url, max_retries=retries)


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _optimizers(config: TuneConfig) -> list[str]:
    """The optimizers the space can choose (or the fixed one, or the default)."""
    from dltune.space import CategoricalDistribution
    from dltune.torch import HParams

    dist = config.space.distributions.get("optimizer")
    if isinstance(dist, CategoricalDistribution):
        return [str(c) for c in dist.choices]
    return [str(config.space.fixed.get("optimizer", HParams().optimizer))]


def _run_lr_find(config: TuneConfig, task: Task, console: Console) -> list[LRRangeResult]:
    from dltune.torch import HParams
    from dltune.torch import lr_range_test

    results = []
    settings = config.lr_find
    base = {k: v for k, v in config.space.fixed.items() if k != "lr"}
    for name in _optimizers(config):
        hparams = HParams.from_params({"optimizer": name}, **base)
        result = lr_range_test(
            task,
            hparams,
            min_lr=settings.min_lr,
            max_lr=settings.max_lr,
            steps=settings.steps,
            seed=config.seed or 0,
        )
        console.print(
            f"lr range test, {name}: loss falls fastest at lr={result.steepest_lr:.3g}, is "
            f"lowest at lr={result.min_loss_lr:.3g}; suggested range "
            f"[{result.low:.3g}, {result.high:.3g}]",
            highlight=False,
        )
        results.append(result)
    return results


def _narrow_lr(config: TuneConfig, results: list[LRRangeResult], console: Console) -> TuneConfig:
    """The config with the lr range narrowed to what the range test suggests."""
    from dltune.space import FloatDistribution

    dist = config.space.distributions.get("lr")
    if not isinstance(dist, FloatDistribution):
        console.print("lr is not searched (a fixed value): the range test only reports")
        return config
    if dist.step is not None:
        console.print(f"lr has a step ({dist.step:g}): its range is kept as configured")
        return config
    low = max(dist.low, min(r.low for r in results))
    high = min(dist.high, max(r.high for r in results))
    if not low < high:
        console.print(
            f"the suggested lr range does not overlap the configured [{dist.low:g}, "
            f"{dist.high:g}]; searching the configured range"
        )
        return config
    console.print(
        f"searching lr in [{low:.3g}, {high:.3g}] (configured [{dist.low:g}, {dist.high:g}])"
    )
    return config.with_overrides(space=config.space.with_bounds("lr", low, high))


def _make_task(config: TuneConfig, workers: int) -> Task:
    task = config.build_task()
    if task.threads is None:
        task = dataclasses.replace(task, threads=_threads_per_worker(workers))
    return task


def _objective(config: TuneConfig, task: Task) -> TorchObjective:
    from dltune.torch import TorchObjective

    return TorchObjective(task, config.space, seed=config.seed or 0)


def _executor(
    name: str,
    scheduler_address: str | None,
    n_workers: int,
    gpus: str | None,
    workers_flag: int | None,
) -> BaseExecutor:
    """--executor local: ``n_workers`` processes (with --gpus: one per GPU, pinned); dask: the
    scheduler at the address, else a LocalCluster of ``n_workers`` workers."""
    if name == "dask":
        from dltune.execution import DaskExecutor

        if gpus is not None:
            raise UserError(
                f"--gpus {gpus} applies to local workers; with --executor dask give each Dask "
                "worker its GPU (e.g. CUDA_VISIBLE_DEVICES when starting dask worker)"
            )
        if scheduler_address is not None:
            return DaskExecutor(address=scheduler_address)
        return DaskExecutor(n_workers=n_workers)
    from dltune.execution import LocalExecutor
    from dltune.execution._gpu import GPUError

    if gpus is None:
        return LocalExecutor(n_workers)
    try:
        # Only the --workers flag: the config's default of 1 must not contradict --gpus 0,1.
        return LocalExecutor(workers_flag, gpus=gpus)
    except (ValueError, TypeError, GPUError) as exc:
        raise UserError(f"--gpus {gpus}: {exc}") from exc


def _check_gpu_device(config: TuneConfig, gpus: str | None) -> None:
    """With --gpus every worker sees its one GPU as cuda:0: cuda:N (N > 0) cannot work."""
    device = config.task.device
    if gpus is not None and device.startswith("cuda:") and device != "cuda:0":
        raise UserError(
            f"task.device {device!r} cannot be used with --gpus {gpus}: each worker sees only "
            "its own GPU, as cuda:0; use device: auto or cuda"
        )


def _shipped_objective(config: TuneConfig, task: Task, executor: BaseExecutor) -> Objective:
    """The objective here; for Dask, a reference that builds it on each worker from the config
    (data only: the final config, with the command line's overrides and a narrowed lr)."""
    from dltune.execution import DaskExecutor
    from dltune.execution import ObjectiveRef

    if isinstance(executor, DaskExecutor):
        target = f"{__name__}:worker_objective"
        return ObjectiveRef(target, config.to_mapping(), config.source, config.budget.workers)
    return _objective(config, task)


def worker_objective(mapping: dict[str, Any], source: str, workers: int) -> TorchObjective:
    """Build `dltune tune`'s objective where trials run (a Dask worker), from the config.

    Args:
        mapping: The config, as :meth:`TuneConfig.to_mapping` gives it.
        source: Where the config came from, for messages.
        workers: ``budget.workers``: each trial trains with cores / workers threads unless the
            task sets ``threads``.
    """
    from dltune.config import parse_config

    config = parse_config(mapping, source=source)
    return _objective(config, _make_task(config, workers))


def _print_retrain(report: RetrainReport, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"top {len(report.candidates)} retrained with fresh seeds")
    for header in ("trial", "search", "val mean ± std", "test acc mean ± std", "runs", ""):
        table.add_column(header)
    for i, cand in enumerate(report.candidates):
        val_m, val_s = cand.val_mean_std
        test_m, test_s = cand.test_accuracy_mean_std
        done = sum(v is not None for v in cand.val)
        table.add_row(
            str(cand.trial_number),
            f"{cand.search_value:.4f}",
            "-" if val_m is None else f"{val_m:.4f} ± {val_s:.4f}",
            "-" if test_m is None else f"{test_m:.4f} ± {test_s:.4f}",
            f"{done}/{len(cand.val)}",
            "chosen" if i == report.chosen else "",
        )
    console.print(table)


def _finish(
    study: Study, config: TuneConfig, task: Task, url: str, path: str, console: Console
) -> None:
    from dltune.cli._display import OUTCOMES
    from dltune.cli._display import outcome_counts
    from dltune.torch import retrain_top_k
    from dltune.torch import study_folder
    from dltune.trial import TrialState

    trials = study.trials
    counts = outcome_counts(trials)
    console.print(
        f"\n{len(trials)} trials: "
        + ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in OUTCOMES),
        highlight=False,
    )
    choices = study.system_attrs.get("sampler:auto")
    if isinstance(choices, list) and choices:
        picked = "; then ".join(
            f"{c.get('sampler')} from trial {c.get('from_trial')} ({c.get('reason')})"
            for c in choices
        )
        console.print(f"sampler auto chose: {picked}", highlight=False)
    if not study.get_trials(states=(TrialState.COMPLETE,)):
        raise UserError(
            f"study {study.study_name!r} has no COMPLETE trial; look at the reasons with "
            f"`dltune trials {study.study_name} --storage {mask_url(url)}`"
        )
    best = study.best_trial
    console.print(f"best {task.metric}: {best.value:.4f} (trial {best.number})", highlight=False)
    for key, value in best.params.items():
        console.print(f"  {key}: {value!r}", highlight=False)
    top_k = config.retrain.top_k
    if top_k > 0:
        console.print(
            f"\nretraining the top {top_k} configuration(s) x {config.retrain.seeds} fresh "
            "seeds, scoring on the test split ...",
            highlight=False,
        )
        model_path = None
        if task.checkpoint_dir is not None:
            model_path = task.checkpoint_dir / study_folder(study.study_name) / "best-model.pt"
        report = retrain_top_k(
            study,
            task,
            k=top_k,
            n_seeds=config.retrain.seeds,
            seed=config.seed or 0,
            fixed=config.space.fixed,
            model_path=model_path,
            n_jobs=config.budget.workers,
        )
        _print_retrain(report, console)
        chosen = report.best
        if chosen is None:
            console.print("every retraining run was stopped by a guard; no model was chosen")
        else:
            mean, std = chosen.test_accuracy_mean_std
            finished = [v for v in chosen.test_accuracy if v is not None]
            console.print(
                f"chosen: trial {chosen.trial_number}; test accuracy "
                f"{mean:.4f} ± {std:.4f} over {len(finished)} of {len(chosen.seeds)} seeds",
                highlight=False,
            )
            for key, value in chosen.hparams.items():
                if key in chosen.params:
                    console.print(f"  {key}: {value!r}", highlight=False)
            if report.model_path and report.model_run is not None:
                run = report.model_run
                console.print(
                    f"model checkpoint: {report.model_path} (the run with seed "
                    f"{chosen.seeds[run]}: validation {chosen.val[run]:.4f}, test accuracy "
                    f"{chosen.test_accuracy[run]:.4f}; load it with dltune.torch.load_model)",
                    highlight=False,
                )
    q_url = mask_url(url)
    name = shlex.quote(study.study_name)
    console.print(
        f"\nthe summary (best trial, retrained pick): dltune best {name} --storage {q_url}\n"
        f"every trial, with why it ended: dltune trials {name} --storage {q_url}\n"
        f"the report (plots, importance, every trial; one HTML file): dltune report {name} "
        f"--storage {q_url}\n"
        f"explore it in the browser: dltune dashboard --storage {q_url}\n"
        f"resume or extend: dltune tune {path} --trials N",
        highlight=False,
    )


def _dashboard_url(url: str) -> str | None:
    """The URL of a running dashboard serving ``url``'s storage, or ``None``."""
    try:
        from dltune.dashboard import find_dashboard
    except ImportError:  # the dashboard extra (or its module) is not installed
        return None
    found: str | None = find_dashboard(url)
    return found


def _announce_dashboard(found: str | None, url: str, live: bool, console: Console) -> None:
    """Link the running dashboard (the live panel shows it too), or say how to start one
    (the display links one started later)."""
    if found is None:
        console.print(
            f"watch it live in the browser: dltune dashboard --storage {mask_url(url)}",
            highlight=False,
        )
    elif not live:
        console.print(f"dashboard: {found}", highlight=False)


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--trials", type=click.IntRange(min=1), help="The study's trial budget (total).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.")
@click.option("--storage", "url", metavar="URL", help=f"Overrides the config, ${STORAGE_ENV}.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds.")
@click.option("--seed", type=int, help="The study seed.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs per trial (the config's task).")
@click.option("--lr-find", is_flag=True, help="Narrow the lr range with a range test first.")
@click.option("--top-k", type=click.IntRange(min=0), help="Configurations to retrain (0: none).")
@click.option(
    "--executor",
    "executor_name",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where trials run: local processes, or Dask tasks (on --scheduler-address, else on a "
    "LocalCluster of --workers workers).",
)
@click.option(
    "--scheduler-address",
    metavar="ADDRESS",
    help="The Dask scheduler for --executor dask, e.g. tcp://HOST:8786.",
)
@click.option(
    "--gpus",
    metavar="IDS",
    help="One local worker per GPU, each pinned with CUDA_VISIBLE_DEVICES: 'auto' or ids such "
    "as 0,1. A GPU busy with another run is waited for (the display says so).",
)
@click.option(
    "--synchronous",
    is_flag=True,
    help="Batch-synchronous: trials start in batches of one per worker, each batch sampled "
    "from the earlier ones only, so a seeded run replays exactly (workers idle at batch ends).",
)
@_verbose_option
def tune(
    config_path: str,
    trials: int | None,
    workers: int | None,
    url: str | None,
    timeout: float | None,
    seed: int | None,
    epochs: int | None,
    lr_find: bool,
    top_k: int | None,
    executor_name: str,
    scheduler_address: str | None,
    gpus: str | None,
    synchronous: bool,
) -> None:
    """Tune the model a YAML config describes; resume the study when it exists.

    Shows trials done, pruned, diverged and failed, the best so far and the ETA while it runs;
    Ctrl-C stops cleanly (rerun the same command to resume). At the end, the top-k
    configurations are retrained with fresh seeds and scored on the test split.

    With --executor dask each trial is a Dask task; workers build the model from the config
    (dltune[torch,dask] installed there) and need the storage: use PostgreSQL across machines.
    """
    if scheduler_address is not None and executor_name != "dask":
        raise UserError(
            f"--scheduler-address {scheduler_address} needs --executor dask (got --executor "
            f"{executor_name})"
        )
    _require_extra()
    from rich.console import Console

    from dltune.cli._display import TuneDisplay
    from dltune.execution import LocalExecutor
    from dltune.study import create_study
    from dltune.torch import LR_FIND_KEY
    from dltune.torch import load_dataset

    config = _load(config_path, trials=trials, workers=workers, timeout=timeout, seed=seed)
    if epochs is not None:
        config = config.model_copy(
            update={"task": config.task.model_copy(update={"epochs": epochs})}
        )
    if top_k is not None:
        config = config.model_copy(
            update={"retrain": config.retrain.model_copy(update={"top_k": top_k})}
        )
    url = _storage_url(url, config)
    _check_gpu_device(config, gpus)
    executor = _executor(executor_name, scheduler_address, config.budget.workers, gpus, workers)
    n_workers = config.budget.workers
    if isinstance(executor, LocalExecutor):
        n_workers = executor.n_workers  # --gpus 0,1: one worker per GPU
    task = _make_task(config, n_workers)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # Load (and, where missing, download) the data once, here, with a progress bar: a missing
    # data set is one clear error before anything is stored, not one failure per trial.
    load_dataset(
        task.dataset,
        task.data_dir,
        download=task.download,
        split_seed=task.split_seed,
        progress=console.is_terminal,
    )
    kwargs = config.study_kwargs()
    kwargs["storage"] = _open(url, config.budget.retries)
    study = create_study(**kwargs, load_if_exists=True)
    if lr_find:
        results = _run_lr_find(config, task, console)
        study.set_system_attr(LR_FIND_KEY, {r.optimizer: r.to_json() for r in results})
        config = _narrow_lr(config, results, console)
    objective = _shipped_objective(config, task, executor)
    dashboard = _dashboard_url(url)
    display = TuneDisplay(
        study,
        config.budget.trials,
        config.budget.timeout,
        console,
        dashboard_url=dashboard,
        find_dashboard=lambda: _dashboard_url(url),  # one started later is linked too
        status=executor.status,  # e.g. 'waiting for GPU 1 (in use by host:pid)'
    )
    _announce_dashboard(dashboard, url, display.live, console)
    try:
        with display:
            study.optimize(
                objective,
                n_trials=config.budget.trials,
                timeout=config.budget.timeout,
                callbacks=[display],
                executor=executor,
                batch_size=n_workers if synchronous else None,
            )
    except KeyboardInterrupt:
        console.print(
            f"\ninterrupted; {len(study.trials)} trial(s) are stored. Rerun the same command "
            "to resume.",
            highlight=False,
        )
        sys.exit(130)
    _finish(study, config, task, url, config_path, console)


@cli.command("lr-find")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, help="Seeds the weights and batches.")
@_verbose_option
def lr_find_command(config_path: str, seed: int | None) -> None:
    """Learning-rate range test: one short run per optimizer with a growing learning rate.

    Prints where the loss falls fastest and where it bottoms out, and the lr range to search.
    `dltune tune --lr-find` narrows the search with it (and records it in the study).
    """
    _require_extra()
    from rich.console import Console

    config = _load(config_path, seed=seed)
    console = Console(highlight=False, soft_wrap=True)
    task = _make_task(config, 1)
    results = _run_lr_find(config, task, console)
    low = min(r.low for r in results)
    high = max(r.high for r in results)
    console.print(f"suggested lr range over all optimizers: [{low:.3g}, {high:.3g}]")
