"""What every command shares: options, errors, logging, opening the storage."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from dltune.exceptions import DLTuneError

if TYPE_CHECKING:
    from dltune.storage import BaseStorage


F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STORAGE = "sqlite:///dltune.db"
STORAGE_ENV = "DLTUNE_STORAGE"
#: Table cells longer than this are cut, ending in "..."; ``--format json`` shows everything.
MAX_CELL_WIDTH = 48
_VERBOSE_KEY = "dltune.verbose"
_STATES = ("WAITING", "RUNNING", "COMPLETE", "PRUNED", "FAIL")
#: PRUNED trials the trainer's guards stopped, selectable on their own.
_OUTCOMES = ("DIVERGED", "NOT_LEARNING")
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
