"""``plinth triggers list``: the triggers pipelines declare, with what each watches, its next
cron tick, its last firing and the events pending now. Reads only; writes nothing."""

from __future__ import annotations

from typing import Any

import click

from plinth.cli._common import echo_json, json_option


@click.group()
def triggers() -> None:
    """The triggers pipelines declare (cron, dataset, monitor, manual)."""


@triggers.command(
    "list",
    epilog="Example: plinth triggers list flows.py:retrain pipeline.yaml --json",
)
@click.argument("targets", nargs=-1, required=True)
@json_option
def list_(targets: tuple[str, ...], as_json: bool) -> None:
    """Each trigger of pipeline TARGETS: its kind, what it watches, the next cron tick, the
    last firing and the events an agent would fire now."""
    from plinth.context import Context
    from plinth.pipelines.agent import load_triggers, trigger_status

    with Context.open() as ctx:
        rows = [trigger_status(spec, ctx=ctx) for spec in load_triggers(list(targets), ctx=ctx)]
    if as_json:
        echo_json(rows)
        return
    _print(rows)


def _print(rows: list[dict[str, Any]]) -> None:
    import datetime as dt

    from rich.table import Table

    from plinth.cli import _runs_view as view
    from plinth.cli._common import safe_markup as escape

    table = Table(box=None, pad_edge=False)
    for header in ("trigger", "kind", "pipeline", "watches", "next tick (UTC)", "last firing"):
        table.add_column(header, no_wrap=header != "last firing")
    table.add_column("pending", justify="right")
    for row in rows:
        last = row["last_firing"]
        if last is None:
            shown = "never" if row["first_seen"] or row["kind"] == "manual" else "not watched yet"
        else:
            when = dt.datetime.fromtimestamp(last["at_ms"] / 1000, dt.UTC)
            run = last["pipeline_run_id"] or "no run"
            shown = f"{when:%Y-%m-%d %H:%M:%S} {last['reason']} -> {run}"
        tick = row["next_tick"]
        table.add_row(
            escape(row["name"]),
            row["kind"],
            escape(row["pipeline"]),
            escape(row["watches"]),
            "-" if tick is None else tick[:19].replace("T", " "),
            escape(shown),
            str(len(row["pending"])),
        )
    out = view.console()
    out.print(table)
    pending = sum(len(row["pending"]) for row in rows)
    out.print(f"{len(rows)} trigger(s), {pending} pending event(s); --json lists them")
