"""``plinth data profile | scan | forget``: a version's statistics, personal data in it, and
the audited removal of rows (joined to the ``plinth data`` group by :mod:`plinth.cli.data`)."""

from __future__ import annotations

from typing import Any

import click

from plinth.cli._common import echo_json, human_bytes, json_option

__all__ = ["forget", "profile", "scan"]


def _data() -> Any:
    """:mod:`plinth.cli.data`, which imports this module: its formatting helpers."""
    from plinth.cli import data

    return data


@click.command(
    epilog="Examples:\n\n  plinth data profile flights\n\n  plinth data profile flights@3 --json"
)
@click.argument("ref")
@json_option
def profile(ref: str, as_json: bool) -> None:
    """Column statistics of the table version REF (NAME, NAME@VERSION or NAME@TAG).

    Computed when the version was added (or now, once, for older versions)."""
    import json

    from plinth import datasets
    from plinth.cli._progress import progress_bar
    from plinth.context import Context

    with progress_bar(as_json) as bar, Context.open() as ctx:
        version = datasets.get(ref, ctx=ctx)
        found = datasets.profile(version, progress=bar, ctx=ctx)
    if as_json:
        doc = json.loads(found.to_bytes())
        for column in doc["columns"]:
            del column["state"]  # sketches: for merging, not for reading
        echo_json({"version": _data().version_json(version), "profile": doc})
        return
    from rich.table import Table

    from plinth.cli import _runs_view as view

    def fmt(x: Any) -> str:
        return "" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)

    table = Table(box=None, pad_edge=False)
    for header in ("column", "type", "nulls", "min", "max", "mean", "std", "p50", "distinct"):
        table.add_column(header, justify="left" if header in ("column", "type") else "right")
    table.add_column("top values")
    for c in found.columns.values():
        top = ", ".join(f"{v} ({n:,})" for v, n in list(c.top_values.items())[:3])
        table.add_row(
            c.name,
            c.type,
            f"{c.null_count:,} ({c.null_fraction:.1%})" if c.null_count else "0",
            fmt(c.min),
            fmt(c.max),
            fmt(c.mean),
            fmt(c.std),
            fmt(c.quantiles.get(0.5)),
            f"{c.distinct:,}" + ("" if c.distinct_exact else " ~"),
            top,
        )
    out = view.console()
    out.print(f"[bold]{version.ref}[/]  {_data().plural(found.row_count, 'row')}")
    out.print(table)


@click.command(
    epilog="Examples:\n\n  plinth data scan users\n\n"
    "  plinth data scan users@3 --sample 50000 --json"
)
@click.argument("ref")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Rows sampled (the same rows for every column).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.1,
    show_default=True,
    help="Share of a column's sampled non-null values that must match for it to be reported.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the row sample.")
@json_option
def scan(ref: str, sample: int, threshold: float, seed: int, as_json: bool) -> None:
    """Report string columns of the table REF that hold personal data: e-mail addresses,
    phone numbers, card numbers (Luhn), IBANs (mod 97), IP addresses, US SSNs, Spanish
    DNI/NIE numbers. Examples are masked. Exits 0 whatever it finds."""
    from plinth import datasets
    from plinth.context import Context
    from plinth.validation import pii

    with Context.open() as ctx:
        version = datasets.get(ref, ctx=ctx)
        table = datasets.load(version.ref, to="arrow", allow_quarantined=True, ctx=ctx)
    findings = pii.scan(table, sample=sample, seed=seed, threshold=threshold)
    sampled = min(sample, table.num_rows)
    if as_json:
        echo_json(
            {
                "version": _data().version_json(version),
                "sampled_rows": sampled,
                "threshold": threshold,
                "findings": [f.to_dict() for f in findings],
            }
        )
        return
    from rich.table import Table

    from plinth.cli import _runs_view as view

    out = view.console()
    head = f"{version.ref}: {_data().plural(sampled, 'row')} sampled"
    if not findings:
        out.print(f"{head}; no personal data found (threshold {threshold:.0%})")
        return
    table_out = Table(box=None, pad_edge=False)
    for header in ("column", "kind", "matches", "share", "examples"):
        table_out.add_column(header, justify="right" if header in ("matches", "share") else "left")
    for f in findings:
        table_out.add_row(
            f.column,
            f.kind,
            f"{f.matches:,}/{f.sampled:,}",
            f"{f.fraction:.1%}",
            ", ".join(f.examples),
        )
    out.print(f"{head}; {_data().plural(len(findings), 'finding')}")
    out.print(table_out)
    out.print(
        f"Mark columns that must not reach training in plinth.yaml, e.g. "
        f"pii: {{{version.dataset}: [{findings[0].column}]}}",
        highlight=False,
        markup=False,
    )


@click.command(
    epilog="Examples:\n\n"
    "  plinth data forget users --where \"user_id = 42\" -m 'erasure request'\n\n"
    "  plinth data forget users --where \"email = 'a@b.org'\" -m 'ticket 123' --json"
)
@click.argument("name")
@click.option(
    "--where",
    "where",
    required=True,
    help="DuckDB SQL condition over the table's columns; matching rows are removed.",
)
@click.option("-m", "--message", required=True, help="Why the rows are removed (audited).")
@json_option
def forget(name: str, where: str, message: str, as_json: bool) -> None:
    """Remove the rows of NAME matching --where from its history: write a new version
    without them, mark every older version holding them erased, delete their blobs and
    record who erased what and why."""
    from plinth import datasets
    from plinth.context import Context

    with Context.open() as ctx:
        result = datasets.forget(name, where, message, ctx=ctx)
    e = result.erasure
    if as_json:
        echo_json(
            {
                "version": None if result.version is None else _data().version_json(result.version),
                "rows_removed": result.rows_removed,
                "erased": [v.ref for v in result.erased],
                "erasure": {
                    "id": e.id,
                    "predicate": e.predicate,
                    "message": e.message,
                    "new_number": e.new_number,
                    "erased_numbers": list(e.erased_numbers),
                    "released_blobs": list(e.released_blobs),
                    "created_at": e.created_at,
                    "created_by": e.created_by,
                },
                "blobs_deleted": result.blobs_deleted,
                "bytes_deleted": result.bytes_deleted,
                "blobs_still_referenced": result.blobs_still_referenced,
            }
        )
        return
    if result.version is not None:
        click.echo(
            f"Wrote {result.version.ref} without {_data().plural(result.rows_removed, 'row')} "
            f"({_data().summary(result.version)})"
        )
    click.echo(f"Erased {', '.join(v.ref for v in result.erased)}")
    click.echo(
        f"Deleted {_data().plural(result.blobs_deleted, 'blob')} "
        f"({human_bytes(result.bytes_deleted)})"
        + (
            f"; {result.blobs_still_referenced} still referenced by other records"
            if result.blobs_still_referenced
            else ""
        )
    )
