"""``plinth monitor labels``: join ground truth that arrived later to a deployment's logged
predictions, score each window and check bounds; exit 1 when a bound is crossed.

A thin layer over :func:`plinth.monitoring.performance.record_labels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from plinth.monitoring.performance import PerformanceResult

#: Metric columns in the order the table shows them.
_ORDER = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "bias")


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


@click.command(
    "labels",
    epilog="Examples:\n\n  plinth monitor labels web labels.parquet --min roc_auc=0.7\n\n"
    "  plinth monitor labels delays truth.csv --key flight_id --window 7d --max rmse=12 --json",
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
def labels(
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
    score each window: accuracy, precision, recall, f1, roc_auc, log_loss (binary
    classification) or mae, rmse, bias (regression).

    The labels and one performance report are recorded in the ledger. Exits 1 when a
    window crosses a --min or --max bound."""
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
            f"{len(result.windows)} windows of {deployment}",
            hint="see the table above; the report is recorded as " + result.report_id,
        )


def _utc(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print(result: PerformanceResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from plinth.cli import _runs_view as view

    crossed = {(b["start_ms"], b["metric"]) for b in result.breaches}
    metrics = [m for m in _ORDER if any(m in w["metrics"] for w in result.windows)]
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
    out.print(
        f"{escape(result.deployment)}: {verdict} — {result.task} on {escape(result.key)}, "
        f"{result.matched:,} of {result.rows:,} labels matched a logged prediction "
        f"({result.unmatched:,} unmatched), {len(result.windows)} windows; "
        f"report {result.report_id}"
    )
