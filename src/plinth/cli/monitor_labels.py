"""``plinth monitor labels``: join ground truth that arrived later to a deployment's logged
predictions, score each window and check bounds (exit 1 when a bound is crossed); list,
show and delete the label batches recorded.

``plinth monitor labels DEPLOYMENT FILE`` is short for ``plinth monitor labels record ...``.
A thin layer over :mod:`plinth.monitoring.performance` and :mod:`plinth.monitoring.labels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.entities import LabelBatch
    from plinth.monitoring.performance import PerformanceResult

_VERBS = ("record", "list", "show", "delete")


class _LabelsGroup(click.Group):
    """A group whose first argument, when not a verb, is the deployment of ``record``:
    keeps ``plinth monitor labels DEPLOYMENT FILE`` working."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in _VERBS and args[:1] != ["--help"]:
            args = ["record", *args]
        return super().parse_args(ctx, args)


@click.group(
    "labels",
    cls=_LabelsGroup,
    epilog="Examples:\n\n  plinth monitor labels web labels.parquet --min roc_auc=0.7\n\n"
    "  plinth monitor labels list web\n\n"
    "  plinth monitor labels delete 0193... --reason 'exported twice with a shifted key'",
)
def labels() -> None:
    """Record ground truth for a deployment and manage the label batches: record (the
    default: labels DEPLOYMENT FILE), list, show, delete.

    A batch is identified by its content: recording the same file twice is a no-op. A
    key labelled more than once keeps its latest label (the latest batch; inside a
    batch, the last row)."""


#: Metric columns in the order the table shows them.
#: (all metrics are in --json; a bounded one is shown too)
_ORDER = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "f1_macro",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "r2",
    "mae",
    "rmse",
    "mape",
    "bias",
)


def _bounds(values: tuple[str, ...], side: str) -> dict[str, float]:
    """``("roc_auc=0.7", ...)`` as ``{"roc_auc": 0.7}``."""
    from plinth.errors import UsageError

    out: dict[str, float] = {}
    for text in values:
        metric, sep, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = None
        if not sep or not metric.strip() or value is None:
            raise UsageError(
                f"--{side} {text!r} is not METRIC=VALUE",
                hint=f"e.g. --{side} roc_auc=0.7 or --{side} rmse=12",
                field=side,
            )
        out[metric.strip()] = value
    return out


@labels.command(
    "record",
    epilog="Examples:\n\n  plinth monitor labels web labels.parquet --min roc_auc=0.7\n\n"
    "  plinth monitor labels record delays truth.csv --key flight_id --window 7d "
    "--max rmse=12 --json\n\n"
    "  plinth monitor labels shop prices.csv --max mape=0.2 --min r2=0.8",
)
@click.argument("deployment")
@click.argument("labels_file", metavar="LABELS_FILE", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    default="request_id",
    show_default=True,
    help="Column joining labels to logged predictions: request_id or an input column.",
)
@click.option("--label-column", help="Column holding the labels (default: the only other one).")
@click.option(
    "--window",
    default="1d",
    show_default=True,
    help="Window of prediction time: 15m, 1h, 1d, 7d; rows:N; or all.",
)
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Default: classification when labels are 0/1 and predictions in [0, 1].",
)
@click.option(
    "--threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="Scores at or above it count as class 1.",
)
@click.option(
    "--min",
    "min_bounds",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Alert when a window's metric is below VALUE (repeatable).",
)
@click.option(
    "--max",
    "max_bounds",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Alert when a window's metric is above VALUE (repeatable).",
)
@json_option
@click.pass_context
def record(
    ctx: click.Context,
    deployment: str,
    labels_file: str,
    key: str,
    label_column: str | None,
    window: str,
    task: str | None,
    threshold: float,
    min_bounds: tuple[str, ...],
    max_bounds: tuple[str, ...],
    as_json: bool,
) -> None:
    """Join LABELS_FILE (.parquet or .csv) to the logged predictions of DEPLOYMENT and
    score each window: accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss,
    brier, ece (binary classification), f1_macro, recall:C, ... (multi-class) or r2, mae,
    rmse, mape, smape, bias, q90_abs_error, ... (regression; docs/monitoring.md lists all).

    The labels and one performance report are recorded in the ledger; the same file
    again records nothing and says so. Exits 1 when a window crosses a --min or --max
    bound."""
    from plinth.context import Context
    from plinth.errors import CheckFailedError
    from plinth.monitoring.performance import record_labels

    minimum = _bounds(min_bounds, "min")
    maximum = _bounds(max_bounds, "max")
    with Context.open() as plinth_ctx:
        result = record_labels(
            deployment,
            labels_file,
            key=key,
            label_column=label_column,
            window=window,
            task=task,
            threshold=threshold,
            min_metrics=minimum,
            max_metrics=maximum,
            ctx=plinth_ctx,
        )
    if as_json:
        echo_json(result.to_dict())
        if not result.success:
            ctx.exit(1)
        return
    _print(result)
    if not result.success:
        crossed = len(result.breaches)
        windows = len({(b["start_ms"], b["end_ms"]) for b in result.breaches})
        raise CheckFailedError(
            f"{crossed} bound{'' if crossed == 1 else 's'} crossed in {windows} of "
            f"{len(result.windows)} window{'' if len(result.windows) == 1 else 's'} of "
            f"{deployment}",
            hint="see the table above; the report is recorded as " + result.report_id,
        )


