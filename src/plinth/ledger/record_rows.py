"""How the rows of runs, projects, environments, artifacts, lineage edges and monitor reports
become records, and the errors their stores raise, without SQLAlchemy.

Shared by the SQLAlchemy stores and by :mod:`plinth.ledger.sqlite_reads` (the standard
library's sqlite3, for read-only commands that must start fast), so both build the same
records and say the same things. JSON columns arrive decoded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from plinth.entities import (
    RUN_STATUSES,
    Artifact,
    Environment,
    Experiment,
    LineageEdge,
    MonitorReport,
    Project,
    RecordRef,
    Run,
    SuiteVersion,
    ValidationRecord,
)
from plinth.errors import NotFoundError, UsageError
from plinth.ledger.dataset_rows import check_digest

__all__ = [
    "MIN_RUN_PREFIX",
    "artifact_of",
    "check_batch",
    "check_run_status",
    "edge_of",
    "environment_of",
    "experiment_of",
    "from_db_float",
    "no_run",
    "project_of",
    "report_of",
    "run_of",
    "run_prefix_not_found",
    "validation_record",
]

#: The shortest run id prefix ``runs show`` and friends accept.
MIN_RUN_PREFIX = 8


def from_db_float(value: float | None) -> float:
    """A stored metric value: NULL stands for NaN on every backend."""
    return math.nan if value is None else float(value)


def check_run_status(status: str) -> str:
    if status not in RUN_STATUSES:
        raise UsageError(
            f"unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}"
        )
    return status


def no_run(run_id: str) -> NotFoundError:
    return NotFoundError(
        f"no run with id {run_id!r} in the ledger",
        hint="list runs with 'plinth runs list'",
    )


def run_prefix_not_found(text: str) -> NotFoundError:
    return NotFoundError(
        f"no run id starts with {text!r}",
        hint="list runs with 'plinth runs list' (deleted ones with --deleted)",
        field="run_id",
    )


def run_of(m: Mapping[Any, Any]) -> Run:
    return Run(
        id=m["id"],
        experiment_id=m["experiment_id"],
        name=m["name"],
        status=m["status"],
        start_time=m["start_time"],
        end_time=m["end_time"],
        created_by=m["created_by"],
        parent_run_id=m["parent_run_id"],
        environment_id=m["environment_id"],
        source=dict(m["source"] or {}),
        error=m["error"],
        host=m["host"],
        pid=m["pid"],
        deleted_at=m["deleted_at"],
    )


def project_of(m: Mapping[Any, Any]) -> Project:
    return Project(
        id=m["id"], name=m["name"], created_at=m["created_at"], created_by=m["created_by"]
    )


def experiment_of(m: Mapping[Any, Any]) -> Experiment:
    return Experiment(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def environment_of(m: Mapping[Any, Any]) -> Environment:
    return Environment(
        id=m["id"],
        digest=m["digest"],
        python=m["python"],
        platform=m["platform"],
        packages=dict(m["packages"]),
        extra=dict(m["extra"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def artifact_of(m: Mapping[Any, Any]) -> Artifact:
    return Artifact(
        owner=RecordRef(m["owner_type"], m["owner_id"]),
        path=m["path"],
        digest=m["digest"],
        size=m["size"],
        media_type=m["media_type"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def edge_of(m: Mapping[Any, Any]) -> LineageEdge:
    return LineageEdge(
        src=RecordRef(m["src_type"], m["src_id"]),
        dst=RecordRef(m["dst_type"], m["dst_id"]),
        relation=m["relation"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def report_of(m: Mapping[Any, Any]) -> MonitorReport:
    return MonitorReport(
        id=m["id"],
        project_id=m["project_id"],
        kind=m["kind"],
        monitor=m["monitor"],
        status=m["status"],
        rows=m["rows"],
        results=m["results"],
        deployment_id=m["deployment_id"],
        dataset=m["dataset"],
        reference=m["reference"],
        window_start_ms=m["window_start_ms"],
        window_end_ms=m["window_end_ms"],
        drifted=None if m["drifted"] is None else bool(m["drifted"]),
        drift_share=m["drift_share"],
        report_digest=m["report_digest"],
        spec=None if m["spec"] is None else dict(m["spec"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def check_batch(
    *,
    digest: str,
    rows: int,
    dropped: int,
    start_ms: int,
    end_ms: int,
    first_request_id: str,
    last_request_id: str,
) -> None:
    """Refuse a prediction batch that cannot be recorded (both deployment stores)."""
    check_digest(digest, "batch digest")
    for what, value in (("rows", rows), ("dropped", dropped)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"batch {what} must be an integer >= 0, got {value!r}")
    if rows == 0:
        raise UsageError("a prediction batch holds at least one row")
    if end_ms < start_ms:
        raise UsageError(f"batch ends ({end_ms}) before it starts ({start_ms})")
    if last_request_id < first_request_id:
        raise UsageError(
            f"batch request ids are out of order: {first_request_id} > {last_request_id}",
            hint="write the rows of a batch sorted by request id",
        )


def validation_record(
    m: Mapping[Any, Any],
    suite: SuiteVersion | None = None,
    *,
    name: str | None = None,
    number: int | None = None,
) -> ValidationRecord:
    """A validation result row (its ``results`` decoded) as a record; the suite's name and
    number from ``suite`` or as given."""
    return ValidationRecord(
        id=m["id"],
        suite_id=m["suite_id"],
        suite=suite.name if suite is not None else str(name),
        suite_number=suite.number if suite is not None else int(number or 0),
        dataset_version_id=m["dataset_version_id"],
        target=m["target"],
        success=bool(m["success"]),
        error_count=m["error_count"],
        warning_count=m["warning_count"],
        results=list(m["results"]),
        report_digest=m["report_digest"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )
