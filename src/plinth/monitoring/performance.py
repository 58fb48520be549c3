"""Model performance once ground truth arrives: labels joined to the prediction log, scored
per window of prediction time, checked against bounds and recorded as one ledger report::

    result = record_labels("web", "labels.parquet", window="1d",
                           min_metrics={"roc_auc": 0.7})
    result.status        # "ok", or "alert" when a window crossed a bound (result.breaches)

Labels join on ``request_id`` (one logged row per request) or on any column both hold,
such as an input ``flight_id``. A key labelled twice keeps its latest label, and recording
the same labels again is a no-op (see :mod:`plinth.monitoring.labels`). The metrics
(R², MAPE, F1, PR AUC, Brier, per-class, ...) are those of :mod:`plinth.monitoring.metrics`.
A metric undefined in a window (``roc_auc`` over one class, ``precision`` with no predicted
positive) is None there and is not checked against a bound.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from plinth._deprecation import renamed
from plinth.context import resolve_context
from plinth.errors import UsageError
from plinth.monitoring.labels import (
    label_column_of,
    latest_labels,
    numeric,
    read_labels,
    truth_of,
)
from plinth.monitoring.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    TASKS,
    as_vector,
    check_metric,
    classification_metrics,
    infer_task,
    regression_metrics,
    task_metrics,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import PredictionBatch

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "TASKS",
    "PerformanceResult",
    "classification_metrics",
    "infer_task",
    "join_labels",
    "performance_windows",
    "record_labels",
    "regression_metrics",
]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_WINDOW_HINT = "write a duration such as 15m, 1h, 1d or 7d, rows:N for N rows each, or all"


def _window(window: str) -> tuple[str, int]:
    """("all", 0), ("rows", N) or ("time", width in ms)."""
    text = window.strip().lower() if isinstance(window, str) else ""
    if text == "all":
        return "all", 0
    if text.startswith("rows:"):
        size = text[5:].strip()
        if size.isdigit() and int(size) > 0:
            return "rows", int(size)
    match = _DURATION.fullmatch(text)
    if match is not None and int(match[1]) > 0:
        return "time", int(match[1]) * _UNIT_MS[match[2]]
    raise UsageError(f"window {window!r} is not understood", hint=_WINDOW_HINT, field="window")


def performance_windows(
    joined: pa.Table,
    *,
    window: str = "1d",
    task: str | None = None,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Metrics of ``joined`` (from :func:`join_labels`) per window of prediction time,
    oldest first; empty windows are left out.

    ``window``: a duration ("15m", "1h", "1d", "7d": buckets aligned to the Unix epoch,
    so days are UTC days; ``end_ms`` is exclusive), "rows:N" (N consecutive rows in time
    order) or "all"; for the last two, ``start_ms``/``end_ms`` are the first and last
    prediction times. The task is inferred once over every row unless given.
    """
    import pyarrow as pa

    kind, size = _window(window)
    n = joined.num_rows
    if n == 0:
        return []
    ts = joined.column("ts").cast(pa.int64()).to_numpy()
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    labels = as_vector(joined.column("label").to_numpy(), "labels")[order]
    predictions = as_vector(joined.column("prediction").to_numpy(), "predictions")[order]
    versions = joined.column("model_version").to_numpy(zero_copy_only=False)[order]
    task = infer_task(labels, predictions, task=task)
    if kind == "all":
        cuts = np.array([0, n])
    elif kind == "rows":
        cuts = np.r_[np.arange(0, n, size), n]
    else:
        buckets = ts // size
        cuts = np.r_[0, np.flatnonzero(buckets[1:] != buckets[:-1]) + 1, n]
    out = []
    for lo, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        if kind == "time":
            start = int(ts[lo] // size * size)
            end = start + size
        else:
            start, end = int(ts[lo]), int(ts[hi - 1])
        out.append(
            {
                "start_ms": start,
                "end_ms": end,
                "rows": hi - lo,
                "model_versions": sorted({str(v) for v in versions[lo:hi]}),
                "metrics": task_metrics(task, labels[lo:hi], predictions[lo:hi], threshold),
            }
        )
    return out


# -- joining -------------------------------------------------------------------------------
def _log_table(ctx: Context, deployment: str, batches: list[PredictionBatch], key: str) -> pa.Table:
    """The key, time, model version and prediction of every logged row, read column by
    column from each batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys([key, "ts", "model_version", "prediction"]))
    tables = []
    seen: list[str] = []
    for batch in batches:
        parquet = pq.ParquetFile(pa.BufferReader(ctx.blobs.read_bytes(batch.digest)))
        seen = parquet.schema_arrow.names
        if key not in seen:  # a batch logged before the input existed cannot join
            continue
        table = parquet.read(columns=columns)
        prediction = numeric(
            table.column("prediction"), f"the prediction column of deployment {deployment!r}"
        )
        tables.append(table.set_column(columns.index("prediction"), "prediction", prediction))
    if not tables:
        raise UsageError(
            f"the prediction log of deployment {deployment!r} has no column {key!r}; "
            f"its columns: {', '.join(seen)}",
            hint="join on request_id or on an input column the requests carry",
            field="key",
        )
    return pa.concat_tables(tables, promote_options="permissive")


def _duplicates(table: pa.Table, key: str) -> list[Any]:
    import pyarrow.compute as pc

    counts = table.group_by(key).aggregate([(key, "count")])
    repeated = counts.filter(pc.greater(counts.column(f"{key}_count"), 1))
    values: list[Any] = repeated.column(key).to_pylist()
    return values


def _shown(values: list[Any]) -> str:
    more = f" and {len(values) - 5} more" if len(values) > 5 else ""
    return ", ".join(str(v) for v in values[:5]) + more


@renamed(positional_ctx=True)
def join_labels(
    deployment: str,
    labels: Any,
    *,
    key: str = "request_id",
    label_column: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    ctx: Context | None = None,
) -> pa.Table:
    """Labels joined to the logged predictions of ``deployment`` (every version), sorted by
    time: columns ``KEY``, ``ts`` (timestamp, ms), ``model_version``, ``prediction`` and
    ``label`` (floats). Labels without a logged prediction, or whose label is missing, are
    left out; only batches overlapping [since_ms, until_ms] are read.

    ``labels``: a .parquet/.csv path, an Arrow table or a pandas DataFrame.
    ``label_column``: default the only column besides the key, else ``label``.
    """
    ctx = resolve_context(ctx)
    table, source = read_labels(labels)
    label_column = label_column_of(table, key, label_column, source)
    ctx.ledger.deployments.get(ctx.project.id, deployment)  # NotFoundError names it
    return _join(ctx, deployment, table, source, key, label_column, since_ms, until_ms)[0]


def _join(
    ctx: Context,
    deployment: str,
    table: pa.Table,
    source: str,
    key: str,
    label_column: str,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> tuple[pa.Table, int]:
    """The joined table and how many label rows a later row for the same key replaced."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # One rule for a key labelled twice: the last row wins (see plinth.monitoring.labels).
    truth, superseded = latest_labels(truth_of(table, key, label_column, source), key)
    batches = ctx.ledger.deployments.batches_of(ctx.project.id, deployment, since_ms, until_ms)
    if not batches:
        raise UsageError(
            f"deployment {deployment!r} has logged no predictions"
            + ("" if since_ms is None and until_ms is None else " in that time range"),
            hint="the prediction log writes every prediction_log_flush_seconds; "
            "check the deployment's 'sample' rate",
            field="deployment",
        )
    log = _log_table(ctx, deployment, batches, key)
    if since_ms is not None or until_ms is not None:
        ts = log.column("ts").cast(pa.int64())
        keep = pc.and_(
            pc.greater_equal(ts, -(2**62) if since_ms is None else since_ms),
            pc.less_equal(ts, 2**62 if until_ms is None else until_ms),
        )
        log = log.filter(keep)
    wanted = log.schema.field(key).type
    if truth.schema.field(key).type != wanted:
        try:
            truth = truth.set_column(0, key, truth.column(key).cast(wanted))
        except pa.ArrowException:
            raise UsageError(
                f"key column {key!r} of {source} is {truth.schema.field(key).type}, "
                f"the prediction log's is {wanted}, and one cannot be read as the other",
                field="key",
            ) from None
    joined = log.join(truth, keys=key, join_type="inner")
    joined = joined.filter(pc.is_finite(joined.column("prediction")))
    repeated = _duplicates(joined, key)
    if repeated:
        raise UsageError(
            f"the prediction log of {deployment!r} holds several rows for {key} {_shown(repeated)}",
            hint="labels join one row per key: join on a column that tells the rows of a "
            "request apart (--key), or label requests that hold one row each",
            field="key",
        )
    joined = joined.select([key, "ts", "model_version", "prediction", "label"])
    return joined.sort_by([("ts", "ascending"), (key, "ascending")]), superseded


# -- recording -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PerformanceResult:
    """The outcome of :func:`record_labels`: metrics per window and the bounds crossed."""

    deployment: str
    task: str
    key: str
    label_column: str
    rows: int
    matched: int
    windows: tuple[dict[str, Any], ...]
    breaches: tuple[dict[str, Any], ...]
    report_id: str
    label_batch_id: str
    status: str
    #: Label rows replaced by a later row for the same key (the last one wins).
    duplicates: int = 0
    #: True when these labels were recorded before: nothing was written this time, and
    #: ``label_batch_id``/``report_id`` name the earlier batch and report.
    already_recorded: bool = False

    @property
    def unmatched(self) -> int:
        """Labels without a logged prediction (or without a label value)."""
        return self.rows - self.matched

    @property
    def success(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "status": self.status,
            "task": self.task,
            "key": self.key,
            "label_column": self.label_column,
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "windows": list(self.windows),
            "breaches": list(self.breaches),
            "report_id": self.report_id,
            "label_batch_id": self.label_batch_id,
            "duplicates": self.duplicates,
            "already_recorded": self.already_recorded,
        }


def _bounds(
    task: str, min_metrics: Mapping[str, float] | None, max_metrics: Mapping[str, float] | None
) -> list[tuple[str, str, float]]:
    """(metric, "min" | "max", value) for each bound, checked against the task."""
    out = []
    for side, given in (("min", min_metrics), ("max", max_metrics)):
        for metric, value in (given or {}).items():
            check_metric(metric, task=task, field=side)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(f"the --{side} bound of {metric} must be a number", field=side)
            if not math.isfinite(value):
                raise UsageError(f"the --{side} bound of {metric} must be finite", field=side)
            out.append((metric, side, float(value)))
    return out


def _breaches(
    windows: list[dict[str, Any]], bounds: list[tuple[str, str, float]]
) -> list[dict[str, Any]]:
    out = []
    for metric, side, bound in bounds:
        if not any(metric in w["metrics"] for w in windows):
            raise UsageError(
                f"{metric} is not computed for these predictions, so it cannot be bounded",
                hint="roc_auc and pr_auc need scores, log_loss, brier and ece probabilities "
                "(not hard 0/1 labels); a multi-class model has precision_macro, f1:C, ...",
                field=side,
            )
        for w in windows:
            value = w["metrics"].get(metric)
            if value is not None and (value < bound if side == "min" else value > bound):
                out.append(
                    {
                        "start_ms": w["start_ms"],
                        "end_ms": w["end_ms"],
                        "metric": metric,
                        "value": value,
                        "bound": side,
                        "threshold": bound,
                    }
                )
    return out


@renamed(positional_ctx=True)
def record_labels(
    deployment: str,
    labels: Any,
    *,
    key: str = "request_id",
    label_column: str | None = None,
    window: str = "1d",
    task: str | None = None,
    threshold: float = 0.5,
    min_metrics: Mapping[str, float] | None = None,
    max_metrics: Mapping[str, float] | None = None,
    ctx: Context | None = None,
) -> PerformanceResult:
    """Join ``labels`` to the prediction log of ``deployment``, score each window, check
    the bounds (e.g. ``min_metrics={"roc_auc": 0.7}``, ``max_metrics={"rmse": 12}``) and
    record the labels (a Parquet blob and a label batch) and one ``performance`` report,
    status "alert" when any window crossed a bound. Everything is checked before anything
    is written; labels that match no logged prediction are counted, not an error.
    """
    ctx = resolve_context(ctx)
    from blake3 import blake3

    from plinth.tables import write_parquet

    _window(window)
    table, source = read_labels(labels)
    chosen = label_column_of(table, key, label_column, source)
    project_id = ctx.project.id
    version = ctx.ledger.deployments.get(project_id, deployment)  # NotFoundError names it
    sink = io.BytesIO()
    write_parquet(table, sink)
    stored = sink.getvalue()
    digest = blake3(stored).hexdigest()  # the batch's identity, as the blob store names it
    earlier = ctx.ledger.monitoring.label_batch_by_digest(
        project_id, deployment=deployment, key=key, digest=digest
    )
    joined, duplicates = _join(ctx, deployment, table, source, key, chosen)
    if joined.num_rows == 0:
        raise UsageError(
            f"none of the {table.num_rows} labels in {source} matches a logged prediction "
            f"of {deployment!r} on {key!r}",
            hint="was the prediction log flushed (it writes every "
            "prediction_log_flush_seconds)? Is the deployment's sample rate below 1? "
            "Are the keys the ones the requests carried?",
            field="key",
        )
    task = infer_task(joined.column("label"), joined.column("prediction"), task=task)
    windows = performance_windows(joined, window=window, task=task, threshold=threshold)
    bounds = _bounds(task, min_metrics, max_metrics)
    breaches = _breaches(windows, bounds)
    status = "alert" if breaches else "ok"
    result = PerformanceResult(
        deployment=deployment,
        task=task,
        key=key,
        label_column=chosen,
        rows=table.num_rows,
        matched=joined.num_rows,
        windows=tuple(windows),
        breaches=tuple(breaches),
        report_id="",
        label_batch_id="",
        status=status,
        duplicates=duplicates,
    )
    if earlier is not None:  # the same labels again: say so, write nothing
        return replace(
            result,
            report_id=_report_of(ctx, deployment, earlier.id),
            label_batch_id=earlier.id,
            already_recorded=True,
        )
    digest = ctx.blobs.put_bytes(stored).digest
    batch = ctx.ledger.monitoring.record_labels(
        project_id,
        deployment=deployment,
        key=key,
        digest=digest,
        rows=table.num_rows,
        matched=joined.num_rows,
        label_column=chosen,
    )
    spec = {
        "key": key,
        "label_column": chosen,
        "window": window,
        "task": task,
        "threshold": threshold,
        "min": {m: v for m, side, v in bounds if side == "min"},
        "max": {m: v for m, side, v in bounds if side == "max"},
    }
    report = ctx.ledger.monitoring.record_report(
        project_id,
        kind="performance",
        monitor=deployment,
        status=status,
        rows=joined.num_rows,
        results={
            "label_batch_id": batch.id,
            "labels_digest": digest,
            "rows": table.num_rows,
            "matched": joined.num_rows,
            "duplicates": duplicates,
            "windows": windows,
            "breaches": breaches,
        },
        deployment_id=version.id,
        window_start_ms=windows[0]["start_ms"],
        window_end_ms=windows[-1]["end_ms"],
        spec=spec,
    )
    return replace(result, report_id=report.id, label_batch_id=batch.id)


def _report_of(ctx: Context, deployment: str, batch_id: str) -> str:
    """The id of the performance report recorded with label batch ``batch_id``, or ""."""
    reports = ctx.ledger.monitoring.reports(ctx.project.id, monitor=deployment, kind="performance")
    for report in reports:
        if isinstance(report.results, dict) and report.results.get("label_batch_id") == batch_id:
            return report.id
    return ""
