"""The dashboard's HTTP surface under starlette's test client, over a real SQLite study."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("starlette")

from dashboard_helpers import NASTY_NAME  # noqa: E402
from dashboard_helpers import make_client  # noqa: E402

import dltune
from dltune.dashboard import create_app
from dltune.dashboard._app import CONTENT_SECURITY_POLICY
from dltune.dashboard._app import PLOTS_CONTENT_SECURITY_POLICY
from dltune.dashboard._app import static_names
from dltune.dashboard._app import study_segment
from dltune.exceptions import ReadOnlyStorageError
from dltune.exceptions import StorageError
from dltune.storage import SQLStorage
from dltune.trial import TrialState

if TYPE_CHECKING:
    from starlette.testclient import TestClient


def q(name: str) -> str:
    return quote(name, safe="")


def strict_json(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON token {token!r}")

    return json.loads(text, parse_constant=refuse)


# -- studies -----------------------------------------------------------------------------------


def test_studies_lists_counts_best_and_start(client: TestClient) -> None:
    answer = client.get("/api/studies")
    assert answer.status_code == 200
    studies = {s["name"]: s for s in strict_json(answer.text)}
    assert set(studies) == {"demo", "maxi", NASTY_NAME}
    demo = studies["demo"]
    assert demo["directions"] == ["minimize"]
    assert demo["n_trials"] == 6
    assert demo["counts"] == {"complete": 3, "diverged": 1, "fail": 1, "running": 1}
    assert demo["best_values"] == [0.125]
    assert isinstance(demo["start"], float)
    assert studies["maxi"] == {
        "name": "maxi",
        "directions": ["maximize"],
        "n_trials": 0,
        "counts": {},
        "best_values": [None],
        "start": None,
    }


def test_one_study_summary_and_info(client: TestClient) -> None:
    assert client.get("/api/studies/demo").json()["counts"]["complete"] == 3
    info = client.get("/api/info").json()
    assert info["poll_seconds"] == 2.0
    assert info["storage"].endswith("studies.db")


# -- trials and the cursor ---------------------------------------------------------------------


def numbers(answer: dict[str, Any]) -> list[int]:
    return [row["number"] for row in answer["trials"]]


def test_first_answer_holds_every_trial_as_trial_rows(client: TestClient) -> None:
    answer = strict_json(client.get("/api/studies/demo/trials").text)
    assert numbers(answer) == [0, 1, 2, 3, 4, 5]
    assert answer["reset"] is True
    assert answer["n_trials"] == 6
    assert sorted(answer["params"]) == ["opt", "x"]
    assert answer["directions"] == ["minimize"]
    row = answer["trials"][0]
    assert row["state"] == "complete" and row["values"] == [0.5] and row["last_step"] == 2
    assert answer["trials"][4]["outcome"] == "diverged"
    assert answer["trials"][4]["last_value"] is None  # NaN reported: null in strict JSON
    assert answer["trials"][5]["state"] == "running"
    assert answer["plots_key"] == "5.6.1"  # 5 finished, 6 trials, 1 report of running ones
    summary = answer["summary"]
    assert summary["counts"] == {"complete": 3, "diverged": 1, "fail": 1, "running": 1}
    assert summary["best_values"] == [0.125] and summary["n_trials"] == 6


def test_running_trial_is_sent_again_until_finished_then_never(
    client: TestClient, study_db: str
) -> None:
    first = client.get("/api/studies/demo/trials").json()
    again = client.get("/api/studies/demo/trials", params={"after": first["cursor"]}).json()
    assert numbers(again) == [5] and again["reset"] is False
    assert again["trials"][0]["state"] == "running"
    # A worker finishes trial 5 and starts trial 6.
    storage = SQLStorage(study_db)
    try:
        study = dltune.load_study("demo", storage)
        study.tell(5, 0.75)
        study.ask()
    finally:
        storage.close()
    changed = client.get("/api/studies/demo/trials", params={"after": again["cursor"]}).json()
    assert numbers(changed) == [5, 6]
    assert changed["trials"][0]["state"] == "complete"
    assert changed["trials"][0]["values"] == [0.75]
    later = client.get("/api/studies/demo/trials", params={"after": changed["cursor"]}).json()
    assert numbers(later) == [6]  # only the running one
    assert later["n_trials"] == 7


def test_finished_study_sends_nothing_after_its_cursor(client: TestClient) -> None:
    first = client.get(f"/api/studies/{q(NASTY_NAME)}/trials").json()
    assert numbers(first) == [0, 1]
    again = client.get(f"/api/studies/{q(NASTY_NAME)}/trials", params={"after": first["cursor"]})
    assert again.json()["trials"] == [] and again.json()["cursor"] == first["cursor"]


def test_cursor_of_another_study_starts_over(client: TestClient) -> None:
    other = client.get(f"/api/studies/{q(NASTY_NAME)}/trials").json()["cursor"]
    answer = client.get("/api/studies/demo/trials", params={"after": other}).json()
    assert answer["reset"] is True and numbers(answer) == [0, 1, 2, 3, 4, 5]


def test_cursor_of_another_storage_starts_over(client: TestClient, tmp_path: Path) -> None:
    # Another database whose study "demo" has the same id (1) and a finished trial 0: a tab
    # open on a dashboard restarted on the same port over it must not keep the old rows.
    url = f"sqlite:///{tmp_path / 'other.db'}"
    storage = SQLStorage(url)
    other = dltune.create_study("demo", storage)
    other.tell(other.ask(), 9.0)
    storage.close()
    with make_client(create_app(url)) as restarted:
        cursor = restarted.get("/api/studies/demo/trials").json()["cursor"]
        again = restarted.get("/api/studies/demo/trials", params={"after": cursor}).json()
        assert again["reset"] is False and numbers(again) == []
    answer = client.get("/api/studies/demo/trials", params={"after": cursor}).json()
    assert answer["reset"] is True and numbers(answer) == [0, 1, 2, 3, 4, 5]


def test_bad_cursor_is_400_naming_after(client: TestClient) -> None:
    answer = client.get("/api/studies/demo/trials", params={"after": "../../etc"})
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "after='../../etc' is not a cursor this dashboard sent; leave it out to get every "
        "trial again"
    )


# -- one trial ---------------------------------------------------------------------------------


def test_trial_detail_has_reports_attrs_and_learning_curve(client: TestClient) -> None:
    detail = strict_json(client.get("/api/studies/demo/trials/0").text)
    assert detail["number"] == 0 and detail["study"] == "demo"
    assert [step for step, _ in detail["intermediate_values"]] == [0, 1, 2]
    assert detail["user_attrs"] == {"note": None}  # NaN
    assert detail["system_attrs"] == {"hparams": {"lr": 0.1, "width": 16}}  # not "internal"
    assert detail["distributions"]["opt"].startswith("CategoricalDistribution(")
    trace = detail["figure"]["data"][0]
    assert trace["type"] == "scatter" and trace["x"] == [0, 1, 2]
    pruned = client.get("/api/studies/demo/trials/4").json()
    assert pruned["system_attrs"]["stopped_by"] == "diverged"
    assert pruned["figure"]["data"][0]["y"] == [None]


def test_unknown_trial_is_404_naming_it(client: TestClient) -> None:
    answer = client.get("/api/studies/demo/trials/99")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "study 'demo' has no trial number 99 (its trials are numbered 0 to 5)",
        "studies": sorted(["demo", "maxi", NASTY_NAME]),
    }
    for bad in ("abc", "-1", "1e3", "１"):
        answer = client.get(f"/api/studies/demo/trials/{q(bad)}")
        assert answer.status_code == 400
        assert answer.json()["error"] == f"trial number {bad!r} is not a whole number >= 0"


# -- plots -------------------------------------------------------------------------------------


def test_plots_are_plotly_figures_cached_until_trials_finish(
    client: TestClient, study_db: str
) -> None:
    first = client.get("/api/studies/demo/plots")
    assert first.status_code == 200
    plots = strict_json(first.text)
    kinds = [p["kind"] for p in plots]
    assert "history" in kinds and "learning_curves" in kinds
    for plot in plots:
        assert set(plot) == {"kind", "title", "notes", "figure"}
        assert isinstance(plot["figure"]["data"], list) and plot["figure"]["data"]
        assert isinstance(plot["figure"]["layout"], dict)
    assert first.headers["x-dltune-finished-trials"] == "5"
    assert first.headers["x-dltune-plots-key"] == "5.6.1"
    assert client.get("/api/studies/demo/plots").content == first.content
    empty = client.get("/api/studies/maxi/plots")
    assert [p["kind"] for p in empty.json()] == ["history"]
    assert empty.headers["x-dltune-finished-trials"] == "0"


# -- CSV -----------------------------------------------------------------------------------------


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_is_an_attachment_with_the_table_filters(client: TestClient) -> None:
    every = client.get("/api/studies/demo/trials.csv")
    assert every.status_code == 200
    assert every.headers["content-type"] == "text/csv; charset=utf-8"
    assert every.headers["content-disposition"].startswith(
        'attachment; filename="demo-trials.csv"'
    )
    assert [r["number"] for r in csv_rows(every.text)] == ["0", "1", "2", "3", "4", "5"]
    done = csv_rows(client.get("/api/studies/demo/trials.csv?state=complete").text)
    assert [r["value"] for r in done] == ["0.5", "0.25", "0.125"]
    pruned = csv_rows(client.get("/api/studies/demo/trials.csv?state=pruned").text)
    assert [r["outcome"] for r in pruned] == ["diverged"]
    texts = csv_rows(client.get("/api/studies/demo/trials.csv", params={"q": "nan  STEP"}).text)
    assert [r["number"] for r in texts] == ["4"]
    bad = client.get("/api/studies/demo/trials.csv?state=done")
    assert bad.status_code == 400
    assert bad.json()["error"] == (
        "state='done' is not one of complete, pruned, fail, running, waiting, diverged, "
        "not_learning (or all)"
    )


def test_csv_of_a_filtered_study_keeps_a_column_per_objective(
    client: TestClient, study_db: str
) -> None:
    storage = SQLStorage(study_db)
    study = dltune.create_study("two", storage, directions=["minimize", "maximize"])
    study.tell(study.ask(), [1.0, 2.0])
    study.tell(study.ask(), state=TrialState.FAIL)
    storage.close()
    failed = client.get("/api/studies/two/trials.csv?state=fail").text
    assert failed.splitlines()[0].startswith("number,state,outcome,value_0,value_1,")
    assert csv_rows(failed)[0]["value_0"] == ""


def test_csv_filename_of_an_html_name_is_safe(client: TestClient) -> None:
    answer = client.get(f"/api/studies/{q(NASTY_NAME)}/trials.csv")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="evil_script_alert_x_script_slash-')
    assert "<" not in disposition and '"x"' not in disposition


# -- not found ---------------------------------------------------------------------------------


def test_unknown_study_is_404_listing_the_studies(client: TestClient) -> None:
    for path in ("/api/studies/nope", "/api/studies/nope/trials", "/api/studies/nope/plots"):
        answer = client.get(path)
        assert answer.status_code == 404
        body = answer.json()
        assert body["error"].startswith("no study named 'nope'; the storage holds [")
        assert body["studies"] == sorted(["demo", "maxi", NASTY_NAME])
    page = client.get("/studies/nope")
    assert page.status_code == 404 and page.text.startswith("404: no study named 'nope'")
    assert client.get("/studies/demo/trials/17").status_code == 404


def test_not_found_lists_at_most_20_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    storage = SQLStorage(url)
    for k in range(25):
        dltune.create_study(f"s{k:02d}", storage)
    storage.close()
    with make_client(create_app(url)) as client:
        body = client.get("/api/studies/zzz/trials").json()
    assert len(body["studies"]) == 20
    assert body["error"].endswith("'s19'] and 5 more")


# -- security ----------------------------------------------------------------------------------

PROBES = (
    "/static/../../etc/passwd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fpyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "//etc/passwd",
    "/studies/..%2f..%2f..",
    "/studies/%2e%2e",
    "/static/",
    "/static/index.html",
    "/static/STYLE.CSS",
    "/static/style.css/",
    "/static/app.js%00.png",
    "/etc/passwd",
)


@pytest.mark.parametrize("path", PROBES)
def test_traversal_and_unlisted_paths_are_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404, answer.text
    assert "root:" not in answer.text and "[project]" not in answer.text


async def _raw_get(app: Any, raw_path: bytes) -> tuple[int, bytes]:
    """One GET with this exact raw path, straight into the ASGI app (no client normalising)."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    path = raw_path.decode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], body


