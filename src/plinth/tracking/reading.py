"""Reading runs back: ``plinth.get_run``, ``plinth.metric_history``, ``plinth.search_runs``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from plinth._deprecation import renamed
from plinth.context import Context, resolve_context
from plinth.entities import Artifact, Environment, RecordRef, RunRow

__all__ = ["MetricHistory", "RunInfo", "RunRow", "get_run", "metric_history", "search_runs"]


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

    def __repr__(self) -> str:
        return (
            f"RunInfo(id={self.id!r}, name={self.name!r}, status={self.status!r}, "
            f"params={len(self.params)}, metrics={len(self.metrics)}, tags={len(self.tags)})"
        )

    def _repr_html_(self) -> str:
        """The run as tables in Jupyter (every value escaped, no scripts)."""
        from plinth.tracking.notebook import run_html

        return run_html(self)


@dataclass(frozen=True)
class MetricHistory:
    """Every point of one metric of one run, ordered by step then time."""

    key: str
    steps: list[int]
    values: list[float]
    timestamps: list[int]

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        last = f", last={self.values[-1]!r}" if self.values else ""
        return f"MetricHistory(key={self.key!r}, points={len(self)}{last})"

    def _repr_html_(self) -> str:
        """The history's summary and a sparkline in Jupyter (inline SVG, no scripts)."""
        from plinth.tracking.notebook import history_html

        return history_html(self)


def _recovered(ctx: Context | None) -> Context:
    from plinth.tracking.ingest import recover_journals

    context = resolve_context(ctx)
    recover_journals(context)
    return context


@renamed(keywords={"context": "ctx"})
def get_run(run_id: str, *, ctx: Context | None = None) -> RunInfo:
    """The run ``run_id`` as recorded now (journals of dead processes are ingested first)."""
    ctx = _recovered(ctx)
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


@renamed(keywords={"context": "ctx"})
def metric_history(run_id: str, key: str, *, ctx: Context | None = None) -> MetricHistory:
    """Steps, values and timestamps of metric ``key`` of run ``run_id``."""
    ctx = _recovered(ctx)
    points = ctx.ledger.runs.metric_history(run_id, key)
    return MetricHistory(
        key=key,
        steps=[p.step for p in points],
        values=[p.value for p in points],
        timestamps=[p.timestamp for p in points],
    )


def search_runs(
    where: str | None = None,
    *,
    order_by: str | Sequence[str] = (),
    limit: int = 100,
    experiment: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    columns: str | Sequence[str] = (),
    include_deleted: bool = False,
    ctx: Context | None = None,
) -> list[RunRow]:
    """Runs of the project matching ``where``, in ``order_by`` order (default: newest first).

    ``where``, ``order_by`` and ``columns`` use the search language (docs/ledger.md); each
    row carries the latest values of the metrics, params and tags they name. Example::

        for row in plinth.search_runs("metrics.auc > 0.8", order_by="metrics.auc DESC"):
            print(row.run.id, row.metrics["auc"])
    """
    context = _recovered(ctx)
    names = [experiment] if isinstance(experiment, str) else experiment
    return context.reads.search.search_runs(
        project_id=context.project.id,
        experiment_ids=None if names is None else _experiment_ids(context, names),
        status=status,
        where=where,
        order_by=[order_by] if isinstance(order_by, str) else list(order_by),
        columns=[columns] if isinstance(columns, str) else list(columns),
        limit=limit,
        include_deleted=include_deleted,
    )


def _experiment_ids(ctx: Context, names: Sequence[str]) -> list[str]:
    from plinth.errors import NotFoundError

    known = {e.name: e.id for e in ctx.reads.projects.list_experiments(ctx.project.id)}
    missing = [name for name in names if name not in known]
    if missing:
        raise NotFoundError(
            f"project {ctx.project.name!r} has no experiment {missing[0]!r}",
            hint=f"experiments: {', '.join(sorted(known)) or '(none yet)'}",
            field="experiment",
        )
    return [known[name] for name in names]
