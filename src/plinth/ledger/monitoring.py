"""Monitoring records: reports of monitors, drift checks and label joins; alert deliveries;
label batches.

Reports are appended, never updated. Alert rows record each delivery decision (sent,
suppressed by the cool-down, or failed after retries), so "was this alert sent to this
route in the last hour?" is one indexed read.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import (
    ALERT_STATUSES,
    REPORT_KINDS,
    REPORT_STATUSES,
    Alert,
    LabelBatch,
    MonitorReport,
)
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text
from plinth.ledger.dataset_rows import check_digest
from plinth.ledger.record_rows import report_of as _report
from plinth.ledger.tables import alerts as alerts_t
from plinth.ledger.tables import label_batches as labels_t
from plinth.ledger.tables import monitor_reports as reports_t

__all__ = ["MonitoringStore"]


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{what} must be an integer >= 0, got {value!r}")
    return value


def _one_of(value: object, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


class MonitoringStore:
    """``ledger.monitoring``: record and read reports, alert deliveries and label batches."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- reports -----------------------------------------------------------------------
    def record_report(
        self,
        project_id: str,
        *,
        kind: str,
        monitor: str,
        status: str,
        rows: int,
        results: Any,
        deployment_id: str | None = None,
        dataset: str | None = None,
        reference: str | None = None,
        window_start_ms: int | None = None,
        window_end_ms: int | None = None,
        drifted: bool | None = None,
        drift_share: float | None = None,
        report_digest: str | None = None,
        spec: Mapping[str, Any] | None = None,
    ) -> MonitorReport:
        """Append one report; every argument is checked before anything is written."""
        _one_of(kind, REPORT_KINDS, "report kind")
        _one_of(status, REPORT_STATUSES, "report status")
        check_text(monitor, "monitor name")
        _count(rows, "report rows")
        if report_digest is not None:
            check_digest(report_digest, "report digest")
        if (
            window_start_ms is not None
            and window_end_ms is not None
            and window_end_ms < window_start_ms
        ):
            raise UsageError(f"window ends ({window_end_ms}) before it starts ({window_start_ms})")
        if drift_share is not None and not (
            isinstance(drift_share, int | float) and math.isfinite(drift_share)
        ):
            raise UsageError(f"drift share must be a finite number, got {drift_share!r}")
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "kind": kind,
            "monitor": monitor,
            "status": status,
            "deployment_id": deployment_id,
            "dataset": dataset,
            "reference": reference,
            "window_start_ms": window_start_ms,
            "window_end_ms": window_end_ms,
            "rows": rows,
            "drifted": drifted,
            "drift_share": None if drift_share is None else float(drift_share),
            "results": results,
            "report_digest": report_digest,
            "spec": None if spec is None else dict(spec),
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(reports_t.insert().values(**row))
        return _report(row)

    def reports(
        self,
        project_id: str,
        *,
        monitor: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[MonitorReport]:
        """Reports of the project (of one monitor, of one kind), newest first."""
        query = sa.select(reports_t).where(reports_t.c.project_id == project_id)
        if monitor is not None:
            query = query.where(reports_t.c.monitor == monitor)
        if kind is not None:
            query = query.where(reports_t.c.kind == kind)
        query = query.order_by(reports_t.c.created_at.desc(), reports_t.c.id.desc())
        if limit is not None:
            query = query.limit(_count(limit, "limit"))
        with self._db.read() as conn:
            return [_report(r) for r in conn.execute(query).mappings()]

    def get_report(self, report_id: str) -> MonitorReport:
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(reports_t).where(reports_t.c.id == report_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(
                f"no monitor report with id {report_id!r}",
                hint="list them with: plinth monitor reports",
                field="report",
            )
        return _report(row)

    # -- alerts ------------------------------------------------------------------------
    def record_alert(
        self,
        project_id: str,
        *,
        monitor: str,
        fingerprint: str,
        route: str,
        status: str,
        attempts: int,
        message: str,
        report_id: str | None = None,
        error: str | None = None,
    ) -> Alert:
        """Record one delivery decision of an alert on a route."""
        _one_of(status, ALERT_STATUSES, "alert status")
        check_text(monitor, "monitor name")
        check_text(fingerprint, "alert fingerprint", max_length=64)
        check_text(route, "alert route")
        _count(attempts, "alert attempts")
        if not isinstance(message, str):
            raise UsageError(f"alert message must be a string, got {type(message).__name__}")
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "report_id": report_id,
            "monitor": monitor,
            "fingerprint": fingerprint,
            "route": route,
            "status": status,
            "attempts": attempts,
            "message": message,
            "error": error,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(alerts_t.insert().values(**row))
        return _alert(row)

    def last_alert(
        self,
        project_id: str,
        *,
        monitor: str,
        fingerprint: str,
        route: str,
        status: str = "sent",
    ) -> Alert | None:
        """The newest delivery of ``fingerprint`` on ``route`` with ``status``, if any."""
        query = (
            sa.select(alerts_t)
            .where(
                (alerts_t.c.project_id == project_id)
                & (alerts_t.c.monitor == monitor)
                & (alerts_t.c.fingerprint == fingerprint)
                & (alerts_t.c.route == route)
                & (alerts_t.c.status == status)
            )
            .order_by(alerts_t.c.created_at.desc(), alerts_t.c.id.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _alert(row)

    def alerts(
        self, project_id: str, *, monitor: str | None = None, limit: int | None = None
    ) -> builtins.list[Alert]:
        """Alert deliveries of the project (of one monitor), newest first."""
        query = sa.select(alerts_t).where(alerts_t.c.project_id == project_id)
        if monitor is not None:
            query = query.where(alerts_t.c.monitor == monitor)
        query = query.order_by(alerts_t.c.created_at.desc(), alerts_t.c.id.desc())
        if limit is not None:
            query = query.limit(_count(limit, "limit"))
        with self._db.read() as conn:
            return [_alert(r) for r in conn.execute(query).mappings()]

    # -- labels ------------------------------------------------------------------------
    def record_labels(
        self,
        project_id: str,
        *,
        deployment: str,
        key: str,
        digest: str,
        rows: int,
        matched: int,
        label_column: str | None = None,
    ) -> LabelBatch:
        """Record a stored labels file (its blob is already written)."""
        check_text(deployment, "deployment name")
        check_text(key, "label key column")
        if label_column is not None:
            check_text(label_column, "label column")
        check_digest(digest, "labels digest")
        _count(rows, "label rows")
        _count(matched, "matched labels")
        if matched > rows:
            raise UsageError(f"{matched} labels matched, but the batch holds only {rows}")
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "deployment": deployment,
            "key": key,
            "digest": digest,
            "rows": rows,
            "matched": matched,
            "label_column": label_column,
            "deleted_at": None,
            "deleted_by": None,
            "delete_reason": None,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(labels_t.insert().values(**row))
        return _labels(row)

    def label_batches(
        self, project_id: str, deployment: str | None = None, *, include_deleted: bool = False
    ) -> builtins.list[LabelBatch]:
        """Label batches of the project (of one deployment), oldest first; deleted ones
        only with ``include_deleted``."""
        query = sa.select(labels_t).where(labels_t.c.project_id == project_id)
        if deployment is not None:
            query = query.where(labels_t.c.deployment == deployment)
        if not include_deleted:
            query = query.where(labels_t.c.deleted_at.is_(None))
        query = query.order_by(labels_t.c.created_at, labels_t.c.id)
        with self._db.read() as conn:
            return [_labels(r) for r in conn.execute(query).mappings()]

    def label_batch_by_digest(
        self, project_id: str, *, deployment: str, key: str, digest: str
    ) -> LabelBatch | None:
        """The live (not deleted) batch of ``deployment`` holding these labels on ``key``."""
        query = (
            sa.select(labels_t)
            .where(
                (labels_t.c.project_id == project_id)
                & (labels_t.c.deployment == deployment)
                & (labels_t.c.digest == digest)
                & (labels_t.c.key == key)
                & labels_t.c.deleted_at.is_(None)
            )
            .order_by(labels_t.c.created_at, labels_t.c.id)
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _labels(row)

    def get_label_batch(self, project_id: str, batch_id: str) -> LabelBatch:
        """One label batch, deleted or not; NotFoundError names it."""
        query = sa.select(labels_t).where(
            (labels_t.c.project_id == project_id) & (labels_t.c.id == batch_id)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(
                f"no label batch with id {batch_id!r}",
                hint="list them with: plinth monitor labels list",
                field="batch",
            )
        return _labels(row)

    def delete_label_batch(self, project_id: str, batch_id: str, *, reason: str) -> LabelBatch:
        """Tombstone a batch: it stays listed (with ``include_deleted``) with who deleted it,
        when and why, and no longer counts for performance."""
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError(
                "deleting a label batch needs a reason",
                hint="pass --reason 'why these labels are wrong'",
                field="reason",
            )
        stamp = self._db.stamp()
        with self._db.write() as conn:
            row = (
                conn.execute(
                    sa.select(labels_t).where(
                        (labels_t.c.project_id == project_id) & (labels_t.c.id == batch_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(
                    f"no label batch with id {batch_id!r}",
                    hint="list them with: plinth monitor labels list",
                    field="batch",
                )
            if row["deleted_at"] is not None:
                raise ConflictError(
                    f"label batch {batch_id} was already deleted by {row['deleted_by']} "
                    f"({row['delete_reason']})",
                    hint="see it with: plinth monitor labels show " + batch_id,
                    field="batch",
                )
            done = {
                "deleted_at": stamp["created_at"],
                "deleted_by": stamp["created_by"],
                "delete_reason": reason.strip(),
            }
            conn.execute(labels_t.update().where(labels_t.c.id == batch_id).values(**done))
        return _labels({**row, **done})


def _alert(m: Mapping[Any, Any]) -> Alert:
    return Alert(
        id=m["id"],
        project_id=m["project_id"],
        report_id=m["report_id"],
        monitor=m["monitor"],
        fingerprint=m["fingerprint"],
        route=m["route"],
        status=m["status"],
        attempts=m["attempts"],
        message=m["message"],
        error=m["error"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def _labels(m: Mapping[Any, Any]) -> LabelBatch:
    return LabelBatch(
        id=m["id"],
        project_id=m["project_id"],
        deployment=m["deployment"],
        key=m["key"],
        digest=m["digest"],
        rows=m["rows"],
        matched=m["matched"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        label_column=m["label_column"],
        deleted_at=m["deleted_at"],
        deleted_by=m["deleted_by"],
        delete_reason=m["delete_reason"],
    )
