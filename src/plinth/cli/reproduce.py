"""``plinth reproduce RUN_ID``: rerun a run's recorded code and compare its final metrics."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.versioning import ReproduceResult


@click.command(
    epilog="Example: plinth reproduce 0190b2c4-5e1f-7a3b-8c2d-4e5f6a7b8c9d --yes --tolerance 1e-6"
)
@click.argument("run_id")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Run the plan without asking (read it first: it runs recorded code on this machine).",
)
@click.option(
    "--allow-command",
    is_flag=True,
    help="Allow an entry point that is a raw command (any program), not a script or module.",
)
@click.option(
    "--pass-env",
    "pass_env",
    multiple=True,
    metavar="NAME",
    help="Pass this variable to the rerun although it looks like a credential (repeatable).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-9,
    show_default=True,
    help="Largest relative difference |a-b|/max(|a|,|b|) for metrics to match.",
)
@click.option(
    "--keep-worktree", is_flag=True, help="Keep the temporary git worktree (its path is printed)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Kill the rerun after this many seconds.",
)
@json_option
@click.pass_context
def reproduce(
    ctx: click.Context,
    run_id: str,
    yes: bool,
    allow_command: bool,
    pass_env: tuple[str, ...],
    tolerance: float,
    keep_worktree: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Recreate RUN_ID's code (commit + recorded diff) in a worktree, rerun it, compare.

    First prints the plan: the exact command, the folder, the commit, whether a diff is
    applied and the environment (credentials such as PG*, AWS_*, *_TOKEN, *_PASSWORD are not
    passed unless --pass-env names them). It runs only with --yes or when you confirm at the
    prompt. Then prints how the current environment differs from the recorded one and every
    param and final metric that differs. Exits 0 when they all match, 1 when not (or when
    you decline), 2 when the run cannot be reproduced or nothing ran for want of consent.
    RUN_ID may be a unique prefix (8+ characters).
    """
    from plinth.context import Context
    from plinth.errors import CheckFailedError, UsageError
    from plinth.versioning import plan_reproduction, reproduce_run

    def show(line: str) -> None:
        click.echo(line, err=True)

    with Context.open() as plinth_ctx:
        run_id = plinth_ctx.ledger.search.resolve_run_id(run_id)
        plan = plan_reproduction(
            run_id, allow_command=allow_command, pass_env=pass_env, ctx=plinth_ctx
        )
        for line in plan.describe():
            click.echo(line, err=as_json)
        refused = plan.refused
        if refused:
            raise UsageError(
                refused,
                hint="read the command above; pass --allow-command only if you trust "
                "whoever recorded the run",
                field="allow_command",
            )
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "plinth reproduce runs recorded code only with consent, and cannot ask "
                    "here (no terminal); nothing ran",
                    hint="read the plan above, then pass --yes to run it",
                    field="yes",
                )
            if not click.confirm("Run it?", default=False, err=True):
                click.echo("Nothing ran.", err=True)
                ctx.exit(1)
        result = reproduce_run(
            plan,
            yes=True,
            tolerance=tolerance,
            keep_worktree=keep_worktree,
            timeout=timeout,
            echo=show,
            ctx=plinth_ctx,
        )
    if as_json:
        echo_json({**result.to_dict(), "plan": plan.to_dict()})
        if not result.matches:
            ctx.exit(1)
        return
    _print_result(result, shown=set(plan.warnings))
    if not result.matches:
        raise CheckFailedError(
            f"run {run_id} did not reproduce",
            hint="see the differences above; pass --tolerance to allow small ones",
        )


def _print_result(result: ReproduceResult, shown: set[str]) -> None:
    click.echo(f"Reproducing run {result.old_run_id}")
    if result.env_diff:
        click.echo(f"Environment: {len(result.env_diff)} package(s) differ from the recorded one")
        for d in result.env_diff:
            if d.kind == "added":
                click.echo(f"  + {d.name} {d.current} (not in the recorded environment)")
            elif d.kind == "removed":
                click.echo(f"  - {d.name} {d.recorded} (not installed now)")
            else:
                click.echo(f"  ~ {d.name} {d.recorded} -> {d.current}")
    else:
        click.echo("Environment: same packages as recorded")
    for warning in result.warnings:
        if warning not in shown:  # the plan's warnings were printed before it ran
            click.echo(f"warning: {warning}")
    if result.new_run_id:
        click.echo(f"New run: {result.new_run_id}")
    rows = [("param", d.name, _text(d.old), _text(d.new), "") for d in result.param_diffs]
    rows += [
        (
            "metric",
            d.name,
            _text(d.old),
            _text(d.new),
            "" if d.rel_diff is None else f"{d.rel_diff:.3g}",
        )
        for d in result.metric_diffs
    ]
    if rows:
        header = ("kind", "name", "old", "new", "rel. diff")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    elif result.new_run_id:
        compared = len(result.metrics_compared)
        click.echo(f"Params and {compared} final metric(s) match.")
    if result.stderr_tail:
        click.echo("Last lines the rerun wrote to stderr:")
        click.echo(result.stderr_tail.rstrip("\n"))
    if result.worktree:
        click.echo(f"Worktree kept at {result.worktree}")


def _text(value: object) -> str:
    return "(missing)" if value is None else str(value)
