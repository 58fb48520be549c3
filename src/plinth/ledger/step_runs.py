"""Step run rows: building one, reading one back, the checks on a step's status, and a
step run's lineage edges (what :class:`plinth.ledger.pipelines.PipelineStore` writes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plinth.entities import STEP_STATUSES, PipelineRun, RecordRef, StepRun
from plinth.errors import UsageError
from plinth.ids import new_id
from plinth.ledger._common import check_text

__all__ = ["REUSABLE", "check_end", "one_of", "step_edges", "step_from_row", "step_row"]

#: The statuses of a step run whose outputs a later step may reuse.
REUSABLE = ("succeeded", "cached")


def one_of(value: object, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def check_end(status: str) -> None:
    """UsageError unless ``status`` is one a step run ends with."""
    one_of(status, STEP_STATUSES, "step status")
    if status == "running":
        raise UsageError("a step run ends succeeded, cached, failed or skipped")


def step_row(
    pipeline_run: PipelineRun,
    step: str,
    stamp: Mapping[str, Any],
    *,
    status: str,
    cache_key: str | None = None,
    cache_hit: bool = False,
    attempts: int = 0,
    outputs: Sequence[Mapping[str, Any]] = (),
    error: str | None = None,
    run_id: str | None = None,
    source_step_run_id: str | None = None,
    started_at: int | None = None,
) -> dict[str, Any]:
    """A new step run's checked row (ended at once unless ``running``)."""
    check_text(step, "step name")
    one_of(status, STEP_STATUSES, "step status")
    return {
        "id": new_id(),
        "pipeline_run_id": pipeline_run.id,
        "project_id": pipeline_run.project_id,
        "step": step,
        "status": status,
        "cache_key": cache_key,
        "cache_hit": bool(cache_hit),
        "attempts": int(attempts),
        "started_at": started_at if started_at is not None else stamp["created_at"],
        "ended_at": None if status == "running" else stamp["created_at"],
        "outputs": [dict(o) for o in outputs],
        "error": error,
        "run_id": run_id,
        "source_step_run_id": source_step_run_id,
        **stamp,
    }


def step_edges(
    pipeline_run_id: str, step_run_id: str, links: Sequence[tuple[RecordRef, str]]
) -> list[tuple[RecordRef, RecordRef, str]]:
    """A step run's lineage: contained by its pipeline run, ``(ref, relation)`` from it."""
    me = RecordRef("step_run", step_run_id)
    edges = [(RecordRef("pipeline_run", pipeline_run_id), me, "contains")]
    for link in links:
        if not (isinstance(link, tuple) and len(link) == 2):
            raise UsageError(f"a step run's link is a (RecordRef, relation) pair, got {link!r}")
        edges.append((me, link[0], link[1]))
    return edges


def step_from_row(row: Mapping[Any, Any]) -> StepRun:
    data = {k: row[k] for k in StepRun.__dataclass_fields__}
    data["outputs"] = list(data["outputs"] or [])
    data["cache_hit"] = bool(data["cache_hit"])
    return StepRun(**data)
