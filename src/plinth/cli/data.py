"""``plinth data``: version files, folders and tables; status, diff, checkout, tags.

A thin layer over :mod:`plinth.datasets.api` (``plinth.datasets``). The commands
that must answer fast (add, status, diff, checkout, tag, log) print plain text and never
import Rich or SQLAlchemy on an embedded ledger; list and show print Rich tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, human_bytes, json_option, safe_markup
from plinth.guards.terminal import printable

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.datasets.manifests import FileChanges
    from plinth.entities import DatasetVersion, Erasure, ValidationRecord

KINDS = ("file", "directory", "table")
#: As ``plinth.datasets.snapshot.LINK_MODES`` (not imported here: the CLI starts light).
LINK_MODES = ("copy", "reflink", "hardlink", "auto")


@click.group(
    epilog="Example: plinth data add data/flights --name flights -m 'January' && "
    "plinth data status flights data/flights"
)
def data() -> None:
    """Version datasets: add, status, list, show, log, diff, checkout, tag."""


def version_json(v: DatasetVersion) -> dict[str, Any]:
    """The fields every ``plinth data ... --json`` prints for a version."""
    return {
        "ref": v.ref,
        "id": v.id,
        "dataset": v.dataset,
        "number": v.number,
        "parent": v.parent,
        "kind": v.kind,
        "size": v.size,
        "file_count": v.file_count,
        "row_count": v.row_count,
        "schema": v.schema,
        "message": v.message,
        "tags": list(v.tags),
        "manifest_digest": v.manifest_digest,
        "status": v.status,
        "profile_digest": v.profile_digest,
        "created_at": v.created_at,
        "created_by": v.created_by,
    }


def plural(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def summary(v: DatasetVersion) -> str:
    parts = [plural(v.file_count, "file"), human_bytes(v.size)]
    if v.row_count is not None:
        parts.append(plural(v.row_count, "row"))
    return ", ".join(parts)


def _echo_changes(changes: FileChanges, limit: int) -> None:
    shown = 0
    for label, items in (
        ("added", changes.added),
        ("removed", changes.removed),
        ("changed", changes.changed),
    ):
        for change in items:
            if shown == limit:
                click.echo(f"  ... and more (--limit {limit}; --json lists every file)")
                return
            click.echo(f"  {label + ':':9}{printable(change.path)}")
            shown += 1


def _changes_json(changes: FileChanges) -> dict[str, Any]:
    return changes.to_dict()


@data.command(
    epilog="Examples:\n\n  plinth data add data/flights --name flights -m 'January'\n\n"
    "  plinth data add flights.parquet --name flights --json"
)
@click.argument("path")
@click.option("--name", required=True, help="Dataset name (created on first add).")
@click.option("-m", "--message", help="What changed in this version.")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    help="Default: table for .parquet/.csv files, else file or directory.",
)
@click.option(
    "--no-cache", "no_cache", is_flag=True, help="Read every file (ignore the stat cache)."
)
@click.option(
    "--suite",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Validate the table with this suite first: a failing version is stored but "
    "quarantined (exit 1).",
)
@click.option(
    "--link",
    type=click.Choice(LINK_MODES),
    help="Store files as copy (default: the data_link setting), reflink, hardlink (the "
    "files become read-only) or auto (reflink, else hardlink, else copy). See docs/data.md.",
)
@json_option
def add(
    path: str,
    name: str,
    message: str | None,
    kind: str | None,
    no_cache: bool,
    suite: Path | None,
    link: str | None,
    as_json: bool,
) -> None:
    """Snapshot PATH (a file, a folder or a Parquet/CSV table) as a new version of NAME.

    Only files whose (path, inode, size, mtime) changed since they were last hashed are
    read. Unchanged content makes no new version. With --suite, the version is published
    only if every error-level check passes; otherwise it is quarantined with its report."""
    from plinth import datasets
    from plinth.cli._progress import progress_bar
    from plinth.context import Context

    with progress_bar(as_json) as bar, Context.open() as ctx:
        result = datasets.add(
            path,
            name,
            message,
            kind=kind,
            use_cache=not no_cache,
            suite=suite,
            progress=bar,
            link=link,
            ctx=ctx,
        )
    v = result.version
    if result.link_note is not None:
        click.echo(f"Note: {result.link_note}", err=True)
    checked = result.validation
    if as_json:
        echo_json(
            {
                "version": version_json(v),
                "created": result.created,
                "files_read": result.files_read,
                "bytes_read": result.bytes_read,
                "linked": dict(result.linked),
                "link_note": result.link_note,
                "validation": None if checked is None else checked.to_dict(),
            }
        )
    else:
        read = f"read {plural(result.files_read, 'file')}, {human_bytes(result.bytes_read)}"
        for how, count in sorted(result.linked.items()):
            read += f", {count:,} {'hard-linked' if how == 'hardlink' else 'reflinked'}"
        if result.created:
            click.echo(f"Added {v.ref} ({summary(v)}; {read})")
        else:
            click.echo(f"Unchanged: {v.ref} already has this content; no new version ({read})")
        if checked is not None:
            from plinth.validation.results import suite_label

            passed = len(checked.results) - len(checked.failures)
            click.echo(
                f"Validated with {suite_label(checked)}: "
                f"{passed} of {len(checked.results)} checks passed; report: {checked.report_path}"
            )
            for failure in checked.failures:
                click.echo(
                    f"  {failure.severity:<7} {failure.name} {failure.column or ''}: "
                    f"observed {failure.observed}, expected {failure.expected}"
                )
            if v.status == "quarantined":
                click.echo(
                    f"{v.ref} is QUARANTINED: plinth.datasets.load refuses it unless "
                    "allow_quarantined=True",
                    err=True,
                )
    if v.status == "quarantined" and checked is not None:
        click.get_current_context().exit(1)


@data.command(
    epilog="Examples:\n\n  plinth data status flights data/flights\n\n"
    "  plinth data status flights data/flights --json"
)
@click.argument("name")
@click.argument("path")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Files listed at most.",
)
@json_option
def status(name: str, path: str, limit: int, as_json: bool) -> None:
    """What PATH holds that the latest version of NAME does not (writes no version)."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        result = datasets.status(name, path, ctx=ctx)
    c = result.changes
    if as_json:
        echo_json(
            {
                "dataset": result.dataset,
                "version": version_json(result.version),
                "clean": result.clean,
                **_changes_json(c),
                "files_read": result.files_read,
            }
        )
        return
    ref = result.version.ref
    if result.clean:
        click.echo(
            f"{ref}: up to date ({plural(c.unchanged, 'file')}; "
            f"read {plural(result.files_read, 'file')})"
        )
        return
    click.echo(
        f"{ref}: {len(c.added)} added, {len(c.removed)} removed, {len(c.changed)} changed "
        f"(read {plural(result.files_read, 'file')})"
    )
    _echo_changes(c, limit)
    click.echo(f"Record them with: plinth data add {path} --name {name}")


