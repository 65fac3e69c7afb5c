"""Bulk-writing the scale study into dltune's and Optuna's tables, and checking the result.

Rows go in through the DBAPI inside one SQLAlchemy transaction: ``executemany`` on SQLite,
``COPY ... FROM STDIN`` on PostgreSQL. Each tool's study is created through its own API first
(so the schema, the study row and its directions are the tool's own); only trials are bulk
inserted.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks._scale_data import PARAMS
from benchmarks._scale_data import ScaleStudy
from benchmarks._scale_data import attr_rows
from benchmarks._scale_data import distributions
from benchmarks._scale_data import fields
from benchmarks._scale_data import mismatches
from benchmarks._scale_data import param_rows
from benchmarks._scale_data import report_arrays
from benchmarks._scale_data import sample_numbers
from benchmarks._scale_data import template
from dltune.storage._sql_snapshots import SNAPSHOT_COLUMNS


def _insert(conn: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Append rows to a table: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        # COPY's text format, built a column at a time (psycopg's write_row costs ~4 us a row)
        texts = [list(map(_copy_formatter(col), col)) for col in zip(*rows, strict=True)]
        lines = list(map("\t".join, zip(*texts, strict=True)))
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for i in range(0, len(lines), 20_000):
                copy.write("\n".join(lines[i : i + 20_000]) + "\n")
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_float(value: float | None) -> str:
    return "\\N" if value is None else repr(value)


@functools.lru_cache(maxsize=65536)  # names and distributions repeat a million times
def _copy_text(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def _copy_bytes(value: bytes | None) -> str:
    return "\\N" if value is None else "\\\\x" + value.hex()


def _copy_other(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _copy_formatter(column: Sequence[Any]) -> Any:
    """How to write a column's values in COPY's text format."""
    kinds = {type(value) for value in column} - {type(None)}
    if kinds <= {int}:
        return str if None not in column else _copy_other
    if kinds <= {float}:
        return _copy_float
    if kinds <= {str}:
        return _copy_text
    if kinds <= {bytes}:
        return _copy_bytes
    return _copy_other


def _bulk_mode(conn: Any) -> None:
    """Make the load fast: on SQLite a 1 GB page cache (rows arrive in time order, not key
    order, and index inserts thrash the default 2 MB cache); on PostgreSQL, for a superuser,
    no foreign-key trigger per row (the rows are consistent by construction)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size = -1000000")
    elif conn.exec_driver_sql(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).scalar():
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")


def _first_id(conn: Any, table: str, column: str) -> int:
    return (
        int(conn.exec_driver_sql(f"SELECT COALESCE(MAX({column}), 0) FROM {table}").scalar()) + 1
    )


def _fix_sequence(conn: Any, table: str, column: str) -> None:
    """After explicit ids, move PostgreSQL's sequence past them (SQLite does it itself)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"(SELECT MAX({column}) FROM {table}))"
        )


def _report_rows(
    study: ScaleStudy, first_id: int, encode: Any
) -> list[tuple[int, int, float | None, Any]]:
    """``(trial_id, step, value, kind)`` of every report in write order; ``encode(nan)`` gives
    the ``(value, kind)`` of a NaN report, finite ones get ``encode(1.0)``'s kind."""
    trial_idx, step, value, _ = report_arrays(study)
    values: list[float | None] = value.tolist()
    finite_kind = encode(1.0)[1]
    kinds = [finite_kind] * len(values)
    for k in np.flatnonzero(~np.isfinite(value)).tolist():
        values[k], kinds[k] = encode(values[k])
    ids = (trial_idx + first_id).tolist()
    return list(zip(ids, step.tolist(), values, kinds, strict=True))


# -- dltune ----------------------------------------------------------------------------------


