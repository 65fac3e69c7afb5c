"""The report's sections as HTML text: summary, best configuration, retraining, importance.

Every value that comes from the study (names, parameters, reasons, attributes, the retraining
metric) passes through :func:`esc` exactly once, where it is placed in the page: the helpers
that build tables and definition lists escape their labels themselves and take their cells as
HTML already. The report never trusts what a trial stored.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from collections.abc import Sequence
from typing import Any

from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._table import outcome_counts
from dltune.trial import PAUSED
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection

__all__ = [
    "OUTCOME_ORDER",
    "best_section",
    "esc",
    "fmt_number",
    "fmt_param",
    "fmt_seconds",
    "fmt_when",
    "importance_section",
    "retrain_section",
    "summary_section",
]

#: The outcomes the summary counts, in display order.
OUTCOME_ORDER = ("complete", "pruned", "diverged", "not_learning", "fail", "running", "waiting")
#: How the summary names a paused trial that a later trial continued (counted as
#: :data:`dltune.trial.PAUSED`): its lineage ends with the continuation, whose outcome stands
#: for both, so it is not counted as pruned.
PAUSED_LABEL = "paused and resumed"
#: The importance methods' names in prose.
METHOD_NAMES = {"ped_anova": "PED-ANOVA", "fanova": "fANOVA (random forest)"}
#: Pareto trials listed in full; a larger front is cut (the Pareto plot shows all of it).
MAX_PARETO_ROWS = 200


def esc(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes.

    Args:
        value: Anything; it is turned into text with ``str`` first.

    Returns:
        The text with ``&``, ``<``, ``>`` and both quotes escaped. Apply it once: escaping
        escaped text shows the entities to the reader.

    Example:
        >>> esc("<script>"), esc("a &amp; b")
        ('&lt;script&gt;', 'a &amp;amp; b')
    """
    return html.escape(str(value), quote=True)


def fmt_number(value: float | None) -> str:
    """A value with 6 significant digits; ``-`` for ``None``.

    Args:
        value: An objective or reported value (infinities are shown as ``inf``/``-inf``).

    Returns:
        The text, safe in HTML as it is.

    Example:
        >>> fmt_number(0.123456789), fmt_number(None), fmt_number(float("-inf"))
        ('0.123457', '-', '-inf')
    """
    if value is None:
        return "-"
    return f"{value:.6g}"


def fmt_param(value: Any) -> str:
    """A parameter value as HTML: floats with 4 significant digits, anything else as text.

    Args:
        value: The value a trial took (a user's categorical choice may hold any text).

    Returns:
        The text, escaped once (numbers need no escaping).

    Example:
        >>> fmt_param(0.000123456), fmt_param(64), fmt_param("<b>")
        ('0.0001235', '64', '&lt;b&gt;')
    """
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def fmt_seconds(seconds: float | None) -> str:
    """A duration as ``h:mm:ss``, or ``-``.

    Args:
        seconds: The duration, or ``None`` (unknown); negative durations show as ``0:00:00``.

    Returns:
        The text.

    Example:
        >>> fmt_seconds(3725.2), fmt_seconds(None)
        ('1:02:05', '-')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = max(0, int(round(seconds)))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def fmt_when(moment: datetime.datetime | None) -> str:
    """A local date and time to the second, or ``-``.

    Args:
        moment: A (naive, local) date and time, or ``None``.

    Returns:
        The text.

    Example:
        >>> fmt_when(datetime.datetime(2026, 3, 1, 12, 0, 5)), fmt_when(None)
        ('2026-03-01 12:00:05', '-')
    """
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    """A definition list; the terms are plain text (escaped here), the values HTML already."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """A small table: headers are plain text (escaped here), cells HTML already; columns in
    ``numeric`` align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- summary ---------------------------------------------------------------------------------


