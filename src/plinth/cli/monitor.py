"""``plinth monitor``: watch models and data for drift.

A thin layer over :mod:`plinth.monitoring`. ``drift`` compares two tables ad hoc: each of
REF and CUR is a Parquet or CSV file, a saved profile (``.json``), or a dataset reference
``NAME[@VERSION|@TAG]`` (loaded as data, so p-values are exact). It exits 0 whether or
not drift is found, unless ``--fail-on-drift``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.monitoring import DriftReport

#: Suffixes read as files; a missing path with one of them is not looked up as a dataset.
_HINT = "pass a .parquet or .csv file, a profile .json, or a dataset reference NAME[@VERSION]"


@click.group(epilog="Example: plinth monitor drift flights@9 data/this_week.parquet")
def monitor() -> None:
    """Watch models and data for drift: drift, run, watch, labels."""


@monitor.command(
    epilog="Examples:\n\n  plinth monitor drift flights@9 flights@12\n\n"
    "  plinth monitor drift train.parquet today.csv --columns delay,carrier "
    "--method delay=psi --threshold psi=0.2 --fail-on-drift\n\n"
    "  plinth monitor drift flights@gold batch.parquet --json --html report.html\n\n"
    "  plinth monitor drift flights@9 batch.parquet --model delays@champion"
)
@click.argument("ref")
@click.argument("cur")
@click.option("--columns", help="Compare only these columns (comma-separated).")
@click.option(
    "--exclude",
    "excluded",
    multiple=True,
    metavar="COL",
    help="Leave COL out, listed as not tested (repeatable, or comma-separated).",
)
@click.option(
    "--model",
    "model_ref",
    metavar="NAME@ALIAS",
    help="Compare only this model version's inputs: its target and other columns are "
    "listed as not tested.",
)
@click.option(
    "--unseen-min-count",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Flag a category the reference never had once it has this many rows, at any share.",
)
@click.option(
    "--null-share-change",
    type=click.FloatRange(0.0, 1.0),
    default=0.01,
    show_default=True,
    help="Flag a significant change of a column's missing share of at least this much.",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="COL=METHOD",
    help="Test COL with METHOD: ks, wasserstein, psi, chisquare, jensenshannon or unseen "
    "(repeatable).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="METHOD=VALUE",
    help="Drift threshold of METHOD, e.g. wasserstein=0.2 or ks=0.01 (repeatable).",
)
@click.option(
    "--share-threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="The dataset drifts when this share of columns drifts (0: any column).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default="drift-report.html",
    show_default=True,
    help="Write the HTML report here.",
)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the dataset drifts.")
@click.option(
    "--no-record",
    is_flag=True,
    help="Do not record the result in the ledger (recorded when a side is a dataset version).",
)
@json_option
@click.pass_context
def drift(
    ctx: click.Context,
    ref: str,
    cur: str,
    columns: str | None,
    excluded: tuple[str, ...],
    model_ref: str | None,
    unseen_min_count: int,
    null_share_change: float,
    methods: tuple[str, ...],
    thresholds: tuple[str, ...],
    share_threshold: float,
    html_path: str,
    fail_on_drift: bool,
    no_record: bool,
    as_json: bool,
) -> None:
    """Compare CUR with REF column by column and rank the columns by drift.

    REF and CUR are Parquet/CSV files, profile .json files or dataset references
    NAME[@VERSION|@TAG]. Small samples (up to 1,000 rows) get KS and chi-squared tests,
    larger ones Wasserstein and Jensen-Shannon distances (threshold 0.1), with the
    Benjamini-Hochberg adjusted p-value shown beside them. New categories and changed
    missing shares are reported on their own."""
    from plinth.cli._progress import progress_bar
    from plinth.errors import CheckFailedError
    from plinth.monitoring import drift as compare

    method_map = _pairs(methods, "--method", "COL=METHOD", "delay=psi")
    threshold_map = {
        method: _number(value, method)
        for method, value in _pairs(
            thresholds, "--threshold", "METHOD=VALUE", "wasserstein=0.2"
        ).items()
    }
    wanted = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    exclude = {
        c.strip(): "excluded (--exclude)" for item in excluded for c in item.split(",") if c.strip()
    }
    plinth_ctx: list[Context] = []
    try:
        reference = _load(ref, "reference", plinth_ctx)
        current = _load(cur, "current", plinth_ctx)
        if model_ref is not None:
            exclude = {**_model_exclusions(model_ref, reference, current, plinth_ctx), **exclude}
        with progress_bar(as_json) as bar:
            report = compare(
                reference,
                current,
                columns=wanted,
                exclude=exclude,
                methods=method_map,
                thresholds=threshold_map,
                share_threshold=share_threshold,
                unseen_min_count=unseen_min_count,
                null_share_change=null_share_change,
                progress=bar,
            )
        _write(report, html_path)
        if plinth_ctx and not no_record:
            _record(plinth_ctx[0], report, ref, cur)
    finally:
        for opened in plinth_ctx:
            opened.close()
    if as_json:
        echo_json(report.to_dict())
        if fail_on_drift and report.drifted:
            ctx.exit(1)
        return
    _print(report, ref, cur, html_path)
    if fail_on_drift and report.drifted:
        raise CheckFailedError(
            f"drift detected: {len(report.drifted_columns)} of {len(report.columns)} columns "
            f"drifted ({report.share:.0%}, at or above {report.share_threshold:.0%})",
            hint=f"see the table above and {html_path}",
        )


def _model_exclusions(
    model_ref: str, reference: Any, current: Any, opened: list[Context]
) -> dict[str, str]:
    """The columns of either side that ``model_ref`` does not take, with the reason."""
    from plinth.context import Context
    from plinth.monitoring.model_inputs import model_exclusions

    if not opened:
        opened.append(Context.open())
    return model_exclusions(model_ref, reference, current, ctx=opened[0])


def _write(report: DriftReport, html_path: str) -> None:
    from plinth.errors import UsageError

    path = Path(html_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        report.to_html(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the HTML report to {html_path}: {exc.strerror or exc}",
            hint="pass --html with a writable file path",
            field="--html",
        ) from None


def _pairs(items: tuple[str, ...], option: str, form: str, example: str) -> dict[str, str]:
    from plinth.errors import UsageError

    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(
                f"{option} {item!r} is not {form}",
                hint=f"write it as {form}, e.g. {option} {example}",
                field=option,
            )
        found[key.strip()] = value.strip()
    return found


def _number(text: str, method: str) -> float:
    from plinth.errors import UsageError

    try:
        return float(text)
    except ValueError:
        raise UsageError(
            f"--threshold {method}={text}: {text!r} is not a number",
            hint="write it as METHOD=VALUE, e.g. --threshold wasserstein=0.2",
            field="--threshold",
        ) from None


def _load(text: str, label: str, opened: list[Context]) -> Any:
    """A table or profile from a file, or a dataset version's table."""
    from plinth.errors import UsageError
    from plinth.tables import table_format

    path = Path(text)
    suffix = path.suffix.lower()
    kind = "profile" if suffix == ".json" else table_format(path)
    if path.is_dir():
        raise UsageError(f"{text} is a folder, not a table file", hint=_HINT, field=label)
    if path.is_file():
        if kind is None:
            raise UsageError(
                f"unsupported file format {suffix or '(no suffix)'}: {text}",
                hint=_HINT,
                field=label,
            )
        return _read(path, kind, label)
    if os.sep in text or "/" in text or kind is not None:
        raise UsageError(f"no such file: {text} (the {label} data)", hint=_HINT, field=label)
    from plinth import datasets
    from plinth.context import Context

    if not opened:
        opened.append(Context.open())
    # Exact rows, not the stored profile: p-values need them. Inspecting a quarantined
    # version is allowed.
    return datasets.load(text, to="arrow", allow_quarantined=True, ctx=opened[0])


