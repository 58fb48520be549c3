"""``plinth demo``: the product's runnable story."""

from __future__ import annotations

from pathlib import Path

import click

from plinth.cli._common import echo_json, json_option


@click.command(epilog="Example: plinth demo --dir /tmp/plinth-demo")
@click.option(
    "--dir",
    "directory",
    default="plinth-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo project lives (created if missing, reused if present).",
)
@json_option
def demo(directory: Path, as_json: bool) -> None:
    """Create a demo project and run the end-to-end story in it."""
    from plinth.demo import run_demo

    result = run_demo(directory, echo=(lambda _: None) if as_json else click.echo)
    if as_json:
        echo_json(
            {
                "directory": str(result.directory),
                "run_id": result.run_id,
                "artifact_digest": result.artifact_digest,
                "metrics": result.metrics,
            }
        )
    else:
        click.echo(f"Done. Look around: cd {directory} && plinth doctor")
