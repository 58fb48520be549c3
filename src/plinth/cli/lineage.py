"""``plinth lineage ID``: from a logged prediction back to the data it came from; or a
pipeline run (or a decision taken in one) to its trigger, steps, records and decisions.

A thin layer over :func:`plinth.serving.lookup.lineage_of_request`: the prediction (its
deployment, batch, inputs and output), the model version, the run, its code commit, its
environment and the dataset versions the run used, with their validation results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.context import Context


@click.command(
    epilog="Examples:\n\n  plinth lineage 0190f7a2-5c1e-7c3a-9d2b-8e4f5a6b7c8d\n\n"
    "  plinth lineage 0190f7a2-5c1e-7c3a-9d2b-8e4f5a6b7c8d --json"
)
@click.argument("request_id")
@json_option
def lineage(request_id: str, as_json: bool) -> None:
    """Walk from the logged prediction REQUEST_ID to its model version, run, code commit,
    environment and training dataset versions; or from a pipeline run (or decision) id to
    its trigger, steps, the records they used and produced, and its decisions."""
    from plinth.context import Context
    from plinth.serving.lineage import lineage_lines

    # lookup, not predlog: the log's writer imports pyarrow; a pipeline id needs none.
    from plinth.serving.lookup import lineage_of_request

    with Context.open() as ctx:
        trail = _pipeline_trail(ctx, request_id)
        if trail is not None:  # a pipeline run or a decision (plinth demo's timeline)
            from plinth.pipelines.trail import pipeline_lineage_lines

            if as_json:
                echo_json(trail)
            else:
                for line in pipeline_lineage_lines(trail):
                    click.echo(printable_line(line))
            return
        chain = lineage_of_request(ctx, request_id)
    if as_json:
        echo_json(chain)
        return
    from plinth.guards.terminal import printable

    # Every field of the chain comes from records any ledger writer can set (a run name, a
    # logged input, a flavor): show terminal escapes in them, never send them.
    for line in lineage_lines(chain):
        click.echo(printable(line))


def printable_line(line: str) -> str:
    from plinth.guards.terminal import printable

    return printable(line)


def _pipeline_trail(ctx: Context, record_id: str) -> dict[str, Any] | None:
    """The lineage of a pipeline run or decision with this id, else None."""
    from plinth.errors import NotFoundError
    from plinth.pipelines.trail import pipeline_lineage

    try:
        return pipeline_lineage(ctx, record_id)
    except NotFoundError:
        return None
