"""Pipelines: pipeline runs, step runs, trigger firings, gate and rollout decisions.

Revision ID: 0010_pipelines
Revises: 0009_features
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_pipelines"
down_revision: str | None = "0009_features"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    ]


def _project(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects"
    )


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("executor", sa.String(255), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resumes", sa.String(36), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
        _project("pipeline_runs"),
    )
    op.create_index(
        "ix_pipeline_runs_project_id_pipeline_started_at",
        "pipeline_runs",
        ["project_id", "pipeline", "started_at"],
    )
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pipeline_run_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("source_step_run_id", sa.String(36), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_step_runs"),
        _project("step_runs"),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name="fk_step_runs_pipeline_run_id_pipeline_runs",
        ),
    )
    op.create_index("ix_step_runs_pipeline_run_id", "step_runs", ["pipeline_run_id"])
    op.create_index("ix_step_runs_project_id_cache_key", "step_runs", ["project_id", "cache_key"])
    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pipeline_run_id", sa.String(36), nullable=True),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_firings"),
        _project("trigger_firings"),
        sa.UniqueConstraint(
            "project_id",
            "trigger",
            "event_key",
            name="uq_trigger_firings_project_id_trigger_event_key",
        ),
    )
    op.create_table(
        "pipeline_decisions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("pipeline_run_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        *_created(),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_decisions"),
        _project("pipeline_decisions"),
    )
    op.create_index(
        "ix_pipeline_decisions_project_id_subject",
        "pipeline_decisions",
        ["project_id", "subject"],
    )


def downgrade() -> None:
    op.drop_index("ix_pipeline_decisions_project_id_subject", table_name="pipeline_decisions")
    op.drop_table("pipeline_decisions")
    op.drop_table("trigger_firings")
    op.drop_index("ix_step_runs_project_id_cache_key", table_name="step_runs")
    op.drop_index("ix_step_runs_pipeline_run_id", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_pipeline_runs_project_id_pipeline_started_at", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
