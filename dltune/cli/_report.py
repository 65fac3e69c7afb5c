"""``dltune report``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from dltune.cli._commands import cli
from dltune.cli._common import UserError
from dltune.cli._common import _open_storage
from dltune.cli._common import _storage_option
from dltune.cli._common import _verbose_option

#: Longest file-name stem the default output gets from a study name.
_MAX_STEM = 80


def default_output(study_name: str) -> Path:
    """``<study>-report.html`` in the current directory, the name made safe as a file name.

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
    type=click.Choice(["ped_anova", "fanova", "none"], case_sensitive=False),
    default="ped_anova",
    show_default=True,
    help="How to rank the hyperparameters: PED-ANOVA (fast), fANOVA (random forest, needs "
    "scikit-learn) or none.",
)
@_verbose_option
def report(
    study_name: str, url: str, output: Path | None, png_dir: Path | None, importance: str
) -> None:
    """Write a study's report: one self-contained HTML file that opens offline.

    It holds the summary, the best configuration and its retrained test score, every plot,
    the importance of each hyperparameter and the table of all trials. The storage is opened
    read-only, so reporting on a running study does not disturb its workers. Prints the path
    of the file written.
    """
    from dltune._imports import require

    require("plotly", extra="plots", feature="the HTML report")
    if png_dir is not None:
        require("matplotlib", extra="plots", feature="PNG plots of the report")
        _check_png_dir(png_dir)
    if importance.lower() == "fanova":
        require("sklearn", extra="importance", feature="fANOVA importance")
    path = output if output is not None else default_output(study_name)
    _check_writable(path, "--output" if output is not None else "the default output")

    from dltune.analysis._report import build_report
    from dltune.study import load_study

    with _open_storage(url, read_only=True) as storage:
        storage.get_study_id_from_name(study_name)  # lists the names if there is no such study
        study = load_study(study_name, storage)
        try:
            page = build_report(study, importance=importance.lower(), png_dir=png_dir)
        except OSError as exc:  # only the PNG files are written while building
            raise UserError(f"--png {str(png_dir)!r}: cannot save the plots there: {exc}") from exc
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot write the report to {str(path)!r}: {reason}") from exc
    if png_dir is not None:
        click.echo(f"PNG plots in {png_dir}", err=True)
    click.echo(str(path))
