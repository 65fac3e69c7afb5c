"""Helpers of the dashboard tests: constants, the test client, a big generated study,
Chromium's path and a dashboard served by a real ``dltune dashboard`` process."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import warnings
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.storage import SQLStorage
from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from starlette.testclient import TestClient

__all__ = [
    "BASE_URL",
    "CHROMIUM_SKIP_VAR",
    "NASTY_NAME",
    "ServedDashboard",
    "chromium_path",
    "make_client",
    "make_big_study",
    "start_dashboard",
]

BASE_URL = "http://127.0.0.1:8080"
NASTY_NAME = 'evil <script>alert("x")</script> & /slash'
CHROMIUM_VAR = "DLTUNE_TEST_CHROMIUM"
CHROMIUM_SKIP_VAR = "DLTUNE_TEST_CHROMIUM_SKIP_REASON"


def make_big_study(
    url: str, n_trials: int, *, n_params: int = 10, n_steps: int = 50, seed: int = 0
) -> None:
    """Write a finished study 'big' of ``n_trials`` trials, one transaction per trial.

    Each trial has ``n_params`` params (floats, ints and a categorical 'optimizer') and
    ``n_steps`` reported values; about 10% are PRUNED early, 2% FAIL.
    """
    rng = random.Random(seed)
    storage = SQLStorage(url)
    try:
        study_id = storage.create_new_study([StudyDirection.MINIMIZE], "big")
        dists: dict[str, Any] = {"optimizer": CategoricalDistribution(("adam", "sgd", "rmsprop"))}
        for k in range(n_params - 1):
            if k % 3 == 2:
                dists[f"p{k}"] = IntDistribution(1, 512, log=True)
            else:
                dists[f"p{k}"] = FloatDistribution(1e-5, 1.0, log=k % 3 == 0)
        start = datetime(2025, 1, 1)
        for number in range(n_trials):
            params = {
                name: (
                    rng.choice(d.choices)
                    if isinstance(d, CategoricalDistribution)
                    else rng.randint(d.low, d.high)
                    if isinstance(d, IntDistribution)
                    else rng.uniform(d.low, d.high)
                )
                for name, d in dists.items()
            }
            draw = rng.random()
            state = TrialState.COMPLETE
            steps = n_steps
            if draw < 0.10:
                state, steps = TrialState.PRUNED, n_steps // 5
            elif draw < 0.12:
                state, steps = TrialState.FAIL, 0
            base = rng.uniform(0.1, 2.0)
            curve = {s: base + 1.0 / (s + 1) for s in range(steps)}
            began = start + timedelta(seconds=3 * number)
            storage.create_new_trial(
                study_id,
                template=FrozenTrial(
                    number=number,
                    trial_id=-1,
                    state=state,
                    values=[base] if state == TrialState.COMPLETE else None,
                    params=params,
                    distributions=dict(dists),
                    intermediate_values=curve,
                    system_attrs={"worker": f"host:{100 + number % 4}"},
                    datetime_start=began,
                    datetime_complete=began + timedelta(seconds=rng.uniform(1, 10)),
                ),
            )
    finally:
        storage.close()


def make_client(app: Any, **kwargs: Any) -> TestClient:
    """starlette's test client of ``app`` (base URL :data:`BASE_URL` unless given)."""
    with warnings.catch_warnings():
        # starlette 1.x asks for httpx2 instead of httpx (our dev dependency); the warning is
        # raised once, on import, and says nothing about our code.
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    kwargs.setdefault("base_url", BASE_URL)
    return TestClient(app, **kwargs)


def chromium_path() -> str | None:
    """The Chromium to drive: ``$DLTUNE_TEST_CHROMIUM``, else ``chromium`` on ``PATH``."""
    explicit = os.environ.get(CHROMIUM_VAR)
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


# -- a dashboard served by a real process --------------------------------------------------------


class ServedDashboard:
    """``dltune dashboard --port 0`` running in a child process."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url.rstrip("/")
        self.stderr = ""

    def stop(self) -> int:
        """SIGINT (Ctrl-C) it if it runs, collect its stderr and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=15)
        self.stderr += err or ""
        return self.process.returncode


def start_dashboard(url: str, *extra: str, env: dict[str, str] | None = None) -> ServedDashboard:
    """Start ``dltune dashboard --storage url --port 0`` and wait for the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dltune", "dashboard", "--storage", url, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"the dashboard printed {line!r}; stderr: {err}")
    return ServedDashboard(process, found.group(0))
