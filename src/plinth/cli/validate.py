"""``plinth validate``: infer a suite from data, run a suite on data (report + ledger record).

A thin layer over :mod:`plinth.validation`. DATA is a Parquet/CSV file or folder, or a
dataset reference ``NAME[@VERSION|@TAG]``. ``run`` exits 1 when an error-level check fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.validation import ValidationResult


@click.group(
    epilog="Example: plinth validate infer data/flights.parquet -o suite.yaml && "
    "plinth validate run suite.yaml flights@3"
)
def validate() -> None:
    """Check data against suites: infer a suite, run it."""


@validate.command(
    epilog="Examples:\n\n  plinth validate infer data/flights.parquet -o suite.yaml\n\n"
    "  plinth validate infer flights@gold -o flights.yaml --name flights\n\n"
    "  plinth validate infer --for-serving delays@champion -o serving.yaml"
)
@click.argument("data")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the suite here (default: stdout).",
)
@click.option("--name", help="Suite name (default: the dataset or file name).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--for-serving",
    is_flag=True,
    help="DATA is a model (NAME@ALIAS): a suite over its inputs only, for a deployment's "
    "validate: or models predict --suite.",
)
@json_option
def infer(
    data: str, output: str | None, name: str | None, force: bool, for_serving: bool, as_json: bool
) -> None:
    """Write a suite inferred from DATA's profile, with tolerances to review and edit."""
    from plinth.context import Context
    from plinth.datasets import infer_suite
    from plinth.errors import UsageError

    if output is not None and Path(output).exists() and not force:
        raise UsageError(
            f"{output} already exists", hint="pass --force to overwrite it", field="output"
        )
    with Context.open() as ctx:
        if for_serving:
            from plinth.serving.infer import serving_suite

            suite = serving_suite(data, name=name, ctx=ctx)
        else:
            suite = infer_suite(data, name=name, ctx=ctx)
    text = suite.to_yaml()
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
    if as_json:
        echo_json({"suite": suite.name, "path": output, "checks": len(suite.checks), "yaml": text})
    elif output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"Wrote {output}: suite {suite.name!r} with {len(suite.checks)} checks")


@validate.command(
    "run",
    epilog="Examples:\n\n  plinth validate run suite.yaml data/flights.parquet\n\n"
    "  plinth validate run suite.yaml flights@3 --json --report report.html",
)
@click.argument("suite", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    help="Write the HTML report here (default: .plinth/reports/validation-SUITE-TIME.html).",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Do not record the result in the ledger (the HTML report is still written).",
)
@json_option
@click.pass_context
def run_command(
    ctx: click.Context, suite: str, data: str, report: str | None, no_record: bool, as_json: bool
) -> None:
    """Run SUITE (a YAML file) on DATA; exit 1 when an error-level check fails.

    Every check runs in one vectorised DuckDB pass. The result is recorded against the
    dataset version and the suite version, with the HTML report."""
    from plinth import datasets
    from plinth.cli._progress import progress_bar
    from plinth.context import Context
    from plinth.errors import CheckFailedError
    from plinth.validation import Suite
    from plinth.validation.records import default_report_path

    checks = Suite.load(suite)
    with progress_bar(as_json) as bar, Context.open() as plinth_ctx:
        # --no-record skips the ledger, not the report (the default path is the same)
        path = report or default_report_path(plinth_ctx, checks.name)
        result = datasets.validate(
            data, checks, record=not no_record, report_path=path, progress=bar, ctx=plinth_ctx
        )
    if as_json:
        echo_json(result.to_dict())
        if not result.success:
            ctx.exit(1)
        return
    _print(result)
    if not result.success:
        raise CheckFailedError(
            f"{len(result.errors)} of {len(result.results)} checks failed on {result.target}",
            hint="see the table above"
            + (f" and {result.report_path}" if result.report_path else ""),
        )


def _print(result: ValidationResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from plinth.cli import _runs_view as view
    from plinth.validation.report import format_fraction, format_observed, format_value
    from plinth.validation.results import suite_label

    table = Table(box=None, pad_edge=False)
    for header in ("#", "check", "column", "result", "observed", "expected", "failing", "sample"):
        table.add_column(header, justify="right" if header in ("#", "failing") else "left")
    for r in result.results:
        if r.success:
            status = "[green]pass[/]"
        elif r.severity == "warning":
            status = "[yellow]warning[/]"
        else:
            status = "[red]FAIL[/]"
        observed = format_observed(r, 40)
        table.add_row(
            str(r.index + 1),
            escape(r.name),
            escape(r.column or ""),
            status,
            escape(observed),
            escape(format_value(r.expected, 40)),
            format_fraction(r.failing_fraction),
            escape(", ".join(format_value(v, 24) for v in r.sample)),
        )
    out = view.console()
    out.print(table)
    verdict = "[green]passed[/]" if result.success else "[red]failed[/]"
    out.print(
        f"{escape(result.target)}: {verdict} — {len(result.results)} checks, "
        f"{len(result.errors)} errors, {len(result.warnings)} warnings; "
        f"{escape(suite_label(result))}, {result.row_count:,} rows, "
        f"{result.elapsed_s:.3f} s"
    )
    if result.report_path:
        out.print(f"Report: {escape(result.report_path)}")
