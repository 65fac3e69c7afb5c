"""The initial dltune schema.

The tables are spelled out here rather than taken from ``_sql_schema.metadata`` on purpose: a
revision is a frozen snapshot, and later changes to the tables belong in later revisions.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _fk_study() -> sa.Column[int]:
    return sa.Column(
        "study_id",
        sa.Integer,
        sa.ForeignKey("studies.study_id", ondelete="CASCADE"),
        nullable=False,
    )


def _fk_trial() -> sa.Column[int]:
    return sa.Column(
        "trial_id",
        sa.Integer,
        sa.ForeignKey("trials.trial_id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    is_postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "studies",
        sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study_name", sa.Text, nullable=False),
        sa.Column("directions", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        *([] if is_postgresql else [sa.UniqueConstraint("study_name", name="uq_studies_name")]),
        sqlite_autoincrement=True,
    )
    if is_postgresql:
        # A btree entry holds at most ~2.7 kB, and study names may be longer: index a digest.
        op.create_index(
            "uq_studies_name_md5", "studies", [sa.text("md5(study_name)")], unique=True
        )
    op.create_table(
        "study_attrs",
        _fk_study(),
        sa.Column("is_system", sa.Boolean, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("study_id", "is_system", "key"),
    )
    op.create_table(
        "study_params",
        _fk_study(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("distribution_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("study_id", "name"),
    )
    op.create_table(
        "trials",
        sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=True),
        _fk_study(),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("datetime_start", sa.Float),
        sa.Column("datetime_complete", sa.Float),
        sa.Column("stale_after", sa.Float),
        sa.Column("retry_of", sa.Integer),
        sa.Column("retries_left", sa.SmallInteger),
        sa.UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        sa.CheckConstraint(
            "state IN ('WAITING', 'RUNNING', 'COMPLETE', 'PRUNED', 'FAIL')",
            name="ck_trials_state",
        ),
        sqlite_autoincrement=True,
    )
    # retry_of makes the budget count in claim_trial an index-only scan.
    op.create_index("ix_trials_study_state", "trials", ["study_id", "state", "retry_of"])
    op.create_table(
        "trial_values",
        _fk_trial(),
        sa.Column("objective", sa.Integer, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "objective"),
    )
    op.create_table(
        "trial_params",
        _fk_trial(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("distribution_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "name"),
    )
    op.create_table(
        "trial_intermediate_values",
        _fk_trial(),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "step"),
    )
    op.create_table(
        "trial_attrs",
        _fk_trial(),
        sa.Column("is_system", sa.Boolean, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "is_system", "key"),
    )


def downgrade() -> None:
    for table in (
        "trial_attrs",
        "trial_intermediate_values",
        "trial_params",
        "trial_values",
        "trials",
        "study_params",
        "study_attrs",
        "studies",
    ):
        op.drop_table(table)
