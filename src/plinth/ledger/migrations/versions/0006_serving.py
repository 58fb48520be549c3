"""Serving: deployment specs versioned by digest, and the prediction log's batches.

Revision ID: 0006_serving
Revises: 0005_models
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_serving"
down_revision: str | None = "0005_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_deployments_project_id_projects"
        ),
        sa.UniqueConstraint(
            "project_id", "name", "number", name="uq_deployments_project_id_name_number"
        ),
        sa.UniqueConstraint(
            "project_id", "name", "digest", name="uq_deployments_project_id_name_digest"
        ),
    )
    op.create_table(
        "prediction_batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("deployment_id", sa.String(36), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.Column("first_request_id", sa.String(36), nullable=False),
        sa.Column("last_request_id", sa.String(36), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_batches"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_prediction_batches_deployment_id_deployments",
        ),
    )
    op.create_index(
        "ix_prediction_batches_deployment_id_start_ms",
        "prediction_batches",
        ["deployment_id", "start_ms"],
    )
    op.create_index(
        "ix_prediction_batches_first_request_id", "prediction_batches", ["first_request_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_batches_first_request_id", table_name="prediction_batches")
    op.drop_index("ix_prediction_batches_deployment_id_start_ms", table_name="prediction_batches")
    op.drop_table("prediction_batches")
    op.drop_table("deployments")
