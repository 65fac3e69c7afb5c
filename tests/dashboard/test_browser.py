"""The dashboard in a real browser (Debian's Chromium through Playwright), over a study that
is still running in another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

import pytest
from dashboard_helpers import NASTY_NAME
from dashboard_helpers import ServedDashboard
from dashboard_helpers import start_dashboard

import dltune
from dltune.dashboard._rows import js_text
from dltune.storage import SQLStorage
from dltune.trial import TrialState

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Page

pytest.importorskip("playwright")

LIVE_NAME = "live <b>study</b>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RUNNER = textwrap.dedent(
    """
    import sys, time, dltune

    study = dltune.create_study({name!r}, sys.argv[1], load_if_exists=True, seed=0)

    def objective(trial):
        x = trial.suggest_float("x", 1e-4, 1.0, log=True)
        optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        width = trial.suggest_int("width", 8, 64)
        value = 0.0
        for step in range(3):
            time.sleep(0.1)
            value = x * (3 - step) + (0.1 if optimizer == "sgd" else 0.0) + 1.0 / width
            trial.report(value, step)
        return value

    study.optimize(objective, n_trials=1000)
    """
).format(name=LIVE_NAME)
#: Let the page record every Content-Security-Policy violation (init scripts bypass the CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`));
"""
#: Every plot shows data: its figure has a trace with points, and plotly drew marks of it (SVG
#: trace paths, heatmap images or parcoords axes; a WebGL trace a visible canvas). A figure
#: that only shows an annotation ("No finished trials yet") does not count.
PLOTS_DRAWN = """() => {
  const visible = (n) => {
    const r = n.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const plots = [...document.querySelectorAll('#plots .plot')];
  return plots.length > 0 && plots.every((p) => {
    const gd = p.querySelector('.plot-figure');
    const traces = (gd && gd.data) || [];
    const filled = (t) =>
      ['x', 'y', 'z', 'dimensions'].some((k) => Array.isArray(t[k]) && t[k].length);
    if (!traces.some(filled)) return false;
    const marks = gd.querySelectorAll('g.trace path, g.hm image, .parcoords .y-axis');
    if ([...marks].some(visible)) return true;
    const webgl = traces.some((t) => String(t.type).endsWith('gl'));
    return webgl && [...gd.querySelectorAll('canvas')].some(visible);
  });
}"""
#: The markers the history plot drew (one per complete trial).
HISTORY_POINTS = (
    "document.querySelectorAll('#plots .plot[data-kind=\"history\"] g.trace path.point').length"
)


def n_complete(url: str) -> int:
    storage = SQLStorage(url, read_only=True)
    try:
        study_id = storage.get_study_id_from_name(LIVE_NAME)
        return storage.get_n_trials(study_id, (TrialState.COMPLETE,))
    except dltune.exceptions.StudyNotFoundError:
        return 0
    finally:
        storage.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDashboard]:
    """A study optimizing in a child process (~0.3 s a trial) and its dashboard."""
    folder = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{folder / 'live.db'}"
    storage = SQLStorage(url)
    nasty = dltune.create_study(NASTY_NAME, storage)
    trial = nasty.ask()
    trial.suggest_categorical("html", ["<img src=x onerror=alert(1)>"])
    nasty.tell(trial, state=TrialState.FAIL, reason="<script>alert('reason')</script>")
    dots = dltune.create_study("..", storage)  # a browser drops ".." segments: sent as "~.."
    dots.tell(dots.ask(), 0.5)
    storage.close()
    script = folder / "runner.py"
    script.write_text(RUNNER)
    runner = subprocess.Popen([sys.executable, str(script), url], stderr=subprocess.PIPE)
    served: ServedDashboard | None = None
    try:
        deadline = time.monotonic() + 30
        while n_complete(url) < 3:
            assert runner.poll() is None, runner.communicate()[1]
            assert time.monotonic() < deadline, "the study did not get going"
            time.sleep(0.2)
        env = {"DLTUNE_DASHBOARD_DIR": str(folder / "dashboards")}
        served = start_dashboard(url, "--poll-seconds", "0.5", env=env)
        yield served
    finally:
        if served is not None:
            served.stop()
        runner.terminate()
        runner.communicate(timeout=15)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.add_init_script(RECORD_VIOLATIONS)
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    opened.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    opened.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    try:
        yield opened
        assert opened.evaluate("window.__cspViolations || []") == []
        assert problems == []
    finally:
        context.close()


def has_webgl(page: Page) -> bool:
    return bool(page.evaluate("!!document.createElement('canvas').getContext('webgl')"))


