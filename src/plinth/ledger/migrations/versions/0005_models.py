"""Model registry: models, numbered versions, aliases and the audit trail of alias moves.

Revision ID: 0005_models
Revises: 0004_data_quality
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_models"
down_revision: str | None = "0004_data_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_models_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_models_project_id_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("manifest_digest", sa.String(64), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("environment_id", sa.String(36), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("trusted_digests", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_model_versions_model_id_models"
        ),
        sa.UniqueConstraint("model_id", "number", name="uq_model_versions_model_id_number"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_manifest_digest", "model_versions", ["manifest_digest"])
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_model_aliases_model_id_models"
        ),
    )
    op.create_table(
        "registry_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("from_number", sa.Integer(), nullable=True),
        sa.Column("to_number", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_registry_events"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_registry_events_model_id_models"
        ),
    )
    op.create_index("ix_registry_events_model_id", "registry_events", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_registry_events_model_id", table_name="registry_events")
    op.drop_table("registry_events")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_manifest_digest", table_name="model_versions")
    op.drop_index("ix_model_versions_run_id", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
