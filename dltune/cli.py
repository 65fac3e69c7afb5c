"""The ``dltune`` command line: look at studies, delete them, upgrade storages, run workers.

Only :mod:`click` is imported up front; the storage, samplers and execution load inside the
command that needs them, so ``dltune --help`` stays fast and works on a bare core install.

Every error caused by what the user typed (a ``DLTuneError``, ``ValueError`` or ``TypeError``)
ends the command with exit code 2 and one ``Error: ...`` line on stderr; ``-v`` adds the
traceback. Ctrl-C in ``dltune worker`` exits with code 130.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from dltune import __version__
from dltune.exceptions import DLTuneError

if TYPE_CHECKING:
    from types import FrameType

    from dltune.samplers import BaseSampler
    from dltune.storage import BaseStorage
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["cli", "main"]

_logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STORAGE = "sqlite:///dltune.db"
STORAGE_ENV = "DLTUNE_STORAGE"
#: Table cells longer than this are cut, ending in "..."; ``--format json`` shows everything.
MAX_CELL_WIDTH = 48
_VERBOSE_KEY = "dltune.verbose"
_STATES = ("WAITING", "RUNNING", "COMPLETE", "PRUNED", "FAIL")
_OBJECTIVE_FORM = "'module:function', e.g. 'train:objective' for objective() in ./train.py"


# -- errors and logging ----------------------------------------------------------------------


class UserError(click.ClickException):
    """A mistake in the command's input: one ``Error: ...`` line and exit code 2."""

    exit_code = 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class _Group(click.Group):
    """Turns the library's input errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DLTuneError, ValueError, TypeError) as exc:
            if ctx.meta.get(_VERBOSE_KEY):
                traceback.print_exc(file=sys.stderr)
            raise UserError(_one_line(exc)) from exc


class _EchoHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    """Give the ``dltune`` logger one stderr handler: INFO with ``-v``, WARNING otherwise.

    Only the CLI configures logging; calling this again replaces the earlier handler.
    """
    logger = logging.getLogger("dltune")
    for handler in list(logger.handlers):
        if isinstance(handler, _EchoHandler):
            logger.removeHandler(handler)
    handler = _EchoHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def _on_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    verbose = bool(value or ctx.meta.get(_VERBOSE_KEY))
    ctx.meta[_VERBOSE_KEY] = verbose  # meta is shared by the whole command chain
    configure_logging(verbose)


def _verbose_option(f: F) -> F:
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_on_verbose,
        help="Log progress at INFO level and show tracebacks of errors.",
    )(f)


def _storage_option(f: F) -> F:
    return click.option(
        "--storage",
        "url",
        metavar="URL",
        envvar=STORAGE_ENV,
        default=DEFAULT_STORAGE,
        show_default=True,
        show_envvar=True,
        help="The storage: 'sqlite:///path.db' or 'postgresql+psycopg://user:pw@host/db'.",
    )(f)


def _format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"], case_sensitive=False),
        default="table",
        show_default=True,
        help="Aligned columns for people, or JSON for scripts.",
    )(f)


# -- storage ---------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _sqlite_path(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names (as SQLAlchemy reads it), or ``None``."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            return url[len(prefix) :].split("?", 1)[0] or None
    return None


def _check_exists(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None and path != ":memory:" and not os.path.exists(path):
        raise UserError(
            f"--storage {url!r}: there is no database file {os.path.abspath(path)!r}; check "
            f"the path (three slashes for a relative one, four for an absolute one) or set "
            f"{STORAGE_ENV}"
        )


@contextlib.contextmanager
def _open_storage(
    url: str, *, read_only: bool = False, create: bool = False, **options: Any
) -> Iterator[BaseStorage]:
    """Open a SQL storage; a SQLite file must exist unless ``create``.

    Reading commands open it read-only, so they never write: no schema is created, and they
    fail no trial as stale (their ``grace_seconds`` need not be the workers').
    """
    if not create:
        _check_exists(url)
    from dltune.exceptions import StorageError
    from dltune.storage import SQLStorage
    from dltune.storage import current_schema_version

    try:
        storage = SQLStorage(url, read_only=read_only, **options)
    except StorageError:
        if read_only and current_schema_version(url) is None:
            raise UserError(
                f"--storage {mask_url(url)!r} holds no dltune studies yet (no dltune schema); "
                "create one with `dltune worker --create ...` or from Python"
            ) from None
        raise
    try:
        yield storage
    finally:
        storage.close()


# -- formatting ------------------------------------------------------------------------------


def _float(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def _values(values: Sequence[float] | None) -> str:
    return "-" if values is None else ", ".join(_float(v) for v in values)


def _param(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_param(v)}" for k, v in params.items()) or "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _cut(text: str, width: int = MAX_CELL_WIDTH) -> str:
    text = " ".join(text.split())  # a cell is one line
    return text if len(text) <= width else text[: width - 3] + "..."


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns, long cells cut to :data:`MAX_CELL_WIDTH` characters."""
    cells = [[_cut(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = [list(headers), ["-" * w for w in widths], *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _strict(value: Any) -> Any:
    """Replace non-finite floats (anywhere inside) by "inf", "-inf" or "nan" for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(data: Any) -> str:
    """Strict JSON (no NaN/Infinity tokens); objects JSON lacks are written with ``str``."""
    return json.dumps(_strict(data), indent=2, default=str, allow_nan=False)


def _trial_record(trial: FrozenTrial, n_objectives: int) -> dict[str, Any]:
    record: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
    if n_objectives == 1:
        record["value"] = None if trial.values is None else trial.values[0]
    else:
        record["values"] = trial.values
    record.update(
        params=trial.params,
        duration_seconds=trial.duration_seconds,
        reason=trial.reason,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        user_attrs=trial.user_attrs,
    )
    return record


def _trial_rows(trials: Sequence[FrozenTrial]) -> list[list[str]]:
    return [
        [
            str(t.number),
            t.state.name,
            _values(t.values),
            _params(t.params),
            _duration(t.duration_seconds),
            t.reason or "-",
        ]
        for t in trials
    ]


_TRIAL_HEADERS = ("NUMBER", "STATE", "VALUE", "PARAMS", "DURATION", "REASON")


# -- the commands ----------------------------------------------------------------------------


@click.group("dltune", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dltune")
@_verbose_option
def cli() -> None:
    """Look at, delete and run dltune studies kept in a SQLite or PostgreSQL storage.

    Every command takes --storage URL (default: $DLTUNE_STORAGE, else sqlite:///dltune.db).
    Errors in the input exit with code 2.
    """


@cli.command()
@_storage_option
@_format_option
@_verbose_option
def studies(url: str, fmt: str) -> None:
    """List the studies: directions, trial counts by state, best value, start time."""
    from dltune.trial import TrialState

    records: list[dict[str, Any]] = []
    with _open_storage(url, read_only=True) as storage:
        for study in storage.get_all_studies():
            counts = {s: storage.get_n_trials(study.study_id, (TrialState(s),)) for s in _STATES}
            best: float | None = None
            if len(study.directions) == 1:
                trial = storage.get_best_trial(study.study_id)
                best = None if trial is None else trial.value
            records.append(
                {
                    "name": study.study_name,
                    "directions": [d.name.lower() for d in study.directions],
                    "n_trials": study.n_trials,
                    "states": counts,
                    "best_value": best,
                    "datetime_start": study.datetime_start,
                }
            )
    if fmt == "json":
        click.echo(to_json(records))
        return
    if not records:
        click.echo(f"no studies in {mask_url(url)}", err=True)
        return
    rows = [
        [
            r["name"],
            ",".join(r["directions"]),
            str(r["n_trials"]),
            *(str(r["states"][s]) for s in _STATES),
            _float(r["best_value"]),
            _when(r["datetime_start"]),
        ]
        for r in records
    ]
    headers = ("NAME", "DIRECTIONS", "TRIALS", *_STATES, "BEST", "STARTED")
    click.echo(render_table(headers, rows))


@cli.command()
@click.argument("study_name", metavar="STUDY")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(_STATES, case_sensitive=False),
    help="Show only trials in this state; repeat for several.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Show only the last N trials (the highest numbers) of those selected.",
)
@_storage_option
@_format_option
@_verbose_option
def trials(
    study_name: str, states: tuple[str, ...], limit: int | None, url: str, fmt: str
) -> None:
    """List a study's trials: number, state, value(s), params, duration, reason.

    The reason says why a trial ended as it did: 'stale' (its worker died), 'interrupted'
    (Ctrl-C), or the error its objective raised.
    """
    from dltune.trial import TrialState

    with _open_storage(url, read_only=True) as storage:
        study_id = storage.get_study_id_from_name(study_name)
        n_objectives = len(storage.get_study_directions(study_id))
        wanted = {TrialState(s.upper()) for s in states} if states else None
        selected = storage.get_all_trials(study_id, wanted)
    if limit is not None:
        selected = selected[-limit:]
    if fmt == "json":
        click.echo(to_json([_trial_record(t, n_objectives) for t in selected]))
    elif not selected:
        which = " in the states asked for" if states else ""
        click.echo(f"study {study_name!r} has no trials{which}", err=True)
    else:
        click.echo(render_table(_TRIAL_HEADERS, _trial_rows(selected)))


@cli.command()
@click.argument("study_name", metavar="STUDY")
@_storage_option
@_format_option
@_verbose_option
def best(study_name: str, url: str, fmt: str) -> None:
    """Show the best trial: its number, value and params.

    For a study with several objectives, the Pareto front: the complete trials no other trial
    beats in every objective.
    """
    from dltune.study import load_study

    with _open_storage(url, read_only=True) as storage:
        storage.get_study_id_from_name(study_name)
        study = load_study(study_name, storage)
        directions = [d.name.lower() for d in study.directions]
        if len(directions) > 1:
            front = study.best_trials
            if fmt == "json":
                records = [_trial_record(t, len(directions)) for t in front]
                data = {"study": study_name, "directions": directions, "best_trials": records}
                click.echo(to_json(data))
            elif not front:
                raise UserError(f"study {study_name!r} has no COMPLETE trial yet")
            else:
                click.echo(render_table(_TRIAL_HEADERS, _trial_rows(front)))
            return
        trial = study.best_trial
    if fmt == "json":
        data = {"study": study_name, "direction": directions[0], **_trial_record(trial, 1)}
        click.echo(to_json(data))
        return
    rows = [["number", str(trial.number)], ["value", _float(trial.value)]]
    rows += [[f"params.{k}", _param(v)] for k, v in trial.params.items()]
    click.echo(render_table(("FIELD", "VALUE"), rows))


@cli.command()
@click.argument("study_name", metavar="STUDY")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@_storage_option
@_verbose_option
def delete(study_name: str, yes: bool, url: str) -> None:
    """Delete a study and all its trials, after asking (or with --yes).

    Exits with code 1 if the answer is no, and 2 if there is no one to ask (stdin closed).
    """
    with _open_storage(url) as storage:
        study_id = storage.get_study_id_from_name(study_name)
        if not yes:
            n = storage.get_n_trials(study_id)
            question = f"Delete study {study_name!r} and its {n} trial(s)? This cannot be undone."
            try:
                answer = click.confirm(question, default=False, err=True)
            except click.Abort:  # EOF on stdin: nobody to ask
                click.echo("", err=True)
                raise UserError(
                    f"refusing to delete study {study_name!r} without confirmation: stdin is "
                    "closed; pass --yes to delete it anyway"
                ) from None
            if not answer:
                click.echo(f"study {study_name!r} was not deleted", err=True)
                sys.exit(1)
        storage.delete_study(study_id)
    click.echo(f"deleted study {study_name!r}")


@cli.group("storage", cls=_Group)
def storage_group() -> None:
    """Manage the storage database itself."""


@storage_group.command()
@_storage_option
@_verbose_option
def upgrade(url: str) -> None:
    """Bring the database's schema to this dltune's revision (creating it if empty).

    Back the database up first; stop every worker using it while it runs.
    """
    from dltune.storage import upgrade_storage

    old, new = upgrade_storage(url)
    if old == new:
        click.echo(f"{mask_url(url)} is already at schema revision {new}")
    else:
        click.echo(f"upgraded {mask_url(url)}: {old or '(empty)'} -> {new}")


@storage_group.command()
@_storage_option
@_format_option
@_verbose_option
def version(url: str, fmt: str) -> None:
    """Show the schema revision of the database ('none' if it holds no dltune schema)."""
    from dltune.storage import current_schema_version

    _check_exists(url)
    revision = current_schema_version(url)
    if fmt == "json":
        click.echo(to_json({"storage": mask_url(url), "revision": revision}))
    else:
        click.echo(revision or "none")


# -- worker ----------------------------------------------------------------------------------


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
    from dltune.samplers import QMCSampler
    from dltune.samplers import RandomSampler

    return QMCSampler(seed) if kind == "qmc" else RandomSampler(seed)


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
) -> Study:
    from dltune.exceptions import StudyNotFoundError
    from dltune.study import create_study
    from dltune.study import load_study

    chosen = _make_sampler(sampler, seed)
    if create:
        return create_study(
            name, storage, sampler=chosen, load_if_exists=True, directions=list(directions)
        )
    try:
        return load_study(name, storage, sampler=chosen)
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
    type=click.Choice(["random", "qmc"], case_sensitive=False),
    default="random",
    show_default=True,
    help="How this worker picks params. For qmc give every worker the same --seed.",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="The sampler's seed.")
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
    seed: int | None,
    max_retries: int | None,
    heartbeat_seconds: float | None,
    grace_seconds: float | None,
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
            study = _join_study(storage, study_name, create, directions, sampler, seed)
            func = load_objective(objective)
            from dltune.execution import OptimizeJob
            from dltune.execution import run_worker

            job = OptimizeJob.build(study, func, n_trials, timeout, None)
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


def main(args: Sequence[str] | None = None) -> None:
    """Run the command line (the ``dltune`` script and ``python -m dltune``)."""
    cli.main(args=list(args) if args is not None else None, prog_name="dltune")
