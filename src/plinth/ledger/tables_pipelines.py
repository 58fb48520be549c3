"""The pipelines' tables (migration 0010): pipeline runs, step runs, trigger firings and
gate / rollout decisions. Registered on :data:`plinth.ledger.tables.metadata`, which imports
this module, so ``from plinth.ledger.tables import step_runs`` keeps working."""

from __future__ import annotations

import sqlalchemy as sa

from plinth.ledger.columns import ID, MS, NAME, metadata
from plinth.ledger.columns import created_columns as _created

__all__ = ["pipeline_decisions", "pipeline_runs", "step_runs", "trigger_firings"]

#: One run of a pipeline (0010): what triggered it and why, its parameters, how it ended.
pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("pipeline", NAME, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("code_digest", sa.String(64), nullable=False),
    sa.Column("executor", sa.String(255), nullable=False),
    sa.Column("started_at", MS, nullable=False),
    sa.Column("ended_at", MS, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("resumes", ID, nullable=True),
    *_created(),
    sa.Index(None, "project_id", "pipeline", "started_at"),
)

#: One step of a pipeline run (0010). A later step with the same ``cache_key`` reuses the
#: ``outputs`` of the newest succeeded one (``source_step_run_id`` names it).
step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("pipeline_run_id", ID, sa.ForeignKey("pipeline_runs.id"), nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("step", NAME, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", MS, nullable=False),
    sa.Column("ended_at", MS, nullable=True),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("run_id", ID, nullable=True),
    sa.Column("source_step_run_id", ID, nullable=True),
    *_created(),
    sa.Index(None, "pipeline_run_id"),
    sa.Index(None, "project_id", "cache_key"),
)

#: A trigger fired for one event (0010). The unique (project, trigger, event) claim is what
#: keeps two agents from running one trigger twice for the same event.
trigger_firings = sa.Table(
    "trigger_firings",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("trigger", NAME, nullable=False),
    sa.Column("event_key", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("pipeline_run_id", ID, nullable=True),
    *_created(),
    sa.UniqueConstraint("project_id", "trigger", "event_key"),
)

#: A gate or rollout decision with its evidence (0010).
pipeline_decisions = sa.Table(
    "pipeline_decisions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("pipeline_run_id", ID, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject", NAME, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    *_created(),
    sa.Index(None, "project_id", "subject"),
)
