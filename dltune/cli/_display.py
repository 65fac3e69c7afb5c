"""The live display of ``dltune tune``: counts by outcome, the best so far, elapsed and ETA.

On a terminal it is a rich panel redrawn in place; otherwise (a log file, CI) one line per
finished trial, so the record reads well after the fact. A dashboard started while tuning
runs is linked too: the display looks for one every few seconds. What holds the run up (such
as a GPU another run is using) shows as a status line while it lasts.
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

from dltune.analysis._table import outcome_counts
from dltune.trial import PAUSED
from dltune.trial import resumed_numbers

if TYPE_CHECKING:
    from dltune.study import Study
    from dltune.trial import FrozenTrial

__all__ = ["OUTCOMES", "TuneDisplay", "format_counts", "format_seconds", "outcome_counts"]

#: The outcomes a summary counts, in display order.
OUTCOMES = ("complete", "pruned", "diverged", "not_learning", "fail")
#: The outcomes of a PRUNED trial (a paused one among them).
_PRUNED_OUTCOMES = ("pruned", "diverged", "not_learning")
#: How a paused trial that a later trial continued is counted (its lineage counts once).
PAUSED_LABEL = "paused and resumed"
#: How often the display looks for a dashboard serving the study's storage.
DASHBOARD_CHECK_SECONDS = 5.0
#: How often the display asks for the status line.
STATUS_CHECK_SECONDS = 0.5


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


def format_counts(counts: Counter[str]) -> str:
    """The counts by outcome in words; paused-and-resumed trials only when there are some.

    Example:
        >>> format_counts(Counter({"complete": 3, "pruned": 1, PAUSED: 1}))
        '3 complete, 1 pruned, 0 diverged, 0 not learning, 0 fail, 1 paused and resumed'
    """
    text = ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in OUTCOMES)
    if counts.get(PAUSED):
        text += f", {counts[PAUSED]} {PAUSED_LABEL}"
    return text


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
        status: Says what holds the run up, if anything (such as
            :meth:`dltune.execution.LocalExecutor.status`: ``'waiting for GPU 1 (in use by
            host:1234)'``), else ``None``; called every ``status_check_seconds`` from a
            thread while the display is open. The panel shows it; without a terminal it is
            printed once when it appears and again when it changes.
        status_check_seconds: How often to call ``status``.

    A paused trial that a later trial continued (ASHA promotion) is counted as
    :data:`~dltune.trial.PAUSED` ("paused and resumed"), not as pruned, as the report and the
    dashboard count it: the continuation carries the lineage's outcome.

    Example:
        >>> import io
        >>> import dltune
        >>> from rich.console import Console
        >>> console = Console(file=io.StringIO(), width=100)
        >>> display = TuneDisplay(dltune.create_study(study_name="s"), 10, None, console,
        ...                       status=lambda: "waiting for GPU 1 (in use by host:42)")
        >>> with display:
        ...     pass
        >>> console.file.getvalue().splitlines()[1]
        'waiting for GPU 1 (in use by host:42)'
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
        status: Callable[[], str | None] | None = None,
        status_check_seconds: float = STATUS_CHECK_SECONDS,
    ) -> None:
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.console = console or Console(stderr=True)
        self.dashboard_url = dashboard_url
        existing = [t for t in study.trials if t.state.is_finished()]
        self.counts = outcome_counts(existing)
        # How each finished trial is counted, to move a paused one to PAUSED once continued.
        resumed = resumed_numbers(existing)
        self._counted = {t.number: PAUSED if t.number in resumed else t.outcome for t in existing}
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
        self._status = status
        self._status_seconds = status_check_seconds
        self.status_text: str | None = None
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

    def check_status(self) -> str | None:
        """Ask for the status line now and show it.

        In the panel it is redrawn; without a terminal a status that appears or changes is
        printed on one line.

        Returns:
            The status, or ``None``.
        """
        if self._status is None:
            return None
        text = self._status()
        with self._lock:
            changed = text != self.status_text
            self.status_text = text
            if self._live is not None:
                self._live.update(self.render(), refresh=changed)
            elif changed and text is not None:
                self.console.print(text, highlight=False, soft_wrap=True)
        return text

    def _watch(self) -> None:
        periods = []
        if self._status is not None:
            periods.append(self._status_seconds)
        if self._find is not None:
            periods.append(self._check_seconds)
        next_dashboard = time.monotonic() + self._check_seconds
        while not self._stop.wait(min(periods)):
            if self._status is not None:
                self.check_status()
            if self._find is not None and time.monotonic() >= next_dashboard:
                next_dashboard = time.monotonic() + self._check_seconds
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
        table.add_row("trials", f"{done}{budget} finished: {format_counts(self.counts)}")
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
        if self.status_text:
            table.add_row("status", self.status_text, style="yellow")
        return table

    def __enter__(self) -> TuneDisplay:
        if self._find is not None or self._status is not None:
            self._stop.clear()
            self._watcher = threading.Thread(
                target=self._watch, name="dltune-display-watch", daemon=True
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
        self.check_status()
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

    def _count(self, trial: FrozenTrial) -> None:
        """Count the trial; the paused trial it continues, if any, moves to PAUSED."""
        self.counts[trial.outcome] += 1
        self._counted[trial.number] = trial.outcome
        paused = trial.resume_of
        before = None if paused is None else self._counted.get(paused)
        if paused is not None and before in _PRUNED_OUTCOMES:
            self.counts[before] -= 1
            self.counts[PAUSED] += 1
            self._counted[paused] = PAUSED

    def _record(self, trial: FrozenTrial) -> None:
        self._count(trial)
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
