"""The HTML report: self-contained, escaped, and holding what it promises."""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import re
import shutil
from pathlib import Path

import pytest

import dltune
from dltune.analysis import IMPORTANCE_METHODS
from dltune.analysis import build_report
from dltune.analysis import plot_records
from dltune.analysis import write_report
from dltune.analysis._report import script_json
from dltune.analysis._report_assets import PAGE_ROWS
from dltune.analysis._report_html import esc
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.study import Study
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.trial import pareto_trials

pytest.importorskip("plotly")

HOSTILE = "<script>alert(1)</script>"
JSON_BLOCK = re.compile(r'<script type="application/json" id="figure-\d+">(.*?)</script>', re.S)
T0 = datetime.datetime(2026, 3, 1, 12, 0, 0)


def _add(
    study: Study,
    state: TrialState,
    value: float | None,
    params: dict[str, object],
    *,
    reports: tuple[float, ...] = (),
    minutes: tuple[float, float] = (0.0, 1.0),
    system_attrs: dict[str, object] | None = None,
) -> None:
    dists = {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "optimizer": CategoricalDistribution(("adam", "sgd", HOSTILE)),
    }
    study.add_trial(
        FrozenTrial(
            0,
            0,
            state,
            values=None if value is None else [value],
            params=params,
            distributions={k: dists[k] for k in params},
            intermediate_values=dict(enumerate(reports)),
            system_attrs=dict(system_attrs or {}),
            datetime_start=T0 + datetime.timedelta(minutes=minutes[0]),
            datetime_complete=T0 + datetime.timedelta(minutes=minutes[1]),
        )
    )


@pytest.fixture
def study() -> Study:
    """5 trials: 3 COMPLETE (best: 1, value 0.2), 1 PRUNED, 1 FAIL whose reason is hostile."""
    s = dltune.create_study(study_name=f"demo {HOSTILE}")
    worker: dict[str, object] = {"worker": "host-a:11"}
    _add(s, TrialState.COMPLETE, 0.5, {"lr": 0.01, "optimizer": "adam"}, reports=(0.9, 0.5))
    _add(
        s,
        TrialState.COMPLETE,
        0.2,
        {"lr": 0.1, "optimizer": HOSTILE},
        reports=(0.8, 0.2),
        minutes=(1, 3),
        system_attrs=worker,
    )
    _add(s, TrialState.COMPLETE, 0.7, {"lr": 0.001, "optimizer": "sgd"}, reports=(1.0, 0.7))
    _add(s, TrialState.PRUNED, None, {"lr": 0.5, "optimizer": "sgd"}, reports=(2.0,))
    _add(
        s,
        TrialState.FAIL,
        None,
        {"lr": 0.2, "optimizer": "adam"},
        minutes=(2, 90),
        system_attrs={"reason": f"RuntimeError: {HOSTILE}"},
    )
    return s


def _without_plotly_js(page: str) -> str:
    """The page with the (large) inlined plotly.js cut out."""
    start = page.index("/**\n* plotly.js")
    end = page.index("</script>", start)
    return page[:start] + page[end:]


def test_the_page_is_self_contained(study: Study) -> None:
    page = build_report(study)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "plotly.js v" in page and "Plotly.newPlot" in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", page, re.I)
    rest = _without_plotly_js(page)
    assert "http://" not in rest and "https://" not in rest


def test_every_user_string_is_escaped(study: Study) -> None:
    page = build_report(study)
    assert HOSTILE not in page  # the study name, a categorical value, a reason
    assert "alert(1)" in page  # ... are all there, escaped
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<code>demo {escaped}</code>" in page
    assert f"RuntimeError: {escaped}" in page
    # the only script elements: plotly.js, 3 of ours, one JSON block per plot
    n_plots = len(JSON_BLOCK.findall(page))
    assert len(re.findall(r"<script\b", page)) == 4 + n_plots


