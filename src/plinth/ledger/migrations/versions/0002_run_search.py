"""Run search: a ``latest_metrics`` table (backfilled from ``metrics``) and soft-deleted runs.

Revision ID: 0002_run_search
Revises: 0001_foundation
Create Date: 2026-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_run_search"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same rule as RunStore.latest_metrics: highest step, ties by timestamp, then seq.
_BACKFILL = """
INSERT INTO latest_metrics (run_id, key, value, step, timestamp, seq)
SELECT run_id, key, value, step, timestamp, seq FROM (
    SELECT run_id, key, value, step, timestamp, seq,
           row_number() OVER (
               PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, seq DESC
           ) AS rank
    FROM metrics
) AS ranked
WHERE rank = 1
"""


def upgrade() -> None:
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_latest_metrics_run_id_runs"),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.execute(_BACKFILL)

    op.add_column("runs", sa.Column("deleted_at", sa.BigInteger(), nullable=True))
    # Run lists filter on experiment and "not deleted", newest first.
    op.drop_index("ix_runs_experiment_id_start_time", table_name="runs")
    op.create_index(
        "ix_runs_experiment_id_deleted_at_start_time",
        "runs",
        ["experiment_id", "deleted_at", "start_time"],
    )
    op.create_index("ix_runs_deleted_at_start_time", "runs", ["deleted_at", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_runs_deleted_at_start_time", table_name="runs")
    op.drop_index("ix_runs_experiment_id_deleted_at_start_time", table_name="runs")
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    op.drop_column("runs", "deleted_at")
    op.drop_table("latest_metrics")
