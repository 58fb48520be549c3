"""The feature store: definition versions, materializations, pushed rows.

Revision ID: 0009_features
Revises: 0008_label_batches
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_features"
down_revision: str | None = "0008_label_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("applied_seq", sa.Integer(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_feature_definitions"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_feature_definitions_project_id_projects"
        ),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "name",
            "number",
            name="uq_feature_definitions_project_id_kind_name_number",
        ),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "name",
            "digest",
            name="uq_feature_definitions_project_id_kind_name_digest",
        ),
    )
    for table in ("feature_materializations", "feature_pushes"):
        extra: list[sa.Column[object]] = (
            [
                sa.Column("start_ms", sa.BigInteger(), nullable=True),
                sa.Column("end_ms", sa.BigInteger(), nullable=False),
                sa.Column("rows", sa.BigInteger(), nullable=False),
                sa.Column("store", sa.Text(), nullable=False),
                sa.Column("sources", sa.JSON(), nullable=True),
            ]
            if table == "feature_materializations"
            else [
                sa.Column("digest", sa.String(64), nullable=False),
                sa.Column("rows", sa.BigInteger(), nullable=False),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", sa.String(36), nullable=False),
            sa.Column("project_id", sa.String(36), nullable=False),
            sa.Column("view", sa.String(255), nullable=False),
            sa.Column("definition_id", sa.String(36), nullable=False),
            *extra,
            *_created(),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects"
            ),
            sa.ForeignKeyConstraint(
                ["definition_id"],
                ["feature_definitions.id"],
                name=f"fk_{table}_definition_id_feature_definitions",
            ),
        )
        op.create_index(f"ix_{table}_project_id_view", table, ["project_id", "view"])


def downgrade() -> None:
    op.drop_index("ix_feature_pushes_project_id_view", table_name="feature_pushes")
    op.drop_table("feature_pushes")
    op.drop_index(
        "ix_feature_materializations_project_id_view", table_name="feature_materializations"
    )
    op.drop_table("feature_materializations")
    op.drop_table("feature_definitions")
