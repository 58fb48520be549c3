"""The demo's closed loop: the agent runs ``pipeline.py`` on every event, and the timeline.

:class:`Agent` makes one pass of ``plinth agent`` (:func:`plinth.pipelines.agent.run_agent`
with ``once=True``) over the triggers ``pipeline.py`` declares, each time something happens
— a version of ``flights`` was added, a month of traffic was monitored — and prints the
runs it started. :func:`timeline` reads back from the ledger what happened and why: each
pipeline run with its trigger and reason, its steps and the decisions taken in it, every
line with an id that ``plinth lineage ID`` walks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Decision, PipelineRun
    from plinth.pipelines.agent import Fired

__all__ = ["PIPELINE_NAME", "TARGET", "Agent", "timeline", "trained_runs"]

#: What the agent watches: the pipeline ``plinth demo`` writes into the project.
TARGET = "pipeline.py:retrain"
PIPELINE_NAME = "retrain"
_MARK = {"succeeded": "ok", "cached": "cached", "failed": "FAILED", "skipped": "skipped"}


@dataclass
class Agent:
    """One agent pass per event; what it fired, in order."""

    ctx: Context
    echo: Callable[[str], None] = print
    fired: list[Fired] = field(default_factory=list)

    def run(self) -> list[Fired]:
        """One pass: claim every pending event and run the pipeline for it."""
        from plinth.pipelines.agent import run_agent

        report = run_agent([TARGET], once=True, ctx=self.ctx)
        if report.errors:
            from plinth.errors import BackendError

            raise BackendError(f"the demo's agent could not read a trigger: {report.errors[0]}")
        for done in report.fired:
            self.fired.append(done)
            self.echo(f"    agent: {done.reason} -> {_summary(self.ctx, done)}")
        return report.fired


def _summary(ctx: Context, done: Fired) -> str:
    if done.pipeline_run_id is None:
        return f"could not start: {done.error}"
    steps = ctx.ledger.pipelines.steps(done.pipeline_run_id)
    marks = ", ".join(f"{_name(s.step)} {_MARK.get(s.status, s.status)}" for s in steps)
    return f"run {done.pipeline_run_id} {done.status}: {marks}"


def _name(step: str) -> str:
    from plinth.demo.flow import STEP_NAMES

    return STEP_NAMES.get(step, step)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


def _decision_text(d: Decision) -> str:
    e = d.evidence
    if d.kind == "gate" and e.get("gate") == "validation":
        reasons = e.get("reasons") or []
        return f"validation gate {d.outcome} on {e.get('dataset_version')}" + (
            f": {'; '.join(reasons[:2])}" if reasons else ""
        )
    if d.kind == "gate":
        new = (e.get("challenger") or {}).get("value")
        old = (e.get("champion") or {}).get("value")
        ref = (e.get("challenger") or {}).get("ref")
        if old is None:
            return f"challenger gate {d.outcome}: {ref} unopposed (no champion yet)"
        slices = [s for s in e.get("slices") or [] if s.get("passed") is False]
        extra = f"; {len(slices)} origin(s) regressed" if slices else ""
        return (
            f"challenger gate {d.outcome}: {ref} ROC AUC {new:.4f} vs champion "
            f"{(e.get('champion') or {}).get('ref')} {old:.4f}{extra}"
        )
    if d.kind == "canary":
        return f"canary started: {d.subject}@{e.get('version')} gets half the traffic"
    if d.kind == "promote":
        moved = e.get("moved") or {}
        how = (
            "without a canary (first champion)"
            if moved.get("from") is None
            else f"after {(e.get('canary') or {}).get('requests')} healthy canary requests"
        )
        return f"promoted {d.subject}@{moved.get('to')} to champion {how}"
    if d.kind == "rollback":
        reasons = e.get("reasons") or ["rolled back"]
        return f"rolled back the canary: {reasons[0]}"
    return f"{d.kind} {d.subject}: {d.outcome}"


def timeline(ctx: Context, injected: list[str] | None = None) -> list[str]:
    """What the loop did and why, oldest first, from the ledger: per pipeline run, its
    trigger and reason, its steps, and each decision — with the ids to walk."""
    store = ctx.ledger.pipelines
    runs: list[PipelineRun] = list(
        reversed(store.runs(ctx.project.id, pipeline=PIPELINE_NAME, limit=500))
    )
    lines: list[str] = []
    for number, run in enumerate(runs, 1):
        lines.append(
            f"#{number:<2} {_time(run.started_at)}  {run.trigger}: {run.reason or 'by hand'}"
            f"  -> pipeline run {run.id} {run.status}"
        )
        steps = store.steps(run.id)
        lines.append(
            "      "
            + " -> ".join(f"{_name(s.step)} {_MARK.get(s.status, s.status)}" for s in steps)
        )
        for d in reversed(store.decisions(ctx.project.id, pipeline_run_id=run.id)):
            if d.kind == "canary" or (
                d.kind == "gate"
                and d.evidence.get("gate") == "validation"
                and d.outcome == "passed"
            ):
                continue  # said by the step line and the decision that follows
            note = ""
            canary = d.evidence.get("canary") or {}
            if d.kind == "rollback" and canary.get("model_version") in (injected or ()):
                note = " [injected by the demo]"
            lines.append(f"      {_decision_text(d)}{note}  (decision {d.id})")
    return lines


def trained_runs(ctx: Context) -> list[str]:
    """The tracked runs the loop's ``train`` steps opened, oldest first."""
    from plinth.entities import RecordRef

    store = ctx.ledger.pipelines
    out: list[str] = []
    for run in reversed(store.runs(ctx.project.id, pipeline=PIPELINE_NAME, limit=500)):
        for step_run in store.steps(run.id):
            if step_run.step != "train" or step_run.status != "succeeded":
                continue
            edges = ctx.ledger.lineage.edges_from(RecordRef("step_run", step_run.id))
            out.extend(e.dst.id for e in edges if e.relation == "ran")
    return out


def evidence_of(ctx: Context, kind: str) -> list[dict[str, Any]]:
    """Every decision of ``kind`` the loop took, oldest first, as plain data."""
    decisions = ctx.ledger.pipelines.decisions(ctx.project.id, limit=1000)
    return [
        {
            "id": d.id,
            "outcome": d.outcome,
            "pipeline_run_id": d.pipeline_run_id,
            "evidence": d.evidence,
        }
        for d in reversed(decisions)
        if d.kind == kind
    ]
