"""Make the committed schema-upgrade fixtures: small SQLite storages at a named revision.

Usage (from the repository root)::

    .venv/bin/python tests/reliability/make_schema_fixtures.py REVISION [REVISION ...]

For each REVISION it writes ``tests/reliability/fixtures/schema_<REVISION>.sqlite3`` (not
``.db``: .gitignore ignores those) and ``schema_<REVISION>.json``, the public view of its
studies that ``test_schema_upgrade.py`` expects to read after upgrading the file to any later
schema.

How: the content is made through dltune's public API in a scratch storage at this dltune's
head; a new file is brought to REVISION by the migrations (``alembic upgrade REVISION``, not
head) and every table's rows are copied into it column by column. That is exact when REVISION
is the head or the revisions after it only add indexes or tables; a column that REVISION has
and the head lacks stops the script. So make a revision's fixture before (or when) adding the
revision after it, and commit both files. The content covers every trial state, every
distribution, non-finite and negative-zero floats, user and system attributes of studies and
trials, live and stale heartbeats, and a retry.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import MetaData
from sqlalchemy import column
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy.sql.expression import TableClause

import dltune
from dltune import Trial
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.space import distribution_to_json
from dltune.storage import BaseStorage
from dltune.storage import SQLStorage
from dltune.storage._sql_engine import Database
from dltune.storage._sql_engine import parse_url
from dltune.storage._sql_schema import is_known_revision
from dltune.storage._sql_schema import run_upgrade
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

__all__ = ["FIXTURES", "copy_rows", "make_fixture", "public_view", "table_rows"]

FIXTURES = Path(__file__).parent / "fixtures"
#: Grace periods of the two RUNNING trials: one alive for a century, one long dead.
LIVE_GRACE = 100 * 365 * 86400.0
DEAD_GRACE = 0.05
DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-5, 1.0, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "momentum": FloatDistribution(0.5, 0.99, step=0.01),
    "layers": IntDistribution(1, 8),
    "width": IntDistribution(16, 1024, log=True),
    "batch": IntDistribution(32, 256, step=32),
    "choice": CategoricalDistribution((None, True, "adam", 3, 0.5)),
}
PARAMS: dict[str, Any] = {
    "lr": 1e-3,
    "dropout": 0.0,
    "momentum": 0.9,
    "layers": 3,
    "width": 64,
    "batch": 128,
    "choice": None,
}
STRANGE_NAME = "ünïcødé ✓ 'quoted' \"double\" <b>" + "long " * 60


def _suggest_all(trial: Trial) -> None:
    for name, dist in DISTRIBUTIONS.items():
        if isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, CategoricalDistribution):
            trial.suggest_categorical(name, list(dist.choices))


def _single_objective(url: str) -> None:
    storage = SQLStorage(url, max_retries=1)
    study = dltune.create_study(storage=storage, study_name="single", seed=7)
    study.set_user_attr("owner", {"name": "fixture", "tags": ["a", "b"], "n": 3})
    study.set_system_attr("dataset", "digits")
    for value, choice in ((0.25, True), (math.inf, "adam"), (-0.0, 3)):
        study.add_trial(
            FrozenTrial(
                -1,
                -1,
                TrialState.COMPLETE,
                [value],
                params={**PARAMS, "choice": choice},
                distributions=dict(DISTRIBUTIONS),
                intermediate_values={0: 1.0, 1: math.nan, 2: math.inf, 3: -math.inf, 4: -0.0},
                user_attrs={"note": "x" * 300, "nested": {"a": [1, 2.5, None, True]}},
                system_attrs={"hparams": {"lr": 1e-3, "width": 64}},
            )
        )
    pruned = study.ask()
    _suggest_all(pruned)
    for step, loss in enumerate((2.0, math.nan)):
        pruned.report(loss, step)
    pruned.set_system_attr("stopped_by", "diverged")
    study.tell(pruned, state=TrialState.PRUNED, reason="diverged at epoch 1 step 3: loss=nan")
    failed = study.ask()
    _suggest_all(failed)
    failed.set_user_attr("nan", math.nan)
    study.tell(failed, state=TrialState.FAIL, reason="RuntimeError: CUDA out of memory")
    study.enqueue_trial({"lr": 0.01, "layers": 2}, user_attrs={"why": "baseline"})
    storage.close()


def _heartbeats(url: str) -> None:
    """A RUNNING trial alive for a century, and a dead one whose retry is waiting."""
    live = SQLStorage(url, grace_seconds=LIVE_GRACE)
    study_id = live.get_study_id_from_name("single")
    claimed = live.claim_trial(study_id, worker="host-a:101")  # takes the enqueued trial
    assert claimed is not None and claimed.number == 5
    running = live.claim_trial(study_id, worker="host-a:102")
    assert running is not None
    live.set_trial_param(running.trial_id, "lr", 0.5, DISTRIBUTIONS["lr"])
    live.set_trial_intermediate_value(running.trial_id, 0, 0.75)
    live.record_heartbeat(running.trial_id)
    live.close()
    dead = SQLStorage(url, heartbeat_seconds=0.01, grace_seconds=DEAD_GRACE, max_retries=2)
    stale = dead.claim_trial(study_id, worker="host-b:201")
    assert stale is not None
    dead.set_trial_param(stale.trial_id, "layers", 4.0, DISTRIBUTIONS["layers"])
    time.sleep(2 * DEAD_GRACE)
    assert dead.fail_stale_trials(study_id) == [stale.number]  # FAIL, and a WAITING retry
    ghost = dead.claim_trial(study_id, worker="host-b:202")  # the retry; its worker dies too
    assert ghost is not None and ghost.system_attrs.get("retry_of") == stale.number
    dead.close()


def _other_studies(url: str) -> None:
    storage = SQLStorage(url)
    multi = dltune.create_study(
        storage=storage, study_name="multi", directions=["minimize", "maximize"], seed=3
    )
    for values in ([1.0, -math.inf], [0.5, 2.0], [-0.0, 1e308]):
        trial = multi.ask()
        trial.suggest_float("x", -1.0, 1.0)
        multi.tell(trial, values)
    multi.tell(multi.ask(), state=TrialState.FAIL, reason="ValueError: bad")
    empty = dltune.create_study(storage=storage, study_name=STRANGE_NAME, direction="maximize")
    empty.set_user_attr("empty", [])
    storage.close()


def build(url: str) -> None:
    """The fixture's content, made through the public API in a storage at the head."""
    _single_objective(url)
    _heartbeats(url)
    _other_studies(url)