@data.command("list", epilog="Examples:\n\n  plinth data list\n\n  plinth data list --json")
@json_option
def list_datasets(as_json: bool) -> None:
    """Every dataset of this project with its latest version."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        found = datasets.list_datasets(ctx=ctx)
    if as_json:
        echo_json(
            {
                "datasets": [
                    {
                        "name": d.name,
                        "versions": d.versions,
                        "latest": None if v is None else version_json(v),
                    }
                    for d, v in found
                ]
            }
        )
        return
    from rich.table import Table

    from plinth.cli import _runs_view as view

    table = Table(box=None, pad_edge=False)
    for header in ("name", "versions", "kind", "files", "size", "rows", "updated", "message"):
        table.add_column(
            header, justify="right" if header in ("versions", "files", "size", "rows") else "left"
        )
    for d, v in found:
        if v is None:
            table.add_row(safe_markup(d.name), "0", "", "", "", "", "", "")
            continue
        table.add_row(
            safe_markup(d.name),
            str(d.versions),
            v.kind,
            f"{v.file_count:,}",
            human_bytes(v.size),
            "" if v.row_count is None else f"{v.row_count:,}",
            view.fmt_time(v.created_at),
            safe_markup(v.message or ""),
        )
    out = view.console()
    if found:
        out.print(table)
    out.print(plural(len(found), "dataset"))


def _runs_of(ctx: Context, ref: str) -> tuple[DatasetVersion, dict[str, list[dict[str, Any]]]]:
    from plinth import datasets
    from plinth.entities import RecordRef

    version = datasets.get(ref, ctx=ctx)
    runs: dict[str, list[dict[str, Any]]] = {"used_by": [], "produced_by": []}
    for edge in ctx.ledger.lineage.edges_to(RecordRef(datasets.RECORD_TYPE, version.id)):
        key = {"used": "used_by", "produced": "produced_by"}.get(edge.relation)
        if key is None or edge.src.type != "run":
            continue
        run = ctx.ledger.runs.get_run(edge.src.id)
        runs[key].append({"id": run.id, "name": run.name, "status": run.status})
    return version, runs


@data.command(
    epilog="Examples:\n\n  plinth data show flights\n\n  plinth data show flights@gold --json"
)
@click.argument("ref")
@click.option("--files", "show_files", is_flag=True, help="List every file of the version.")
@json_option
def show(ref: str, show_files: bool, as_json: bool) -> None:
    """One version (REF is NAME, NAME@VERSION or NAME@TAG) and the runs that used or
    produced it."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        version, runs = _runs_of(ctx, ref)
        files = datasets.manifest(version.ref, ctx=ctx).files if show_files else None
        checks = [
            _validation_json(r)
            for r in ctx.ledger.validation.results(dataset_version_id=version.id)
        ]
        erasures = [
            _erasure_json(e)
            for e in ctx.ledger.datasets.erasures(
                ctx.ledger.datasets.get(ctx.project.id, version.dataset)
            )
            if version.number in e.erased_numbers or version.number == e.new_number
        ]
    if as_json:
        out: dict[str, Any] = {
            "version": version_json(version),
            **runs,
            "validations": checks,
            "erasures": erasures,
        }
        if files is not None:
            out["files"] = [
                {"path": p, "digest": d, "size": s} for p, (d, s) in sorted(files.items())
            ]
        echo_json(out)
        return
    from plinth.cli import _runs_view as view

    out_console = view.console()
    out_console.print(
        f"[bold]{safe_markup(version.ref)}[/]"
        + (f"  {safe_markup(version.message)}" if version.message else "")
    )
    pairs = [
        ("status", "" if version.status == "published" else version.status.upper()),
        ("kind", version.kind),
        ("files", f"{version.file_count:,}"),
        ("size", human_bytes(version.size)),
        ("rows", "" if version.row_count is None else f"{version.row_count:,}"),
        ("parent", "" if version.parent is None else f"{version.dataset}@{version.parent}"),
        ("tags", ", ".join(version.tags)),
        ("created", view.fmt_time(version.created_at)),
        ("by", version.created_by),
        ("manifest", version.manifest_digest),
    ]
    print_pairs(out_console, [(k, v) for k, v in pairs if v])
    if version.schema:
        out_console.print("\n[bold]schema[/]")
        print_pairs(out_console, [(c["name"], c["type"]) for c in version.schema])
    for key, title in (("used_by", "used by runs"), ("produced_by", "produced by runs")):
        if runs[key]:
            out_console.print(f"\n[bold]{title}[/]")
            print_pairs(
                out_console, [(r["id"], f"{r['name'] or ''} ({r['status']})") for r in runs[key]]
            )
    if checks:
        out_console.print("\n[bold]validations[/]")
        print_pairs(
            out_console,
            [
                (
                    f"suite {c['suite']} v{c['suite_number']}",
                    f"{'passed' if c['success'] else 'FAILED'}: {c['errors']} errors, "
                    f"{c['warnings']} warnings ({view.fmt_time(c['created_at'])}); "
                    f"failed: {', '.join(c['failed']) or '-'}",
                )
                for c in checks
            ],
        )
    for e in erasures:
        out_console.print("\n[bold]erasure[/]")
        print_pairs(
            out_console,
            [
                ("where", e["predicate"]),
                ("why", e["message"]),
                ("by", f"{e['created_by']} at {view.fmt_time(e['created_at'])}"),
                ("rows removed", f"{e['rows_removed']:,}"),
                ("erased", ", ".join(f"{version.dataset}@{n}" for n in e["erased_numbers"])),
            ],
        )
    if files is not None:
        out_console.print("\n[bold]files[/]")
        print_pairs(out_console, [(p, human_bytes(s)) for p, (_, s) in sorted(files.items())])


