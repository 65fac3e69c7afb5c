"""The ``dltune`` command line, in process (click's runner) and as real processes."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result

import dltune
from dltune.cli import cli
from dltune.storage import SQLStorage
from dltune.trial import TrialState

LONG_ERROR = "boom " * 30


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures the ``dltune`` logger; give other tests theirs back."""
    logger = logging.getLogger("dltune")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.delenv("DLTUNE_STORAGE", raising=False)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def strict_json(text: str) -> Any:
    """Parse JSON, refusing the NaN/Infinity tokens Python's json writes by default."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON token {token!r}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """A SQLite storage with studies 'demo' (minimize), 'maxi' (no trials) and 'multi'.

    demo: 0 COMPLETE 0.5, 1 COMPLETE 0.25, 2 COMPLETE inf, 3 FAIL (long error), 4 PRUNED.
    """
    db_url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = SQLStorage(db_url)
    try:
        demo = dltune.create_study("demo", storage)
        for value in (0.5, 0.25, math.inf):
            trial = demo.ask()
            trial.suggest_float("x", 0, 1)
            trial.suggest_categorical("opt", ["adam", "sgd"])
            trial.set_user_attr("note", math.nan)
            demo.tell(trial, value)
        failed = demo.ask()
        failed.suggest_float("x", 0, 1)
        demo.tell(failed, state=TrialState.FAIL, reason=f"RuntimeError: {LONG_ERROR}")
        demo.tell(demo.ask(), state=TrialState.PRUNED)
        dltune.create_study("maxi", storage, direction="maximize")
        multi = dltune.create_study("multi", storage, directions=["minimize", "maximize"])
        for values in ((1.0, 1.0), (2.0, 3.0), (3.0, 2.0)):
            multi.tell(multi.ask(), values)
    finally:
        storage.close()
    yield db_url


def trials_of(db_url: str, study_name: str) -> list[dltune.FrozenTrial]:
    storage = SQLStorage(db_url, read_only=True)
    try:
        return dltune.load_study(study_name, storage).trials
    finally:
        storage.close()


# -- help and version --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["studies"],
        ["trials"],
        ["best"],
        ["delete"],
        ["storage"],
        ["storage", "upgrade"],
        ["storage", "version"],
        ["worker"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: dltune {' '.join(command)}".rstrip())


def test_worker_help_explains_the_shared_budget() -> None:
    help_text = " ".join(invoke("worker", "--help").stdout.split())
    assert "The study's total trial budget, shared by all workers" in help_text
    assert "Two workers with --n-trials 20 end with 20 trials, not 40" in help_text


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"dltune, version {dltune.__version__}\n"


def test_help_runs_as_a_module_without_extras() -> None:
    code = textwrap.dedent(
        """
        import sys
        from dltune.cli import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        extras = ["pandas", "psycopg", "torch", "distributed", "optuna"]
        print(sorted(m for m in extras if m in sys.modules), file=sys.stderr)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    assert done.stdout.startswith("Usage: dltune [OPTIONS] COMMAND [ARGS]...")
    as_module = subprocess.run(
        [sys.executable, "-m", "dltune", "--help"], capture_output=True, text=True
    )
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout.startswith("Usage: dltune")


def test_help_does_not_load_the_database_layer() -> None:
    code = "import sys, dltune.cli; print(sorted({'sqlalchemy', 'alembic'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- studies -----------------------------------------------------------------------------------


def test_studies_table(url: str) -> None:
    result = invoke("studies", "--storage", url)
    assert result.exit_code == 0, result.output
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "DIRECTIONS",
        "TRIALS",
        "WAITING",
        "RUNNING",
        "COMPLETE",
        "PRUNED",
        "FAIL",
        "BEST",
        "STARTED",
    ]
    assert set(rule) == {"-", " "}
    assert [row.split()[:9] for row in rows] == [
        ["demo", "minimize", "5", "0", "0", "3", "1", "1", "0.25"],
        ["maxi", "maximize", "0", "0", "0", "0", "0", "0", "-"],
        ["multi", "minimize,maximize", "3", "0", "0", "3", "0", "0", "-"],
    ]


