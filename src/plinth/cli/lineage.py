"""``plinth lineage REQUEST_ID``: from a logged prediction back to the data it came from.

A thin layer over :func:`plinth.serving.predlog.lineage_of_request`: the prediction (its
deployment, batch, inputs and output), the model version, the run, its code commit, its
environment and the dataset versions the run used, with their validation results.
"""

from __future__ import annotations

import click

from plinth.cli._common import echo_json, json_option


@click.command(
    epilog="Examples:\n\n  plinth lineage 0190f7a2-5c1e-7c3a-9d2b-8e4f5a6b7c8d\n\n"
    "  plinth lineage 0190f7a2-5c1e-7c3a-9d2b-8e4f5a6b7c8d --json"
)
@click.argument("request_id")
@json_option
def lineage(request_id: str, as_json: bool) -> None:
    """Walk from the logged prediction REQUEST_ID to its model version, run, code commit,
    environment and training dataset versions."""
    from plinth.context import Context
    from plinth.serving.lineage import lineage_lines
    from plinth.serving.predlog import lineage_of_request

    with Context.open() as ctx:
        chain = lineage_of_request(ctx, request_id)
    if as_json:
        echo_json(chain)
        return
    from plinth.guards.terminal import printable

    # Every field of the chain comes from records any ledger writer can set (a run name, a
    # logged input, a flavor): show terminal escapes in them, never send them.
    for line in lineage_lines(chain):
        click.echo(printable(line))
