"""Reading runs back: ``plinth.get_run`` and ``plinth.metric_history``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plinth.context import Context, current
from plinth.entities import Artifact, Environment, RecordRef

__all__ = ["MetricHistory", "RunInfo", "get_run", "metric_history"]


@dataclass(frozen=True)
class RunInfo:
    """A run with what hangs off it: params, latest metrics, tags, source, environment."""

    id: str
    name: str | None
    experiment_id: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    error: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    source: dict[str, Any]
    environment: Environment | None
    artifacts: list[Artifact] = field(default_factory=list)
    #: Dataset versions and other records this run used, from lineage.
    inputs: list[RecordRef] = field(default_factory=list)


@dataclass(frozen=True)
class MetricHistory:
    """Every point of one metric of one run, ordered by step then time."""

    key: str
    steps: list[int]
    values: list[float]
    timestamps: list[int]

    def __len__(self) -> int:
        return len(self.steps)


def _recovered(context: Context | None) -> Context:
    from plinth.tracking.ingest import recover_journals

    ctx = context or current()
    recover_journals(ctx)
    return ctx


def get_run(run_id: str, *, context: Context | None = None) -> RunInfo:
    """The run ``run_id`` as recorded now (journals of dead processes are ingested first)."""
    ctx = _recovered(context)
    ledger = ctx.ledger
    run = ledger.runs.get_run(run_id)
    env = ledger.environments.get(run.environment_id) if run.environment_id else None
    ref = RecordRef("run", run.id)
    return RunInfo(
        id=run.id,
        name=run.name,
        experiment_id=run.experiment_id,
        status=run.status,
        start_time=run.start_time,
        end_time=run.end_time,
        parent_run_id=run.parent_run_id,
        error=run.error,
        params=ledger.runs.get_params(run.id),
        metrics=ledger.runs.latest_metrics(run.id),
        tags=ledger.runs.get_tags(run.id),
        source=dict(run.source),
        environment=env,
        artifacts=ledger.artifacts.list(ref),
        inputs=[e.dst for e in ledger.lineage.edges_from(ref) if e.relation == "used"],
    )


def metric_history(run_id: str, key: str, *, context: Context | None = None) -> MetricHistory:
    """Steps, values and timestamps of metric ``key`` of run ``run_id``."""
    ctx = _recovered(context)
    points = ctx.ledger.runs.metric_history(run_id, key)
    return MetricHistory(
        key=key,
        steps=[p.step for p in points],
        values=[p.value for p in points],
        timestamps=[p.timestamp for p in points],
    )