def test_studies_json(url: str) -> None:
    result = invoke("studies", "--storage", url, "--format", "json")
    assert result.exit_code == 0, result.output
    records = strict_json(result.stdout)
    assert [r["name"] for r in records] == ["demo", "maxi", "multi"]
    demo = records[0]
    assert demo["directions"] == ["minimize"]
    assert demo["n_trials"] == 5
    assert demo["states"] == {"WAITING": 0, "RUNNING": 0, "COMPLETE": 3, "PRUNED": 1, "FAIL": 1}
    assert demo["best_value"] == 0.25
    assert isinstance(demo["datetime_start"], str)
    assert records[1]["best_value"] is None and records[1]["datetime_start"] is None
    assert records[2]["directions"] == ["minimize", "maximize"]


def test_studies_of_an_empty_storage(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    SQLStorage(empty).close()
    table = invoke("studies", "--storage", empty)
    assert table.exit_code == 0
    assert table.stdout == ""
    assert table.stderr == f"no studies in {empty}\n"
    assert strict_json(invoke("studies", "--storage", empty, "--format", "json").stdout) == []


def test_storage_comes_from_the_environment(url: str) -> None:
    result = invoke("studies", "--format", "json", env={"DLTUNE_STORAGE": url})
    assert result.exit_code == 0, result.output
    assert len(strict_json(result.stdout)) == 3


def test_default_storage_is_dltune_db_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("studies")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: --storage 'sqlite:///dltune.db': there is no database file "
        f"{str(tmp_path / 'dltune.db')!r}; check the path (three slashes for a relative one, "
        "four for an absolute one) or set DLTUNE_STORAGE\n"
    )


# -- trials ------------------------------------------------------------------------------------


