"""The Prometheus metrics of one served deployment, in a registry of its own.

The names are a contract: ``deploy/grafana`` queries them and a test checks every name in
:data:`METRIC_NAMES` is on ``/metrics``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["ERROR_TYPES", "METRIC_NAMES", "ServingMetrics"]

#: Every metric a served deployment exposes (counters with their ``_total`` suffix).
METRIC_NAMES: tuple[str, ...] = (
    "plinth_batch_size",
    "plinth_errors_total",
    "plinth_model_info",
    "plinth_prediction_class_total",
    "plinth_prediction_log_dropped_total",
    "plinth_prediction_log_rows_total",
    "plinth_prediction_value",
    "plinth_predictions_total",
    "plinth_request_bytes",
    "plinth_request_duration_seconds",
    "plinth_response_bytes",
    "plinth_rows_per_request",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    # set from the deployment's monitor reports (plinth.monitoring.gauges)
    "plinth_drift_detected",
    "plinth_drift_score",
    "plinth_drift_share",
    "plinth_drift_threshold",
    "plinth_model_performance",
    "plinth_monitor_last_run_timestamp_seconds",
    "plinth_monitor_status",
)

#: ``type`` label values of ``plinth_errors_total``, present (at 0) from the start.
ERROR_TYPES = ("validation", "too_large", "model", "shadow", "internal")

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BYTES = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
_ROWS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000)
_VALUES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 10.0, 100.0, 1000.0)


class ServingMetrics:
    """The collectors of one app; ``registry`` is what ``/metrics`` renders."""

    def __init__(self, deployment: str, predlog: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.deployment = deployment
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        ProcessCollector(registry=reg)
        self.latency = Histogram(
            "plinth_request_duration_seconds",
            "Request latency by route.",
            ["deployment", "route"],
            buckets=_LATENCY,
            registry=reg,
        )
        self.request_bytes = Histogram(
            "plinth_request_bytes",
            "Request body size.",
            ["deployment"],
            buckets=_BYTES,
            registry=reg,
        ).labels(deployment)
        self.response_bytes = Histogram(
            "plinth_response_bytes",
            "Response body size.",
            ["deployment"],
            buckets=_BYTES,
            registry=reg,
        ).labels(deployment)
        self.rows = Histogram(
            "plinth_rows_per_request",
            "Rows in each prediction request.",
            ["deployment"],
            buckets=_ROWS,
            registry=reg,
        ).labels(deployment)
        self.batch_size = Histogram(
            "plinth_batch_size",
            "Rows in each model call (concurrent requests are batched).",
            ["deployment"],
            buckets=_ROWS,
            registry=reg,
        ).labels(deployment)
        self.errors = Counter(
            "plinth_errors_total", "Failed requests by type.", ["deployment", "type"], registry=reg
        )
        for kind in ERROR_TYPES:
            self.errors.labels(deployment, kind)
        self.predictions = Counter(
            "plinth_predictions_total",
            "Rows predicted, by model version and role (primary, canary, shadow).",
            ["deployment", "model_version", "role"],
            registry=reg,
        )
        self.values = Histogram(
            "plinth_prediction_value",
            "Predicted scores or values.",
            ["deployment", "model_version"],
            buckets=_VALUES,
            registry=reg,
        )
        self.classes = Counter(
            "plinth_prediction_class_total",
            "Predicted labels, by class.",
            ["deployment", "model_version", "class"],
            registry=reg,
        )
        self.model_info = Gauge(
            "plinth_model_info",
            "1 for each model version being served, by role.",
            ["deployment", "model_version", "role"],
            registry=reg,
        )
        self.log_rows = Counter(
            "plinth_prediction_log_rows_total",
            "Rows written to the prediction log.",
            ["deployment"],
            registry=reg,
        )
        self.log_dropped = Counter(
            "plinth_prediction_log_dropped_total",
            "Rows the prediction log dropped because its buffer was full.",
            ["deployment"],
            registry=reg,
        )
        self._log_rows = self.log_rows.labels(deployment)
        self._log_dropped = self.log_dropped.labels(deployment)
        self._log_seen = (0, 0)
        self.predlog = predlog
        from plinth.monitoring.gauges import MonitorGauges

        #: Drift and performance of this deployment's monitors (set on each alias poll).
        self.monitors = MonitorGauges(reg)

    def error(self, kind: str) -> None:
        self.errors.labels(self.deployment, kind).inc()

    def served(self, model_version: str, role: str, previous: str | None = None) -> None:
        """``model_version`` now serves as ``role`` (replacing ``previous``)."""
        if previous is not None and previous != model_version:
            with contextlib.suppress(KeyError):
                self.model_info.remove(self.deployment, previous, role)
        self.model_info.labels(self.deployment, model_version, role).set(1)

    def observe_predictions(
        self, model_version: str, role: str, predictions: Any, kind: str
    ) -> None:
        """Count a batch's predictions: value histogram for scores, class counts for labels."""
        import numpy as np

        n = len(predictions)
        self.predictions.labels(self.deployment, model_version, role).inc(n)
        if role == "shadow" or n == 0:
            return
        if kind == "label":
            values, counts = np.unique(np.asarray(predictions).astype(str), return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self.classes.labels(self.deployment, model_version, value).inc(count)
            return
        hist = self.values.labels(self.deployment, model_version)
        array = np.asarray(predictions, dtype=float).ravel()
        if array.size > 64:  # keep the per-batch cost flat: a histogram is a sample anyway
            array = array[:: max(1, array.size // 64)]
        for value in array.tolist():
            hist.observe(value)

    def sync_predlog(self) -> None:
        """Copy the prediction log's counts into the counters (at scrape time)."""
        log = self.predlog
        if log is None:
            return
        rows = int(getattr(log, "rows_logged", 0))
        dropped = int(getattr(log, "rows_dropped", 0))
        seen_rows, seen_dropped = self._log_seen
        if rows > seen_rows:
            self._log_rows.inc(rows - seen_rows)
        if dropped > seen_dropped:
            self._log_dropped.inc(dropped - seen_dropped)
        self._log_seen = (max(rows, seen_rows), max(dropped, seen_dropped))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        self.sync_predlog()
        return generate_latest(self.registry)