def write_dltune(url: str, study: ScaleStudy, name: str) -> float:
    """Create study ``name`` through dltune's API and bulk-insert the trials; seconds taken."""
    from sqlalchemy import create_engine

    from dltune.space import distribution_to_json
    from dltune.storage import SQLStorage
    from dltune.storage._sql_schema import encode_float
    from dltune.trial import StudyDirection

    started = time.perf_counter()
    storage = SQLStorage(url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], name)
    storage.close()
    dists = distributions()
    texts = [distribution_to_json(dists[p[0]]) for p in PARAMS]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _bulk_mode(conn)
            first = _first_id(conn, "trials", "trial_id")
            rows = [
                (first + i, study_id, i, study.states[i], study.start[i], study.complete[i])
                for i in range(study.n_trials)
            ]
            _insert(conn, "trials", _TRIAL_COLUMNS, rows)
            _fix_sequence(conn, "trials", "trial_id")
            sp = [(study_id, p[0], text) for p, text in zip(PARAMS, texts, strict=True)]
            _insert(conn, "study_params", ("study_id", "name", "distribution_json"), sp)
            _insert(conn, "trial_params", _PARAM_COLUMNS, param_rows(study, first, texts))
            _insert(conn, "trial_intermediate_values", _REPORT_COLUMNS,
                    _report_rows(study, first, encode_float))  # fmt: skip
            values = [
                (first + i, study_id, 0, *encode_float(v))
                for i in np.argsort(study.complete, kind="stable").tolist()
                if (v := study.value(i)) is not None
            ]
            columns = ("trial_id", "study_id", "objective", "value", "kind")
            _insert(conn, "trial_values", columns, values)
            attrs = [(first + i, s, k, v) for i, s, k, v, _ in attr_rows(study)]
            _insert(conn, "trial_attrs", ("trial_id", "is_system", "key", "value_json"), attrs)
            _insert(conn, "trial_snapshots", _SNAPSHOT_COLUMNS, snapshot_rows(study, first, texts))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def snapshot_rows(study: ScaleStudy, first_id: int, texts: list[str]) -> list[tuple[Any, ...]]:
    """The ``trial_snapshots`` row of each trial (all are finished), as dltune's format 1 packs
    them (the twin check compares them with what the API wrote), in the order trials finished.
    """
    from dltune.storage._sql_snapshots import FORMAT

    names = [p[0] for p in PARAMS]
    order = sorted(range(len(names)), key=lambda j: names[j])  # snapshots sort by name
    attrs: dict[int, list[tuple[bool, str, str]]] = {}
    for i, system, key, text, _ in attr_rows(study):
        attrs.setdefault(i, []).append((system, key, text))
    internal = study.internal[:, order].astype("<f8")
    present = ~np.isnan(internal)
    name_texts: dict[bytes, str] = {}
    out = []
    for i in np.argsort(study.complete, kind="stable").tolist():
        value = study.value(i)
        key = present[i].tobytes()
        if key not in name_texts:
            kept = [names[j] for j, p in zip(order, present[i], strict=True) if p]
            name_texts[key] = json.dumps(kept)
        n = int(study.n_run[i])
        by_kind = {True: [], False: []}  # type: dict[bool, list[tuple[str, str]]]
        for system, k, text in attrs.get(i, []):
            by_kind[system].append((k, text))
        out.append(
            (
                first_id + i,
                FORMAT,
                None if value is None else np.array([value], "<f8").tobytes(),
                name_texts[key],
                internal[i][present[i]].tobytes(),
                None,  # every parameter has its registered distribution
                np.arange(n, dtype="<i8").tobytes(),
                study.curves[i, :n].astype("<f8").tobytes(),
                _object(by_kind[False]),
                _object(by_kind[True]),
            )
        )
    return out


def _object(items: list[tuple[str, str]]) -> str | None:
    """A JSON object from keys and the JSON text of each value, keys sorted."""
    if not items:
        return None
    return "{" + ",".join(f"{json.dumps(k)}:{text}" for k, text in sorted(items)) + "}"


_SNAPSHOT_COLUMNS = ("trial_id", *SNAPSHOT_COLUMNS)  # the columns dltune itself writes
_TRIAL_COLUMNS = ("trial_id", "study_id", "number", "state", "datetime_start", "datetime_complete")
_PARAM_COLUMNS = ("trial_id", "name", "value", "distribution_json")
_REPORT_COLUMNS = ("trial_id", "step", "value", "kind")
_CHILD_TABLES = (
    "trial_params",
    "trial_intermediate_values",
    "trial_values",
    "trial_attrs",
    "trial_snapshots",
)