def test_trials_table(url: str) -> None:
    result = invoke("trials", "demo", "--storage", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NUMBER", "STATE", "VALUE", "PARAMS", "DURATION", "REASON"]
    rows = lines[2:]
    assert [row.split()[:3] for row in rows] == [
        ["0", "COMPLETE", "0.5"],
        ["1", "COMPLETE", "0.25"],
        ["2", "COMPLETE", "inf"],
        ["3", "FAIL", "-"],
        ["4", "PRUNED", "-"],
    ]
    assert "opt=" in rows[0] and "x=" in rows[0]
    # The long reason is cut to one cell; --format json has it whole.
    cut = "RuntimeError: " + LONG_ERROR
    assert rows[3].endswith(cut[:45] + "...")
    assert all(len(line) < 200 for line in lines)


def test_trials_json(url: str) -> None:
    result = invoke("trials", "demo", "--storage", url, "--format", "json")
    assert result.exit_code == 0, result.output
    records = strict_json(result.stdout)
    assert [(r["number"], r["state"], r["value"]) for r in records] == [
        (0, "COMPLETE", 0.5),
        (1, "COMPLETE", 0.25),
        (2, "COMPLETE", "inf"),
        (3, "FAIL", None),
        (4, "PRUNED", None),
    ]
    assert set(records[0]["params"]) == {"x", "opt"}
    assert records[0]["user_attrs"] == {"note": "nan"}
    assert records[3]["reason"] == f"RuntimeError: {LONG_ERROR}"
    assert isinstance(records[0]["duration_seconds"], float)
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout


def test_trials_filter_by_state_and_limit(url: str) -> None:
    result = invoke(
        "trials", "demo", "--state", "complete", "--state", "FAIL", "--limit", "2",
        "--storage", url, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [(r["number"], r["state"]) for r in strict_json(result.stdout)] == [
        (2, "COMPLETE"),
        (3, "FAIL"),
    ]


def test_trials_of_a_study_without_trials(url: str) -> None:
    result = invoke("trials", "maxi", "--storage", url)
    assert result.exit_code == 0
    assert result.stderr == "study 'maxi' has no trials\n"
    assert strict_json(invoke("trials", "maxi", "--storage", url, "--format", "json").stdout) == []


def test_trials_of_a_multi_objective_study(url: str) -> None:
    result = invoke("trials", "multi", "--storage", url, "--format", "json")
    assert [r["values"] for r in strict_json(result.stdout)] == [[1, 1], [2, 3], [3, 2]]
    table = invoke("trials", "multi", "--storage", url).stdout.splitlines()
    assert table[3].split()[:4] == ["1", "COMPLETE", "2,", "3"]


def test_trials_rejects_bad_state_and_limit(url: str) -> None:
    bad_state = invoke("trials", "demo", "--state", "done", "--storage", url)
    assert bad_state.exit_code == 2
    assert "Invalid value for '--state': 'done' is not one of" in bad_state.stderr
    bad_limit = invoke("trials", "demo", "--limit", "0", "--storage", url)
    assert bad_limit.exit_code == 2
    assert "Invalid value for '--limit': 0 is not in the range x>=1." in bad_limit.stderr


# -- best --------------------------------------------------------------------------------------


def test_best_table(url: str) -> None:
    result = invoke("best", "demo", "--storage", url)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["FIELD", "VALUE"]
    assert rows[2:4] == [["number", "1"], ["value", "0.25"]]
    assert sorted(r[0] for r in rows[4:]) == ["params.opt", "params.x"]


def test_best_json_is_an_object(url: str) -> None:
    result = invoke("best", "demo", "--storage", url, "--format", "json")
    assert result.exit_code == 0, result.output
    best = strict_json(result.stdout)
    assert best["study"] == "demo" and best["direction"] == "minimize"
    assert (best["number"], best["value"]) == (1, 0.25)
    assert set(best["params"]) == {"x", "opt"}


def test_best_of_a_multi_objective_study_is_the_pareto_front(url: str) -> None:
    result = invoke("best", "multi", "--storage", url, "--format", "json")
    assert result.exit_code == 0, result.output
    front = strict_json(result.stdout)
    assert front["directions"] == ["minimize", "maximize"]
    assert [t["number"] for t in front["best_trials"]] == [0, 1]
    table = invoke("best", "multi", "--storage", url)
    assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == ["0", "1"]


def test_best_without_complete_trials(url: str) -> None:
    result = invoke("best", "maxi", "--storage", url)
    assert result.exit_code == 2
    assert result.stderr == "Error: study 'maxi' has no COMPLETE trial yet, so no best trial\n"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["trials", "nope"], ["best", "nope"], ["delete", "nope", "--yes"]]
)
def test_unknown_study_lists_the_names(url: str, command: list[str]) -> None:
    result = invoke(*command, "--storage", url)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: no study named 'nope'")
    assert "['demo', 'maxi', 'multi']" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_verbose_shows_the_traceback(url: str) -> None:
    for args in (["-v", "trials", "nope"], ["trials", "nope", "-v"]):
        result = invoke(*args, "--storage", url)
        assert result.exit_code == 2
        assert result.stderr.startswith("Traceback (most recent call last):")
        assert result.stderr.splitlines()[-1].startswith("Error: no study named 'nope'")


@pytest.mark.parametrize(
    ("storage_url", "message"),
    [
        ("foo://host/db", "Error: url='foo://host/db' uses the unsupported driver 'foo'; use "),
        ("not a url", "Error: url='not a url' is not a database URL; use "),
    ],
)
def test_bad_storage_url(storage_url: str, message: str) -> None:
    result = invoke("studies", "--storage", storage_url)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert "'sqlite:///path/to/file.db'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = invoke("trials", "demo", "--storage", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: --storage 'sqlite:///{missing}': there is no database file {str(missing)!r}"
    )
    assert not missing.exists()


def test_database_without_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = invoke("studies", "--storage", f"sqlite:///{empty}")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: --storage 'sqlite:///{empty}' holds no dltune studies yet (no dltune schema); "
        "create one with `dltune worker --create ...` or from Python\n"
    )


@pytest.mark.parametrize("command", [["studies"], ["trials", "demo"], ["best", "demo"]])
def test_bad_format(url: str, command: list[str]) -> None:
    result = invoke(*command, "--storage", url, "--format", "xml")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--format': 'xml' is not one of 'table', 'json'." in (
        result.stderr
    )


