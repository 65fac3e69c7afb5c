"""``dltune report``: writes one HTML file from a read-only storage; one-line errors."""

from __future__ import annotations

import errno
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result

import dltune
from dltune.cli import cli
from dltune.cli._report import build_error
from dltune.cli._report import default_output
from dltune.storage import SQLStorage
from dltune.trial import TrialState

pytest.importorskip("plotly")

NAME = "cnn/v2 <b>"


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures the ``dltune`` logger; give other tests theirs back."""
    logger = logging.getLogger("dltune")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.delenv("DLTUNE_STORAGE", raising=False)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite storage holding the study NAME: 3 COMPLETE trials with reports, 1 PRUNED."""
    db_url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = SQLStorage(db_url)
    try:
        study = dltune.create_study(NAME, storage)
        for x in (0.1, 0.5, 0.9):
            trial = study.ask()
            trial.suggest_float("x", 0, 1)
            trial.suggest_categorical("optimizer", ["adam", "sgd"])
            trial.report(x + 1, 0)
            study.tell(trial, x)
        study.tell(study.ask(), state=TrialState.PRUNED)
    finally:
        storage.close()
    return db_url


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_writes_the_report_and_prints_its_path(url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.html"
    result = invoke("report", NAME, "--storage", url, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<code>cnn/v2 &lt;b&gt;</code>" in page
    assert "<strong>PED-ANOVA</strong>" in page and "All 4 trials" in page


def test_default_output_is_named_after_the_study(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("report", NAME, "--storage", url, "--importance", "NONE")
    assert result.exit_code == 0, result.output
    assert result.stdout == "cnn_v2_b-report.html\n"
    assert "importance &#x27;none&#x27;" in (tmp_path / "cnn_v2_b-report.html").read_text()


def test_importance_choices_are_the_methods_and_none(url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = invoke("report", NAME, "--storage", url, "-o", str(out), "--importance", "anova")
    assert result.exit_code == 2
    assert "'anova' is not one of 'ped_anova', 'fanova', 'none'" in result.stderr
    assert not out.exists()


def test_default_output_names_are_safe_file_names() -> None:
    assert default_output("a b/../c").name == "a_b_.._c-report.html"
    assert default_output("../..").name == "study-report.html"
    assert default_output("x" * 300).name == "x" * 80 + "-report.html"


def test_png_dir_gets_the_plots(url: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pngs = tmp_path / "pngs"
    out = tmp_path / "r.html"
    result = invoke("report", NAME, "--storage", url, "-o", str(out), "--png", str(pngs))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in pngs.iterdir())
    assert names[0] == "01-history.png" and len(names) >= 4
    assert f"PNG plots in {pngs}" in result.stderr


def test_an_unknown_study_lists_the_names(url: str, tmp_path: Path) -> None:
    result = invoke("report", "nope", "--storage", url, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: no study named 'nope'; the storage holds [{NAME!r}]\n"
    assert not (tmp_path / "r.html").exists()


def test_a_missing_storage_file_is_one_error(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = invoke("report", NAME, "--storage", missing, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --storage ") and "no database file" in result.stderr


def test_unwritable_outputs_are_refused_before_any_work(url: str, tmp_path: Path) -> None:
    result = invoke("report", NAME, "--storage", url, "-o", str(tmp_path / "no" / "r.html"))
    assert result.exit_code == 2
    assert "Error: --output" in result.stderr and "does not exist" in result.stderr
    result = invoke("report", NAME, "--storage", url, "-o", str(tmp_path))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: --output {str(tmp_path)!r} is a directory; name a file, e.g. report.html\n"
    )
    afile = tmp_path / "file"
    afile.write_text("")
    result = invoke(
        "report", NAME, "--storage", url, "-o", str(tmp_path / "x.html"), "--png", str(afile)
    )
    assert result.exit_code == 2
    assert "Error: --png" in result.stderr and "is a file; name a directory" in result.stderr


def test_png_dir_that_cannot_be_created_blames_png(url: str, tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    pngs = afile / "pngs"  # passes the early check (it does not exist); mkdir fails
    out = tmp_path / "r.html"
    result = invoke("report", NAME, "--storage", url, "-o", str(out), "--png", str(pngs))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: --png {str(pngs)!r}: cannot save the plots there: Not a directory\n"
    )
    assert not out.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_an_output_that_fails_on_write_names_the_output(url: str) -> None:
    """Writable by every check made up front, yet every write fails: blame the output."""
    result = invoke("report", NAME, "--storage", url, "-o", "/dev/full", "--importance", "none")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: cannot write the report to '/dev/full': No space left on device\n"
    )


def test_build_errors_are_worded_by_what_failed(tmp_path: Path) -> None:
    pngs = tmp_path / "pngs"
    inside = OSError(errno.EACCES, "Permission denied", str(pngs / "01-history.png"))
    assert str(build_error(inside, pngs)) == (
        f"--png {str(pngs)!r}: cannot write {str(pngs / '01-history.png')!r}: Permission denied"
    )
    parent = OSError(errno.EROFS, "Read-only file system", str(tmp_path))
    assert str(build_error(parent, pngs)).startswith(f"--png {str(pngs)!r}: cannot write")
    other = OSError(errno.EIO, "Input/output error", "/site/plotly/plotly.min.js")
    for png_dir in (None, pngs):  # not the PNG directory's fault, whether --png was given
        message = str(build_error(other, png_dir))
        assert (
            message == "cannot build the report: Input/output error: '/site/plotly/plotly.min.js'"
        )
    assert str(build_error(OSError(errno.EIO, "Input/output error"), None)) == (
        "cannot build the report: Input/output error"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_read_only_directory_is_refused(url: str, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("")
        except OSError:
            pass
        else:
            pytest.skip("this user can write anywhere (root)")
        result = invoke("report", NAME, "--storage", url, "-o", str(locked / "r.html"))
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2
    assert "is not writable; name another file" in result.stderr


def test_a_missing_extra_is_one_error(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if plotly were not installed
    result = invoke("report", NAME, "--storage", url, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: the HTML report needs the package 'plotly'")
    assert "pip install 'dltune[plots]'" in result.stderr


def test_the_storage_is_opened_read_only(url: str, tmp_path: Path) -> None:
    """A running study's workers are not disturbed: a RUNNING trial is not failed as stale."""
    storage = SQLStorage(url, heartbeat_seconds=0.01, grace_seconds=0.02)
    try:
        running = dltune.load_study(NAME, storage).ask()  # no heartbeat: stale in 0.02 s
    finally:
        storage.close()
    time.sleep(0.1)
    result = invoke("report", NAME, "--storage", url, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    storage = SQLStorage(url, read_only=True)
    try:
        study = dltune.load_study(NAME, storage)
        assert study.trials[running.number].state == TrialState.RUNNING
    finally:
        storage.close()
