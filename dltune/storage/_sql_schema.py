"""The SQL schema (SQLAlchemy Core tables), value codecs and the schema version check.

The tables here describe the schema the queries expect, which is the head revision of the
alembic migrations in ``_migrations/``; the migrations, not these tables, create and change the
database. A new revision changes both, and ``upgrade_storage`` moves a database along.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Connection
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import PrimaryKeyConstraint
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import case
from sqlalchemy import inspect
from sqlalchemy import literal_column
from sqlalchemy import text
from sqlalchemy.sql.elements import ColumnElement

from dltune.exceptions import SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "MIGRATIONS_DIR",
    "decode_float",
    "encode_float",
    "head_revision",
    "is_known_revision",
    "metadata",
    "now_sql",
    "read_revision",
    "run_upgrade",
    "value_rank",
]

MIGRATIONS_DIR = Path(__file__).parent / "_migrations"
_SHIPPED_MIGRATIONS = MIGRATIONS_DIR
#: The head of the shipped migrations, so that opening a storage at the head needs no alembic
#: (importing it and reading every revision costs a third of a second per process). A test
#: checks it against alembic's view of ``_migrations/``.
HEAD_REVISION = "0002"

metadata = MetaData()

#: The ``kind`` column: non-finite floats are kept as a kind with a NULL value, so that +inf,
#: -inf and NaN round-trip exactly on every backend (PostgreSQL and SQLite disagree on them).
#: -0.0 gets a kind too (with value 0.0, so it sorts as zero): SQLite stores integral REALs as
#: integers and would hand back +0.0.
KIND_FINITE = 0
KIND_POS_INF = 1
KIND_NEG_INF = -1
KIND_NAN = 2
KIND_NEG_ZERO = 3

studies = Table(
    "studies",
    metadata,
    Column("study_id", Integer, primary_key=True, autoincrement=True),
    # Unique on SQLite; on PostgreSQL through a unique index on md5(study_name), since a btree
    # cannot hold a 10 kB name (see revision 0001).
    Column("study_name", Text, nullable=False),
    Column("directions", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused: per-process caches are keyed by them
)

study_attrs = Table(
    "study_attrs",
    metadata,
    Column(
        "study_id", Integer, ForeignKey("studies.study_id", ondelete="CASCADE"), nullable=False
    ),
    Column("is_system", Boolean, nullable=False),
    Column("key", Text, nullable=False),
    Column("value_json", Text, nullable=False),
    PrimaryKeyConstraint("study_id", "is_system", "key"),
)

study_params = Table(
    "study_params",
    metadata,
    Column(
        "study_id", Integer, ForeignKey("studies.study_id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", Text, nullable=False),
    Column("distribution_json", Text, nullable=False),
    PrimaryKeyConstraint("study_id", "name"),
)

trials = Table(
    "trials",
    metadata,
    Column("trial_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "study_id", Integer, ForeignKey("studies.study_id", ondelete="CASCADE"), nullable=False
    ),
    Column("number", Integer, nullable=False),
    Column("state", String(8), nullable=False),
    Column("datetime_start", Float),
    Column("datetime_complete", Float),
    # Database-clock time after which a RUNNING trial is stale: its worker sets it to now +
    # its own grace period at every heartbeat, so reapers never apply their own grace.
    Column("stale_after", Float),
    Column("retry_of", Integer),
    # How many more times this trial is retried if it goes stale (set when it is claimed).
    Column("retries_left", SmallInteger),
    UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
    CheckConstraint(
        "state IN ('WAITING', 'RUNNING', 'COMPLETE', 'PRUNED', 'FAIL')", name="ck_trials_state"
    ),
    # retry_of makes the budget count in claim_trial an index-only scan.
    Index("ix_trials_study_state", "study_id", "state", "retry_of"),
    sqlite_autoincrement=True,
)


def value_rank(kind: ColumnElement[int]) -> ColumnElement[int]:
    """Where a ``kind`` sorts among objective values: -inf 0, finite 1, +inf 2, NaN 3.

    Ascending ``(rank, value)`` is the order of minimization, descending that of maximization
    (infinities have a NULL value, alone in their rank). Revision 0002 indexes this very
    expression; a query must spell it the same way to use the index.
    """

    # Literal constants, not bound parameters: an index on an expression serves only queries
    # whose expression is the same, constants included.
    def const(value: int) -> ColumnElement[int]:
        return literal_column(str(value), SmallInteger)

    return case(
        (kind == const(KIND_NEG_INF), const(0)),
        (kind == const(KIND_POS_INF), const(2)),
        (kind == const(KIND_NAN), const(3)),
        else_=const(1),
    )


trial_values = Table(
    "trial_values",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.trial_id", ondelete="CASCADE"), nullable=False),
    # The trial's study (revision 0002), so that the best value is one index lookup.
    Column(
        "study_id", Integer, ForeignKey("studies.study_id", ondelete="CASCADE"), nullable=False
    ),
    Column("objective", Integer, nullable=False),
    Column("value", Float),
    Column("kind", SmallInteger, nullable=False),
    PrimaryKeyConstraint("trial_id", "objective"),
)
Index(
    "ix_trial_values_best",
    trial_values.c.study_id,
    trial_values.c.objective,
    value_rank(trial_values.c.kind),
    trial_values.c.value,
)

trial_params = Table(
    "trial_params",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.trial_id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("value", Float, nullable=False),
    Column("distribution_json", Text, nullable=False),
    PrimaryKeyConstraint("trial_id", "name"),
)

trial_intermediate_values = Table(
    "trial_intermediate_values",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.trial_id", ondelete="CASCADE"), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float),
    Column("kind", SmallInteger, nullable=False),
    PrimaryKeyConstraint("trial_id", "step"),
)

trial_attrs = Table(
    "trial_attrs",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.trial_id", ondelete="CASCADE"), nullable=False),
    Column("is_system", Boolean, nullable=False),
    Column("key", Text, nullable=False),
    Column("value_json", Text, nullable=False),
    PrimaryKeyConstraint("trial_id", "is_system", "key"),
)

#: A finished trial in one row (revision 0002), written in the transaction that finishes it:
#: reading a study then costs one row per trial instead of one per value. Finished trials never
#: change, and the child tables above stay the record (SQL queries such as the best trial use
#: them). See ``_sql_snapshots`` for the encoding; ``format`` names it.
trial_snapshots = Table(
    "trial_snapshots",
    metadata,
    Column(
        "trial_id",
        Integer,
        ForeignKey("trials.trial_id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("format", SmallInteger, nullable=False),
    Column("objective_values", LargeBinary),
    Column("param_names", Text),
    Column("param_values", LargeBinary),
    Column("param_distributions", Text),
    Column("steps", LargeBinary),
    Column("step_values", LargeBinary),
    Column("user_attrs", Text),
    Column("system_attrs", Text),
)

# -- values ----------------------------------------------------------------------------------

_DECODE = {KIND_POS_INF: math.inf, KIND_NEG_INF: -math.inf, KIND_NAN: math.nan}


def encode_float(x: float) -> tuple[float | None, int]:
    """Split a float into the ``(value, kind)`` columns."""
    x = float(x)
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return 0.0, KIND_NEG_ZERO
    if math.isfinite(x):
        return x, KIND_FINITE
    if math.isnan(x):
        return None, KIND_NAN
    return None, KIND_POS_INF if x > 0 else KIND_NEG_INF


def decode_float(value: float | None, kind: int) -> float:
    """Join the ``(value, kind)`` columns back into a float."""
    if kind == KIND_FINITE and value is not None:
        return float(value)
    if kind == KIND_NEG_ZERO:
        return -0.0
    return _DECODE[kind]


def dumps_directions(names: list[str]) -> str:
    """The ``studies.directions`` column."""
    return json.dumps(names)


def now_sql(dialect_name: str) -> str:
    """The database clock as float epoch seconds, as an SQL expression."""
    if dialect_name == "sqlite":
        return "((julianday('now') - 2440587.5) * 86400.0)"
    return "extract(epoch from clock_timestamp())::double precision"


# -- schema versions -------------------------------------------------------------------------


def _alembic_config(connection: Connection | None = None) -> Config:
    """An alembic configuration built in code: no alembic.ini is needed at runtime."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The schema revision this version of dltune writes."""
    if MIGRATIONS_DIR == _SHIPPED_MIGRATIONS:
        return HEAD_REVISION
    head = _script().get_current_head()  # a test's migrations directory
    assert head is not None, "the migrations directory has no head revision"
    return head


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this dltune's migrations (older or head)."""
    from alembic.util import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def read_revision(connection: Connection) -> str | None:
    """The revision stamped in the database, or ``None`` for a database without dltune tables.

    Raises:
        SchemaVersionError: If the database holds dltune tables but no revision stamp.
    """
    names = set(inspect(connection).get_table_names())
    if "alembic_version" not in names:
        if "trials" in names or "studies" in names:
            raise SchemaVersionError(
                "the database holds a 'studies' or 'trials' table but no 'alembic_version' "
                "table, so it was not created by dltune; use an empty database"
            )
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(rows) > 1:
        raise SchemaVersionError(
            f"the database has several schema revisions {[r[0] for r in rows]!r}; "
            "it was not created by dltune"
        )
    return str(rows[0][0]) if rows else None


def run_upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations to ``revision`` inside the caller's (locked) transaction."""
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def json_value(text_value: str) -> Any:
    """Parse an attribute column."""
    return json.loads(text_value)