def _sampler_facts(system_attrs: dict[str, Any]) -> list[tuple[str, str]]:
    """What the study recorded about its sampler and pruner, if anything."""
    rows: list[tuple[str, str]] = []
    for key in ("sampler", "pruner"):
        if key in system_attrs:
            value = system_attrs[key]
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            rows.append((key, f"<code>{esc(text)}</code>"))
    choices = system_attrs.get("sampler:auto")
    if isinstance(choices, list) and choices:
        picked = "; then ".join(
            f"{c.get('sampler')} from trial {c.get('from_trial')} ({c.get('reason')})"
            for c in choices
            if isinstance(c, dict)
        )
        rows.append(("sampler (auto) chose", esc(picked)))
    return rows


def _outcome_text(trials: Sequence[FrozenTrial]) -> str:
    counts = outcome_counts(trials)
    shown = [k for k in OUTCOME_ORDER if counts.get(k) or k in OUTCOME_ORDER[:5]]
    shown += sorted(k for k in counts if k not in (*OUTCOME_ORDER, PAUSED))
    text = f"{len(trials)}: " + ", ".join(
        f"{counts.get(k, 0)} {esc(k.replace('_', ' '))}" for k in shown
    )
    if counts.get(PAUSED):
        text += (
            f", {counts[PAUSED]} {PAUSED_LABEL} (each continued by a later trial, which carries "
            "the outcome, so they are not counted as pruned)"
        )
    return text


def summary_section(
    study_name: str,
    directions: Sequence[StudyDirection],
    trials: Sequence[FrozenTrial],
    system_attrs: dict[str, Any],
    built: datetime.datetime,
) -> str:
    """The summary: name, directions, counts by outcome, wall time, workers, sampler, date.

    Args:
        study_name: The study's name (plain text; escaped here).
        directions: The study's directions.
        trials: All its trials.
        system_attrs: The study's system attributes (sampler, pruner, the auto sampler's
            choices).
        built: When the report was built.

    Returns:
        The ``<section id="summary">`` element.

    Example:
        >>> when = datetime.datetime(2026, 3, 1, 12, 0)
        >>> page = summary_section("a<b", [StudyDirection.MINIMIZE], [], {}, when)
        >>> "<code>a&lt;b</code>" in page, "0: 0 complete, 0 pruned" in page
        (True, True)
    """
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    first, last = (min(starts) if starts else None), (max(ends) if ends else None)
    span = None if first is None or last is None else (last - first).total_seconds()
    workers = {w for w in (t.system_attrs.get("worker") for t in trials) if w is not None}
    rows = [
        ("study", f"<code>{esc(study_name)}</code>"),
        ("directions", esc(", ".join(d.name.lower() for d in directions))),
        ("trials", _outcome_text(trials)),
        (
            "wall time",
            f"{fmt_seconds(span)} (first start {fmt_when(first)}, last completion "
            f"{fmt_when(last)})",
        ),
        ("workers", str(len(workers)) if workers else "not recorded"),
        *_sampler_facts(system_attrs),
        ("report built", fmt_when(built)),
    ]
    return f'<section id="summary"><h2>Summary</h2>{_facts(rows)}</section>'


# -- best configuration ----------------------------------------------------------------------


def _params_table(params: dict[str, Any]) -> str:
    rows = [[f"<code>{esc(k)}</code>", fmt_param(v)] for k, v in params.items()]
    return _table(("parameter", "value"), rows, set()) if rows else "<p>no parameters</p>"