@pytest.mark.parametrize(
    "raw",
    [
        b"/static/../../etc/passwd",
        b"/static/../style.css",
        b"/studies/../../..",
        b"/./static/app.js",
    ],
)
def test_raw_dot_segments_never_reach_a_file(study_db: str, raw: bytes) -> None:
    status, body = asyncio.run(_raw_get(create_app(study_db), raw))
    assert status == 404 and b"root:" not in body


def test_every_response_sends_the_security_headers(client: TestClient) -> None:
    paths = [
        "/",
        "/studies/demo",
        "/studies/demo/trials/0",
        "/static/app.js",
        "/api/studies",
        "/api/studies/demo/trials",
        "/api/studies/demo/trials.csv",
        "/api/studies/nope",
        "/api/studies/demo/trials?after=zz",
        "/static/nope.js",
        "//etc/passwd",
    ]
    answers = [client.get(p) for p in paths] + [client.post("/api/studies")]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert answer.headers["x-frame-options"] == "DENY"
        policy = answer.headers["content-security-policy"]
        assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "base-uri 'none'" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    assert answers[0].headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answers[1].headers["content-security-policy"] == PLOTS_CONTENT_SECURITY_POLICY
    assert answers[2].headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY


def test_pages_are_one_static_shell_without_inline_script_or_user_data(client: TestClient) -> None:
    home = client.get("/").text
    nasty = client.get(f"/studies/{q(NASTY_NAME)}")
    assert nasty.status_code == 200 and nasty.text == home
    assert "<script>" not in home and 'src="/static/app.js"' in home
    assert NASTY_NAME not in home and "evil" not in home


