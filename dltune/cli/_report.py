"""``dltune report``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from dltune.analysis import IMPORTANCE_METHODS
from dltune.analysis import NO_IMPORTANCE
from dltune.analysis import build_report
from dltune.cli._commands import cli
from dltune.cli._common import UserError
from dltune.cli._common import _open_storage
from dltune.cli._common import _storage_option
from dltune.cli._common import _verbose_option

#: Longest file-name stem the default output gets from a study name.
_MAX_STEM = 80


def default_output(study_name: str) -> Path:
    """``<study>-report.html`` in the current directory, the name made safe as a file name.

    Args:
        study_name: The study's name; every run of characters other than letters, digits,
            ``.``, ``_`` and ``-`` becomes one ``_``, and the stem is cut to 80 characters.

    Returns:
        The relative path (``study-report.html`` if nothing of the name is left).

    Example:
        >>> default_output("mnist/cnn: v2").name
        'mnist_cnn_v2-report.html'
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).strip("._-")[:_MAX_STEM] or "study"
    return Path(f"{stem}-report.html")


def _check_writable(path: Path, option: str) -> None:
    """Refuse, before the work, an output the report could not be written to."""
    if path.is_dir():
        raise UserError(f"{option} {str(path)!r} is a directory; name a file, e.g. report.html")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(
            f"{option} {str(path)!r}: the directory {str(parent)!r} does not exist; create it "
            "or name another file"
        )
    exists = path.exists()
    if (exists and not os.access(path, os.W_OK)) or (
        not exists and not os.access(parent, os.W_OK | os.X_OK)
    ):
        raise UserError(f"{option} {str(path)!r} is not writable; name another file")


def _check_png_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UserError(f"--png {str(path)!r} is a file; name a directory (created if missing)")


def _related(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b``, inside it, or one of its parents."""
    a, b = Path(os.path.abspath(a)), Path(os.path.abspath(b))
    return a == b or a in b.parents or b in a.parents


def build_error(exc: OSError, png_dir: Path | None) -> UserError:
    """The one-line error for an OSError raised while building the report, by what failed.

    While building, only the PNG files (and their directory) are written; anything else
    (e.g. reading plotly.js) is named as it is, not blamed on ``--png``.

    Args:
        exc: The error; its ``filename`` says which file failed, when the OS said so.
        png_dir: The ``--png`` directory, or ``None``.

    Returns:
        The error to raise.

    Example:
        >>> import errno
        >>> exc = OSError(errno.ENOTDIR, "Not a directory", "out/f/pngs")
        >>> print(build_error(exc, Path("out/f/pngs")))
        --png 'out/f/pngs': cannot save the plots there: Not a directory
        >>> print(build_error(OSError(errno.EIO, "Input/output error", "/x/plotly.min.js"), None))
        cannot build the report: Input/output error: '/x/plotly.min.js'
    """
    reason = exc.strerror or str(exc)
    name = exc.filename
    where = Path(os.fsdecode(name)) if isinstance(name, str | bytes) else None
    if png_dir is not None and where is not None and _related(where, png_dir):
        if os.path.abspath(where) == os.path.abspath(png_dir):
            return UserError(f"--png {str(png_dir)!r}: cannot save the plots there: {reason}")
        return UserError(f"--png {str(png_dir)!r}: cannot write {str(where)!r}: {reason}")
    if where is None:
        return UserError(f"cannot build the report: {reason}")
    return UserError(f"cannot build the report: {reason}: {str(where)!r}")


@cli.command()
@click.argument("study_name", metavar="STUDY")
@_storage_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="The HTML file to write  [default: STUDY-report.html here]",
)
@click.option(
    "--png",
    "png_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Also save every plot as a PNG file in DIR (created if missing).",
)
@click.option(
    "--importance",
    type=click.Choice([*IMPORTANCE_METHODS, NO_IMPORTANCE], case_sensitive=False),
    default=None,
    help="How to rank the hyperparameters: ped_anova (PED-ANOVA, fast; the default), fanova "
    "(fANOVA, a random forest; needs scikit-learn) or none (leave importance out).",
)
@_verbose_option
def report(
    study_name: str, url: str, output: Path | None, png_dir: Path | None, importance: str | None
) -> None:
    """Write a study's report: one self-contained HTML file that opens offline.

    It holds the summary, the best configuration and its retrained test score, every plot,
    the importance of each hyperparameter and the table of all trials. The storage is opened
    read-only, so reporting on a running study does not disturb its workers. Prints the path
    of the file written.
    \f

    Args:
        study_name: The study (STUDY).
        url: The storage URL (``--storage``, or ``$DLTUNE_STORAGE``).
        output: The HTML file (``-o``); ``STUDY-report.html`` here by default.
        png_dir: The directory for PNG copies of the plots (``--png``), or ``None``.
        importance: ``--importance``; ``None`` for the default method.

    Raises:
        UserError: On a missing extra, an unknown study, or an output or PNG directory that
            cannot be written: printed as one line, exit status 2.

    Example:
        >>> from click.testing import CliRunner
        >>> CliRunner().invoke(report, ["--help"]).output.startswith("Usage: report")
        True
    """
    from dltune._imports import require

    require("plotly", extra="plots", feature="the HTML report")
    if png_dir is not None:
        require("matplotlib", extra="plots", feature="PNG plots of the report")
        _check_png_dir(png_dir)
    method = None if importance is None else importance.lower()
    if method == "fanova":
        require("sklearn", extra="importance", feature="fANOVA importance")
    path = output if output is not None else default_output(study_name)
    _check_writable(path, "--output" if output is not None else "the default output")

    from dltune.study import load_study

    with _open_storage(url, read_only=True) as storage:
        storage.get_study_id_from_name(study_name)  # lists the names if there is no such study
        study = load_study(study_name, storage)
        try:
            page = build_report(study, importance=method, png_dir=png_dir)
        except OSError as exc:
            raise build_error(exc, png_dir) from exc
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot write the report to {str(path)!r}: {reason}") from exc
    if png_dir is not None:
        click.echo(f"PNG plots in {png_dir}", err=True)
    click.echo(str(path))