WEIRD = "<script>alert(2)</script> &amp; %{y}"


def _weird_study() -> Study:
    """User strings holding markup, an entity and a plotly placeholder, everywhere."""
    study = dltune.create_study(study_name=f"s {WEIRD}")
    dists = {
        f"lr {WEIRD}": FloatDistribution(1e-3, 1.0, log=True),
        f"optimizer {WEIRD}": CategoricalDistribution(("adam", f"c {WEIRD}")),
    }
    for i, (lr, choice) in enumerate([(0.01, "adam"), (0.1, f"c {WEIRD}"), (0.5, "adam")]):
        study.add_trial(
            FrozenTrial(
                0,
                0,
                TrialState.COMPLETE if i < 2 else TrialState.FAIL,
                values=[0.5 - i / 10] if i < 2 else None,
                params={f"lr {WEIRD}": lr, f"optimizer {WEIRD}": choice},
                distributions=dists,
                intermediate_values={0: 1.0, 1: 0.5},
                system_attrs={"worker": f"w {WEIRD}", **({"reason": f"r {WEIRD}"} if i else {})},
                user_attrs={"note": WEIRD},
                datetime_start=T0,
                datetime_complete=T0 + datetime.timedelta(seconds=30),
            )
        )
    study.set_system_attr("sampler", f"TPE {WEIRD}")
    study.set_system_attr(
        "retrain", {"metric": f"m {WEIRD}", "candidates": [{"trial_number": 1}], "chosen": 0}
    )
    return study


def test_user_strings_are_escaped_exactly_once() -> None:
    """Names, params, choices, reasons, workers, sampler, metric: each escaped once."""
    study = _weird_study()
    page = build_report(study)
    html_only = JSON_BLOCK.sub("", _without_plotly_js(page))
    once = esc(WEIRD)  # &lt;script&gt;alert(2)&lt;/script&gt; &amp;amp; %{y}
    assert "<script>alert(2)" not in page and esc(once) not in page
    assert html_only.count("alert(2)") == html_only.count(once) >= 10
    assert f"<h1>Study <code>s {once}</code></h1>" in page
    assert f"<title>dltune report: s {once}</title>" in page
    for cell in (
        f'<th scope="col">lr {once}</th>',
        f'<th scope="col">optimizer {once}</th>',
        f"<td>c {once}</td>",
        f"<td>w {once}</td>",
        f'<td class="r">r {once}</td>',
        f"<dt>m {once} (validation)</dt>",
        f"<code>TPE {once}</code>",
    ):
        assert cell in page, cell
    for record in plot_records(study):
        assert f"<h3>{esc(record.title)}</h3>" in page
        assert all(esc(note) in page for note in record.notes)
    for block in JSON_BLOCK.findall(page):
        assert "<" not in block
        json.loads(block)  # parses: the plot draws


def test_plots_are_embedded_as_parseable_json(study: Study) -> None:
    page = build_report(study)
    blocks = JSON_BLOCK.findall(page)
    kinds = [r.kind for r in plot_records(study)]
    assert len(blocks) == len(kinds) >= 4 and "learning_curves" in kinds
    for block in blocks:
        assert "<" not in block  # no "</script>" can end the block early
        figure = json.loads(block)
        assert set(figure) >= {"data", "layout"}
    for i in range(1, len(kinds) + 1):
        assert f'data-figure="figure-{i}"' in page


def test_summary_best_and_trial_table(study: Study) -> None:
    page = build_report(study)
    assert "5: 3 complete, 1 pruned, 0 diverged, 0 not learning, 1 fail" in page
    # first start 12:00, last completion 13:30 (the failed trial)
    assert "1:30:00 (first start 2026-03-01 12:00:00, last completion 2026-03-01 13:30:00" in page
    assert "<dt>trial</dt><dd>1</dd><dt>value (minimize)</dt><dd>0.2</dd>" in page
    assert "<dd>host-a:11</dd>" in page
    table = page[page.index('<section id="trials">') :]
    assert table.count("<tr class=") == 5
    assert '<tr class="o-complete best">' in table and table.count(' best">') == 1
    assert '<td class="o">pruned</td>' in table and '<td class="o">fail</td>' in table


