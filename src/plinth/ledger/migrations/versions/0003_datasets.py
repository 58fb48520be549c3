"""Datasets: named datasets, their versions (manifest blobs), tags and referenced blobs.

Revision ID: 0003_datasets
Revises: 0002_run_search
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_datasets"
down_revision: str | None = "0002_run_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_datasets_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent_number", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("manifest_digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("schema", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_versions_dataset_id_datasets"
        ),
        sa.UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_dataset_id_number"),
    )
    op.create_index("ix_dataset_versions_manifest_digest", "dataset_versions", ["manifest_digest"])
    op.create_table(
        "dataset_tags",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name="pk_dataset_tags"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_tags_dataset_id_datasets"
        ),
    )
    op.create_table(
        "dataset_blobs",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "digest", name="pk_dataset_blobs"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_blobs_dataset_id_datasets"
        ),
    )
    op.create_index("ix_dataset_blobs_digest", "dataset_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_dataset_blobs_digest", table_name="dataset_blobs")
    op.drop_table("dataset_blobs")
    op.drop_table("dataset_tags")
    op.drop_index("ix_dataset_versions_manifest_digest", table_name="dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
