"""The report's trial table: every trial as one static row, sortable and filterable in place.

Static rows keep the page working without its script and cost little to build: 10,000 trials
make a few megabytes of HTML in about a second. All but the first page of rows are marked
``hidden``, so the browser lays out only what is shown; the table script pages, sorts and
filters them. A paused trial that a later trial continued reads ``paused`` (not ``pruned``),
as the summary counts it; the continuation names it in its "continues" column.
"""

from __future__ import annotations

from collections.abc import Sequence

from dltune.analysis._report_assets import PAGE_ROWS
from dltune.analysis._report_html import esc
from dltune.analysis._report_html import fmt_number
from dltune.analysis._report_html import fmt_param
from dltune.analysis._report_html import fmt_seconds
from dltune.analysis._report_html import fmt_when
from dltune.analysis._table import param_names
from dltune.analysis._table import trial_row
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import resumed_numbers

__all__ = ["trial_table_section"]

#: Longer reasons are cut in the cell (the whole text is in its tooltip).
MAX_REASON_CHARS = 160


def _reason_cell(reason: str | None) -> str:
    if not reason:
        return '<td class="r"></td>'
    if len(reason) <= MAX_REASON_CHARS:
        return f'<td class="r">{esc(reason)}</td>'
    return f'<td class="r" title="{esc(reason)}">{esc(reason[:MAX_REASON_CHARS])}...</td>'


def _param_cell(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n">{fmt_param(value)}</td>'
    return f"<td>{fmt_param(value)}</td>"


def _row(
    trial: FrozenTrial,
    n_values: int,
    names: Sequence[str],
    has_resume: bool,
    marks: tuple[set[int], set[int]],
    hidden: bool,
) -> str:
    """One ``<tr>``; ``marks`` are the best trials' numbers and the resumed paused trials'."""
    best_numbers, resumed = marks
    row = trial_row(trial)
    outcome = "paused" if trial.number in resumed else row["outcome"]
    classes = f"o-{esc(outcome)}" + (" best" if trial.number in best_numbers else "")
    opening = f'<tr class="{classes}" hidden>' if hidden else f'<tr class="{classes}">'
    values: list[float | None] = list(trial.values or [])
    values += [None] * (n_values - len(values))
    cells = [
        f'<td class="n">{trial.number}</td>',
        f'<td class="o">{esc(outcome.replace("_", " "))}</td>',
    ]
    cells += [f'<td class="n">{fmt_number(v)}</td>' for v in values]
    params = trial.params
    cells += [_param_cell(params[n]) if n in params else "<td>-</td>" for n in names]
    duration = row["duration_seconds"]
    cells += [
        f'<td class="n">{"-" if row["last_step"] is None else row["last_step"]}</td>',
        f'<td class="n">{fmt_number(row["last_value"])}</td>',
        f'<td class="n" data-s="{"" if duration is None else f"{duration:.3f}"}">'
        f"{fmt_seconds(duration)}</td>",
        f"<td>{fmt_when(trial.datetime_start)}</td>",
        f"<td>{esc(row['worker'])}</td>",
    ]
    if has_resume:
        resume = row["resume_of"]
        cells.append(f'<td class="n">{"" if resume is None else resume}</td>')
    cells.append(_reason_cell(row["reason"]))
    return f"{opening}{''.join(cells)}</tr>"


def trial_table_section(
    trials: Sequence[FrozenTrial],
    directions: Sequence[StudyDirection],
    best_numbers: set[int],
) -> str:
    """Every trial: number, outcome, value(s), params, last report, duration, worker, reason.

    Args:
        trials: The study's trials, in number order.
        directions: The study's directions (one value column each).
        best_numbers: The trials to shade: the best trial, or the Pareto set.

    Returns:
        The ``<section id="trials">`` element: the first :data:`PAGE_ROWS` rows are shown,
        the others are marked ``hidden`` for the table script to page in.

    Example:
        >>> from dltune.trial import TrialState
        >>> trials = [FrozenTrial(0, 0, TrialState.COMPLETE, [0.5], params={"a<b": "x&y"})]
        >>> page = trial_table_section(trials, [StudyDirection.MINIMIZE], {0})
        >>> '<th scope="col">a&lt;b</th>' in page, "<td>x&amp;y</td>" in page
        (True, True)
    """
    names = param_names(trials)
    n_values = len(directions)
    has_resume = any(t.resume_of is not None for t in trials)
    marks = (best_numbers, resumed_numbers(trials))
    value_headers = (
        [f"value ({directions[0].name.lower()})"]
        if n_values == 1
        else [f"value {k} ({d.name.lower()})" for k, d in enumerate(directions)]
    )
    headers = [
        "#",
        "outcome",
        *value_headers,
        *names,
        "last step",
        "last value",
        "duration",
        "started",
        "worker",
        *(["continues"] if has_resume else []),
        "reason",
    ]
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "\n".join(
        _row(t, n_values, names, has_resume, marks, i >= PAGE_ROWS) for i, t in enumerate(trials)
    )
    return (
        '<section id="trials"><h2>Trials</h2>'
        f"<p>All {len(trials)} trials, {PAGE_ROWS} per page. Click a column header to sort; "
        "type to keep only the rows containing every word (e.g. <code>diverged</code> or a "
        "worker). The best trial(s) are shaded.</p>"
        '<input class="filter" type="search" placeholder="filter rows" '
        'data-table="trial-table" aria-label="filter the trials">'
        '<div class="pager" id="trial-table-pager" hidden><span class="info"></span>'
        '<button type="button">first</button><button type="button">previous</button>'
        '<button type="button">next</button><button type="button">last</button></div>'
        # without scripts, show every row (the script would page them)
        "<noscript><style>#trial-table tr[hidden] { display: table-row; }</style></noscript>"
        f'<div class="scroll"><table id="trial-table" class="paged" data-page="{PAGE_ROWS}">'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div></section>"
    )
