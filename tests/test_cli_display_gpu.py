"""The live display's status line (what holds the run up) and its paused-lineage counts."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from rich.console import Console

import dltune
from dltune.analysis._table import outcome_counts
from dltune.cli._display import TuneDisplay
from dltune.pruners import BasePruner
from dltune.trial import PAUSED
from dltune.trial import FrozenTrial
from dltune.trial import TrialState
from dltune.view import StudyView

WAITING = "waiting for GPU 1 (in use by host:1234)"


def _text(display: TuneDisplay) -> str:
    shown = Console(file=io.StringIO(), width=200, record=True)
    shown.print(display.render())
    return shown.export_text()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class _Status:
    """A status source the test sets by hand."""

    def __init__(self) -> None:
        self.text: str | None = None

    def __call__(self) -> str | None:
        return self.text


def test_the_panel_shows_the_status_while_it_lasts() -> None:
    status = _Status()
    display = TuneDisplay(
        dltune.create_study(), 5, None, Console(file=io.StringIO()), status=status
    )
    assert "status" not in _text(display)
    status.text = WAITING
    assert display.check_status() == WAITING
    assert f"status  {WAITING}" in _text(display)
    status.text = None
    display.check_status()
    assert "waiting" not in _text(display)


def test_a_live_panel_picks_the_status_up_by_itself() -> None:
    status = _Status()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    display = TuneDisplay(
        dltune.create_study(), 5, None, console, status=status, status_check_seconds=0.01
    )
    assert display.live
    with display:
        status.text = WAITING
        _wait_for(lambda: display.status_text == WAITING, "the status")
        assert WAITING in _text(display)
    assert WAITING in out.getvalue()


def test_without_a_terminal_each_new_status_is_printed_once() -> None:
    status = _Status()
    out = io.StringIO()
    display = TuneDisplay(
        dltune.create_study(), 5, None, Console(file=out, width=200), status=status
    )
    with display:
        for text in [WAITING, WAITING, None, "waiting for GPU 0 (in use by h:9)", None, WAITING]:
            status.text = text
            display.check_status()
    lines = out.getvalue().splitlines()[1:]
    assert lines == [WAITING, "waiting for GPU 0 (in use by h:9)", WAITING]


def test_the_status_is_asked_for_every_status_check_seconds() -> None:
    calls: list[float] = []

    def status() -> str | None:
        calls.append(time.monotonic())
        return None

    display = TuneDisplay(
        dltune.create_study(),
        5,
        None,
        Console(file=io.StringIO()),
        status=status,
        status_check_seconds=0.01,
    )
    with display:
        _wait_for(lambda: len(calls) >= 3, "three status checks")
    n_calls = len(calls)
    time.sleep(0.05)
    assert len(calls) == n_calls  # the watcher stopped with the display


# -- a paused and resumed lineage counts once --------------------------------------------------


class _PauseAtTwo(BasePruner):
    """Pauses each fresh trial at step 2; promotes the oldest paused trial nobody continues."""

    def prune(self, study: StudyView, trial: FrozenTrial) -> bool:
        return trial.last_step == 2 and trial.resume_of is None

    def promote(self, study: StudyView, trial: FrozenTrial) -> FrozenTrial | None:
        trials = study.get_trials()
        continued = {t.resume_of for t in trials}
        for t in trials:
            if t.state == TrialState.PRUNED and t.number not in continued:
                return t
        return None


def _objective(trial: dltune.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(1 + len(trial.intermediate_values), 5):
        trial.report(x + step, step)
        if trial.should_prune():
            raise dltune.TrialPruned()
    return x


@pytest.mark.parametrize("terminal", [False, True])
def test_a_paused_then_resumed_trial_is_not_counted_as_pruned(terminal: bool) -> None:
    study = dltune.create_study(pruner=_PauseAtTwo(), seed=3)
    console = Console(file=io.StringIO(), force_terminal=terminal, width=200)
    display = TuneDisplay(study, 5, None, console)
    with display:
        study.optimize(_objective, n_trials=5, callbacks=[display])
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.COMPLETE] * 2 + [
        TrialState.PRUNED
    ]
    assert display.counts == outcome_counts(trials)  # as the report and the dashboard count
    assert (display.counts["complete"], display.counts["pruned"], display.counts[PAUSED]) == (
        2,
        1,
        2,
    )
    assert "5/5 finished: 2 complete, 1 pruned, 0 diverged, 0 not learning, 0 fail, 2 paused " in (
        _text(display)
    )
    resumed = TuneDisplay(study, 10, None, Console(file=io.StringIO()))  # the study reopened
    assert resumed.counts == outcome_counts(trials)
    resumed(study, FrozenTrial(5, 5, TrialState.COMPLETE, [0.5], system_attrs={"resume_of": 4}))
    assert (resumed.counts["complete"], resumed.counts["pruned"], resumed.counts[PAUSED]) == (
        3,
        0,
        3,
    )
