"""Latency and errors of a served deployment, read off its own ``/metrics``.

The server's counters are cumulative since it started; a monitor keeps the counters of its
last evaluation in its report, so each evaluation judges only the requests since then (or
since the server started, after a restart or on the first evaluation).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from plinth.errors import BackendError

__all__ = ["scrape", "window_stats"]

LATENCY = "plinth_request_duration_seconds"
ERRORS = "plinth_errors_total"
PREDICT_ROUTE = "/v1/predict"


def scrape(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The predict route's latency buckets, request count and error count at ``url``
    (the server's base address or its ``/metrics``)."""
    from prometheus_client.parser import text_string_to_metric_families

    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:  # noqa: S310 - http(s) checked by the spec
            text = answer.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        raise BackendError(
            f"cannot read the server's metrics at {target}: {exc}",
            hint="is plinth serve running there? check 'server.url' in the monitor file",
        ) from None
    buckets: dict[str, float] = {}
    count = 0.0
    errors = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{LATENCY}_bucket" and sample.labels.get("route") == PREDICT_ROUTE:
                le = sample.labels["le"]
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_count" and sample.labels.get("route") == PREDICT_ROUTE:
                count += sample.value
            elif sample.name == ERRORS and sample.labels.get("type") != "shadow":
                errors += sample.value
    return {"buckets": buckets, "requests": count, "errors": errors}


def _quantile(buckets: dict[str, float], q: float) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated inside its bucket (s)."""
    bounds = sorted(((float(le), n) for le, n in buckets.items()), key=lambda b: b[0])
    if not bounds or bounds[-1][1] <= 0:
        return None
    total = bounds[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, cumulative in bounds:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return lower + (upper - lower) * share
        lower, below = upper, cumulative
    return lower


def window_stats(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Requests, p95 latency (ms) and error rate since ``before`` (a counter reset — the
    server restarted — counts from zero)."""
    if before is None or now["requests"] < before.get("requests", 0):
        before = {"buckets": {}, "requests": 0.0, "errors": 0.0}
    requests = now["requests"] - before.get("requests", 0.0)
    errors = max(0.0, now["errors"] - before.get("errors", 0.0))
    old = before.get("buckets", {})
    buckets = {le: n - old.get(le, 0.0) for le, n in now["buckets"].items()}
    p95 = _quantile(buckets, 0.95)
    return {
        "requests": int(requests),
        "errors": int(errors),
        "p95_ms": None if p95 is None else p95 * 1000.0,
        "error_rate": errors / requests if requests > 0 else (1.0 if errors else 0.0),
    }
