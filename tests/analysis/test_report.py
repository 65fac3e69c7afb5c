"""The HTML report: self-contained, escaped, and holding what it promises."""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import shutil
from pathlib import Path

import pytest

import dltune
from dltune.analysis._render import plot_records
from dltune.analysis._report import build_report
from dltune.analysis._report import script_json
from dltune.analysis._report import write_report
from dltune.analysis._report_assets import PAGE_ROWS
from dltune.analysis._report_html import pareto_trials
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.study import Study
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

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


def test_importance_table_names_the_method(study: Study) -> None:
    page = build_report(study)
    assert "<strong>PED-ANOVA</strong>" in page and "share of value (minimize)" in page
    section = page[page.index('<section id="importance">') : page.index('<section id="trials">')]
    assert "<code>lr</code>" in section and "<code>optimizer</code>" in section
    page = build_report(study, importance="none")
    assert "Not computed (importance &#x27;none&#x27; was asked for)." in page
    assert '"importance"' not in page.split("<h2>Plots</h2>")[1].split("</ol>")[0]


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
    page = build_report(study)
    assert "<dt>chosen trial</dt><dd>1</dd>" in page
    assert "<strong>0.9200 ± 0.0200</strong> over 2 of 3 seeds" in page
    assert "<dd>11, 12, 13</dd>" in page and "checkpoints/best-model.pt" in page
    assert "Not retrained" not in page


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


def test_pareto_trials_match_the_study_front() -> None:
    rng = random.Random(3)
    study = dltune.create_study(directions=["minimize", "maximize", "minimize"])
    for _ in range(60):
        study.tell(study.ask(), [float(rng.randint(0, 6)) for _ in range(3)])
    front = pareto_trials(study.trials, study.directions)
    assert [t.number for t in front] == [t.number for t in study.best_trials]


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
    with pytest.raises(ValueError, match=r"importance='anova' is not a method; use 'ped_anova'"):
        build_report(study, importance="anova")
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