def best_section(
    best: Sequence[FrozenTrial], directions: Sequence[StudyDirection], retrain: Any
) -> str:
    """The best trial (one objective) or the Pareto set (several), then the retraining.

    Args:
        best: One objective: ``[study.best_trial]`` (the storage's rule: infinities count,
            ties go to the earliest), or ``[]`` if no trial is COMPLETE. Several objectives:
            the Pareto set (:func:`dltune.trial.pareto_trials`).
        directions: The study's directions.
        retrain: The study's system attribute ``"retrain"`` (see :func:`retrain_section`).

    Returns:
        The ``<section id="best">`` element.

    Example:
        >>> from dltune.trial import TrialState
        >>> trial = FrozenTrial(4, 4, TrialState.COMPLETE, [-math.inf], params={"x": 0.5})
        >>> page = best_section([trial], [StudyDirection.MINIMIZE], None)
        >>> "<dt>trial</dt><dd>4</dd><dt>value (minimize)</dt><dd>-inf</dd>" in page
        True
    """
    parts = ['<section id="best"><h2>Best configuration</h2>']
    if len(directions) > 1:
        parts.append(_pareto_table(best, directions))
    elif not best:
        parts.append("<p>No trial is COMPLETE yet, so there is no best configuration.</p>")
    else:
        trial = best[0]
        parts.append(
            _facts(
                [
                    ("trial", str(trial.number)),
                    (f"value ({directions[0].name.lower()})", fmt_number(trial.value)),
                    ("duration", fmt_seconds(trial.duration_seconds)),
                    ("worker", esc(trial.system_attrs.get("worker", "not recorded"))),
                ]
            )
        )
        parts.append(_params_table(trial.params))
    parts.append(retrain_section(retrain))
    parts.append("</section>")
    return "".join(parts)


def _pareto_table(front: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> str:
    if not front:
        return "<p>No trial is COMPLETE yet, so there is no Pareto set.</p>"
    names = list(dict.fromkeys(name for t in front for name in t.params))
    headers = [
        "trial",
        *(f"value {k} ({d.name.lower()})" for k, d in enumerate(directions)),
        *names,
    ]
    rows = [
        [
            str(t.number),
            *(fmt_number(v) for v in t.values or []),
            *(fmt_param(t.params[n]) if n in t.params else "-" for n in names),
        ]
        for t in front[:MAX_PARETO_ROWS]
    ]
    cut = ""
    if len(front) > MAX_PARETO_ROWS:
        cut = (
            f'<p class="note">The first {MAX_PARETO_ROWS} of {len(front)} trials are listed; '
            "the Pareto plot and the trial table show all.</p>"
        )
    intro = (
        f"<p>{len(front)} COMPLETE trial(s) no other trial beats in every objective "
        "(the Pareto set):</p>"
    )
    return intro + _table(headers, rows, set(range(1, 1 + len(directions)))) + cut


# -- retraining ------------------------------------------------------------------------------


def _numbers(record: dict[str, Any], key: str) -> list[Any]:
    """``record[key]`` if it is a list (the attribute is JSON a user could have edited)."""
    value = record.get(key)
    return value if isinstance(value, list) else []


def _mean_std(values: Sequence[Any]) -> tuple[float, float, int] | None:
    done = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not done:
        return None
    mean = sum(done) / len(done)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in done) / len(done)), len(done)


def _pm(stats: tuple[float, float, int] | None) -> str:
    return "-" if stats is None else f"{stats[0]:.4f} ± {stats[1]:.4f}"


