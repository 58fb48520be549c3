"""Data quality: version status and profile, validation suites and results, erasures.

Revision ID: 0004_data_quality
Revises: 0003_datasets
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_data_quality"
down_revision: str | None = "0003_datasets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="published")
        )
        batch.add_column(sa.Column("profile_digest", sa.String(64), nullable=True))
    op.create_table(
        "validation_suites",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_validation_suites"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_validation_suites_project_id_projects"
        ),
        sa.UniqueConstraint(
            "project_id", "name", "number", name="uq_validation_suites_project_id_name_number"
        ),
        sa.UniqueConstraint(
            "project_id", "name", "digest", name="uq_validation_suites_project_id_name_digest"
        ),
    )
    op.create_table(
        "validation_results",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("suite_id", sa.String(36), nullable=False),
        sa.Column("dataset_version_id", sa.String(36), nullable=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("report_digest", sa.String(64), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_validation_results"),
        sa.ForeignKeyConstraint(
            ["suite_id"],
            ["validation_suites.id"],
            name="fk_validation_results_suite_id_validation_suites",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_validation_results_dataset_version_id_dataset_versions",
        ),
    )
    op.create_index("ix_validation_results_suite_id", "validation_results", ["suite_id"])
    op.create_index(
        "ix_validation_results_dataset_version_id", "validation_results", ["dataset_version_id"]
    )
    op.create_table(
        "dataset_erasures",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("predicate", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("rows_removed", sa.BigInteger(), nullable=False),
        sa.Column("new_number", sa.Integer(), nullable=True),
        sa.Column("erased_numbers", sa.JSON(), nullable=False),
        sa.Column("released_blobs", sa.JSON(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_erasures"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_erasures_dataset_id_datasets"
        ),
    )
    op.create_index("ix_dataset_erasures_dataset_id", "dataset_erasures", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_erasures_dataset_id", table_name="dataset_erasures")
    op.drop_table("dataset_erasures")
    op.drop_index("ix_validation_results_dataset_version_id", table_name="validation_results")
    op.drop_index("ix_validation_results_suite_id", table_name="validation_results")
    op.drop_table("validation_results")
    op.drop_table("validation_suites")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("profile_digest")
        batch.drop_column("status")