# -- delete ------------------------------------------------------------------------------------


def test_delete_with_yes(url: str) -> None:
    result = invoke("delete", "demo", "--yes", "--storage", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted study 'demo'\n"
    listed = invoke("studies", "--storage", url, "--format", "json")
    assert [r["name"] for r in strict_json(listed.stdout)] == ["maxi", "multi"]


def test_delete_asks_first(url: str) -> None:
    result = invoke("delete", "demo", "--storage", url, input="y\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "Delete study 'demo' and its 5 trial(s)? This cannot be undone. [y/N]:"
    )
    assert result.stdout == "deleted study 'demo'\n"


def test_delete_answered_no_keeps_the_study(url: str) -> None:
    result = invoke("delete", "demo", "--storage", url, input="n\n")
    assert result.exit_code == 1
    assert result.stderr.endswith("study 'demo' was not deleted\n")
    assert len(trials_of(url, "demo")) == 5


def test_delete_without_stdin_refuses(url: str) -> None:
    result = invoke("delete", "demo", "--storage", url, input="")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: refusing to delete study 'demo' without confirmation: stdin is closed; pass "
        "--yes to delete it anyway\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dltune", "delete", "demo", "--storage", url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.endswith("pass --yes to delete it anyway\n")
    assert len(trials_of(url, "demo")) == 5


# -- storage -----------------------------------------------------------------------------------


def test_storage_upgrade_of_a_fresh_database(tmp_path: Path) -> None:
    from dltune.storage._sql_schema import head_revision

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = invoke("storage", "upgrade", "--storage", fresh)
    assert first.exit_code == 0, first.output
    assert first.stdout == f"upgraded {fresh}: (empty) -> {head_revision()}\n"
    again = invoke("storage", "upgrade", "--storage", fresh)
    assert again.stdout == f"{fresh} is already at schema revision {head_revision()}\n"
    version = invoke("storage", "version", "--storage", fresh)
    assert version.stdout == f"{head_revision()}\n"
    as_json = invoke("storage", "version", "--storage", fresh, "--format", "json")
    assert strict_json(as_json.stdout) == {"storage": fresh, "revision": head_revision()}


def test_storage_upgrade_bad_url() -> None:
    result = invoke("storage", "upgrade", "--storage", "mysql://u:secret@host/db")
    assert result.exit_code == 2
    assert "secret" not in result.stderr
    assert result.stderr.startswith("Error: url='mysql://u:***@host/db' uses the unsupported")


# -- worker, in process ------------------------------------------------------------------------


OBJECTIVE_MODULE = """
import math
import pathlib
import time

NOT_CALLABLE = 3


def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(float(pathlib.Path("delay").read_text()) if pathlib.Path("delay").exists() else 0)
    return x * x


def slow(trial):
    trial.suggest_float("x", 0.0, 1.0)
    pathlib.Path(f"started-{trial.number}").touch()
    time.sleep(60)
    return 0.0
"""


@pytest.fixture
def objective_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module in ``tmp_path`` (the current directory) with a fresh name; returns the name."""
    name = f"objectives_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(OBJECTIVE_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the worker puts the cwd first
    return name


def test_worker_in_process(url: str, objective_module: str) -> None:
    result = invoke(
        "worker", "--study", "maxi", "--storage", url, "--objective",
        f"{objective_module}:objective", "--n-trials", "4", "--seed", "0", "--sampler", "qmc",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "ran 4 trial(s); study 'maxi' holds 4\n"
    assert [t.state for t in trials_of(url, "maxi")] == [TrialState.COMPLETE] * 4


def test_worker_with_a_pruner_from_a_spec(url: str, objective_module: str) -> None:
    result = invoke(
        "worker", "--study", "maxi", "--storage", url, "--objective",
        f"{objective_module}:objective", "--n-trials", "3",
        "--pruner", "{type: asha, min_resource: 1, reduction_factor: 2}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(trials_of(url, "maxi")) == 3


def test_worker_verbose_logs_each_trial(url: str, objective_module: str) -> None:
    result = invoke(
        "worker", "-v", "--study", "maxi", "--storage", url, "--objective",
        f"{objective_module}:objective", "--n-trials", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    logged = [line for line in result.stderr.splitlines() if "INFO dltune.cli: trial" in line]
    assert len(logged) == 2 and "COMPLETE" in logged[0]


def test_worker_creates_the_study(tmp_path: Path, objective_module: str) -> None:
    new = f"sqlite:///{tmp_path / 'new.db'}"
    args = ["--study", "fresh", "--storage", new, "--objective", f"{objective_module}:objective"]
    result = invoke("worker", *args, "--create", "--direction", "maximize", "--n-trials", "3")
    assert result.exit_code == 0, result.output
    again = invoke("worker", *args, "--create", "--direction", "minimize", "--n-trials", "3")
    assert again.exit_code == 2
    assert again.stderr == (
        "Error: study 'fresh' exists with directions ['MAXIMIZE'], not ['MINIMIZE']; use "
        "another name or the same directions\n"
    )


@pytest.mark.postgres
def test_worker_and_readers_on_postgresql(fresh_postgres_url: str, objective_module: str) -> None:
    args = ["--study", "pg", "--storage", fresh_postgres_url, "--objective"]
    args += [f"{objective_module}:objective", "--create", "--direction", "minimize"]
    result = invoke("worker", *args, "--n-trials", "3")
    assert result.exit_code == 0, result.output
    listed = invoke("studies", "--storage", fresh_postgres_url, "--format", "json")
    assert [(r["name"], r["n_trials"]) for r in strict_json(listed.stdout)] == [("pg", 3)]
    best = invoke("best", "pg", "--storage", fresh_postgres_url)
    assert best.exit_code == 0, best.output


def test_worker_on_a_missing_study(url: str, objective_module: str) -> None:
    result = invoke(
        "worker", "--study", "nope", "--storage", url, "--objective",
        f"{objective_module}:objective",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no study named 'nope'")
    assert "['demo', 'maxi', 'multi']" in result.stderr
    assert result.stderr.endswith(
        "; create it first, or pass --create --direction minimize|maximize to create it if "
        "missing\n"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--create"], "Error: --create needs --direction minimize|maximize"),
        (["--direction", "minimize"], "Error: --direction is only used with --create"),
        (["--timeout", "0"], "Error: Invalid value for '--timeout': 0.0 is not in the range"),
        (["--sampler", "tpee"], "Error: Invalid value for '--sampler': 'tpee' is not one of"),
        (["--pruner", "ashaa"], "Error: --pruner 'ashaa': type: unknown pruner 'ashaa', did you"),
        (
            ["--pruner", "{type: asha, reduction_factor: 1}"],
            "Error: --pruner '{type: asha, reduction_factor: 1}': reduction_factor: must be >= 2",
        ),
        (["--pruner", "[1, 2]"], "Error: --pruner '[1, 2]' must be a pruner name (nop, median"),
        (["--pruner", "{type: [}"], "Error: --pruner '{type: [}' is not valid YAML"),
        (
            ["--heartbeat-seconds", "5", "--grace-seconds", "2"],
            "Error: grace_seconds=2.0 must be greater than heartbeat_seconds=5.0",
        ),
    ],
)
def test_worker_bad_options(
    url: str, objective_module: str, extra: list[str], message: str
) -> None:
    result = invoke(
        "worker", "--study", "maxi", "--storage", url, "--objective",
        f"{objective_module}:objective", *extra,
    )  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr


FORM = "'module:function', e.g. 'train:objective' for objective() in ./train.py"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("objective", "Error: --objective 'objective' is not of the form {form}\n"),
        ("MOD:", "Error: --objective 'MOD:' is not of the form {form}\n"),
        (":objective", "Error: --objective ':objective' is not of the form {form}\n"),
        ("MOD:a:b", "Error: --objective 'MOD:a:b' is not of the form {form}\n"),
        (
            "MOD.py:objective",
            "Error: --objective 'MOD.py:objective' names a file; give the module name without "
            "'.py': 'MOD:objective'\n",
        ),
        (
            "no_such_module:objective",
            "Error: --objective 'no_such_module:objective': no module named 'no_such_module' in "
            "the current directory {cwd!r} or on sys.path; expected {form}\n",
        ),
        (
            "MOD:objectiv",
            "Error: --objective 'MOD:objectiv': module 'MOD' has no attribute 'objectiv'; it "
            "defines the callables ['objective', 'slow']; expected {form}\n",
        ),
        (
            "MOD:NOT_CALLABLE",
            "Error: --objective 'MOD:NOT_CALLABLE' names a int, which is not callable; expected "
            "{form}, a function objective(trial) -> value\n",
        ),
    ],
)
def test_worker_bad_objective(
    url: str, objective_module: str, tmp_path: Path, spec: str, message: str
) -> None:
    spec = spec.replace("MOD", objective_module)
    expected = message.replace("MOD", objective_module).format(form=FORM, cwd=str(tmp_path))
    result = invoke("worker", "--study", "maxi", "--storage", url, "--objective", spec)
    assert result.exit_code == 2
    if expected.endswith("\n"):
        assert result.stderr == expected
    else:
        assert result.stderr.startswith(expected)
    assert trials_of(url, "maxi") == []


def test_worker_objective_module_that_fails_to_import(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import not_installed_anywhere\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = invoke("worker", "--study", "maxi", "--storage", url, "--objective", f"{name}:f")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: --objective '{name}:f': importing module {name!r} raised ModuleNotFoundError: "
        "No module named 'not_installed_anywhere' (run with -v for the traceback)\n"
    )


# -- worker, as processes ----------------------------------------------------------------------


def start_worker(cwd: Path, db_url: str, *args: str) -> subprocess.Popen[str]:
    (cwd / "cli_worker_objectives.py").write_text(OBJECTIVE_MODULE)
    command = [sys.executable, "-m", "dltune", "worker", "--storage", db_url, *args]
    return subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_worker_process_runs_trials(tmp_path: Path, url: str) -> None:
    worker = start_worker(
        tmp_path, url, "--study", "maxi", "--objective", "cli_worker_objectives:objective",
        "--n-trials", "5",
    )  # fmt: skip
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert out == "ran 5 trial(s); study 'maxi' holds 5\n"
    done = trials_of(url, "maxi")
    assert [t.number for t in done] == list(range(5))
    assert all(t.state == TrialState.COMPLETE for t in done)


def test_two_worker_processes_share_the_budget(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "delay").write_text("0.1")  # 2 s of trials: both workers get some
    args = ["--study", "shared", "--objective", "cli_worker_objectives:objective"]
    args += ["--n-trials", "20", "--create", "--direction", "minimize"]
    workers = [start_worker(tmp_path, db_url, *args) for _ in range(2)]
    outputs = [w.communicate(timeout=90) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    ran = [int(out.split()[1]) for out, _ in outputs]
    assert sum(ran) == 20 and min(ran) >= 1, ran
    done = trials_of(db_url, "shared")
    assert [t.number for t in done] == list(range(20))
    assert all(t.state == TrialState.COMPLETE for t in done)


@pytest.mark.parametrize(
    ("signum", "exit_code", "how"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_interrupted_worker_fails_its_trial(
    tmp_path: Path, url: str, signum: signal.Signals, exit_code: int, how: str
) -> None:
    worker = start_worker(
        tmp_path, url, "--study", "maxi", "--objective", "cli_worker_objectives:slow",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (tmp_path / "started-0").exists():
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker never started a trial"
        time.sleep(0.05)
    os.kill(worker.pid, signum)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == exit_code, err
    assert out == ""
    assert err.splitlines()[-1] == (
        f"{how} after 0 finished trial(s); a running trial was stored as FAIL "
        "(reason 'interrupted')"
    )
    assert "Traceback" not in err
    (trial,) = trials_of(url, "maxi")
    assert trial.state == TrialState.FAIL
    assert trial.reason == "interrupted"