def test_json_carries_names_verbatim_for_the_page_to_write_as_text(client: TestClient) -> None:
    listing = client.get("/api/studies")
    assert json.dumps(NASTY_NAME, ensure_ascii=False) in listing.text  # not HTML-escaped
    rows = client.get(f"/api/studies/{q(NASTY_NAME)}/trials").json()["trials"]
    assert rows[0]["params"] == {"html": "<img src=x onerror=alert(1)>"}
    assert rows[0]["reason"] == "<script>alert('reason')</script>"
    assert client.get(f"/api/studies/{q(NASTY_NAME)}").headers["content-type"] == (
        "application/json"
    )


def test_other_methods_are_refused(client: TestClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, "/api/studies/demo/trials").status_code == 405


def test_foreign_host_header_is_refused(client: TestClient) -> None:
    answer = client.get("/api/studies", headers={"host": "attacker.example:8080"})
    assert answer.status_code == 400
    assert "Host header" in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/studies", headers={"host": "localhost:8080"}).status_code == 200


def test_static_files_are_the_whitelist_with_etags(client: TestClient) -> None:
    assert "plotly.min.js" in static_names() and "index.html" not in static_names()
    for name in static_names():
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        if name.endswith(".js"):
            assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    etag = client.get("/static/style.css").headers["etag"]
    assert client.get("/static/style.css", headers={"if-none-match": etag}).status_code == 304