def _value(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_number(float(value))
    return "-"


_NOT_RETRAINED = (
    "<p>Not retrained: the search's best value is an estimate from one run with one seed. "
    "<code>dltune tune</code> retrains the top configurations with fresh seeds and scores them "
    "on the test split when the config sets <code>retrain.top_k</code> above 0 (e.g. "
    "<code>retrain: {top_k: 3, seeds: 3}</code>), or with <code>--top-k 3</code>.</p>"
)


def _chosen_facts(pick: dict[str, Any], metric: str, model_path: Any) -> str:
    test = _mean_std(_numbers(pick, "test_accuracy"))
    seeds = _numbers(pick, "seeds")
    n_done = 0 if test is None else test[2]
    rows = [
        ("chosen trial", esc(pick.get("trial_number"))),
        ("test accuracy", f"<strong>{_pm(test)}</strong> over {n_done} of {len(seeds)} seeds"),
        ("seeds", esc(", ".join(str(s) for s in seeds))),
        (f"{metric} (validation)", _pm(_mean_std(_numbers(pick, "val")))),
    ]
    if model_path:
        rows.append(("model", f"<code>{esc(model_path)}</code>"))
    return _facts(rows)


def retrain_section(retrain: Any) -> str:
    """The retrained test score of the chosen configuration (the study attribute "retrain").

    Args:
        retrain: ``RetrainReport.to_json()`` as ``dltune tune`` stores it (``metric``,
            ``candidates``, ``chosen``, ``model_path``), or ``None``. Anything malformed shows
            as missing rather than failing the report.

    Returns:
        An ``<h3>`` heading and the chosen candidate's facts and the table of candidates, or
        a paragraph saying how to retrain.

    Example:
        >>> "Not retrained" in retrain_section(None)
        True
        >>> page = retrain_section({"metric": "a<b", "chosen": None, "candidates": [{}]})
        >>> "<th>a&lt;b mean ± std</th>" in page
        True
    """
    parts = ["<h3>Retrained with fresh seeds</h3>"]
    candidates = retrain.get("candidates") if isinstance(retrain, dict) else None
    if not isinstance(retrain, dict) or not isinstance(candidates, list) or not candidates:
        return parts[0] + _NOT_RETRAINED
    chosen = retrain.get("chosen")
    metric = str(retrain.get("metric", "validation metric"))  # plain text: escaped by _facts
    if isinstance(chosen, bool) or not isinstance(chosen, int):
        chosen = None
    pick = candidates[chosen] if chosen is not None and 0 <= chosen < len(candidates) else None
    if isinstance(pick, dict):
        parts.append(_chosen_facts(pick, metric, retrain.get("model_path")))
    else:
        parts.append("<p>Every retraining run was stopped by a guard; no model was chosen.</p>")
    rows_c = [
        [
            esc(c.get("trial_number")),
            _value(c.get("search_value")),
            _pm(_mean_std(_numbers(c, "val"))),
            _pm(_mean_std(_numbers(c, "test_accuracy"))),
            f"{len([v for v in _numbers(c, 'val') if v is not None])}/{len(_numbers(c, 'val'))}",
            "chosen" if i == chosen else "",
        ]
        for i, c in enumerate(candidates)
        if isinstance(c, dict)
    ]
    headers = ("trial", "search value", f"{metric} mean ± std", "test acc mean ± std", "runs", "")
    parts.append(_table(headers, rows_c, {1, 2, 3}))
    return "".join(parts)


# -- importance ------------------------------------------------------------------------------


def importance_section(
    results: Sequence[ParamImportances], labels: Sequence[str], note: str | None
) -> str:
    """One table of shares per parameter, one column per objective, with the method named.

    Args:
        results: One importance result per objective (all by the same method), or none.
        labels: The objectives' labels, one per result.
        note: Why importance is missing or incomplete, or ``None``.

    Returns:
        The ``<section id="importance">`` element.

    Example:
        >>> importance_section([], [], "Not computed: <2 trials.").endswith(
        ...     '<p class="note">Not computed: &lt;2 trials.</p></section>'
        ... )
        True
    """
    parts = ['<section id="importance"><h2>Hyperparameter importance</h2>']
    if not results:
        parts.append(f'<p class="note">{esc(note or "Not computed.")}</p></section>')
        return "".join(parts)
    method = results[0].method
    parts.append(
        f"<p>Method: <strong>{esc(METHOD_NAMES.get(method, method))}</strong> "
        f"(<code>{esc(method)}</code>), over {results[0].n_trials} trials. Each share is the "
        "part of the objective's variation a parameter explains; the shares of an objective "
        "sum to 100%.</p>"
    )
    names = list(results[0].importances)
    names += [n for r in results[1:] for n in r.importances if n not in names]
    rows = []
    for name in names:
        cells = [f"<code>{esc(name)}</code>"]
        for result in results:
            share = result.importances.get(name)
            if share is None:
                cells.append("-")
                continue
            width = max(0, min(100, round(share * 100)))
            cells.append(f'{share:.1%} <span class="bar" style="width:{width}px"></span>')
        rows.append(cells)
    headers = ["parameter", *(f"share of {label}" for label in labels)]
    parts.append(_table(headers, rows, set()))
    for result, label in zip(results, labels, strict=True):
        for text in result.notes:
            prefix = f"{label}: " if len(results) > 1 else ""
            parts.append(f'<p class="note">{esc(prefix + text)}</p>')
    if note:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("</section>")
    return "".join(parts)
