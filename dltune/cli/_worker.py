"""``dltune worker``: join a study from another shell or machine."""

from __future__ import annotations

import importlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import click

from dltune.cli._common import _OBJECTIVE_FORM
from dltune.cli._common import UserError
from dltune.cli._common import _one_line
from dltune.cli._common import _open_storage
from dltune.cli._common import _storage_option
from dltune.cli._common import _verbose_option
from dltune.cli._format import _params
from dltune.cli._format import _values

if TYPE_CHECKING:
    from types import FrameType

    from dltune.pruners import BasePruner
    from dltune.samplers import BaseSampler
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.trial import FrozenTrial

from dltune.cli._commands import cli

_logger = logging.getLogger("dltune.cli")  # the name users filter on, not the module


def parse_objective(spec: str) -> tuple[str, str]:
    """Split ``module:function`` into its parts, checking the form.

    Raises:
        ValueError: Naming the value and the expected form.
    """
    module, sep, attr = spec.partition(":")
    if module.endswith(".py"):
        raise ValueError(
            f"--objective {spec!r} names a file; give the module name without '.py': "
            f"{module[:-3] + sep + attr!r}"
        )
    name = r"[A-Za-z_]\w*"
    if not (sep and re.fullmatch(rf"{name}(\.{name})*", module) and re.fullmatch(name, attr)):
        raise ValueError(f"--objective {spec!r} is not of the form {_OBJECTIVE_FORM}")
    return module, attr


def _import_failed(spec: str, module_name: str, exc: Exception) -> str:
    return (
        f"--objective {spec!r}: importing module {module_name!r} raised "
        f"{type(exc).__name__}: {exc} (run with -v for the traceback)"
    )


def load_objective(spec: str) -> Callable[..., object]:
    """Import ``module:function``, with the current directory first on ``sys.path``.

    Raises:
        ValueError: For a bad form, a module that cannot be imported or a missing function.
        TypeError: If the name is not callable.
    """
    module_name, attr = parse_objective(spec)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as `python script.py` does for the script's directory
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise ValueError(
                f"--objective {spec!r}: no module named {exc.name!r} in the current directory "
                f"{cwd!r} or on sys.path; expected {_OBJECTIVE_FORM}"
            ) from exc
        raise ValueError(_import_failed(spec, module_name, exc)) from exc
    except Exception as exc:  # the user's module raised while importing: their error
        raise ValueError(_import_failed(spec, module_name, exc)) from exc
    try:
        func = getattr(module, attr)
    except AttributeError:
        names = sorted(
            k
            for k, v in vars(module).items()
            if callable(v) and getattr(v, "__module__", None) == module.__name__
        )
        raise ValueError(
            f"--objective {spec!r}: module {module_name!r} has no attribute {attr!r}; it "
            f"defines the callables {names!r}; expected {_OBJECTIVE_FORM}"
        ) from None
    if not callable(func):
        raise TypeError(
            f"--objective {spec!r} names a {type(func).__name__}, which is not callable; "
            f"expected {_OBJECTIVE_FORM}, a function objective(trial) -> value"
        )
    return func  # type: ignore[no-any-return] # a user's function, checked callable above


def _make_sampler(kind: str, seed: int | None) -> BaseSampler:
    from dltune.samplers import SAMPLERS

    return SAMPLERS.get(kind)(seed=seed)


