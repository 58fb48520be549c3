"""``plinth features``: record feature definitions (plan, apply), list and show them.

A thin layer over :mod:`plinth.features.registry`. ``plan`` shows everything it finds and
exits 2 when a definition is refused (a problem; breaking changes alone exit 0); ``apply``
exits 2 and records nothing when the plan has a problem, or a breaking change without
``--allow-breaking``.

Other modules add subcommands by naming them in :data:`SUBCOMMANDS` (loaded when used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option, safe_markup

if TYPE_CHECKING:
    from plinth.features.registry import Plan

#: name -> (module, attribute, one-line help): subcommands imported only when they run.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "materialize": (
        "plinth.cli.features_online",
        "materialize",
        "Write the latest feature values to the online store.",
    ),
    "push": (
        "plinth.cli.features_online",
        "push",
        "Push fresh rows to a view: online store and offline log.",
    ),
    "skew": (
        "plinth.cli.features_skew",
        "skew",
        "Compare served features with the model's training set.",
    ),
}
_KINDS = ("entity", "feature_view", "on_demand_view", "feature_service")


class _FeaturesGroup(click.Group):
    """The group's own commands plus the lazily imported :data:`SUBCOMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(70)))
            else:
                rows.append((name, SUBCOMMANDS[name][2]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=_FeaturesGroup,
    epilog="Example: plinth features plan features.yaml && plinth features apply features.yaml",
)
def features() -> None:
    """The feature store: plan, apply, list and show definitions; materialize, push."""


def _load(path: str) -> list[Any]:
    from plinth.features.files import load_definitions

    return load_definitions(path)


def _print_plan(result: Plan) -> None:
    from rich.table import Table

    from plinth.cli import _runs_view as view

    out = view.console()
    table = Table(box=None, pad_edge=False)
    for header in ("kind", "name", "status", "version", "changes"):
        table.add_column(header)
    for c in result.changes:
        version = "" if c.version is None else str(c.version)
        status = "breaking" if c.breaking else c.status
        detail = "; ".join([*c.breaking, *c.changes])
        table.add_row(
            c.kind, safe_markup(c.name), status, version, safe_markup(detail) if detail else ""
        )
    if result.changes:
        out.print(table)
    counts = [f"{len(result.added)} added", f"{len(result.changed)} changed"]
    counts += [f"{len(result.unchanged)} unchanged", f"{len(result.breaking)} breaking"]
    out.print(", ".join(counts) + ".")
    for w in result.warnings:
        out.print(f"warning: {safe_markup(w)}")
    if result.problems:
        out.print(f"{len(result.problems)} problem(s); apply would record nothing:")
        for p in result.problems:
            out.print(f"  {safe_markup(p.field)}: {safe_markup(p.message)}")


@features.command(
    epilog="Examples:\n\n  plinth features plan features.yaml\n\n"
    "  plinth features plan features.py --json"
)
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def plan(file: str, as_json: bool) -> None:
    """Show what applying FILE (YAML or Python) would record: definitions added, changed
    (and how), unchanged, breaking (a removed or retyped feature a registered model
    uses), and every problem found. Records nothing; exits 0, or 2 when a definition is
    refused (each problem is listed with the field it names)."""
    from plinth.context import Context
    from plinth.features.registry import plan as make_plan

    definitions = _load(file)
    with Context.open() as ctx:
        result = make_plan(definitions, ctx=ctx)
    if as_json:
        echo_json(result.to_dict())
    else:
        _print_plan(result)
    if result.problems:
        click.get_current_context().exit(2)


@features.command(
    epilog="Examples:\n\n  plinth features apply features.yaml\n\n"
    "  plinth features apply features.py --dry-run\n\n"
    "  plinth features apply features.yaml --allow-breaking --json"
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Plan and check only; record nothing.")
@click.option(
    "--allow-breaking",
    is_flag=True,
    help="Record a change that removes or retypes a feature a registered model uses.",
)
@json_option
def apply(file: str, dry_run: bool, allow_breaking: bool, as_json: bool) -> None:
    """Record the definitions in FILE (YAML or Python), each version by digest: the same
    definition again is the same version. Refuses (exit 2, nothing recorded) when any
    definition has a problem, or a change is breaking without --allow-breaking."""
    from plinth.context import Context
    from plinth.features.registry import PlanError
    from plinth.features.registry import apply as record
    from plinth.features.registry import plan as make_plan

    definitions = _load(file)
    with Context.open() as ctx:
        if dry_run:
            result = make_plan(definitions, ctx=ctx)
            if result.problems:
                raise PlanError(result.problems)
            if as_json:
                echo_json({**result.to_dict(), "recorded": []})
                return
            _print_plan(result)
            click.echo("Dry run: nothing recorded.")
            return
        applied = record(definitions, allow_breaking=allow_breaking, ctx=ctx)
    if as_json:
        echo_json(applied.to_dict())
        return
    _print_plan(applied.plan)
    new = applied.new
    refs = ", ".join(r.ref for r in new)
    click.echo(f"Recorded {len(new)} new version(s){': ' + refs if new else ''}.")


@features.command(
    "list",
    epilog="Examples:\n\n  plinth features list\n\n"
    "  plinth features list --kind feature_view --json",
)
@click.option("--kind", type=click.Choice(_KINDS), help="Only definitions of this kind.")
@json_option
def list_(kind: str | None, as_json: bool) -> None:
    """List the newest version of every recorded feature definition."""
    from plinth.context import Context
    from plinth.features.registry import list_definitions

    with Context.open() as ctx:
        found = list_definitions(kind, ctx=ctx)
    if as_json:
        echo_json(
            [
                {
                    "kind": d.kind,
                    "name": d.name,
                    "version": d.number,
                    "ref": d.ref,
                    "digest": d.digest,
                    "created_at": d.created_at,
                }
                for d in found
            ]
        )
        return
    from rich.table import Table

    from plinth.cli import _runs_view as view

    table = Table(box=None, pad_edge=False)
    for header in ("kind", "name", "version", "updated", "summary"):
        table.add_column(header)
    for d in found:
        table.add_row(
            d.kind,
            safe_markup(d.name),
            str(d.number),
            view.fmt_time(d.created_at),
            safe_markup(_summary(d.kind, d.spec)),
        )
    out = view.console()
    if found:
        out.print(table)
    out.print(f"{len(found)} definition{'' if len(found) == 1 else 's'}.")


def _summary(kind: str, spec: dict[str, Any]) -> str:
    if kind == "entity":
        return "keys: " + ", ".join(spec.get("join_keys") or [])
    if kind == "feature_service":
        items = spec.get("features") or []
        return "reads: " + ", ".join(str(i.get("view")) for i in items if isinstance(i, dict))
    feats = spec.get("features") or {}
    return f"{len(feats)} feature{'' if len(feats) == 1 else 's'}: " + ", ".join(feats)


@features.command(
    epilog="Examples:\n\n  plinth features show planes\n\n"
    "  plinth features show delays --kind feature_service --json"
)
@click.argument("name")
@click.option("--kind", type=click.Choice(_KINDS), help="Which kind, when NAME is used twice.")
@json_option
def show(name: str, kind: str | None, as_json: bool) -> None:
    """Show every version of the definition NAME, the newest spec and, for a feature view,
    its materializations."""
    import json

    from plinth.context import Context
    from plinth.features.registry import show as find

    with Context.open() as ctx:
        shown = find(name, kind=kind, ctx=ctx)
    if as_json:
        echo_json(shown.to_dict())
        return
    from plinth.cli import _runs_view as view

    out = view.console()
    latest = shown.latest
    out.print(f"{latest.kind} {safe_markup(latest.ref)}")
    for v in shown.versions:
        out.print(
            f"  version {v.number}  {view.fmt_time(v.created_at)}  {safe_markup(v.created_by)}"
            f"  digest {v.digest[:12]}"
        )
    out.print("spec (newest):")
    for line in json.dumps(latest.spec, indent=2, sort_keys=True).splitlines():
        out.print(safe_markup(line))
    if shown.materializations:
        out.print("materializations (newest first):")
        for m in shown.materializations:
            out.print(f"  {view.fmt_time(m.created_at)}  {m.rows} rows  to {safe_markup(m.store)}")