def _validation_json(record: ValidationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "suite": record.suite,
        "suite_number": record.suite_number,
        "success": record.success,
        "errors": record.error_count,
        "warnings": record.warning_count,
        "failed": [
            f"{r.get('check')}" + (f" {r['column']}" if r.get("column") else "")
            for r in record.results
            if not r.get("success")
        ],
        "report_digest": record.report_digest,
        "created_at": record.created_at,
        "created_by": record.created_by,
    }


def _erasure_json(e: Erasure) -> dict[str, Any]:
    return {
        "id": e.id,
        "predicate": e.predicate,
        "message": e.message,
        "rows_removed": e.rows_removed,
        "new_number": e.new_number,
        "erased_numbers": list(e.erased_numbers),
        "created_at": e.created_at,
        "created_by": e.created_by,
    }


def print_pairs(out: Any, pairs: list[tuple[str, str]]) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    for key, value in pairs:
        # keys and values come from records (column names, paths, messages): shown as text
        table.add_row(safe_markup(key), safe_markup(value))
    out.print(table)


@data.command(epilog="Examples:\n\n  plinth data log flights\n\n  plinth data log flights --json")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), help="Newest versions only.")
@json_option
def log(name: str, limit: int | None, as_json: bool) -> None:
    """The versions of NAME, newest first."""
    from datetime import datetime

    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        versions = datasets.versions(name, limit=limit, ctx=ctx)
    if as_json:
        echo_json({"dataset": name, "versions": [version_json(v) for v in versions]})
        return
    for v in versions:
        tags = f" ({', '.join(v.tags)})" if v.tags else ""
        when = datetime.fromtimestamp(v.created_at / 1000).strftime("%Y-%m-%d %H:%M:%S")
        status = "" if v.status == "published" else f" [{v.status.upper()}]"
        click.echo(
            f"{v.ref}{tags}{status}  {when}  {v.created_by}  {summary(v)}"
            + (f"  {v.message}" if v.message else "")
        )
    if not versions:
        click.echo(f"{name} has no versions yet")