def test_big_bodies_are_gzipped_only_for_remote_clients(study_db: str) -> None:
    app = create_app(study_db, allowed_hosts=None)
    with make_client(app) as local:
        plain = local.get("/static/plotly.min.js", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(plain.content) > 1_000_000
    with make_client(app, client=("10.1.2.3", 5000)) as remote:
        for _ in range(2):  # the second answer comes from the payload's cached gzip
            answer = remote.get("/static/plotly.min.js", headers={"accept-encoding": "gzip"})
            assert answer.headers["content-encoding"] == "gzip"
            assert answer.headers["vary"] == "Accept-Encoding"
            # httpx decoded the gzip stream the server sent: the same bytes, a third the size.
            assert answer.content == plain.content
            assert int(answer.headers["content-length"]) < len(plain.content) // 3
        small = remote.get("/api/info", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in small.headers  # not worth compressing
        identity = remote.get("/static/plotly.min.js", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in identity.headers


# -- read-only ---------------------------------------------------------------------------------


def test_studies_named_dot_and_dot_dot_are_reachable(client: TestClient, study_db: str) -> None:
    storage = SQLStorage(study_db)
    for k, name in enumerate((".", "..", "~x", "x")):
        study = dltune.create_study(name, storage)
        study.tell(study.ask(), float(k))
    storage.close()
    for k, name in enumerate((".", "..", "~x", "x")):
        segment = q(study_segment(name))
        assert segment.startswith("~") == (name != "x")
        assert client.get(f"/studies/{segment}").status_code == 200
        assert client.get(f"/studies/{segment}/trials/0").status_code == 200
        assert client.get(f"/api/studies/{segment}").json()["name"] == name
        answer = client.get(f"/api/studies/{segment}/trials").json()
        assert answer["study"] == name and answer["trials"][0]["values"] == [float(k)]
        assert client.get(f"/api/studies/{segment}/trials/0").json()["study"] == name
        assert client.get(f"/api/studies/{segment}/plots").status_code == 200
        csv_answer = client.get(f"/api/studies/{segment}/trials.csv")
        assert csv_rows(csv_answer.text)[0]["value"] == str(float(k))


def test_the_public_info_shows_no_path(study_db: str) -> None:
    with make_client(create_app(study_db, is_public=True)) as client:
        assert client.get("/api/info").json()["storage"] == "sqlite:///…/studies.db"


def test_the_storage_is_never_written(study_db: str) -> None:
    path = Path(study_db.removeprefix("sqlite:///"))
    before = (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    app = create_app(study_db)
    with make_client(app) as client:
        for url in (
            "/api/studies",
            "/api/studies/demo/trials",
            "/api/studies/demo/plots",
            "/api/studies/demo/trials/5",
            "/api/studies/demo/trials.csv",
            "/studies/demo",
        ):
            assert client.get(url).status_code == 200
        storage = app.state.reader.storage
        with pytest.raises(ReadOnlyStorageError, match="opened with read_only=True"):
            storage.set_study_attr(1, "k", "v", system=False)
        with pytest.raises(ReadOnlyStorageError, match="opened with read_only=True"):
            storage.set_trial_state_values(6, TrialState.FAIL)
        # Below our own checks, SQLite itself refuses: the connection is mode=ro.
        with pytest.raises(StorageError, match="readonly database"):
            storage._db.run(lambda c: c.exec_driver_sql("CREATE TABLE t (x)"), write=False)
    after = (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    assert after == before


def test_a_missing_sqlite_file_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ValueError, match=f"there is no database file '{missing}'"):
        create_app(f"sqlite:///{missing}")
    assert not os.path.exists(missing)
