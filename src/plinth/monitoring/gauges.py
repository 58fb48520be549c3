"""Monitor results as Prometheus gauges: drift per feature, performance, status.

The serving app sets them from the newest report of each monitor of its deployment, read
off the request path on every alias poll; ``plinth monitor export`` serves the same gauges
for batch use, for every monitor of the project. The names are a contract:
``deploy/grafana/plinth-serving.json`` queries them. ``plinth_drift_score`` is normalised
(at or above 1 means drifted, for every method); the raw statistic, its threshold and the
adjusted p-value are beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from plinth.context import Context
    from plinth.entities import MonitorReport

__all__ = ["MONITOR_METRIC_NAMES", "MonitorGauges", "latest_reports"]

MONITOR_METRIC_NAMES: tuple[str, ...] = (
    "plinth_drift_detected",
    "plinth_drift_p_value",
    "plinth_drift_score",
    "plinth_drift_share",
    "plinth_drift_statistic",
    "plinth_drift_threshold",
    "plinth_model_performance",
    "plinth_monitor_last_run_timestamp_seconds",
    "plinth_monitor_status",
)
_STATUS = {"ok": 0.0, "alert": 1.0, "error": 2.0}
log = logging.getLogger("plinth.monitoring")
#: Reports read per refresh to find the newest of each monitor.
_SCAN = 200


def latest_reports(
    ctx: Context, *, deployment: str | None = None, scan: int = _SCAN
) -> list[MonitorReport]:
    """The newest monitor report of each monitor (of ``deployment`` when given)."""
    newest: dict[str, MonitorReport] = {}
    # ctx.reads: a model server reads these at start, before SQLAlchemy is needed
    for report in ctx.reads.monitoring.reports(ctx.project.id, kind="monitor", limit=scan):
        spec = report.spec or {}
        if deployment is not None and spec.get("deployment") != deployment:
            continue
        newest.setdefault(report.monitor, report)
    return list(newest.values())


class MonitorGauges:
    """The monitoring gauges in ``registry``; :meth:`update` sets them from reports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Gauge

        labels = ["monitor", "column", "method"]
        self.score = Gauge(
            "plinth_drift_score",
            "Normalised drift score per feature in the monitor's latest window: 1 or more "
            "means drifted (statistic / threshold, or threshold / p-value).",
            labels,
            registry=registry,
        )
        self.statistic = Gauge(
            "plinth_drift_statistic",
            "Raw drift statistic per feature (KS D, Wasserstein/std, chi-squared, "
            "Jensen-Shannon, PSI or unseen share; see method).",
            labels,
            registry=registry,
        )
        self.p_value = Gauge(
            "plinth_drift_p_value",
            "Benjamini-Hochberg adjusted p-value of the feature's KS or chi-squared test.",
            labels,
            registry=registry,
        )
        self.threshold = Gauge(
            "plinth_drift_threshold",
            "The method's threshold: a p-value level for ks and chisquare, else a statistic.",
            labels,
            registry=registry,
        )
        self.share = Gauge(
            "plinth_drift_share",
            "Share of the monitored features that drifted.",
            ["monitor"],
            registry=registry,
        )
        self.detected = Gauge(
            "plinth_drift_detected",
            "1 when the share of drifted features crossed the monitor's threshold.",
            ["monitor"],
            registry=registry,
        )
        self.performance = Gauge(
            "plinth_model_performance",
            "Model performance on the labelled predictions of the latest window.",
            ["monitor", "metric"],
            registry=registry,
        )
        self.status = Gauge(
            "plinth_monitor_status",
            "Latest evaluation: 0 ok, 1 alert, 2 error.",
            ["monitor"],
            registry=registry,
        )
        self.last_run = Gauge(
            "plinth_monitor_last_run_timestamp_seconds",
            "When the monitor last evaluated.",
            ["monitor"],
            registry=registry,
        )

    def update(self, reports: Iterable[MonitorReport]) -> None:
        """Set every gauge from the newest report of each monitor (stale series removed)."""
        for gauge in (self.score, self.statistic, self.p_value, self.threshold, self.performance):
            gauge.clear()
        for report in reports:
            # A report is a ledger row anyone with write access could have forged: one
            # that is not the shape plinth writes is skipped and shown as an error, and
            # never stops the gauges of the other monitors (or `plinth monitor export`).
            try:
                self._update_one(report)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                name = str(getattr(report, "monitor", "?"))
                log.warning(
                    "plinth: skipping malformed report %r of monitor %r in the gauges (%s)",
                    str(getattr(report, "id", "?")),
                    name,
                    type(exc).__name__,
                )
                self.status.labels(name).set(_STATUS["error"])

    def _update_one(self, report: MonitorReport) -> None:
        name = report.monitor
        self.status.labels(name).set(_STATUS.get(report.status, 2.0))
        self.last_run.labels(name).set(report.created_at / 1000.0)
        checks: list[dict[str, Any]] = (report.results or {}).get("checks", [])
        for check in checks:
            if check.get("check") == "drift" and "columns" in check:
                self.share.labels(name).set(float(check.get("share", 0.0)))
                self.detected.labels(name).set(1.0 if check["status"] == "alert" else 0.0)
                for column in check["columns"]:
                    self._drift_column(name, column)
            elif check.get("check") == "performance" and "metrics" in check:
                for metric, value in check["metrics"].items():
                    if isinstance(value, int | float):
                        self.performance.labels(name, metric).set(float(value))

    def _drift_column(self, monitor: str, column: dict[str, Any]) -> None:
        from plinth.monitoring.drift import normalised_score

        statistic, p_value = column.get("statistic"), column.get("p_value")
        method, threshold = str(column["method"]), float(column["threshold"])
        if statistic is None and p_value is None:
            return
        labels = (monitor, column["column"], method)
        score = column.get("score")  # older reports carry no score: computed here
        if not isinstance(score, int | float):
            score = normalised_score(method, statistic, threshold, p_value)
        self.score.labels(*labels).set(float(score))
        self.threshold.labels(*labels).set(threshold)
        if statistic is not None:
            self.statistic.labels(*labels).set(float(statistic))
        if p_value is not None:
            self.p_value.labels(*labels).set(float(p_value))
