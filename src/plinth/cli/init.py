"""``plinth init``: create plinth.yaml and the embedded stores."""

from __future__ import annotations

from pathlib import Path

import click

from plinth.cli._common import echo_json, json_option


@click.command(epilog="Example: plinth init --project flights")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name (default: the folder's name).")
@click.option("--metadata", help="Ledger URI (default: sqlite:///.plinth/plinth.db).")
@click.option("--artifacts", help="Blob store: folder or s3://BUCKET/PREFIX.")
@click.option("--force", is_flag=True, help="Overwrite an existing plinth.yaml.")
@json_option
def init(
    directory: Path | None,
    project: str | None,
    metadata: str | None,
    artifacts: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a project in DIRECTORY (default: here): plinth.yaml, ledger, artifact store."""
    from plinth.project import init_project

    result = init_project(
        directory, force=force, project=project, metadata=metadata, artifacts=artifacts
    )
    if as_json:
        echo_json(
            {
                "config_file": str(result.config_file),
                "project": result.project,
                "metadata": result.metadata,
                "artifacts": result.artifacts,
                "migrations_applied": result.migrations_applied,
            }
        )
        return
    click.echo(f"Created {result.config_file} for project '{result.project}'")
    click.echo(f"  metadata:  {result.metadata}")
    click.echo(f"  artifacts: {result.artifacts}")
    click.echo("Next: plinth doctor")