@data.command(
    epilog="Examples:\n\n  plinth data diff flights@1 flights@2\n\n"
    "  plinth data diff flights@gold flights@latest --json"
)
@click.argument("old")
@click.argument("new")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Files listed at most.",
)
@json_option
def diff(old: str, new: str, limit: int, as_json: bool) -> None:
    """Files added, removed and changed from OLD to NEW; for tables also rows and columns."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        d = datasets.diff(old, new, ctx=ctx)
    c = d.changes
    columns = {"added": d.columns_added, "removed": d.columns_removed, "changed": d.columns_changed}
    if as_json:
        echo_json(
            {
                "old": version_json(d.old),
                "new": version_json(d.new),
                **_changes_json(c),
                "rows": None if d.rows is None else {"old": d.rows[0], "new": d.rows[1]},
                "columns": None if d.rows is None else columns,
            }
        )
        return
    click.echo(
        f"{d.old.ref} -> {d.new.ref}: {len(c.added)} added, {len(c.removed)} removed, "
        f"{len(c.changed)} changed, {c.unchanged:,} unchanged"
    )
    _echo_changes(c, limit)
    if d.rows is not None:
        before, after = ("?" if n is None else f"{n:,}" for n in d.rows)
        click.echo(f"rows: {before} -> {after}")
        for col in d.columns_added:
            click.echo(f"  column added:   {col['name']} ({col['type']})")
        for col in d.columns_removed:
            click.echo(f"  column removed: {col['name']} ({col['type']})")
        for col in d.columns_changed:
            click.echo(f"  column changed: {col['name']} ({col['old_type']} -> {col['new_type']})")


@data.command(
    epilog="Examples:\n\n  plinth data checkout flights@3 /tmp/flights\n\n"
    "  plinth data checkout flights@gold data/flights --force"
)
@click.argument("ref")
@click.argument("dir")
@click.option("--force", is_flag=True, help="Overwrite files whose content differs.")
@json_option
def checkout(ref: str, dir: str, force: bool, as_json: bool) -> None:
    """Write the files of REF under DIR (reflink or copy; every file verified)."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        result = datasets.checkout(ref, dir, force=force, ctx=ctx)
    s = result.stats
    if as_json:
        echo_json(
            {
                "version": version_json(result.version),
                "dir": str(result.path),
                "files": s.files,
                "reflinked": s.reflinked,
                "copied": s.copied,
                "present": s.present,
            }
        )
        return
    click.echo(
        f"Checked out {result.version.ref} into {result.path}: {plural(s.files, 'file')} "
        f"({s.reflinked} reflinked, {s.copied} copied, {s.present} already there)"
    )


@data.command(
    epilog="Examples:\n\n  plinth data tag flights@3 gold\n\n"
    "  plinth data tag flights@4 gold --force"
)
@click.argument("ref")
@click.argument("tag")
@click.option("--force", is_flag=True, help="Move the tag if it is on another version.")
@json_option
def tag(ref: str, tag: str, force: bool, as_json: bool) -> None:
    """Name the version REF with TAG, so that NAME@TAG refers to it."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        version = datasets.tag(ref, tag, force=force, ctx=ctx)
    if as_json:
        echo_json({"tag": tag, "version": version_json(version)})
        return
    click.echo(f"Tagged {version.ref} as {tag}")


# The data-quality and compliance commands live in their own module; they join the group here.
from plinth.cli.data_quality import forget, profile, scan  # noqa: E402

for _command in (profile, scan, forget):
    data.add_command(_command)