def make_pruner(spec: str, seed: int | None) -> BasePruner:
    """The pruner a ``--pruner`` spec names: ``asha`` or a YAML mapping such as
    ``{type: hyperband, max_resource: 30}``, checked as a config's ``pruner:`` section.

    Raises:
        UserError: For a spec that is not a name or a mapping with ``type``, or arguments the
            pruner refuses (the message names the key and what is accepted).
    """
    import yaml

    from dltune.config._errors import Problems
    from dltune.config._plugins import build_plugin
    from dltune.config._plugins import check_plugin
    from dltune.pruners import PRUNERS

    try:
        parsed = yaml.safe_load(spec)
    except yaml.YAMLError as exc:
        raise UserError(f"--pruner {spec!r} is not valid YAML: {_one_line(exc)}") from None
    if isinstance(parsed, str):
        parsed = {"type": parsed}
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        raise UserError(
            f"--pruner {spec!r} must be a pruner name ({', '.join(PRUNERS.names())}) or a "
            "mapping with a type, such as '{type: asha, min_resource: 1, reduction_factor: 3}'"
        )
    kwargs = {k: v for k, v in parsed.items() if k != "type"}
    try:
        name = check_plugin(PRUNERS, parsed["type"], kwargs, seed=seed, space=None)
        return build_plugin(PRUNERS, name, kwargs, seed=seed, space=None)
    except Problems as exc:
        lines = "; ".join(p.render() for p in exc.problems)
        raise UserError(f"--pruner {spec!r}: {lines}") from None


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so that the running trial is failed the same way."""


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # A scheduler's SIGTERM stops the worker like Ctrl-C: the running trial is failed as
    # 'interrupted' rather than left RUNNING until it goes stale.
    raise _Terminated


def _join_study(
    storage: BaseStorage,
    name: str,
    create: bool,
    directions: tuple[str, ...],
    sampler: str,
    seed: int | None,
    pruner: BasePruner,
) -> Study:
    from dltune.exceptions import StudyNotFoundError
    from dltune.study import create_study
    from dltune.study import load_study

    chosen = _make_sampler(sampler, seed)
    if create:
        try:
            return create_study(
                name,
                storage,
                sampler=chosen,
                pruner=pruner,
                load_if_exists=True,
                seed=seed,
                directions=list(directions),
            )
        except ValueError as exc:  # e.g. the study exists with another seed
            raise UserError(_one_line(exc)) from exc
    try:
        return load_study(name, storage, sampler=chosen, pruner=pruner)
    except StudyNotFoundError as exc:
        raise UserError(
            f"{_one_line(exc)}; create it first, or pass --create --direction "
            "minimize|maximize to create it if missing"
        ) from exc


@cli.command()
@click.option("--study", "study_name", required=True, metavar="NAME", help="The study to join.")
@_storage_option
@click.option(
    "--objective",
    required=True,
    metavar="MODULE:FUNCTION",
    help="The objective, imported from MODULE (the current directory is searched first).",
)
@click.option(
    "--n-trials",
    type=click.IntRange(min=0),
    default=None,
    help="The study's total trial budget, shared by all workers: stop once the study holds N "
    "trials, counting other workers' and earlier runs' (failed ones too). Two workers with "
    "--n-trials 20 end with 20 trials, not 40. Default: no limit.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Start no trial after this many seconds.",
)
@click.option(
    "--sampler",
    type=click.Choice(["auto", "tpe", "gp", "cmaes", "qmc", "random"], case_sensitive=False),
    default="auto",
    show_default=True,
    help="How this worker picks params; every worker reads the whole study, so any of them "
    "works across workers. Give every worker the same --seed for a reproducible qmc sequence.",
)
@click.option(
    "--pruner",
    "pruner_spec",
    default="median",
    show_default=True,
    metavar="SPEC",
    help="Which trials this worker stops early: a name (median, asha, hyperband, ...) or a "
    "YAML mapping as in a config, e.g. '{type: asha, min_resource: 1, reduction_factor: 3}'. "
    "Give every worker of a study the same one.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="The sampler's (and pruner's) seed."
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Run a stale trial's params again up to N times.  [storage default: 0]",
)
@click.option(
    "--heartbeat-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="How often a running trial signals it is alive.  [storage default: 10]",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Fail a running trial as 'stale' after this long without a heartbeat.  "
    "[storage default: 60]",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Batch-synchronous: trials start in batches of K, each batch sampled from the "
    "earlier ones only, so the run replays exactly. Give every worker the same K.",
)
@click.option("--create", is_flag=True, help="Create the study if it does not exist.")
@click.option(
    "--direction",
    "directions",
    multiple=True,
    type=click.Choice(["minimize", "maximize"], case_sensitive=False),
    help="With --create: the study's direction; repeat for several objectives.",
)
@_verbose_option
def worker(
    study_name: str,
    url: str,
    objective: str,
    n_trials: int | None,
    timeout: float | None,
    sampler: str,
    pruner_spec: str,
    seed: int | None,
    max_retries: int | None,
    heartbeat_seconds: float | None,
    grace_seconds: float | None,
    batch_size: int | None,
    create: bool,
    directions: tuple[str, ...],
) -> None:
    """Join an existing study and run its trials until the budget or timeout is spent.

    Start as many workers as you like, from other shells or machines sharing the storage.
    Ctrl-C (or SIGTERM) fails the running trial with reason 'interrupted' and exits with
    130 (143).
    """
    if create and not directions:
        raise click.UsageError("--create needs --direction minimize|maximize")
    if directions and not create:
        raise click.UsageError("--direction is only used with --create")
    parse_objective(objective)  # a typo fails before any database work
    pruner = make_pruner(pruner_spec, seed)
    options: dict[str, Any] = {
        k: v
        for k, v in [
            ("heartbeat_seconds", heartbeat_seconds),
            ("grace_seconds", grace_seconds),
            ("max_retries", max_retries),
        ]
        if v is not None
    }
    n_run = 0

    def on_finished(trial: FrozenTrial) -> None:
        nonlocal n_run
        n_run += 1
        _logger.info(
            "trial %d %s: value(s) %s, params %s",
            trial.number,
            trial.state.name,
            _values(trial.values),
            _params(trial.params),
        )

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with _open_storage(url, create=create, **options) as storage:
            study = _join_study(storage, study_name, create, directions, sampler, seed, pruner)
            func = load_objective(objective)
            from dltune.execution import OptimizeJob
            from dltune.execution import run_worker

            job = OptimizeJob.build(study, func, n_trials, timeout, None, batch_size=batch_size)
            run_worker(study, job, on_finished=on_finished)
            n_total = storage.get_n_trials(storage.get_study_id_from_name(study_name))
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        click.echo(
            f"{how} after {n_run} finished trial(s); a running trial was stored as FAIL "
            "(reason 'interrupted')",
            err=True,
        )
        sys.exit(128 + (signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT))
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"ran {n_run} trial(s); study {study_name!r} holds {n_total}")
