"""Monitoring records: monitor and drift reports, alert deliveries, label batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALERT_STATUSES",
    "REPORT_KINDS",
    "REPORT_STATUSES",
    "Alert",
    "LabelBatch",
    "MonitorReport",
]

#: ``monitor``: one evaluation of a monitor file; ``drift``: an ad-hoc drift check;
#: ``performance``: labels joined to logged predictions.
REPORT_KINDS = ("monitor", "drift", "performance")
#: ``alert``: at least one check failed; ``error``: a check could not be evaluated.
REPORT_STATUSES = ("ok", "alert", "error")
ALERT_STATUSES = ("sent", "suppressed", "failed")


@dataclass(frozen=True)
class MonitorReport:
    """The outcome of one monitoring evaluation; ``results`` holds each check's outcome."""

    id: str
    project_id: str
    kind: str
    monitor: str
    status: str
    rows: int
    results: Any
    deployment_id: str | None
    dataset: str | None
    reference: str | None
    window_start_ms: int | None
    window_end_ms: int | None
    drifted: bool | None
    drift_share: float | None
    report_digest: str | None
    spec: dict[str, Any] | None
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Alert:
    """One delivery decision of an alert on a route: sent, suppressed or failed."""

    id: str
    project_id: str
    report_id: str | None
    monitor: str
    fingerprint: str
    route: str
    status: str
    attempts: int
    message: str
    error: str | None
    created_at: int
    created_by: str


@dataclass(frozen=True)
class LabelBatch:
    """Ground truth for a deployment's predictions, stored as a Parquet blob and identified
    by its digest; a deleted batch keeps its row as a tombstone (who, when, why)."""

    id: str
    project_id: str
    deployment: str
    key: str
    digest: str
    rows: int
    matched: int
    created_at: int
    created_by: str
    label_column: str | None = None
    deleted_at: int | None = None
    deleted_by: str | None = None
    delete_reason: str | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