def test_live_study_in_the_browser(live: ServedDashboard, page: Page) -> None:
    page.goto(live.url + "/")
    link = page.locator("#study-list a.study-link", has_text=LIVE_NAME)
    link.wait_for()
    assert link.inner_text() == LIVE_NAME
    link.click()
    page.wait_for_url(f"**/studies/{quote(LIVE_NAME, safe='')}")
    page.evaluate("window.__notReloaded = true")
    assert page.locator("#study-name").inner_text() == LIVE_NAME

    # The plots render: each one has a drawn svg or canvas (WebGL ones need 'unsafe-eval').
    page.wait_for_function(PLOTS_DRAWN, timeout=20_000)
    kinds = page.eval_on_selector_all("#plots .plot", "ns => ns.map(n => n.dataset.kind)")
    assert "history" in kinds and "parallel" in kinds
    if has_webgl(page):
        assert "WebGL is not supported" not in page.locator("#plots").inner_text()

    # New trials appear without a reload, in the table and in the plots.
    count = int(page.locator("#trial-count").inner_text().replace(",", ""))
    points = page.evaluate(HISTORY_POINTS)
    assert points > 0
    page.wait_for_function(
        f"Number(document.querySelector('#trial-count').textContent) > {count + 1}",
        timeout=15_000,
    )
    page.wait_for_function(f"{HISTORY_POINTS} > {points}", timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    rows = page.locator("#trials tbody tr[data-number]")
    assert 0 < rows.count() <= 100
    numbers = [int(n) for n in rows.evaluate_all("rs => rs.map(r => r.dataset.number)")]
    assert numbers == sorted(numbers, reverse=True)  # newest first

    # Sort by clicking a header; filter by text and state.
    page.locator('#trials th[data-key="number"] button').click()
    first = int(rows.first.get_attribute("data-number") or "-1")
    assert first == 0
    page.fill("#filter", "optimizer=sgd")
    page.select_option("#state-filter", "complete")
    page.wait_for_function(
        "[...document.querySelectorAll('#trials tbody tr')].every("
        "r => r.dataset.state === 'complete' && r.textContent.includes('sgd'))"
    )
    href = page.locator("#csv-export").get_attribute("href") or ""
    assert href.endswith("/trials.csv?state=complete&q=optimizer%3Dsgd")
    csv = page.request.get(live.url + href)
    assert csv.ok and csv.headers["content-disposition"].startswith("attachment;")
    assert all(",sgd," in line for line in csv.text().splitlines()[1:])

    ARTIFACTS.mkdir(exist_ok=True)
    page.fill("#filter", "")
    page.select_option("#state-filter", "")
    page.screenshot(path=str(ARTIFACTS / "dashboard-study.png"), full_page=True)

    # A trial's page: its params, state and learning curve.
    trial_link = page.locator("#trials tbody a.trial-link").first
    number = trial_link.inner_text()
    trial_link.click()
    page.wait_for_url(f"**/trials/{number}")
    page.locator("#trial-params").wait_for()
    params = page.eval_on_selector_all(
        "#trial-params tr[data-param]", "rs => rs.map(r => r.dataset.param)"
    )
    assert sorted(params) == ["optimizer", "width", "x"]
    assert page.locator("#trial-state").inner_text() == "complete"
    page.wait_for_selector("#learning-curve svg")

    for probe in (
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fpyproject.toml",
        "//etc/passwd",
        "/studies/..%2f..%2f..",
    ):
        assert page.request.get(live.url + probe).status == 404, probe


def test_html_in_names_params_and_reasons_stays_text(live: ServedDashboard, page: Page) -> None:
    page.goto(live.url + "/")
    link = page.locator("#study-list a.study-link", has_text="evil")
    link.wait_for()
    assert link.inner_text() == NASTY_NAME
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # app.js only
    link.click()
    page.wait_for_selector("#trials tbody tr[data-number]")
    assert page.locator("#study-name").inner_text() == NASTY_NAME
    row = page.locator("#trials tbody tr[data-number='0']")
    assert "<img src=x onerror=alert(1)>" in row.inner_text()
    assert "<script>alert('reason')</script>" in row.inner_text()
    assert page.locator("#main img, #main b").count() == 0
    page.goto(f"{live.url}/studies/{quote(NASTY_NAME, safe='')}/trials/0")
    page.locator("#trial-reason").wait_for()
    assert page.locator("#trial-reason").inner_text() == "<script>alert('reason')</script>"

    # A study named ".." is reachable from the list, and its trials from its page.
    page.goto(live.url + "/")
    page.locator("#study-list tr[data-study='..'] a.study-link").click()
    page.wait_for_url("**/studies/~..")
    page.wait_for_selector("#trials tbody tr[data-number='0']")
    assert page.locator("#study-name").inner_text() == ".."
    page.locator("#trials tbody a.trial-link").first.click()
    page.wait_for_url("**/studies/~../trials/0")
    assert page.locator("#trial-state").inner_text() == "complete"


def test_the_servers_filter_writes_numbers_as_javascript_does(page: Page) -> None:
    values: list[Any] = [10.0**e * m for e in range(-12, 25, 3) for m in (1, 1.5, -2.25)]
    values += [0.1, 1e-7, 123456789.0, 5e-324, 1.7976931348623157e308, 3, True, None, "adam"]
    written = page.evaluate("vs => vs.map((v) => String(v))", values)
    assert written == [js_text(v) for v in values]
