"""``plinth pipeline``: run, resume, list and show pipeline runs, and draw a pipeline's graph.

A thin layer over :mod:`plinth.pipelines`. Exit codes: 0 the run succeeded, 1 it failed,
2 bad input (an unknown target or step, a graph that fails its checks).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.pipelines import PipelineResult, StepResult

_EXECUTOR = click.option(
    "--executor",
    default=None,
    help="Where steps run: local (in-process), process (a local process pool), ray or "
    "ray://HOST:PORT. Default: the executor setting.",
)


@click.group(
    epilog="Examples:\n\n  plinth pipeline run flows.py:nightly --param rows=100\n\n"
    "  plinth pipeline runs --pipeline nightly\n\n  plinth pipeline show RUN_ID"
)
def pipeline() -> None:
    """Run pipelines of cached steps and inspect their runs."""


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            from plinth.errors import UsageError

            raise UsageError(f"--param {pair!r} is not KEY=VALUE", field="param")
        out[key.strip()] = value
    return out


class _Progress:
    """One line per step on a terminal, as steps start and end (Rich)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.status: Any = None
        self.started: dict[str, float] = {}

    def __call__(self, kind: str, step: str, result: StepResult | None) -> None:
        from rich.markup import escape

        if kind == "start":
            self.started[step] = time.perf_counter()
            if self.status is None:
                self.status = self.console.status(f"running {escape(step)}")
                self.status.start()
            else:
                self.status.update(f"running {escape(step)}")
            return
        assert result is not None
        colour = {"succeeded": "green", "cached": "cyan", "failed": "red"}.get(
            result.status, "yellow"
        )
        extra = f" ({result.attempts} attempts)" if result.attempts > 1 else ""
        self.console.print(
            f"[{colour}]{result.status:>9}[/] {escape(step)} {result.duration:.2f}s{extra}"
        )

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()


def _finish(result: PipelineResult, as_json: bool) -> None:
    if as_json:
        echo_json(result.to_dict())
    else:
        _print_run(result.to_dict())
    if not result.ok:
        raise click.exceptions.Exit(1)


def _run_with_progress(as_json: bool, call: Any) -> PipelineResult:
    import sys

    progress = _Progress() if not as_json and sys.stderr.isatty() else None
    try:
        result: PipelineResult = call(progress)
    finally:
        if progress is not None:
            progress.close()
    return result