def _importance_section(page: str) -> str:
    return page[page.index('<section id="importance">') : page.index('<section id="trials">')]


@pytest.mark.parametrize("importance", [None, "ped_anova"])
def test_importance_table_names_the_method(study: Study, importance: str | None) -> None:
    """``None`` means the default method, as for plot_records: PED-ANOVA."""
    page = build_report(study, importance=importance)
    assert "<strong>PED-ANOVA</strong> (<code>ped_anova</code>)" in page
    assert "share of value (minimize)" in page
    section = _importance_section(page)
    assert "<code>lr</code>" in section and "<code>optimizer</code>" in section
    titles = page.split("<h2>Plots</h2>")[1].split("</ol>")[0]
    assert titles.count("<li>") == len(plot_records(study, importance=importance))


def test_importance_none_leaves_importance_out(study: Study) -> None:
    page = build_report(study, importance="none")
    assert "Not computed (importance &#x27;none&#x27; was asked for)." in _importance_section(page)
    titles = page.split("<h2>Plots</h2>")[1].split("</ol>")[0]
    assert titles.count("<li>") == len(plot_records(study, importance="none"))
    assert titles.count("<li>") == len(plot_records(study)) - 1  # the importance chart


def test_report_methods_are_the_importance_methods_and_none(study: Study) -> None:
    assert IMPORTANCE_METHODS == ("ped_anova", "fanova")
    with pytest.raises(ValueError, match=r"use one of \['ped_anova', 'fanova', 'none'\]"):
        build_report(study, importance="ped-anova")


def test_not_retrained_says_how_to_retrain(study: Study) -> None:
    page = build_report(study)
    assert "Not retrained" in page and "<code>retrain.top_k</code>" in page


def test_retrained_score_of_the_chosen_candidate(study: Study) -> None:
    candidate = {
        "trial_number": 1,
        "search_value": 0.2,
        "params": {"lr": 0.1},
        "hparams": {"lr": 0.1},
        "seeds": [11, 12, 13],
        "val": [0.8, 0.82, None],
        "test_accuracy": [0.90, 0.94, None],
        "test_loss": [0.3, 0.2, None],
        "stopped": ["diverged"],
    }
    other = {**candidate, "trial_number": 0, "test_accuracy": [0.5, 0.5, 0.5]}
    study.set_system_attr(
        "retrain",
        {
            "metric": "val_accuracy",
            "direction": "maximize",
            "candidates": [other, candidate],
            "chosen": 1,
            "model_path": "checkpoints/best-model.pt",
        },
    )
    page = build_report(study, importance="none")
    assert "<dt>chosen trial</dt><dd>1</dd>" in page
    assert "<strong>0.9200 ± 0.0200</strong> over 2 of 3 seeds" in page
    assert "<dd>11, 12, 13</dd>" in page and "checkpoints/best-model.pt" in page
    assert "Not retrained" not in page
    assert "<dt>val_accuracy (validation)</dt>" in page


@pytest.mark.parametrize(
    ("metric", "shown"),
    [("loss & <acc>", "loss &amp; &lt;acc&gt;"), ("a &amp; b", "a &amp;amp; b")],
)
def test_the_retrain_metric_is_escaped_once(study: Study, metric: str, shown: str) -> None:
    candidate = {"trial_number": 1, "search_value": 0.2, "seeds": [1], "val": [0.5]}
    retrain = {"metric": metric, "candidates": [candidate], "chosen": 0}
    study.set_system_attr("retrain", retrain)
    page = build_report(study, importance="none")
    assert f"<dt>{shown} (validation)</dt><dd>0.5000 ± 0.0000</dd>" in page
    assert f"<th>{shown} mean ± std</th>" in page
    assert esc(shown) not in page


