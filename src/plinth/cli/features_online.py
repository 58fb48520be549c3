"""``plinth features materialize`` and ``plinth features push``: the online side of the
feature store, added to the ``features`` group by :mod:`plinth.cli.features`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from plinth.cli._common import echo_json, json_option

__all__ = ["COMMANDS", "materialize", "push"]


@click.command(
    epilog="Example: plinth features materialize\n\n"
    "  plinth features materialize --end 2026-03-01T00:00:00+00:00 --views weather,planes"
)
@click.option("--end", default=None, help="Materialize events up to this ISO time (default: now).")
@click.option("--views", default=None, help="Only these feature views (comma-separated names).")
@json_option
def materialize(end: str | None, views: str | None, as_json: bool) -> None:
    """Write each feature view's latest values since its last materialization to the
    online store (the 'online_store' setting) and record it."""
    from plinth.context import Context
    from plinth.features.materialize import materialize as run

    with Context.open() as ctx:
        done = run(end=end, views=views, ctx=ctx)
        store = ctx.online_store.describe()
    if as_json:
        echo_json([asdict(m) for m in done])
        return
    if not done:
        click.echo("Nothing to materialize: every view is up to date.")
        return
    for m in done:
        since = "the beginning" if m.start_ms is None else _time(m.start_ms)
        plural = "" if m.rows == 1 else "s"
        click.echo(f"{m.view}: {m.rows} row{plural}, events after {since} up to {_time(m.end_ms)}")
    click.echo(f"Written to {store}.")


@click.command(epilog="Example: plinth features push weather fresh_weather.parquet")
@click.argument("view")
@click.argument("path", type=click.Path(dir_okay=True, exists=False))
@json_option
def push(view: str, path: str, as_json: bool) -> None:
    """Push the rows of a Parquet or CSV file to feature view VIEW: written to the online
    store and appended to the view's offline log."""
    from plinth.context import Context
    from plinth.features.push import push as run
    from plinth.tables import read_path

    table = read_path(path, field="path")
    with Context.open() as ctx:
        pushed = run(view, table, ctx=ctx)
    if as_json:
        echo_json(asdict(pushed))
        return
    plural = "" if pushed.rows == 1 else "s"
    click.echo(f"Pushed {pushed.rows} row{plural} to {pushed.view} (blob {pushed.digest[:12]}).")


def _time(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


#: What :mod:`plinth.cli.features` adds to its group.
COMMANDS: tuple[Any, ...] = (materialize, push)
