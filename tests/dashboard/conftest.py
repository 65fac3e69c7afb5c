"""Fixtures of the dashboard tests: real SQLite studies, the app under starlette's test
client, and Debian's Chromium through Playwright.

Chromium comes from ``scripts/test.sh`` (``DLTUNE_TEST_CHROMIUM``, or
``DLTUNE_TEST_CHROMIUM_SKIP_REASON`` when none could be had), else from ``PATH``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dashboard_helpers import CHROMIUM_SKIP_VAR
from dashboard_helpers import NASTY_NAME
from dashboard_helpers import chromium_path
from dashboard_helpers import make_client

import dltune
from dltune.storage import SQLStorage
from dltune.trial import TrialState

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from starlette.testclient import TestClient


@pytest.fixture(autouse=True)
def _discovery_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dashboards started by a test register in its own folder, never the user's."""
    folder = tmp_path / "dashboards"
    monkeypatch.setenv("DLTUNE_DASHBOARD_DIR", str(folder))
    return folder


@pytest.fixture
def study_db(tmp_path: Path) -> Iterator[str]:
    """A SQLite storage: study 'demo' (5 finished trials, one RUNNING with reports), an empty
    'maxi' and a study whose name is HTML (NASTY_NAME) with HTML in params and a reason.

    demo: 0-2 COMPLETE (x, opt, reported 3 steps), 3 FAIL, 4 PRUNED (diverged), 5 RUNNING.
    """
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = SQLStorage(url)
    try:
        demo = dltune.create_study("demo", storage, seed=0)
        for value in (0.5, 0.25, 0.125):
            trial = demo.ask()
            x = trial.suggest_float("x", 1e-5, 1.0, log=True)
            trial.suggest_categorical("opt", ["adam", "sgd"])
            for step in range(3):
                trial.report(value + x * (3 - step), step)
            trial.set_user_attr("note", math.nan)
            if value == 0.5:
                trial.set_system_attr("hparams", {"lr": 0.1, "width": 16})
                trial.set_system_attr("internal", "not shown")
            demo.tell(trial, value)
        failed = demo.ask()
        failed.suggest_float("x", 1e-5, 1.0, log=True)
        demo.tell(failed, state=TrialState.FAIL, reason="RuntimeError: <b>boom</b>")
        pruned = demo.ask()
        pruned.report(math.nan, 0)
        pruned.set_system_attr("stopped_by", "diverged")
        demo.tell(pruned, state=TrialState.PRUNED, reason="diverged at step 0: loss=nan")
        running = demo.ask()
        running.suggest_float("x", 1e-5, 1.0, log=True)
        running.report(1.5, 0)
        dltune.create_study("maxi", storage, direction="maximize")
        nasty = dltune.create_study(NASTY_NAME, storage)
        trial = nasty.ask()
        trial.suggest_categorical("html", ["<img src=x onerror=alert(1)>"])
        nasty.tell(trial, state=TrialState.FAIL, reason="<script>alert('reason')</script>")
        nasty.tell(nasty.ask(), 1.0)
    finally:
        storage.close()
    yield url


@pytest.fixture
def client(study_db: str) -> Iterator[TestClient]:
    """The dashboard app of ``study_db`` under starlette's test client."""
    pytest.importorskip("starlette")
    from dltune.dashboard import create_app

    with make_client(create_app(study_db)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    executable = chromium_path()
    if executable is None:
        reason = os.environ.get(CHROMIUM_SKIP_VAR) or (
            "no Chromium: DLTUNE_TEST_CHROMIUM is not set and there is no 'chromium' on PATH; "
            "run through scripts/test.sh or apt-get install chromium"
        )
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