@pipeline.command(
    epilog="Examples:\n\n  plinth pipeline run flows.py:nightly\n\n"
    "  plinth pipeline run flows.py:nightly --param rows=100 --force train --json\n\n"
    "  plinth pipeline run pipeline.yaml --executor process"
)
@click.argument("target")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter.")
@click.option("--force", "force", multiple=True, metavar="STEP", help="Rerun STEP and after.")
@_EXECUTOR
@json_option
def run(
    target: str, params: tuple[str, ...], force: tuple[str, ...], executor: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Check and run the pipeline TARGET (FILE.py:NAME or a pipeline YAML file)."""
    from plinth.context import Context
    from plinth.pipelines import run_pipeline

    with Context.open() as ctx:
        result = _run_with_progress(
            as_json,
            lambda progress: run_pipeline(
                target, _params(params), force=force, executor=executor, on_event=progress,
                ctx=ctx,
            ),
        )  # fmt: skip
        _finish(result, as_json)


@pipeline.command(
    epilog="Examples:\n\n  plinth pipeline resume 01a2...\n\n"
    "  plinth pipeline resume 01a2... --target flows.py:nightly --json"
)
@click.argument("run_id", metavar="RUN")
@click.option("--target", default=None, help="FILE.py:NAME or YAML (default: as recorded).")
@_EXECUTOR
@json_option
def resume(run_id: str, target: str | None, executor: str | None, as_json: bool) -> None:
    """Rerun the failed pipeline run RUN from its failed step, reusing what succeeded."""
    from plinth.context import Context
    from plinth.pipelines import resume as resume_run

    with Context.open() as ctx:
        result = _run_with_progress(
            as_json,
            lambda progress: resume_run(
                run_id, target=target, executor=executor, on_event=progress, ctx=ctx
            ),
        )
        _finish(result, as_json)


@pipeline.command(
    epilog="Examples:\n\n  plinth pipeline runs\n\n  plinth pipeline runs --pipeline nightly --json"
)
@click.option("--pipeline", "name", default=None, help="Only runs of this pipeline.")
@click.option("--limit", default=50, show_default=True, help="Newest runs shown.")
@json_option
def runs(name: str | None, limit: int, as_json: bool) -> None:
    """List pipeline runs, newest first."""
    from plinth.context import Context

    with Context.open() as ctx:
        found = ctx.ledger.pipelines.runs(ctx.project.id, pipeline=name, limit=limit)
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "pipeline": r.pipeline,
            "status": r.status,
            "trigger": r.trigger,
            "reason": r.reason,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "resumes": r.resumes,
            "error": r.error,
        }
        for r in found
    ]
    if as_json:
        echo_json(rows)
        return
    from plinth.guards.terminal import printable

    if not rows:
        click.echo("no pipeline runs yet (plinth pipeline run FILE.py:NAME starts one)")
    for row in rows:
        took = (row["ended_at"] - row["started_at"]) / 1000 if row["ended_at"] else None
        shown = f"{took:.2f}s" if took is not None else "-"
        click.echo(
            printable(
                f"{row['id']}  {row['pipeline']:<20} {row['status']:<9} {shown:>8}  "
                f"{row['trigger']}"
            )
        )


def _show(run_id: str) -> dict[str, Any]:
    from plinth.context import Context
    from plinth.pipelines.result import run_dict

    with Context.open() as ctx:
        store = ctx.ledger.pipelines
        run = store.get_run(run_id)
        steps = store.steps(run_id)
    return {
        **run_dict(run),
        "steps": [
            {
                "step": s.step,
                "status": s.status,
                "cache_hit": s.cache_hit,
                "attempts": s.attempts,
                "duration_s": ((s.ended_at - s.started_at) / 1000) if s.ended_at else None,
                "outputs": s.outputs,
                "error": s.error,
                "step_run_id": s.id,
                "run_id": s.run_id,
            }
            for s in steps
        ],
    }


def _print_run(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from plinth.guards.terminal import printable

    console = Console(highlight=False)
    head = f"{data['pipeline']} {data['id']}: {data['status']}"
    if data.get("resumes"):
        head += f" (resumes {data['resumes']})"
    console.print(printable(head), markup=False)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("step", "status", "cache", "attempts", "duration", "outputs"):
        table.add_column(column)
    for s in data["steps"]:
        outputs = ", ".join(
            f"{o.get('name')}:{o.get('kind')}" + (f" {o['digest'][:10]}" if o.get("digest") else "")
            for o in s["outputs"]
        )
        duration = s.get("duration_s")
        table.add_row(
            printable(s["step"]),
            s["status"],
            "hit" if s["cache_hit"] else "",
            str(s["attempts"]),
            "-" if duration is None else f"{duration:.3f}s",
            printable(outputs),
        )
    console.print(table)
    if data.get("error"):
        console.print(f"error: {printable(data['error'])}", markup=False)


@pipeline.command(
    epilog="Examples:\n\n  plinth pipeline show 01a2...\n\n  plinth pipeline show 01a2... --json"
)
@click.argument("run_id", metavar="RUN")
@json_option
def show(run_id: str, as_json: bool) -> None:
    """Show the pipeline run RUN: each step's status, cache hit, attempts, time, outputs."""
    data = _show(run_id)
    if as_json:
        echo_json(data)
    else:
        _print_run(data)


@pipeline.command(
    epilog="Examples:\n\n  plinth pipeline graph flows.py:nightly\n\n"
    "  plinth pipeline graph pipeline.yaml --mermaid > docs/nightly.mmd"
)
@click.argument("target")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter.")
@click.option("--mermaid", is_flag=True, help="Print a Mermaid flowchart.")
@json_option
def graph(target: str, params: tuple[str, ...], mermaid: bool, as_json: bool) -> None:
    """Check the pipeline TARGET and print its steps in run order (nothing runs)."""
    from plinth.pipelines.api import coerce_params, load_target
    from plinth.settings import load_settings

    settings = load_settings()
    found = load_target(target, root=settings.root)
    built = found.graph(coerce_params(found.fn, _params(params)))
    if as_json:
        data = built.to_dict()
        data["mermaid"] = built.mermaid()
        echo_json(data)
    elif mermaid:
        click.echo(built.mermaid())
    else:
        click.echo(built.text())
