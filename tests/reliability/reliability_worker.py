"""Objectives and a worker entry point for the fault-injection tests, run in child processes.

The objectives are imported by ``dltune worker --objective reliability_worker:NAME`` (this
folder on ``PYTHONPATH``); ``python -m reliability_worker create ...`` is one racer of the
concurrent-create scenario.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import dltune

#: How long a ``sleepy`` trial sleeps, drawn as a param so that a retry replays it.
SLEEP_RANGE = (0.05, 0.2)
#: How long the ``barrier`` wait of a racer may take before it gives up.
BARRIER_TIMEOUT_SECONDS = 60.0


def sleepy(trial: dltune.Trial) -> float:
    """A short trial: two params, a sleep of 0.05-0.2 s (the ``sleep`` param), a value."""
    x = trial.suggest_float("x", -1.0, 1.0)
    seconds = trial.suggest_float("sleep", *SLEEP_RANGE)
    time.sleep(seconds)
    return x * x


def steady(trial: dltune.Trial) -> float:
    """A longer trial (0.5-1 s, the ``sleep`` param): long enough to be killed mid-trial."""
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(trial.suggest_float("sleep", 0.5, 1.0))
    return x * x


def wait_for(path: str, timeout: float = BARRIER_TIMEOUT_SECONDS) -> None:
    """Block until ``path`` exists: the start gun every racer waits for.

    Raises:
        TimeoutError: If it does not appear within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the barrier file {path!r} did not appear in {timeout} s")
        time.sleep(0.005)


def _warm_up() -> None:
    """Run the racer's code once on a private file, so that everything it imports or first
    computes is done before the barrier: behind it, the racers only contend for the database."""
    from dltune.storage import SQLStorage

    with tempfile.TemporaryDirectory() as tmp:
        storage = SQLStorage(f"sqlite:///{os.path.join(tmp, 'warm.db')}")
        study = dltune.create_study(study_name="warm", storage=storage, load_if_exists=True)
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", -1.0, 1.0))
        storage.close()


def race_create(url: str, study_name: str, barrier: str, n_trials: int) -> dict[str, object]:
    """Wait for the barrier, create (or load) the study, run ``n_trials`` trials by ask/tell.

    Returns:
        The study id this process got, the numbers of the trials it ran, and how long the
        create (or load) and the trials took.
    """
    from dltune.samplers import RandomSampler

    _warm_up()
    print("ready", flush=True)
    wait_for(barrier)
    started = time.monotonic()
    study = dltune.create_study(
        study_name=study_name, storage=url, sampler=RandomSampler(), load_if_exists=True
    )
    created = time.monotonic()
    numbers = []
    for _ in range(n_trials):
        trial = study.ask()
        value = trial.suggest_float("x", -1.0, 1.0) ** 2
        numbers.append(study.tell(trial, value).number)
    return {
        "pid": os.getpid(),
        "study_id": study._study_id,
        "numbers": numbers,
        "create_seconds": created - started,
        "trials_seconds": time.monotonic() - created,
    }


def main(argv: list[str]) -> int:
    """``python -m reliability_worker create URL STUDY BARRIER N_TRIALS``: print a JSON line."""
    if len(argv) != 5 or argv[0] != "create":
        print(f"usage: create URL STUDY BARRIER N_TRIALS, got {argv!r}", file=sys.stderr)
        return 2
    summary = race_create(argv[1], argv[2], argv[3], int(argv[4]))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
