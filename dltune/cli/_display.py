"""The live display of ``dltune tune``: counts by outcome, the best so far, elapsed and ETA.

On a terminal it is a rich panel redrawn in place; otherwise (a log file, CI) one line per
finished trial, so the record reads well after the fact. A dashboard started while tuning
runs is linked too: the display looks for one every few seconds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["OUTCOMES", "TuneDisplay", "format_seconds", "outcome_counts"]

#: The outcomes a summary counts, in display order.
OUTCOMES = ("complete", "pruned", "diverged", "not_learning", "fail")
#: How often the display looks for a dashboard serving the study's storage.
DASHBOARD_CHECK_SECONDS = 5.0


def format_seconds(seconds: float | None) -> str:
    """``h:mm:ss`` (or ``-``).

    Example:
        >>> format_seconds(3725.2)
        '1:02:05'
    """
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def outcome_counts(trials: list[FrozenTrial]) -> Counter[str]:
    """How many trials ended each way (see :attr:`FrozenTrial.outcome`)."""
    return Counter(t.outcome for t in trials)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class TuneDisplay:
    """Follows a running study through ``Study.optimize`` callbacks.

    Args:
        study: The study being tuned (its existing trials count when it resumes).
        n_trials: The study's trial budget, for the ETA.
        timeout: The run's time budget in seconds, for the ETA.
        console: Where to draw (stderr by default).
        dashboard_url: A running dashboard to link, if any.
        find_dashboard: Looks for a running dashboard of the study's storage (its URL or
            ``None``); called every ``dashboard_check_seconds`` while the display is open, so
            one started later is linked: in the panel, or with one printed line.
        dashboard_check_seconds: How often to call ``find_dashboard``.
    """

    def __init__(
        self,
        study: Study,
        n_trials: int | None,
        timeout: float | None,
        console: Console | None = None,
        dashboard_url: str | None = None,
        *,
        find_dashboard: Callable[[], str | None] | None = None,
        dashboard_check_seconds: float = DASHBOARD_CHECK_SECONDS,
    ) -> None:
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.console = console or Console(stderr=True)
        self.dashboard_url = dashboard_url
        existing = [t for t in study.trials if t.state.is_finished()]
        self.counts = outcome_counts(existing)
        self.n_before = len(existing)
        self.n_this_run = 0
        self.best: FrozenTrial | None = None
        for trial in existing:
            self._consider(trial)
        self.started = time.monotonic()
        self._live: Live | None = None
        self._find = find_dashboard
        self._check_seconds = dashboard_check_seconds
        self._announced = dashboard_url  # the last dashboard the user was told of
        self._lock = threading.RLock()  # the watcher thread redraws too
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def live(self) -> bool:
        """Whether the display redraws in place (a terminal) or prints lines."""
        return self.console.is_terminal

    def _consider(self, trial: FrozenTrial) -> None:
        if trial.outcome != "complete" or trial.value is None:
            return
        if self.best is None or self.best.value is None:
            self.best = trial
            return
        maximize = self.study.direction.name == "MAXIMIZE"
        better = trial.value > self.best.value if maximize else trial.value < self.best.value
        if better:
            self.best = trial

    def eta_seconds(self) -> float | None:
        """Time left by the trial budget's pace, capped by the timeout."""
        elapsed = time.monotonic() - self.started
        candidates = []
        if self.timeout is not None:
            candidates.append(max(0.0, self.timeout - elapsed))
        if self.n_trials is not None and self.n_this_run:
            left = max(0, self.n_trials - self.n_before - self.n_this_run)
            candidates.append(elapsed / self.n_this_run * left)
        return min(candidates) if candidates else None

    def check_dashboard(self) -> str | None:
        """Look for a running dashboard now and link it.

        A dashboard not linked before is shown in the panel or, without a terminal, printed
        on one line; one that stopped leaves the panel.

        Returns:
            The dashboard's URL, or ``None``.
        """
        if self._find is None:
            return self.dashboard_url
        try:
            found = self._find()
        except (OSError, ValueError):  # an odd runtime directory never stops tuning
            found = None
        with self._lock:
            changed = found != self.dashboard_url
            self.dashboard_url = found
            if found is not None and found != self._announced:
                self._announced = found
                if self._live is None:
                    self.console.print(f"dashboard: {found}", highlight=False, soft_wrap=True)
            if self._live is not None:  # the elapsed time moves on too
                self._live.update(self.render(), refresh=changed)
        return found

    def _watch(self) -> None:
        while not self._stop.wait(self._check_seconds):
            self.check_dashboard()

    def render(self) -> Table:
        """The panel: progress by outcome, best so far, timing."""
        with self._lock:
            return self._render()

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        done = sum(self.counts.values())
        budget = f"/{self.n_trials}" if self.n_trials is not None else ""
        table.add_row("study", self.study.study_name)
        table.add_row(
            "trials",
            f"{done}{budget} finished: "
            + ", ".join(f"{self.counts.get(k, 0)} {k.replace('_', ' ')}" for k in OUTCOMES),
        )
        if self.best is not None:
            params = ", ".join(f"{k}={_short(v)}" for k, v in self.best.params.items())
            table.add_row("best", f"{self.best.value:.4f} (trial {self.best.number}) {params}")
        else:
            table.add_row("best", "-")
        elapsed = time.monotonic() - self.started
        table.add_row(
            "time", f"{format_seconds(elapsed)} elapsed, ETA {format_seconds(self.eta_seconds())}"
        )
        if self.dashboard_url:
            table.add_row("dashboard", self.dashboard_url)
        return table

    def __enter__(self) -> TuneDisplay:
        if self._find is not None:
            self._stop.clear()
            self._watcher = threading.Thread(
                target=self._watch, name="dltune-display-dashboard", daemon=True
            )
        if self.live:
            self._live = Live(
                self.render(), console=self.console, refresh_per_second=2, transient=False
            )
            self._live.__enter__()
        else:
            self.console.print(
                f"tuning study {self.study.study_name!r}: {self.n_before} trial(s) already "
                f"finished" + (f", budget {self.n_trials}" if self.n_trials is not None else "")
            )
        if self._watcher is not None:
            self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        with self._lock:
            if self._live is not None:
                self._live.update(self.render())
                self._live.__exit__(None, None, None)
                self._live = None

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        """The ``Study.optimize`` callback."""
        with self._lock:
            self._record(trial)

    def _record(self, trial: FrozenTrial) -> None:
        self.counts[trial.outcome] += 1
        self.n_this_run += 1
        self._consider(trial)
        if self._live is not None:
            self._live.update(self.render())
            return
        value = "" if trial.value is None else f" value={trial.value:.4f}"
        reason = f" ({trial.reason})" if trial.reason else ""
        best = (
            "" if self.best is None else f"; best {self.best.value:.4f} (trial {self.best.number})"
        )
        done = sum(self.counts.values())
        budget = f"/{self.n_trials}" if self.n_trials is not None else ""
        self.console.print(
            f"trial {trial.number} {trial.outcome.replace('_', ' ')}{value}{reason}{best} "
            f"[{done}{budget}, {format_seconds(time.monotonic() - self.started)} elapsed, "
            f"ETA {format_seconds(self.eta_seconds())}]",
            highlight=False,
            soft_wrap=True,
        )
