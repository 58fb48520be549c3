"""``plinth gc``: find blobs no record references; delete them only with --yes."""

from __future__ import annotations

import click

from plinth.cli._common import echo_json, human_bytes, json_option, parse_duration


@click.command(epilog="Example: plinth gc            (dry run)\n\n  plinth gc --yes --grace 1d")
@click.option("--dry-run", "dry_run", is_flag=True, help="Only report (the default).")
@click.option("--yes", is_flag=True, help="Really delete, and log the deletion in the ledger.")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Keep blobs younger than this (in flight writers may be about to reference them).",
)
@json_option
def gc(dry_run: bool, yes: bool, grace: str, as_json: bool) -> None:
    """Report (default) or delete (--yes) blobs that no ledger record references."""
    from plinth.context import Context
    from plinth.errors import UsageError
    from plinth.gc import collect_garbage, plan_gc

    if dry_run and yes:
        raise UsageError("--dry-run and --yes contradict each other", hint="pass one of them")
    grace_s = parse_duration(grace, option="--grace")
    with Context.open() as ctx:
        plan = plan_gc(ctx, grace_seconds=grace_s)
        event = collect_garbage(ctx, plan) if yes else None
    deleted = event.blobs_deleted if event else 0
    if as_json:
        echo_json(
            {
                "dry_run": event is None,
                "unreferenced": plan.count,
                "bytes": plan.bytes,
                "blobs_total": plan.blobs_total,
                "kept_young": plan.kept_young,
                "deleted": deleted,
                "event_id": event.id if event else None,
            }
        )
        return
    size = human_bytes(plan.bytes)
    if event is None:
        click.echo(
            f"{plan.count} unreferenced blob(s), {size}, of {plan.blobs_total} "
            f"({plan.kept_young} younger than {grace} kept). Run 'plinth gc --yes' to delete."
        )
    else:
        click.echo(f"Deleted {deleted} blob(s), {size}; logged as gc event {event.id}.")