@pytest.mark.parametrize(
    ("direction", "best_value"), [("minimize", -math.inf), ("maximize", math.inf)]
)
def test_an_infinite_value_can_be_the_best(direction: str, best_value: float) -> None:
    """The storage's rule (study.best_trial): -inf is the best a minimized value can get."""
    study = dltune.create_study(study_name="inf", direction=direction)
    for value in (0.5, -best_value, best_value, 0.2, best_value):
        study.tell(study.ask(), value)
    assert study.best_trial.number == 2
    page = build_report(study, importance="none")
    shown = f"{best_value:.6g}"
    assert f"<dt>trial</dt><dd>2</dd><dt>value ({direction})</dt><dd>{shown}</dd>" in page
    table = page[page.index('<section id="trials">') :]
    assert table.count(' best">') == 1
    assert '<tr class="o-complete best"><td class="n">2</td>' in table


def test_paused_and_resumed_trials_are_not_counted_as_pruned() -> None:
    """A paused trial continued by a later one is one lineage: counted once, not as pruned."""
    study = dltune.create_study(study_name="resumed")
    for state, value, attrs in (
        (TrialState.PRUNED, None, {}),  # 0: paused, then continued by 2
        (TrialState.PRUNED, None, {}),  # 1: pruned for good
        (TrialState.PRUNED, None, {"resume_of": 0}),  # 2: continues 0, paused, continued by 3
        (TrialState.COMPLETE, 0.3, {"resume_of": 2}),  # 3: ends the lineage 0 -> 2 -> 3
        (TrialState.COMPLETE, 0.4, {}),
    ):
        study.add_trial(
            FrozenTrial(0, 0, state, values=None if value is None else [value], system_attrs=attrs)
        )
    page = build_report(study, importance="none")
    assert (
        "5: 2 complete, 1 pruned, 0 diverged, 0 not learning, 0 fail, 2 paused and resumed "
        "(each continued by a later trial" in page
    )
    table = page[page.index('<section id="trials">') :]
    outcomes = re.findall(r'<td class="n">(\d+)</td><td class="o">([a-z ]+)</td>', table)
    assert outcomes == [
        ("0", "paused"),
        ("1", "pruned"),
        ("2", "paused"),
        ("3", "complete"),
        ("4", "complete"),
    ]
    assert '<tr class="o-paused">' in table


def test_a_study_without_trials_still_builds() -> None:
    page = build_report(dltune.create_study(study_name="empty"))
    assert "No trial is COMPLETE yet" in page and "All 0 trials" in page
    assert "Not computed: it needs at least 2 COMPLETE trials" in page


def test_only_the_first_page_of_rows_is_shown() -> None:
    study = dltune.create_study(study_name="many")
    for i in range(PAGE_ROWS + 3):
        study.tell(study.ask(), float(i))
    page = build_report(study, importance="none")
    assert page.count("<tr class=") == PAGE_ROWS + 3
    assert page.count('" hidden><td') == 3