def _dltune_rows(conn: Any, study_id: int, numbers: list[int]) -> dict[int, dict[str, Any]]:
    """The stored rows of some trials of a study, by number, ids left out."""
    out: dict[int, dict[str, Any]] = {}
    wanted = ", ".join(str(int(n)) for n in numbers)
    trial_rows = conn.exec_driver_sql(
        "SELECT trial_id, number, state, datetime_start, datetime_complete, stale_after, "
        f"retry_of, retries_left FROM trials WHERE study_id = {int(study_id)} "
        f"AND number IN ({wanted})"
    ).all()
    number_of = {}
    for trial_id, number, *rest in trial_rows:
        number_of[trial_id] = number
        out[number] = {"trials": list(rest), **{t: [] for t in _CHILD_TABLES}}
    ids = ", ".join(str(int(i)) for i in number_of)
    for table in _CHILD_TABLES:
        columns = "*" if table != "trial_values" else "trial_id, objective, value, kind"
        for trial_id, *rest in conn.exec_driver_sql(
            f"SELECT {columns} FROM {table} WHERE trial_id IN ({ids})"
        ).all():
            out[number_of[trial_id]][table].append(tuple(rest))
    for rows in out.values():
        for table in _CHILD_TABLES:
            rows[table].sort(key=repr)
    return out


def _trial_ids(url: str, study_id: int, numbers: list[int]) -> dict[int, int]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT number, trial_id FROM trials WHERE study_id = {int(study_id)}"
            ).all()
    finally:
        engine.dispose()
    wanted = set(numbers)
    return {n: i for n, i in rows if n in wanted}


def check_dltune_twins(url: str, study: ScaleStudy, name: str) -> list[str]:
    """Write a sample of trials through dltune's API into a twin study; compare both copies
    row for row, and read back through the public API (against the templates too).

    Returns:
        One line per difference (none when the bulk insert is faithful).
    """
    from sqlalchemy import create_engine

    from dltune.exceptions import DuplicatedStudyError
    from dltune.storage import SQLStorage
    from dltune.trial import StudyDirection

    numbers = sample_numbers(study)
    templates = {i: template(study, i) for i in numbers}
    storage = SQLStorage(url)
    try:
        try:
            twin_id = storage.create_new_study([StudyDirection.MINIMIZE], f"{name}-twins")
        except DuplicatedStudyError:  # checked before: the twins are there
            twin_id = storage.get_study_id_from_name(f"{name}-twins")
        else:
            for i in numbers:
                storage.create_new_trial(twin_id, templates[i])
        bulk_id = storage.get_study_id_from_name(name)
        twins = {numbers[t.number]: t for t in storage.get_all_trials(twin_id)}
        bulk_ids = _trial_ids(url, bulk_id, numbers)
        bulk = {i: storage.get_trial(bulk_ids[i]) for i in numbers}
    finally:
        storage.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            twin_rows = _dltune_rows(conn, twin_id, list(range(len(numbers))))
            bulk_rows = _dltune_rows(conn, bulk_id, numbers)
            sp = "SELECT name, distribution_json FROM study_params WHERE study_id = {}"
            twin_sp = sorted(conn.exec_driver_sql(sp.format(twin_id)).all())
            bulk_sp = sorted(conn.exec_driver_sql(sp.format(bulk_id)).all())
    finally:
        engine.dispose()
    out = mismatches("rows", ((i, twin_rows[k]) for k, i in enumerate(numbers)), bulk_rows)
    out += mismatches("API read", ((i, fields(twins[i])) for i in numbers),
                      {i: fields(t) for i, t in bulk.items()})  # fmt: skip
    out += mismatches("template", ((i, fields(templates[i])) for i in numbers),
                      {i: fields(t) for i, t in bulk.items()})  # fmt: skip
    if [tuple(r) for r in twin_sp] != [tuple(r) for r in bulk_sp]:
        out.append(f"study_params: {twin_sp!r} != {bulk_sp!r}"[:400])
    return out


# -- Optuna ----------------------------------------------------------------------------------


def optuna_distributions() -> dict[str, Any]:
    """Optuna's twins of :func:`distributions`."""
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for name, kind, low, high, log, step in PARAMS:
        if kind == "cat":
            out[name] = od.CategoricalDistribution(list(low))
        elif kind == "float":
            out[name] = od.FloatDistribution(low, high, log=log, step=step)
        else:
            out[name] = od.IntDistribution(low, high, log=log, step=step)
    return out


