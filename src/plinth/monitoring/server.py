"""Latency and errors of a served deployment, read off its own ``/metrics``.

The server's counters are cumulative since it started; a monitor keeps the counters of its
last evaluation in its report, so each evaluation judges only the requests since then (or
since the server started, after a restart or on the first evaluation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.errors import BackendError
from plinth.guards.net import OutboundPolicy, http_request, redact_url

if TYPE_CHECKING:
    from plinth.settings import Settings

__all__ = ["scrape", "window_stats"]

LATENCY = "plinth_request_duration_seconds"
ERRORS = "plinth_errors_total"
PREDICT_ROUTE = "/v1/predict"
#: The largest /metrics answer read (a plinth server's is a few kB).
MAX_METRICS_BYTES = 16 << 20
_WHERE = "cannot read the server's metrics"
_HINT = "is plinth serve running there? check 'checks.server.url' in the monitor file"


def scrape(
    url: str,
    *,
    timeout: float = 5.0,
    settings: Settings | None = None,
    policy: OutboundPolicy | None = None,
) -> dict[str, Any]:
    """The predict route's latency buckets, request count and error count at ``url``
    (the server's base address or its ``/metrics``).

    Read through the outbound guard (``policy``, default that of ``settings``): no
    redirects, no proxies, and no word of the answer in an error.
    """
    from prometheus_client.parser import text_string_to_metric_families

    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    answer = http_request(
        "GET",
        target,
        policy=policy or OutboundPolicy.from_settings(settings),
        where=_WHERE,
        timeout=timeout,
        max_bytes=MAX_METRICS_BYTES,
        field="checks.server.url",
    )
    text = answer.body.decode("utf-8", "replace")
    buckets: dict[str, float] = {}
    count = 0.0
    errors = 0.0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                route = sample.labels.get("route")
                if sample.name == f"{LATENCY}_bucket" and route == PREDICT_ROUTE:
                    le = sample.labels["le"]
                    buckets[le] = buckets.get(le, 0.0) + sample.value
                elif sample.name == f"{LATENCY}_count" and route == PREDICT_ROUTE:
                    count += sample.value
                elif sample.name == ERRORS and sample.labels.get("type") != "shadow":
                    errors += sample.value
    except Exception:  # the parser quotes the bad line: never show the peer's text
        raise BackendError(
            f"{_WHERE}: GET {redact_url(target)} answered something that is not Prometheus text",
            hint=_HINT,
        ) from None
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
