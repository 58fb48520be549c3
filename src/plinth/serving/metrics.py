"""The Prometheus metrics of one served deployment, in a registry of its own.

The names are a contract: ``deploy/grafana`` queries them and a test checks every name in
:data:`METRIC_NAMES` is on ``/metrics``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "DEFAULT_VALUE_BUCKETS",
    "ERROR_TYPES",
    "METRIC_NAMES",
    "PROBABILITY_BUCKETS",
    "ServingMetrics",
    "prediction_buckets",
]

#: Every metric a served deployment exposes (counters with their ``_total`` suffix).
#: Distinct predicted classes counted under their own name; the rest under ``other``.
MAX_CLASS_SERIES = 100

METRIC_NAMES: tuple[str, ...] = (
    "plinth_batch_size",
    "plinth_errors_total",
    "plinth_input_check_failures_total",
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
    "plinth_drift_p_value",
    "plinth_drift_score",
    "plinth_drift_share",
    "plinth_drift_statistic",
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
#: Buckets of a probability output.
PROBABILITY_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Buckets of a value output of unknown range: ±1-3 steps per decade from 0.001 to 10^6.
_DECADES = tuple(float(f"{m}e{e}") for e in range(-3, 7) for m in (1, 3))[:-1]
DEFAULT_VALUE_BUCKETS = (*(-v for v in reversed(_DECADES)), 0.0, *_DECADES)
#: Fewer recorded predictions than this: their quantiles only place the 1-2-5 buckets.
_MIN_QUANTILE_ROWS = 50


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
        #: Bucket edges differ per model version, so this histogram is a collector of its own.
        self.values = _PredictionHistogram(deployment)
        reg.register(self.values)
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
        self.check_failures = Counter(
            "plinth_input_check_failures_total",
            "Request rows failing a check of the deployment's suite (validate:), by check.",
            ["deployment", "check", "column"],
            registry=reg,
        )
        self._log_rows = self.log_rows.labels(deployment)
        self._log_dropped = self.log_dropped.labels(deployment)
        self._log_seen = (0, 0)
        self._classes_seen: set[str] = set()
        self.predlog = predlog
        from plinth.monitoring.gauges import MonitorGauges

        #: Drift and performance of this deployment's monitors (set on each alias poll).
        self.monitors = MonitorGauges(reg)

    def input_check_failures(self, failures: Any) -> None:
        """Count rows failing the serving suite (``Failure`` tuples), per check and column."""
        counts: dict[tuple[str, str], int] = {}
        for f in failures:
            key = (f.check, f.column or "")
            counts[key] = counts.get(key, 0) + 1
        for (check, column), n in counts.items():
            self.check_failures.labels(self.deployment, check, column).inc(n)

    def error(self, kind: str) -> None:
        self.errors.labels(self.deployment, kind).inc()

    def served(self, model_version: str, role: str, previous: str | None = None) -> None:
        """``model_version`` now serves as ``role`` (replacing ``previous``)."""
        if previous is not None and previous != model_version:
            with contextlib.suppress(KeyError):
                self.model_info.remove(self.deployment, previous, role)
        self.model_info.labels(self.deployment, model_version, role).set(1)

    def retired(self, model_version: str, role: str) -> None:
        """``model_version`` no longer serves as ``role`` (its alias was removed)."""
        with contextlib.suppress(KeyError):
            self.model_info.remove(self.deployment, model_version, role)

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
                self.classes.labels(self.deployment, model_version, self._class(value)).inc(count)
            return
        self.values.observe(model_version, np.asarray(predictions, dtype=float).ravel(), kind)

    def _class(self, value: str) -> str:
        """``value`` as a series label: the first :data:`MAX_CLASS_SERIES` distinct classes
        (and short ones) keep their name, the rest count under ``other`` — a model that
        returns unique strings must not grow ``/metrics`` without bound."""
        seen = self._classes_seen
        if value in seen:
            return value
        if len(seen) >= MAX_CLASS_SERIES or len(value) > 64:
            return "other"
        seen.add(value)
        return value

    def prediction_buckets(
        self, model_version: str, kind: str, distribution: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        """Fix the histogram buckets of ``model_version`` (see :func:`prediction_buckets`)."""
        return self.values.set_buckets(model_version, prediction_buckets(kind, distribution))

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


# -- the prediction histogram ----------------------------------------------------------------
def _nice(value: float, up: bool) -> float:
    """``value`` rounded to two significant digits, away from the data's middle."""
    if value == 0.0 or not math.isfinite(value):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    # printed and parsed back so that an edge reads 0.3, not 0.30000000000000004
    return float(f"{(math.ceil if up else math.floor)(value / step) * step:.2g}")


def _one_two_five(low: float, high: float) -> list[float]:
    """1-2-5 edges from the decade below ``low`` to the decade above ``high`` (magnitudes)."""
    first = math.floor(math.log10(low)) - 1
    last = math.ceil(math.log10(high)) + 1
    return [float(f"{m}e{e}") for e in range(first, last) for m in (1, 2, 5)] + [10.0**last]


def prediction_buckets(
    kind: str, distribution: Mapping[str, Any] | None = None
) -> tuple[float, ...]:
    """Histogram edges for a model's predictions.

    ``probability``: 0 to 1 by 0.1. A value output with ``distribution`` (the
    ``prediction_quantiles`` a model version stores when it is logged: ``quantiles`` and
    ``rows``): its deciles rounded to two digits, plus one edge a decile's width above the
    maximum; with under 50 rows behind them, 1-2-5 edges spanning a decade beyond their
    range. Otherwise ±1-3 steps per decade from 0.001 to 10^6.
    """
    if kind == "probability":
        return PROBABILITY_BUCKETS
    quantiles: Sequence[Any] = (distribution or {}).get("quantiles") or ()
    values = sorted(float(q) for q in quantiles if isinstance(q, int | float))
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2 or values[0] == values[-1]:
        return DEFAULT_VALUE_BUCKETS
    low, high = values[0], values[-1]
    rows = (distribution or {}).get("rows")
    if isinstance(rows, int) and rows >= _MIN_QUANTILE_ROWS:
        top = high + (high - values[-2] if len(values) > 2 else high - low)
        edges = {_nice(v, up=v >= 0) for v in values[1:-1]}
        edges |= {_nice(low, up=False), _nice(high, up=True), _nice(top, up=True)}
        return tuple(sorted(edges))
    magnitudes = [abs(v) for v in (low, high) if v != 0.0]
    positive = _one_two_five(min(magnitudes), max(magnitudes))
    edges = set(positive) if low >= 0 else {*positive, *(-v for v in positive)}
    return tuple(sorted(edges | ({0.0} if low < 0 or low == 0.0 else set())))


class _PredictionHistogram:
    """``plinth_prediction_value``: one histogram per model version, each with the bucket
    edges of its own predictions (Prometheus reads buckets per series, so they may differ).
    Counting is one ``searchsorted`` + ``bincount`` per batch."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self._lock = threading.Lock()
        self._edges: dict[str, Any] = {}
        self._counts: dict[str, Any] = {}
        self._sums: dict[str, float] = {}

    def set_buckets(self, model_version: str, edges: Sequence[float]) -> tuple[float, ...]:
        import numpy as np

        with self._lock:
            if model_version not in self._edges:
                self._edges[model_version] = np.asarray(edges, dtype=float)
                self._counts[model_version] = np.zeros(len(edges) + 1, dtype=np.int64)
                self._sums[model_version] = 0.0
            return tuple(self._edges[model_version].tolist())

    def observe(self, model_version: str, values: Any, kind: str) -> None:
        import numpy as np

        if model_version not in self._edges:
            self.set_buckets(model_version, prediction_buckets(kind))
        values = values[np.isfinite(values)]
        edges = self._edges[model_version]
        # le buckets: a value equal to an edge belongs to that edge's bucket
        hits = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
        with self._lock:
            self._counts[model_version] += hits
            self._sums[model_version] += float(values.sum())

    def describe(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        yield HistogramMetricFamily(
            "plinth_prediction_value",
            "Predicted scores or values.",
            labels=["deployment", "model_version"],
        )

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "plinth_prediction_value",
            "Predicted scores or values; buckets from the model version's own predictions.",
            labels=["deployment", "model_version"],
        )
        with self._lock:
            rows = [
                (v, self._edges[v], self._counts[v].cumsum(), self._sums[v]) for v in self._edges
            ]
        for version, edges, cumulative, total in rows:
            # repr: the shortest text that reads back as the same float ("0.3", "2600.0")
            buckets = [
                (repr(float(e)), float(c)) for e, c in zip(edges, cumulative[:-1], strict=True)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric([self.deployment, version], buckets, total)
        yield family