def _optuna_encode(value: float | None) -> tuple[float | None, str]:
    if value is None or math.isnan(value):
        return None, "NAN"
    if math.isinf(value):
        return None, "INF_POS" if value > 0 else "INF_NEG"
    return value, "FINITE"


def _stamp(seconds: float) -> str:
    """How SQLAlchemy's DateTime stores a naive local time (SQLite) / PostgreSQL's text."""
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_optuna(url: str, study: ScaleStudy, name: str) -> float:
    """Create study ``name`` through Optuna's API and bulk-insert the trials; seconds taken."""
    import optuna
    from optuna.distributions import distribution_to_json
    from sqlalchemy import create_engine

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    created = optuna.create_study(storage=url, study_name=name, direction="minimize")
    study_id = created._study_id
    close_optuna(created)
    dists = optuna_distributions()
    texts = [distribution_to_json(dists[p[0]]) for p in PARAMS]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _bulk_mode(conn)
            first = _first_id(conn, "trials", "trial_id")
            trial_rows = [
                (first + i, i, study_id, study.states[i], _stamp(study.start[i]),
                 _stamp(study.complete[i]))
                for i in range(study.n_trials)
            ]  # fmt: skip
            _insert(conn, "trials", _OPTUNA_TRIAL_COLUMNS, trial_rows)
            _fix_sequence(conn, "trials", "trial_id")
            columns = ("trial_id", "param_name", "param_value", "distribution_json")
            _insert(conn, "trial_params", columns, param_rows(study, first, texts))
            columns = ("trial_id", "step", "intermediate_value", "intermediate_value_type")
            _insert(conn, "trial_intermediate_values", columns,
                    _report_rows(study, first, _optuna_encode))  # fmt: skip
            values = [
                (first + i, 0, *_optuna_encode(v))
                for i in np.argsort(study.complete, kind="stable").tolist()
                if (v := study.value(i)) is not None
            ]
            columns = ("trial_id", "objective", "value", "value_type")
            _insert(conn, "trial_values", columns, values)
            for system, table in ((False, "trial_user_attributes"),
                                  (True, "trial_system_attributes")):  # fmt: skip
                attrs = [(first + i, k, v) for i, s, k, v, _ in attr_rows(study) if s is system]
                _insert(conn, table, ("trial_id", "key", "value_json"), attrs)
    finally:
        engine.dispose()
    return time.perf_counter() - started


_OPTUNA_TRIAL_COLUMNS = (
    "trial_id",
    "number",
    "study_id",
    "state",
    "datetime_start",
    "datetime_complete",
)


def _to_optuna_trial(trial: Any) -> Any:
    import optuna

    dists = optuna_distributions()
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState[trial.state.name],
        values=trial.values,
        params=dict(trial.params),
        distributions={k: dists[k] for k in trial.params},
        user_attrs=dict(trial.user_attrs),
        system_attrs=dict(trial.system_attrs),
        intermediate_values=dict(trial.intermediate_values),
    )


def check_optuna_twins(url: str, study: ScaleStudy, name: str) -> list[str]:
    """Add a sample of trials through Optuna's API to a twin study; compare what Optuna reads
    back of both copies (times left out: ``add_trial`` stamps its own)."""
    import optuna

    numbers = sample_numbers(study)
    twin = optuna.create_study(storage=url, study_name=f"{name}-twins", load_if_exists=True)
    bulk = optuna.load_study(study_name=name, storage=url)
    try:
        if not twin.trials:
            for i in numbers:
                twin.add_trial(_to_optuna_trial(template(study, i)))
        storage, sid = bulk._storage, bulk._study_id
        got = {
            i: _untimed(storage.get_trial(storage.get_trial_id_from_study_id_trial_number(sid, i)))
            for i in numbers
        }
        want = [(i, _untimed(t)) for i, t in zip(numbers, twin.trials, strict=True)]
    finally:
        close_optuna(twin)
        close_optuna(bulk)
    return mismatches("Optuna API read", want, got)


def close_optuna(study: Any) -> None:
    """Close the connections of an Optuna study's RDB storage (it never does)."""
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def _untimed(trial: Any) -> dict[str, Any]:
    out = fields(trial)
    out["distributions"] = {k: json.dumps(repr(v)) for k, v in trial.distributions.items()}
    del out["datetime_start"], out["datetime_complete"]
    return out