def _record(plinth_ctx: Context, report: DriftReport, ref: str, cur: str) -> None:
    """One ``drift`` report in the ledger: monitor = the current side, reference = the
    reference side (dataset versions resolved to NAME@N, so an erasure finds them)."""
    from pathlib import Path

    from plinth.datasets.catalog import open_catalog

    def resolved(text: str) -> str:
        if Path(text).is_file():
            return Path(text).name[-255:]
        with open_catalog(plinth_ctx) as catalog:
            return str(catalog.resolve(text, "latest").ref)

    digest = plinth_ctx.blobs.put_bytes(report.to_html().encode("utf-8")).digest
    status = "alert" if report.drifted else "ok"
    plinth_ctx.ledger.monitoring.record_report(
        plinth_ctx.project.id,
        kind="drift",
        monitor=resolved(cur),
        status=status,
        rows=report.current_rows,
        results={"checks": [{"check": "drift", "status": status, **report.to_dict()}]},
        reference=resolved(ref),
        drifted=report.drifted,
        drift_share=report.share,
        report_digest=digest,
    )


def _read(path: Path, kind: str, label: str) -> Any:
    if kind == "profile":
        from plinth.errors import UsageError
        from plinth.profiles import TableProfile

        try:
            return TableProfile.from_bytes(path.read_bytes(), where=str(path))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc}", field=label) from None
    from plinth.tables import read_file

    return read_file(path, fmt=kind, field=label)


def _print(report: DriftReport, ref: str, cur: str, html_path: str) -> None:
    from rich.markup import escape

    from plinth.cli import _runs_view as view
    from plinth.cli._drift_view import change_lines, drift_table

    table = drift_table(report)
    out = view.console()
    out.print(table)
    verdict = "[red]dataset drift[/]" if report.drifted else "[green]no dataset drift[/]"
    out.print(
        f"{escape(cur)} vs {escape(ref)}: {verdict} — {len(report.drifted_columns)} of "
        f"{len(report.columns)} columns drifted ({report.share:.0%}; threshold "
        f"{report.share_threshold:.0%}); {report.current_rows:,} vs "
        f"{report.reference_rows:,} rows"
    )
    for line in change_lines(report):
        out.print(line)
    if report.skipped:
        skipped = "; ".join(f"{name} ({why})" for name, why in report.skipped.items())
        out.print(f"Not tested: {escape(skipped)}")
    out.print(f"Report: {escape(html_path)}")


from plinth.cli.monitor_labels import labels  # noqa: E402

monitor.add_command(labels)

from plinth.cli.monitor_run import export, reports, run, watch  # noqa: E402

for _command in (run, watch, reports, export):
    monitor.add_command(_command)