# -- the view the test compares ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-safe and comparable: floats as their repr ('nan', '-0.0', 'inf'), recursively."""
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _trial_view(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "trial_id": trial.trial_id,
        "state": trial.state.name,
        "values": _plain(trial.values),
        "params": _plain(trial.params),
        "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
        "intermediate_values": _plain({str(k): v for k, v in trial.intermediate_values.items()}),
        "user_attrs": _plain(trial.user_attrs),
        "system_attrs": _plain(trial.system_attrs),
        "datetime_start": _plain(
            None if trial.datetime_start is None else trial.datetime_start.timestamp()
        ),
        "datetime_complete": _plain(
            None if trial.datetime_complete is None else trial.datetime_complete.timestamp()
        ),
    }


def public_view(storage: BaseStorage) -> list[dict[str, Any]]:
    """Everything a user can read of every study, as JSON-safe data."""
    out = []
    for study in sorted(storage.get_all_studies(), key=lambda s: s.study_id):
        trials = storage.get_all_trials(study.study_id)
        out.append(
            {
                "study_id": study.study_id,
                "name": study.study_name,
                "directions": [d.name for d in study.directions],
                "user_attrs": _plain(storage.get_study_attrs(study.study_id, system=False)),
                "system_attrs": _plain(storage.get_study_attrs(study.study_id, system=True)),
                "trials": [_trial_view(t) for t in trials],
            }
        )
    return out


def _tables(connection: Connection) -> dict[str, TableClause]:
    """Each dltune table with its columns, read with the inspector (reflecting whole tables
    warns about expression indexes, which these rows do not need)."""
    inspector = inspect(connection)
    return {
        name: table(name, *(column(c["name"]) for c in inspector.get_columns(name)))
        for name in sorted(inspector.get_table_names())
        if name != "alembic_version"
    }


def table_rows(
    connection: Connection, columns: dict[str, list[str]] | None = None
) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every dltune table (only ``columns[table]`` if given), sorted, each column
    as ``'name=repr(value)'``."""
    out = {}
    for name, source in _tables(connection).items():
        if columns is not None and name not in columns:
            continue
        names = sorted(source.c.keys() if columns is None else columns[name])
        rows = connection.execute(select(*(source.c[n] for n in names))).all()
        out[name] = sorted(
            tuple(f"{n}={_canonical(v)!r}" for n, v in zip(names, row, strict=True))
            for row in rows
        )
    return out


def _canonical(value: Any) -> Any:
    # Backends disagree on how numbers come back (SQLite: integral REALs as ints, booleans as
    # 0/1; PostgreSQL: bool): compare every number, boolean included, as a float.
    if isinstance(value, bool | int | float):
        return float(value)
    return value


def copy_rows(source: Connection, target: Connection) -> None:
    """Copy every dltune table's rows into the same tables of ``target`` (an older schema)."""
    have = _tables(source)
    want = MetaData()
    want.reflect(target)  # an older schema: whole tables, so that inserts know their types
    for table_ in want.sorted_tables:
        if table_.name == "alembic_version":
            continue
        columns = [c.name for c in table_.columns]
        missing = [c for c in columns if c not in have[table_.name].c]
        if missing:
            raise SystemExit(
                f"table {table_.name!r} has columns {missing!r} that the source lacks; write "
                "this revision's rows by hand"
            )
        source_table = have[table_.name]
        rows = source.execute(select(*(source_table.c[c] for c in columns))).mappings().all()
        if rows:
            target.execute(table_.insert(), [dict(row) for row in rows])


def make_fixture(revision: str, directory: Path = FIXTURES) -> tuple[Path, Path]:
    """Write ``schema_<revision>.sqlite3`` and ``.json`` into ``directory``; their paths."""
    if not is_known_revision(revision):
        raise SystemExit(f"revision {revision!r} is not one of this dltune's migrations")
    directory.mkdir(parents=True, exist_ok=True)
    db_path = directory / f"schema_{revision}.sqlite3"
    json_path = directory / f"schema_{revision}.json"
    db_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source_url = f"sqlite:///{Path(scratch) / 'head.db'}"
        build(source_url)
        reader = SQLStorage(source_url, read_only=True)
        view = public_view(reader)
        reader.close()
        target = Database(parse_url(f"sqlite:///{db_path}"), read_only=False, engine_kwargs={})
        target.run(lambda conn: run_upgrade(conn, revision), write=True)
        engine = create_engine(source_url)
        with engine.connect() as source:
            target.run(lambda conn: copy_rows(source, conn), write=True)
        engine.dispose()
        target.dispose()
    plain = sqlite3.connect(db_path, isolation_level=None)
    plain.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    plain.execute("VACUUM")
    plain.close()
    snapshot = {"revision": revision, "studies": view}
    json_path.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return db_path, json_path


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for revision in argv:
        for path in make_fixture(revision):
            print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
