"""Metric charts: the metrics index also covers ``value``.

A downsampled chart (``SearchStore.metric_series``) aggregates min, max and the latest value
over step ranges of one run's metric; with ``value`` in the metrics index, each range is
read from the index alone (about 30% faster over a million points on SQLite) instead of
looking up every row. The old index is a prefix of the new one, so it goes.

Revision ID: 0011_metric_series_index
Revises: 0010_pipelines
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_metric_series_index"
down_revision: str | None = "0010_pipelines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_metrics_run_id_key_step_value", "metrics", ["run_id", "key", "step", "value"]
    )
    op.drop_index("ix_metrics_run_id_key_step", table_name="metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_run_id_key_step", "metrics", ["run_id", "key", "step"])
    op.drop_index("ix_metrics_run_id_key_step_value", table_name="metrics")
