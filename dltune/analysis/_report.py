"""The HTML report of a study: one self-contained file that opens offline.

It holds the summary, the best configuration and its retrained test score, every plot (drawn
by plotly.js, which is written into the page from the installed plotly package), the
importance table and every trial. Nothing in it is fetched from the network.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from dltune import __version__
from dltune.analysis._importance import IMPORTANCE_METHODS
from dltune.analysis._importance import NO_IMPORTANCE
from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._record import PlotRecord
from dltune.analysis._record import objective_label
from dltune.analysis._record import objective_values
from dltune.analysis._report_assets import CSS
from dltune.analysis._report_assets import DRAW_SCRIPT
from dltune.analysis._report_assets import TABLE_SCRIPT
from dltune.analysis._report_assets import plotly_js
from dltune.analysis._report_html import best_section
from dltune.analysis._report_html import esc
from dltune.analysis._report_html import importance_section
from dltune.analysis._report_html import summary_section
from dltune.analysis._report_table import trial_table_section
from dltune.analysis._table import param_names
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import pareto_trials

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = ["build_report", "write_report"]

_logger = logging.getLogger(__name__)


def _check_importance(importance: Any) -> str | None:
    """The method asked for: one of IMPORTANCE_METHODS, "none", or None (the default)."""
    if importance is None:
        return None
    if not isinstance(importance, str):
        raise TypeError(
            f"importance={importance!r} must be a method name (str), {NO_IMPORTANCE!r} or None"
        )
    if importance != NO_IMPORTANCE and importance not in IMPORTANCE_METHODS:
        raise ValueError(
            f"importance={importance!r} is not a method; use one of "
            f"{[*IMPORTANCE_METHODS, NO_IMPORTANCE]!r} ({NO_IMPORTANCE!r} leaves importance "
            "out), or None for the default method"
        )
    return importance


def _check_study(study: Any) -> None:
    from dltune.study import Study

    if not isinstance(study, Study):
        raise TypeError(
            f"study={study!r} is not a Study; open one with dltune.load_study(name, storage)"
        )


def _check_dir(png_dir: Any) -> Path | None:
    if png_dir is None:
        return None
    if not isinstance(png_dir, str | os.PathLike):
        raise TypeError(f"png_dir={png_dir!r} must be a path (str or Path) or None")
    path = Path(png_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"png_dir={str(png_dir)!r} is a file, not a directory; name a directory")
    return path


def _importances(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], method: str | None
) -> tuple[list[ParamImportances], str | None]:
    """One importance result per objective (``method`` None: the default method), or none
    and a note saying why."""
    if method == NO_IMPORTANCE:
        return [], f"Not computed (importance {NO_IMPORTANCE!r} was asked for)."
    complete = objective_values(trials, 0)
    if len(complete) < 2 or not param_names(complete):
        return [], "Not computed: it needs at least 2 COMPLETE trials with parameters."
    from dltune.analysis._importance import param_importances

    results = []
    for k in range(len(directions)):
        try:
            if method is None:  # the default method, whichever param_importances defines
                results.append(param_importances(trials, directions, objective=k))
            else:
                results.append(param_importances(trials, directions, method=method, objective=k))
        except ValueError as exc:  # e.g. too few finite values for this objective
            _logger.warning("importance of objective %d not computed: %s", k, exc)
            return results, f"Not computed for objective {k}: {exc}"
    return results, None


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def script_json(value: Any) -> str:
    """JSON text safe inside ``<script type="application/json">``.

    Every ``<`` becomes ``\\u003c`` (JSON syntax has none outside strings, so this only touches
    strings, and JSON.parse reads them back unchanged): no ``</script>`` or ``<!--`` can end
    or confuse the block, whatever a study name or parameter holds. Nothing else is escaped:
    the browser does not decode entities inside a script element, so ``&`` stays as it is.

    Args:
        value: JSON-ready data (dicts, lists, str, numbers, bools, ``None``); a NaN or
            infinity becomes ``null``.

    Returns:
        The compact JSON text.

    Raises:
        TypeError: If ``value`` holds something JSON cannot represent.

    Example:
        >>> script_json({"name": "</script><b>"})
        '{"name":"\\\\u003c/script>\\\\u003cb>"}'
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError:  # a renderer let a NaN through: draw a gap rather than break the page
        text = json.dumps(_finite(value), allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _plot_block(index: int, record: PlotRecord, figure: dict[str, Any]) -> str:
    notes = "".join(f'<p class="note">{esc(note)}</p>' for note in record.notes)
    return (
        f'<figure id="plot-{index}"><h3>{esc(record.title)}</h3>'
        f'<div class="plot plot-frame" data-figure="figure-{index}" role="img" '
        f'aria-label="{esc(record.title)}"></div>{notes}'
        f'<script type="application/json" id="figure-{index}">{script_json(figure)}</script>'
        "</figure>"
    )


def _plots_section(records: Sequence[PlotRecord], png_dir: Path | None) -> str:
    """The plots: a list of contents, then one block per plot (and a PNG file for each)."""
    from dltune.analysis._render import save_png
    from dltune.analysis._render import to_plotly_dict

    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    blocks, contents = [], []
    for i, record in enumerate(records, start=1):
        blocks.append(_plot_block(i, record, to_plotly_dict(record)))
        contents.append((i, record.title))
        if png_dir is not None:
            save_png(record, png_dir / f"{i:02d}-{record.kind}.png")
    if not blocks:
        blocks.append("<p>No plots: the study has no finished trials yet.</p>")
    items = "".join(f'<li><a href="#plot-{i}">{esc(title)}</a></li>' for i, title in contents)
    return f'<section id="plots"><h2>Plots</h2><ol>{items}</ol>{"".join(blocks)}</section>'


def _page(title: str, header: str, sections: Sequence[str], script: str) -> str:
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("summary", "Summary"),
            ("best", "Best"),
            ("plots", "Plots"),
            ("importance", "Importance"),
            ("trials", "Trials"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="dltune {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header>{header}<nav>{nav}</nav></header><main>\n"
        + "\n".join(sections)
        + "\n</main>\n<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>{script}</script>\n<script>{DRAW_SCRIPT}</script>\n"
        f"<script>{TABLE_SCRIPT}</script>\n</body></html>\n"
    )


def _best(
    study: Study, trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> list[FrozenTrial]:
    """The best trial by the storage's rule (``study.best_trial``: infinities are values,
    ties go to the earliest), or the Pareto set (the same as ``study.best_trials``)."""
    if len(directions) > 1:
        return pareto_trials(trials, directions)
    try:
        return [study.best_trial]
    except ValueError:  # no COMPLETE trial yet
        return []


def build_report(
    study: Study, *, importance: str | None = None, png_dir: str | Path | None = None
) -> str:
    """The HTML report of ``study``: one self-contained page (plotly.js inlined, no network).

    Args:
        study: The study (open it read-only with ``SQLStorage(url, read_only=True)`` to report
            on a running one without disturbing its workers).
        importance: How to rank the hyperparameters, as for :func:`plot_records`: ``None``
            (the default) uses the default method of :func:`param_importances` (PED-ANOVA,
            fast); otherwise one of :data:`IMPORTANCE_METHODS` (``"ped_anova"``, or
            ``"fanova"``, which needs scikit-learn), or ``"none"`` to leave importance out.
        png_dir: Also save every plot as a PNG there (matplotlib), created if missing.

    Returns:
        The HTML text. Every string from the study is escaped once, and the plots' JSON
        blocks hold no ``<``, so no name or value can add markup or script to the page.

    Raises:
        ValueError: On an unknown ``importance`` or a ``png_dir`` that is a file.
        TypeError: If ``study`` is not a study, ``importance`` not a str or ``None``, or
            ``png_dir`` not a path.
        MissingDependencyError: Without plotly (or matplotlib for ``png_dir``, scikit-learn
            for ``"fanova"``).
        OSError: If ``png_dir`` or a PNG file in it cannot be written (the exception's
            ``filename`` names which).

    Example:
        >>> import dltune
        >>> study = dltune.create_study(study_name="demo", seed=0)
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=4)
        >>> page = build_report(study)
        >>> page.startswith("<!DOCTYPE html>"), "<script src=" in page, "PED-ANOVA" in page
        (True, False, True)
    """
    method = _check_importance(importance)
    _check_study(study)
    png_path = _check_dir(png_dir)
    if png_path is not None:
        from dltune._imports import require

        require("matplotlib", extra="plots", feature="PNG plots of the report")
    script = plotly_js()  # fails before any work when plotly is missing
    started = time.perf_counter()
    trials, directions = study.trials, list(study.directions)
    best = _best(study, trials, directions)
    system_attrs = study.system_attrs
    loaded = time.perf_counter()
    results, note = _importances(trials, directions, method)
    from dltune.analysis._render import plot_records

    chosen: ParamImportances | str = results[0] if results else NO_IMPORTANCE
    records = plot_records(trials, directions, importance=chosen)
    computed = time.perf_counter()
    plots = _plots_section(records, png_path)
    drawn = time.perf_counter()
    labels = [objective_label(directions, k) for k in range(len(results))]
    built = datetime.datetime.now()
    sections = [
        summary_section(study.study_name, directions, trials, system_attrs, built),
        best_section(best, directions, system_attrs.get("retrain")),
        plots,
        importance_section(results, labels, note),
        trial_table_section(trials, directions, {t.number for t in best}),
    ]
    header = (
        f"<h1>Study <code>{esc(study.study_name)}</code></h1>"
        f"<p>dltune report, built {built.strftime('%Y-%m-%d %H:%M')} by dltune "
        f"{esc(__version__)}</p>"
    )
    page = _page(f"dltune report: {study.study_name}", header, sections, script)
    _logger.info(
        "report of %d trials: read %.2f s, importance and records %.2f s, figures %.2f s, "
        "tables %.2f s",
        len(trials),
        loaded - started,
        computed - loaded,
        drawn - computed,
        time.perf_counter() - drawn,
    )
    return page


def write_report(
    study: Study,
    path: str | Path,
    *,
    importance: str | None = None,
    png_dir: str | Path | None = None,
) -> Path:
    """Build the report of ``study`` (see :func:`build_report`) and write it to ``path``.

    Args:
        study: The study.
        path: The HTML file to write (its directory must exist); an existing file is
            replaced.
        importance: As for :func:`build_report`: ``None`` for the default method, a method
            of :data:`IMPORTANCE_METHODS`, or ``"none"``.
        png_dir: As for :func:`build_report`.

    Returns:
        The path written.

    Raises:
        TypeError: If ``path`` is not a path, or as :func:`build_report`.
        ValueError: As :func:`build_report`.
        MissingDependencyError: As :func:`build_report`.
        OSError: If the file cannot be written (missing directory, no permission), or a PNG
            file; the exception's ``filename`` names which.

    Example:
        >>> import tempfile, dltune
        >>> study = dltune.create_study(study_name="demo", seed=0)
        >>> study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     written = write_report(study, Path(tmp) / "demo.html", importance="none")
        ...     written.name, written.stat().st_size > 1_000_000
        ('demo.html', True)
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path={path!r} must be a file path (str or Path)")
    page = build_report(study, importance=importance, png_dir=png_dir)
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
