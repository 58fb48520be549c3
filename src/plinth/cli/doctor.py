"""``plinth doctor``: a table of every configured backend and whether it works."""

from __future__ import annotations

import click

from plinth.cli._common import echo_json, json_option


@click.command(epilog="Example: PLINTH_METADATA=postgresql+psycopg://me@db/ml plinth doctor")
@json_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check that each configured backend is reachable, writable and migrated.

    Settings of features not built yet (online_store, executor) show as "not used yet".
    Exits 1 when a check fails, 2 when the configuration itself is wrong.
    """
    from plinth.doctor import run_checks
    from plinth.settings import load_settings

    checks = run_checks(load_settings())
    ok = all(c.ok is not False for c in checks)
    if as_json:
        echo_json({"ok": ok, "checks": [c.to_dict() for c in checks]})
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="plinth doctor")
        for column in ("check", "status", "target", "detail"):
            table.add_column(column)
        for c in checks:
            status = {"ok": "[green]ok[/]", "fail": "[red]FAIL[/]"}.get(
                c.status, f"[dim]{c.status}[/]"
            )
            detail = c.detail if c.ok or not c.hint else f"{c.detail} — {c.hint}"
            table.add_row(c.name, status, c.target, detail)
        Console().print(table)
    if not ok:
        ctx.exit(1)
