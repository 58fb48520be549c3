"""Judging a canary: the thresholds it must stay within, the server's per-variant
statistics (``GET /v1/canary``) it is judged on, and the verdict with its evidence.

:func:`judge` is pure: ``(stats, Thresholds) -> ("waiting" | "healthy" | "regressed",
evidence)``; :mod:`plinth.pipelines.rollout` acts on the verdict (promote or roll back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import BackendError, UsageError
from plinth.pipelines.decisions import placed

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["Thresholds", "canary_stats", "judge"]

_QUANTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Thresholds:
    """What a canary must stay within, against the primary over the same window."""

    min_requests: int = 100
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    latency_slack_ms: float = 5.0
    quantile: str = "p95"

    def __post_init__(self) -> None:
        if isinstance(self.min_requests, bool) or not isinstance(self.min_requests, int):
            raise UsageError("min_requests must be a whole number", field="min_requests")
        if self.min_requests < 1:
            raise UsageError("min_requests must be at least 1", field="min_requests")
        for name in ("max_error_rate_increase", "max_latency_ratio", "latency_slack_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageError(f"{name} must be a number >= 0, got {value!r}", field=name)
        if self.quantile not in _QUANTILES:
            raise UsageError(
                f"quantile must be one of {', '.join(_QUANTILES)}, got {self.quantile!r}",
                field="quantile",
            )


# -- reading the server --------------------------------------------------------------------
def canary_stats(
    server: Any, *, ctx: Context | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """The ``GET /v1/canary`` answer of ``server``: its base URL (read through the outbound
    guard with the project's settings) or an HTTP client with ``get`` (an ``httpx.Client``,
    Starlette's ``TestClient``)."""
    if isinstance(server, str):
        from plinth.guards.net import OutboundPolicy, http_request

        context = placed(ctx, None)[0]
        answer = http_request(
            "GET",
            server.rstrip("/") + "/v1/canary",
            policy=OutboundPolicy.from_settings(context.settings),
            where="cannot read the server's canary statistics",
            timeout=timeout,
            field="server",
        )
        body: bytes = answer.body
    elif callable(getattr(server, "get", None)):
        response = server.get("/v1/canary")
        if response.status_code != 200:
            raise BackendError(
                f"GET /v1/canary answered {response.status_code}",
                hint="is it a plinth serve deployment with this version of plinth?",
            )
        body = response.content
    else:
        raise UsageError(
            f"server must be a base URL or an HTTP client, got {type(server).__name__}",
            field="server",
        )
    try:
        doc = json.loads(body)
    except ValueError:
        raise BackendError("GET /v1/canary did not answer JSON") from None
    if not isinstance(doc, dict) or "primary" not in doc:
        raise BackendError("GET /v1/canary did not answer plinth's canary statistics")
    return doc


# -- deciding ------------------------------------------------------------------------------
def judge(stats: Mapping[str, Any], thresholds: Thresholds) -> tuple[str, dict[str, Any]]:
    """``("waiting" | "healthy" | "regressed", evidence)`` for one ``GET /v1/canary`` answer.

    Waiting: fewer than ``min_requests`` requests on either variant, unless the canary's
    errors so far already exceed what ``min_requests`` requests could absorb.
    """
    primary, canary = stats.get("primary"), stats.get("canary")
    if primary is None or canary is None:
        raise UsageError(
            f"deployment {stats.get('deployment')!r} serves no canary now",
            hint="give the deployment a canary (canary: {model: NAME@challenger, traffic: "
            "0.1}) and point that alias at the new version",
            field="canary",
        )
    q = thresholds.quantile
    evidence: dict[str, Any] = {
        "deployment": stats.get("deployment"),
        "deployment_version": stats.get("deployment_version"),
        "traffic": stats.get("traffic"),
        "primary": primary,
        "canary": canary,
        "thresholds": asdict(thresholds),
    }
    reasons: list[str] = []
    base_rate = primary["error_rate"] or 0.0
    canary_rate = canary["error_rate"] or 0.0
    n = thresholds.min_requests
    enough = canary["requests"] >= n and primary["requests"] >= n
    # errors so far / min_requests is the lowest rate the canary can still end with
    floor = canary["errors"] / max(n, canary["requests"])
    evidence["error_rate_increase"] = canary_rate - base_rate
    if floor - base_rate > thresholds.max_error_rate_increase or (
        enough and canary_rate - base_rate > thresholds.max_error_rate_increase
    ):
        reasons.append(
            f"error rate {canary_rate:.4f} on {canary['requests']} requests vs {base_rate:.4f} "
            f"on the primary: more than {thresholds.max_error_rate_increase:g} above it"
        )
    if not enough and not reasons:
        evidence["reasons"] = [
            f"waiting: {canary['requests']} canary and {primary['requests']} primary "
            f"requests of {n}"
        ]
        return "waiting", evidence
    base_latency = primary["latency_ms"][q]
    canary_latency = canary["latency_ms"][q]
    if base_latency is not None and canary_latency is not None:
        limit = base_latency * thresholds.max_latency_ratio + thresholds.latency_slack_ms
        evidence["latency_limit_ms"] = limit
        evidence["latency_ratio"] = canary_latency / base_latency if base_latency else None
        if canary_latency > limit:
            reasons.append(
                f"{q} latency {canary_latency:.1f} ms vs {base_latency:.1f} ms on the primary: "
                f"above the limit {limit:.1f} ms ({thresholds.max_latency_ratio:g}x + "
                f"{thresholds.latency_slack_ms:g} ms)"
            )
    evidence["reasons"] = reasons
    return ("regressed" if reasons else "healthy"), evidence
