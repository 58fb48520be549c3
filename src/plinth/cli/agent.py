"""``plinth agent``: watch the triggers of some pipelines and run them (a thin layer over
:func:`plinth.pipelines.agent.run_agent`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option, parse_duration

if TYPE_CHECKING:
    from plinth.pipelines.agent import Fired


def _print_fired(fired: Fired) -> None:
    import datetime as dt

    from plinth.guards.terminal import printable

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    run = f"run {fired.pipeline_run_id} {fired.status}" if fired.pipeline_run_id else "no run"
    error = f": {fired.error}" if fired.error else ""
    click.echo(f"{when}  {printable(fired.trigger)}: {printable(fired.reason)} -> {run}{error}")


@click.command(
    epilog="Example: plinth agent flows.py:retrain pipeline.yaml\n\n"
    "  plinth agent flows.py:retrain --once   (one pass, e.g. from cron or CI)"
)
@click.argument("targets", nargs=-1, required=True)
@click.option("--once", is_flag=True, help="Make one pass over the triggers, then exit.")
@click.option(
    "--poll",
    default="30s",
    show_default=True,
    help="Time between passes: 30, 30s, 5m, 1h.",
)
@json_option
@click.pass_context
def agent(
    click_ctx: click.Context, targets: tuple[str, ...], once: bool, poll: str, as_json: bool
) -> None:
    """Watch the triggers of pipeline TARGETS (FILE.py:NAME or pipeline.yaml) and run them.

    Each pass claims every new event (a cron tick, a dataset version, a monitor alert) in the
    ledger, so two agents never run one event twice. SIGINT/SIGTERM stop it after the run in
    progress. Exits 1 if a run it started failed.
    """
    from plinth.context import Context
    from plinth.errors import UsageError
    from plinth.pipelines.agent import load_triggers, run_agent

    seconds = parse_duration(poll, option="--poll")
    if seconds <= 0:
        raise UsageError("--poll must be more than 0 seconds", field="--poll")
    with Context.open() as ctx:
        specs = load_triggers(list(targets), ctx=ctx)
        if not as_json:
            watched = ", ".join(f"{s.name} ({s.watches})" for s in specs) or "none"
            mode = "one pass" if once else f"every {poll}; Ctrl-C to stop"
            click.echo(f"Watching {len(specs)} trigger(s) ({mode}): {watched}")
        report = run_agent(
            specs,
            once=once,
            poll_seconds=seconds,
            ctx=ctx,
            on_fired=None if as_json else _print_fired,
        )
    if as_json:
        echo_json(report.to_dict())
    else:
        for error in report.errors:
            click.echo(f"error: trigger {error}", err=True)
        click.echo(
            f"{report.passes} pass(es), {len(report.fired)} run(s) started"
            + ("" if report.ok else "; some failed")
        )
    if not report.ok:
        click_ctx.exit(1)