def _utc(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print(result: PerformanceResult) -> None:
    from rich.table import Table

    from plinth.cli import _runs_view as view
    from plinth.cli._common import safe_markup as escape

    crossed = {(b["start_ms"], b["metric"]) for b in result.breaches}
    bounded = [b["metric"] for b in result.breaches if b["metric"] not in _ORDER]
    shown = (*_ORDER, *dict.fromkeys(bounded))
    metrics = [m for m in shown if any(m in w["metrics"] for w in result.windows)]
    table = Table(box=None, pad_edge=False)
    for header in ("start (UTC)", "end (UTC)", "rows", "model versions", *metrics):
        numeric = header == "rows" or header in metrics
        table.add_column(header, justify="right" if numeric else "left")
    for w in result.windows:
        cells = []
        for metric in metrics:
            value = w["metrics"].get(metric)
            text = "-" if value is None else f"{value:.4f}"
            cells.append(f"[red]{text}![/]" if (w["start_ms"], metric) in crossed else text)
        table.add_row(
            _utc(w["start_ms"]),
            _utc(w["end_ms"]),
            f"{w['rows']:,}",
            escape(", ".join(w["model_versions"])),
            *cells,
        )
    out = view.console()
    out.print(table)
    verdict = "[green]ok[/]" if result.success else "[red]alert[/]"
    count = len(result.windows)
    out.print(
        f"{escape(result.deployment)}: {verdict} — {result.task} on {escape(result.key)}, "
        f"{result.matched:,} of {result.rows:,} labels matched a logged prediction "
        f"({result.unmatched:,} unmatched), {count} window{'' if count == 1 else 's'}; "
        f"report {result.report_id or '-'}"
    )
    if result.duplicates:
        out.print(f"{result.duplicates:,} label rows repeat a key: the last row for each key wins")
    if result.already_recorded:
        out.print(
            f"Already recorded as label batch {result.label_batch_id}: nothing recorded again"
        )


# -- the batches ---------------------------------------------------------------------------
def _when(ms: int | None) -> str:
    return "-" if ms is None else _utc(ms)


@labels.command(
    "list",
    epilog="Examples:\n\n  plinth monitor labels list web\n\n"
    "  plinth monitor labels list --deleted --json",
)
@click.argument("deployment", required=False)
@click.option("--deleted", "include_deleted", is_flag=True, help="Also list deleted batches.")
@json_option
def list_(deployment: str | None, include_deleted: bool, as_json: bool) -> None:
    """List the label batches recorded (for DEPLOYMENT), oldest first."""
    from rich.table import Table

    from plinth.cli import _runs_view as view
    from plinth.cli._common import safe_markup as escape
    from plinth.context import Context
    from plinth.monitoring.labels import batch_dict, list_label_batches

    with Context.open() as plinth_ctx:
        batches = list_label_batches(deployment, include_deleted=include_deleted, ctx=plinth_ctx)
    if as_json:
        echo_json([batch_dict(b) for b in batches])
        return
    table = Table(box=None, pad_edge=False)
    for header in ("id", "deployment", "key", "rows", "matched", "recorded (UTC)", "by", "deleted"):
        table.add_column(header, justify="right" if header in ("rows", "matched") else "left")
    for b in batches:
        table.add_row(
            b.id,
            escape(b.deployment),
            escape(b.key),
            f"{b.rows:,}",
            f"{b.matched:,}",
            _utc(b.created_at),
            escape(b.created_by),
            "-"
            if not b.deleted
            else escape(f"{_when(b.deleted_at)} by {b.deleted_by}: {b.delete_reason}"),
        )
    out = view.console()
    out.print(table)
    out.print(f"{len(batches)} label batch{'' if len(batches) == 1 else 'es'}")


@labels.command("show", epilog="Example:\n\n  plinth monitor labels show 0193f0c2-... --json")
@click.argument("batch_id")
@json_option
def show(batch_id: str, as_json: bool) -> None:
    """Show one label batch: who recorded it, its repeated keys, and how many of its
    labels count now (a later batch's label for the same key wins)."""
    from plinth.cli import _runs_view as view
    from plinth.context import Context
    from plinth.monitoring.labels import show_label_batch

    with Context.open() as plinth_ctx:
        details = show_label_batch(batch_id, ctx=plinth_ctx)
    if as_json:
        echo_json(details.to_dict())
        return
    b = details.batch
    lines = [
        f"label batch {b.id}",
        f"  deployment   {b.deployment}",
        f"  key          {b.key}",
        f"  label column {b.label_column or '-'}",
        f"  digest       {b.digest}",
        f"  recorded     {_utc(b.created_at)} by {b.created_by}",
        f"  rows         {b.rows:,} ({b.matched:,} matched a logged prediction when recorded)",
        f"  labelled     {details.labelled:,} rows, {details.keys:,} keys "
        f"({details.duplicates:,} rows repeat a key: the last wins)",
        f"  in use       {details.in_use:,} labels "
        f"({details.superseded_by_later:,} keys labelled again by a later batch)",
    ]
    if b.deleted:
        lines.append(f"  deleted      {_when(b.deleted_at)} by {b.deleted_by}: {b.delete_reason}")
    out = view.console()
    for line in lines:
        out.print(line, markup=False, highlight=False)


@labels.command(
    "delete",
    epilog="Example:\n\n  plinth monitor labels delete 0193f0c2-... "
    "--reason 'exported with the wrong key'",
)
@click.argument("batch_id")
@click.option("--reason", required=True, help="Why: recorded in the ledger with who and when.")
@json_option
def delete(batch_id: str, reason: str, as_json: bool) -> None:
    """Delete a label batch: performance checks no longer use it. The batch stays listed
    (list --deleted) with who deleted it, when and why."""
    from plinth.context import Context
    from plinth.monitoring.labels import batch_dict, delete_label_batch

    with Context.open() as plinth_ctx:
        batch = delete_label_batch(batch_id, reason=reason, ctx=plinth_ctx)
    if as_json:
        echo_json(batch_dict(batch))
        return
    _deleted(batch)


def _deleted(batch: LabelBatch) -> None:
    click.echo(
        f"Deleted label batch {batch.id} of {batch.deployment} "
        f"({batch.rows:,} rows) at {_when(batch.deleted_at)} by {batch.deleted_by}: "
        f"{batch.delete_reason}"
    )
