"""Label batches: the label column, a delete tombstone (who, when, why), lookup by digest.

Revision ID: 0008_label_batches
Revises: 0007_monitoring
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_label_batches"
down_revision: str | None = "0007_monitoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("label_batches") as batch:
        batch.add_column(sa.Column("label_column", sa.String(255), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("delete_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_label_batches_project_id_deployment_digest",
        "label_batches",
        ["project_id", "deployment", "digest"],
    )


def downgrade() -> None:
    op.drop_index("ix_label_batches_project_id_deployment_digest", table_name="label_batches")
    with op.batch_alter_table("label_batches") as batch:
        batch.drop_column("delete_reason")
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
        batch.drop_column("label_column")
