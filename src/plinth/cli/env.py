"""``plinth env``: the environment a run was recorded with, shown or exported pinned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Environment


@click.group(epilog="Example: plinth env export RUN_ID --format requirements -o requirements.txt")
def env() -> None:
    """Show or export the Python environment a run was recorded with."""


@env.command(
    epilog="Example: plinth env export RUN_ID --format dockerfile -o Dockerfile\n\n"
    "  plinth env export RUN_ID --format requirements -o requirements.txt"
)
@click.argument("run_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["requirements", "dockerfile"]),
    default="requirements",
    show_default=True,
    help="A pinned requirements file, or a Dockerfile installing requirements.txt.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def export(run_id: str, fmt: str, output: Path | None) -> None:
    """Write RUN_ID's environment as pinned requirements or a Dockerfile. RUN_ID may be a
    unique prefix (8+ characters)."""
    from plinth.context import Context
    from plinth.versioning import export_environment

    with Context.open() as ctx:
        text = export_environment(_environment_of(ctx, run_id), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    from plinth.errors import UsageError

    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}", field="output") from None
    click.echo(f"Wrote {output}", err=True)


@env.command(epilog="Example: plinth env show RUN_ID --json")
@click.argument("run_id")
@json_option
def show(run_id: str, as_json: bool) -> None:
    """Print RUN_ID's environment: digest, Python, platform, hardware and packages. RUN_ID
    may be a unique prefix (8+ characters)."""
    from plinth.context import Context
    from plinth.versioning.env import check_recorded_environment

    with Context.open() as ctx:
        record = _environment_of(ctx, run_id)
    # A record may have been written straight into the ledger: never print control characters
    # (terminal escapes) from it; refuse it as export does, naming the field.
    check_recorded_environment(record)
    if as_json:
        echo_json(
            {
                "id": record.id,
                "digest": record.digest,
                "python": record.python,
                "platform": record.platform,
                "extra": record.extra,
                "packages": record.packages,
                "created_at": record.created_at,
            }
        )
        return
    click.echo(f"environment {record.id}")
    click.echo(f"digest      {record.digest}")
    click.echo(f"python      {record.python}")
    click.echo(f"platform    {record.platform}")
    for key, value in sorted(record.extra.items()):
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        click.echo(f"{key:<11} {shown}")
    click.echo(f"packages    {len(record.packages)}")
    for name, version in sorted(record.packages.items()):
        click.echo(f"  {name}=={version}")


def _environment_of(ctx: Context, run_id: str) -> Environment:
    from plinth.errors import UsageError

    run = ctx.ledger.runs.get_run(ctx.ledger.search.resolve_run_id(run_id))
    if run.environment_id is None:
        raise UsageError(
            f"run {run.id} has no environment recorded",
            hint="runs started with plinth.start_run record one automatically",
            field="run_id",
        )
    return ctx.ledger.environments.get(run.environment_id)
