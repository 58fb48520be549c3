"""The lineage of a pipeline run or a decision: what ``plinth lineage ID`` prints for them.

A pipeline run is walked to the trigger firing that started it (and why), each step run
with its status, what it used and produced (dataset and model versions, by reference) and
the tracked runs it opened, and the decisions taken in it with their reasons. A decision id
leads to its pipeline run::

    doc = pipeline_lineage(ctx, "0190f7a2-...")      # NotFoundError if no such record
    for line in pipeline_lineage_lines(doc): print(line)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Decision, RecordRef

__all__ = ["pipeline_lineage", "pipeline_lineage_lines"]

#: Decisions read to find one by id (newest first).
_DECISIONS_READ = 5000


# Every read goes through ``ctx.reads``: on an embedded ledger, sqlite3 without SQLAlchemy.


def _decision(ctx: Context, record_id: str) -> Decision | None:
    for d in ctx.reads.pipelines.decisions(ctx.project.id, limit=_DECISIONS_READ):
        if d.id == record_id:
            return d
    return None


def _describe(ctx: Context, ref: RecordRef) -> str:
    """A record as people name it: ``dataset flights@4``, ``model flight-delays@2``."""
    try:
        if ref.type == "dataset_version":
            return f"dataset {ctx.reads.datasets.get_version_by_id(ref.id).ref}"
        if ref.type == "model_version":
            return f"model {ctx.reads.models.get_version_by_id(ref.id).ref}"
        if ref.type == "run":
            run = ctx.reads.runs.get_run(ref.id)
            return f"run {run.id}" + (f" ({run.name})" if run.name else "")
    except NotFoundError:
        pass
    return f"{ref.type} {ref.id}"


def pipeline_lineage(ctx: Context, record_id: str) -> dict[str, Any]:
    """The lineage of pipeline run ``record_id`` (or of the run a decision with that id
    was taken in); NotFoundError when it is neither."""
    from plinth.entities import RecordRef

    store = ctx.reads.pipelines
    decision = None
    try:
        run = store.get_run(record_id)
    except NotFoundError:
        decision = _decision(ctx, record_id)
        if decision is None or decision.pipeline_run_id is None:
            raise NotFoundError(
                f"no pipeline run or decision {record_id!r} in the ledger", field="id"
            ) from None
        run = store.get_run(decision.pipeline_run_id)
    firing = next(
        (f for f in store.firings(ctx.project.id, limit=1000) if f.pipeline_run_id == run.id),
        None,
    )
    steps = []
    for step_run in store.steps(run.id):
        edges = ctx.reads.lineage.edges_from(RecordRef("step_run", step_run.id))
        steps.append(
            {
                "id": step_run.id,
                "step": step_run.step,
                "status": step_run.status,
                "cache_hit": step_run.cache_hit,
                "error": step_run.error,
                "used": [_describe(ctx, e.dst) for e in edges if e.relation == "used"],
                "produced": [_describe(ctx, e.dst) for e in edges if e.relation == "produced"],
                "ran": [_describe(ctx, e.dst) for e in edges if e.relation == "ran"],
            }
        )
    decisions = [
        {
            "id": d.id,
            "kind": d.kind,
            "subject": d.subject,
            "outcome": d.outcome,
            "reasons": list(d.evidence.get("reasons") or []),
        }
        for d in reversed(store.decisions(ctx.project.id, pipeline_run_id=run.id))
    ]
    return {
        "decision": None if decision is None else decision.id,
        "pipeline_run": {
            "id": run.id,
            "pipeline": run.pipeline,
            "status": run.status,
            "trigger": run.trigger,
            "reason": run.reason,
            "params": run.params,
            "error": run.error,
        },
        "firing": None
        if firing is None
        else {"id": firing.id, "trigger": firing.trigger, "event_key": firing.event_key},
        "steps": steps,
        "decisions": decisions,
    }


def pipeline_lineage_lines(doc: dict[str, Any]) -> list[str]:
    """``doc`` (:func:`pipeline_lineage`) as lines, from the trigger to the decisions."""
    run = doc["pipeline_run"]
    lines = []
    if doc.get("decision"):
        lines.append(f"decision {doc['decision']}, taken in:")
    lines.append(f"pipeline run {run['id']} ({run['pipeline']}): {run['status']}")
    why = run["reason"] or "no reason recorded"
    lines.append(f"  started by {run['trigger']}: {why}")
    if doc.get("firing"):
        f = doc["firing"]
        lines.append(f"  firing {f['id']} of trigger {f['trigger']} (event {f['event_key']})")
    if run["params"]:
        lines.append("  params " + ", ".join(f"{k}={v}" for k, v in run["params"].items()))
    for s in doc["steps"]:
        status = s["status"] + (" (cache hit)" if s["cache_hit"] else "")
        lines.append(f"  step {s['step']} {s['id']}: {status}")
        for label in ("used", "produced", "ran"):
            if s[label]:
                lines.append(f"    {label:<8} {', '.join(s[label])}")
        if s["error"]:
            lines.append(f"    error    {s['error']}")
    for d in doc["decisions"]:
        reasons = f": {'; '.join(d['reasons'])}" if d["reasons"] else ""
        lines.append(f"  decision {d['id']} {d['kind']} {d['subject']} {d['outcome']}{reasons}")
    return lines
