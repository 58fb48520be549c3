"""Pipeline pages: the pipeline runs of a project, and one run's step table with a timeline
drawn as SVG bars (server-side: no script draws it).

::

    /projects/P/pipelines              pipeline runs, newest first (?pipeline=NAME)
    /projects/P/pipelines/runs/ID      steps: status, cache hit, attempts, times; timeline;
                                       the run's gate and rollout decisions
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.api.routes import Call, Endpoint
from plinth.entities import PipelineRun, RecordRef, StepRun
from plinth.errors import NotFoundError
from plinth.ids import now_ms
from plinth.ui._records import HELPERS, lineage_url, project_id
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS", "timeline"]

RUNS_SHOWN = 200
#: The timeline's geometry, in pixels: label column, bar area, one row per step.
LABEL_W, BAR_W, ROW_H = 160, 640, 22
#: Bar colours by step status (SVG presentation attributes: the CSP forbids inline style).
COLOURS = {
    "succeeded": "#2e7d32",
    "cached": "#9aa3b2",
    "failed": "#a3261b",
    "running": "#2457c5",
    "skipped": "#d7dbe2",
}


def _duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = max(end - start, 0) / 1000
    return f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def pipelines_page(call: Call) -> Response:
    """Pipeline runs, newest first; ``?pipeline=NAME`` keeps one pipeline's."""
    pid = project_id(call)
    pipeline = call.request.query_params.get("pipeline") or None
    runs: list[PipelineRun] = []
    if pid is not None:
        runs = call.ledger().pipelines.runs(pid, pipeline=pipeline, limit=RUNS_SHOWN)
    return render(
        call,
        "pipelines.html",
        runs=runs,
        pipeline=pipeline,
        duration=_duration,
        **HELPERS,
    )


def timeline(run: PipelineRun, steps: list[StepRun], *, now: int) -> dict[str, Any]:
    """Bar geometry of each step on one time axis from the run's start to its end (``now``
    while it runs): ``{"bars": [...], "width", "height", "span_ms"}``."""
    starts = [run.started_at, *(s.started_at for s in steps)]
    ends = [run.ended_at or now, *((s.ended_at or now) for s in steps)]
    t0 = min(starts)
    span = max(max(ends) - t0, 1)
    bars = []
    for i, s in enumerate(steps):
        end = s.ended_at or now
        x = LABEL_W + BAR_W * (s.started_at - t0) / span
        width = max(BAR_W * (end - s.started_at) / span, 2.0)
        bars.append(
            {
                "label": s.step,
                "x": round(x, 1),
                "y": i * ROW_H + 4,
                "w": round(width, 1),
                "h": ROW_H - 8,
                "text_y": i * ROW_H + ROW_H - 7,
                "fill": COLOURS.get(s.status, "#5b6475"),
                "title": f"{s.step}: {s.status}, {_duration(s.started_at, s.ended_at)}",
            }
        )
    return {
        "bars": bars,
        "width": LABEL_W + BAR_W + 10,
        "height": max(len(steps), 1) * ROW_H + 20,
        "axis_y": max(len(steps), 1) * ROW_H + 14,
        "label_w": LABEL_W,
        "span": _duration(0, span),
    }


def run_page(call: Call) -> Response:
    """One pipeline run: its steps as a table and a timeline, and its decisions."""
    ledger = call.ledger()
    pid = project_id(call)
    run = ledger.pipelines.get_run(call.request.path_params["run_id"])
    if pid is None or run.project_id != pid:
        raise NotFoundError(f"no pipeline run {run.id!r} in project {call.project!r}")
    steps = ledger.pipelines.steps(run.id)
    project = str(call.project)
    return render(
        call,
        "pipeline_run.html",
        run=run,
        steps=steps,
        step_lineage={s.id: lineage_url(project, RecordRef("step_run", s.id)) for s in steps},
        lineage=lineage_url(project, RecordRef("pipeline_run", run.id)),
        chart=timeline(run, steps, now=now_ms()),
        decisions=ledger.pipelines.decisions(pid, pipeline_run_id=run.id),
        duration=_duration,
        **HELPERS,
    )


_P = "/projects/{project}/pipelines"
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", _P, pipelines_page, "Pipeline runs page", "project", html=True),
    Endpoint("GET", _P + "/runs/{run_id}", run_page, "A pipeline run", "project", html=True),
]