def test_multi_objective_lists_the_pareto_set() -> None:
    study = dltune.create_study(study_name="multi", directions=["minimize", "maximize"])
    for values in ((1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (0.5, 0.5)):
        study.tell(study.ask(), values)
    page = build_report(study)
    assert "3 COMPLETE trial(s) no other trial beats in every objective" in page
    assert "value 1 (maximize)" in page
    best = page[page.index('<section id="best">') : page.index('<section id="plots">')]
    numbers = re.findall(r"<tr><td>(\d+)</td>", best)
    assert numbers == ["0", "1", "3"]


@pytest.mark.parametrize("seed", [3, 4])
def test_pareto_trials_match_the_study_front(seed: int) -> None:
    """Infinities included: study.best_trials is the rule, pareto_trials a faster way to it."""
    rng = random.Random(seed)
    pool = [-math.inf, math.inf, 0.0, 1.0, 2.0, 3.0, 4.0]
    study = dltune.create_study(directions=["minimize", "maximize", "minimize"])
    for _ in range(60):
        study.tell(study.ask(), [rng.choice(pool) for _ in range(3)])
    front = pareto_trials(study.trials, study.directions)
    assert [t.number for t in front] == [t.number for t in study.best_trials]
    assert any(not math.isfinite(v) for t in front for v in t.values or [])


def test_png_dir_gets_one_png_per_plot(study: Study, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "pngs" / "nested"
    build_report(study, png_dir=out)
    files = sorted(p.name for p in out.iterdir())
    kinds = [r.kind for r in plot_records(study)]
    assert files == [f"{i:02d}-{kind}.png" for i, kind in enumerate(kinds, start=1)]
    assert all((out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)


def test_write_report_writes_the_page(study: Study, tmp_path: Path) -> None:
    path = write_report(study, tmp_path / "r.html", importance="none")
    assert path == tmp_path / "r.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "alert(1)" in text


def test_script_json_round_trips_and_hides_every_angle_bracket() -> None:
    value = {"a": "</script><!-- x", "b": [1.5, None, "<"]}
    text = script_json(value)
    assert "<" not in text and json.loads(text) == value
    assert json.loads(script_json({"x": float("nan")})) == {"x": None}


def test_bad_arguments_are_refused(study: Study, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"importance='anova' is not a method; use one of \['ped_anova', 'fanova', "
        r"'none'\] \('none' leaves importance out\), or None for the default method",
    ):
        build_report(study, importance="anova")
    with pytest.raises(TypeError, match=r"importance=3 must be a method name \(str\), 'none'"):
        build_report(study, importance=3)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(TypeError, match=r"study=\[\] is not a Study; open one with"):
        build_report([])  # type: ignore[arg-type]  # the wrong type is the point
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match=r"png_dir='.*file.txt' is a file, not a directory"):
        build_report(study, png_dir=afile)
    with pytest.raises(TypeError, match=r"png_dir=3 must be a path"):
        build_report(study, png_dir=3)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(TypeError, match=r"path=None must be a file path"):
        write_report(study, None)  # type: ignore[arg-type]  # the wrong type is the point


def test_fanova_is_named_when_asked_for(study: Study) -> None:
    pytest.importorskip("sklearn")
    page = build_report(study, importance="fanova")
    assert "<strong>fANOVA (random forest)</strong> (<code>fanova</code>)" in page


def _chromium() -> str:
    """Debian's Chromium (``$DLTUNE_TEST_CHROMIUM`` or on PATH); skips loudly without one."""
    found = os.environ.get("DLTUNE_TEST_CHROMIUM") or shutil.which("chromium")
    if found is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return found


@pytest.mark.slow
def test_the_report_works_offline_in_a_browser(study: Study, tmp_path: Path) -> None:
    """Every plot draws, nothing is fetched, the table sorts and filters, no script errors."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    path = write_report(study, tmp_path / "report.html")
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(path.as_uri())
            plots = page.locator("div.plot")
            n_plots = plots.count()
            for i in range(n_plots):
                plots.nth(i).scroll_into_view_if_needed()
            page.wait_for_function(
                f"document.querySelectorAll('div.plot svg.main-svg').length >= {n_plots}"
            )
            page.locator("#trial-table th", has_text="value (minimize)").click()
            first = page.locator("#trial-table tbody tr").first.locator("td").first
            assert first.text_content() == "1"  # the best value first
            page.fill("input.filter", "fail")
            assert page.locator("#trial-table tbody tr").count() == 1
            info = page.locator("#trial-table-pager .info").text_content()
            assert info == "rows 1-1 of 1 (filtered from 5)"
        finally:
            browser.close()
    assert n_plots >= 4 and not errors
    assert requests == [path.as_uri()]  # the page itself and nothing else
