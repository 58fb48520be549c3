"""Runs as JSON for API users, and the runs-table query the web UI's runs page shares.

::

    GET /api/v1/projects/P/runs?filter=&order=&columns=&limit=&page=
    GET /api/v1/projects/P/runs/RUN_ID/metrics/KEY?points=500

``filter``, ``order`` and ``columns`` are the run search language (docs/ledger.md);
pages are cut in SQL (``limit`` rows from ``(page - 1) * limit``), so a project with 100k
runs costs one page. A metric series is downsampled in SQL to at most ``points`` buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from plinth.api.routes import Call, Endpoint, json_response
from plinth.entities import MetricBucket, RunRow
from plinth.errors import RequestError, UsageError
from plinth.ledger.query import Column, named_columns

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.ledger import Ledger

__all__ = [
    "DEFAULT_COLUMNS",
    "ENDPOINTS",
    "MAX_LIMIT",
    "PER_PAGE",
    "SYSTEM_PREFIXES",
    "RunsQuery",
    "RunsTable",
    "bucket_json",
    "cell",
    "run_json",
    "runs_table",
]

PER_PAGE = 50
MAX_LIMIT = 500
#: Metrics and params a table shows when no columns are chosen (each kind), from its page.
DEFAULT_COLUMNS = 8
_MAX_PAGE = 1_000_000
#: Metric prefixes of system measurements: charted apart, never default table columns.
SYSTEM_PREFIXES = ("system/", "timing/")


def _int(params: Mapping[str, str], name: str, default: int, high: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= high:
        raise RequestError(
            f"{name} must be a whole number from 1 to {high}, got {text!r}", field=name
        )
    return int(text)


@dataclass(frozen=True)
class RunsQuery:
    """What a runs table shows: search-language texts and the page wanted."""

    filter: str = ""
    order: str = ""
    columns: str = ""
    page: int = 1
    limit: int = PER_PAGE

    @classmethod
    def of(cls, params: Mapping[str, str]) -> RunsQuery:
        """The query of a request's parameters; RequestError for a bad page or limit."""
        return cls(
            filter=params.get("filter", "").strip(),
            order=params.get("order", "").strip(),
            columns=params.get("columns", "").strip(),
            page=_int(params, "page", 1, _MAX_PAGE),
            limit=_int(params, "limit", PER_PAGE, MAX_LIMIT),
        )

    def params(self) -> dict[str, object]:
        """The parameters that give this query back (defaults left out)."""
        found: dict[str, object] = {
            "filter": self.filter,
            "order": self.order,
            "columns": self.columns,
        }
        if self.page != 1:
            found["page"] = self.page
        if self.limit != PER_PAGE:
            found["limit"] = self.limit
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class RunsTable:
    """One page of runs with the columns to show; ``error`` is a search-language message."""

    rows: list[RunRow]
    columns: list[Column]
    has_next: bool
    error: str | None = None


def runs_table(ledger: Ledger, query: RunsQuery) -> RunsTable:
    """The page of runs ``query`` asks for: one search, then the page's metrics and params.

    Without chosen columns the table shows the metrics (not system ones) and params of the
    runs on this page, at most :data:`DEFAULT_COLUMNS` of each.
    """
    order = [query.order] if query.order else []
    chosen = [query.columns] if query.columns else []
    try:
        columns = named_columns(query.filter or None, order, chosen)
        rows = ledger.search.search_runs(
            where=query.filter or None,
            order_by=order,
            columns=[c.name for c in columns],
            limit=query.limit + 1,
            offset=(query.page - 1) * query.limit,
        )
    except UsageError as error:
        return RunsTable([], [], False, str(error))
    has_next = len(rows) > query.limit
    rows = rows[: query.limit]
    if not chosen and rows:
        rows, columns = _with_defaults(ledger, rows, columns)
    return RunsTable(rows, columns, has_next)


def _with_defaults(
    ledger: Ledger, rows: list[RunRow], columns: list[Column]
) -> tuple[list[RunRow], list[Column]]:
    latest = ledger.search.latest_metrics_of([r.run.id for r in rows])
    params = ledger.search.params_of([r.run.id for r in rows])
    metric_keys = sorted(
        {k for m in latest.values() for k in m if not k.startswith(SYSTEM_PREFIXES)}
    )
    param_keys = sorted({k for p in params.values() for k in p})
    extra = [Column("metric", k) for k in metric_keys[:DEFAULT_COLUMNS]]
    extra += [Column("param", k) for k in param_keys[:DEFAULT_COLUMNS]]
    shown = columns + [c for c in extra if c not in columns]
    filled = [
        replace(
            r,
            metrics={**latest[r.run.id], **r.metrics},
            params={**params[r.run.id], **r.params},
        )
        for r in rows
    ]
    return filled, shown


def cell(row: RunRow, column: Column) -> object:
    """The value of ``column`` in ``row`` (None when the run lacks it)."""
    if column.kind == "metric":
        return row.metrics.get(column.key)
    if column.kind == "param":
        return row.params.get(column.key)
    if column.kind == "tag":
        return row.tags.get(column.key)
    if column.key == "experiment":
        return row.experiment
    if column.key == "user":
        return row.run.created_by
    return getattr(row.run, column.key, None)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_json(row: RunRow) -> dict[str, Any]:
    """A run row as JSON (NaN and infinite metrics as null)."""
    run = row.run
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "experiment": row.experiment,
        "user": run.created_by,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "parent_run_id": run.parent_run_id,
        "metrics": {k: _finite(v) for k, v in row.metrics.items()},
        "params": row.params,
        "tags": row.tags,
    }


def bucket_json(bucket: MetricBucket) -> dict[str, Any]:
    """A downsampled point as JSON (non-finite values as null)."""
    return {
        "step": bucket.step,
        "last": _finite(bucket.last),
        "min": _finite(bucket.min),
        "max": _finite(bucket.max),
        "count": bucket.count,
    }


def list_runs(call: Call) -> Response:
    """One page of the project's runs, filtered and sorted in SQL."""
    query = RunsQuery.of(call.request.query_params)
    table = runs_table(call.ledger(), query)
    if table.error is not None:
        raise RequestError(table.error, field="filter")
    return json_response(
        {
            "runs": [run_json(r) for r in table.rows],
            "columns": [c.name for c in table.columns],
            "page": query.page,
            "limit": query.limit,
            "has_next": table.has_next,
        }
    )


def metric_series(call: Call) -> Response:
    """One metric of one run, downsampled in SQL to at most ``points`` buckets."""
    run_id = call.request.path_params["run_id"]
    key = call.request.path_params["key"]
    points = _int(call.request.query_params, "points", 500, 5000)
    ledger = call.ledger()
    run = ledger.runs.get_run(run_id)
    buckets = ledger.search.metric_series([run.id], key, points)[run.id]
    return json_response(
        {"run_id": run.id, "key": key, "points": [bucket_json(b) for b in buckets]}
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/projects/{project}/runs",
        list_runs,
        "A page of runs, filtered and sorted with the run search language.",
        access="project",
    ),
    Endpoint(
        "GET",
        "/api/v1/projects/{project}/runs/{run_id}/metrics/{key:path}",
        metric_series,
        "One metric of a run, downsampled server-side.",
        access="project",
    ),
]
