"""Monitoring: monitor and drift reports, alert deliveries, label batches, batch profiles.

Revision ID: 0007_monitoring
Revises: 0006_serving
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_monitoring"
down_revision: str | None = "0006_serving"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("monitor", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=True),
        sa.Column("dataset", sa.String(255), nullable=True),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=True),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("report_digest", sa.String(64), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_reports"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_monitor_reports_project_id_projects"
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_monitor_reports_deployment_id_deployments",
        ),
    )
    op.create_index(
        "ix_monitor_reports_project_id_monitor_created_at",
        "monitor_reports",
        ["project_id", "monitor", "created_at"],
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("report_id", sa.String(36), nullable=True),
        sa.Column("monitor", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_alerts_project_id_projects"
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["monitor_reports.id"], name="fk_alerts_report_id_monitor_reports"
        ),
    )
    op.create_index(
        "ix_alerts_project_id_monitor_fingerprint_route_created_at",
        "alerts",
        ["project_id", "monitor", "fingerprint", "route", "created_at"],
    )
    op.create_table(
        "label_batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("matched", sa.BigInteger(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_label_batches"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_label_batches_project_id_projects"
        ),
    )
    op.create_index(
        "ix_label_batches_project_id_deployment",
        "label_batches",
        ["project_id", "deployment"],
    )
    with op.batch_alter_table("prediction_batches") as batch:
        batch.add_column(sa.Column("profile_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prediction_batches") as batch:
        batch.drop_column("profile_digest")
    op.drop_index("ix_label_batches_project_id_deployment", table_name="label_batches")
    op.drop_table("label_batches")
    op.drop_index("ix_alerts_project_id_monitor_fingerprint_route_created_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_monitor_reports_project_id_monitor_created_at", table_name="monitor_reports")
    op.drop_table("monitor_reports")
