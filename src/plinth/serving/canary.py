"""Per-variant request statistics of a deployment: what a canary rollout is judged on.

Each prediction request the app answers is counted under the role of the model that
answered it (``primary`` or ``canary``) and that model's version: ``requests`` (answered or
failed by the server), ``errors`` (the model or the server failed: a 5xx), ``rejected``
(the client's mistake: a 4xx, never held against a model) and the latency of the whole
request. A window starts for every role whenever any slot loads a version, so the primary
and the canary are always compared over the same period. ``GET /v1/canary`` answers
:meth:`CanaryStats.snapshot`::

    {"deployment": "web", "deployment_version": 1, "traffic": 0.1,
     "primary_ref": "m@champion", "canary_ref": "m@challenger",
     "primary": {"ref": "m@champion", "model_version": "m@1", "model": "m", "version": 1,
                 "since_ms": ..., "requests": 900, "errors": 0, "rejected": 2,
                 "error_rate": 0.0, "latency_ms": {"p50": 1.2, "p95": 2.0, "max": 9.1}},
     "canary": {...}}                      # null when no canary is configured or loaded

Counting is a lock and a few increments on the request path; quantiles are computed only
when a snapshot is asked for, over the newest :data:`LATENCY_SAMPLES` requests of a role.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.serving.app import Server
    from plinth.serving.served import ModelSlot

__all__ = ["LATENCY_SAMPLES", "OUTCOMES", "CanaryStats", "VariantStats"]

#: Latencies kept per role (the newest); the quantiles are computed over these.
LATENCY_SAMPLES = 20_000
#: What a request is counted as: answered, failed by the server, refused as the client's fault.
OUTCOMES = ("ok", "error", "rejected")


class VariantStats:
    """Counts and latencies of one model version serving one role, since ``since_ms``."""

    def __init__(self, role: str, model_version: str) -> None:
        self.role = role
        self.model_version = model_version
        self.since_ms = time.time_ns() // 1_000_000
        self.requests = 0
        self.errors = 0
        self.rejected = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def observe(self, seconds: float, outcome: str) -> None:
        if outcome == "rejected":
            self.rejected += 1
            return
        self.requests += 1
        if outcome == "error":
            self.errors += 1
        self.latencies.append(seconds)

    def to_dict(self) -> dict[str, Any]:
        samples = sorted(self.latencies)
        return {
            "model_version": self.model_version,
            "since_ms": self.since_ms,
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "error_rate": self.errors / self.requests if self.requests else None,
            "latency_ms": {
                "p50": _quantile_ms(samples, 0.50),
                "p95": _quantile_ms(samples, 0.95),
                "p99": _quantile_ms(samples, 0.99),
                "max": _quantile_ms(samples, 1.0),
                "samples": len(samples),
            },
        }


def _quantile_ms(samples: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``samples`` (seconds) in ms, nearest rank; None if empty."""
    if not samples:
        return None
    rank = min(len(samples) - 1, max(0, math.ceil(q * len(samples)) - 1))
    return round(samples[rank] * 1000.0, 3)


class CanaryStats:
    """The :class:`VariantStats` of each role of one app; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, VariantStats] = {}

    def loaded(self, role: str, model_version: str) -> None:
        """A slot loaded ``model_version`` for ``role``: every role starts a new window."""
        with self._lock:
            previous = dict(self._roles)
            self._roles = {r: VariantStats(r, s.model_version) for r, s in previous.items()}
            self._roles[role] = VariantStats(role, model_version)

    def observe(self, role: str, model_version: str, seconds: float, outcome: str) -> None:
        """Count one request ``role`` answered with ``model_version`` (another version's
        requests, finishing after a swap, belong to no window and are not counted)."""
        with self._lock:
            stats = self._roles.get(role)
            if stats is not None and stats.model_version == model_version:
                stats.observe(seconds, outcome)

    def variant(self, slot: ModelSlot | None) -> dict[str, Any] | None:
        """The statistics of what ``slot`` serves now, or None when it serves nothing."""
        if slot is None or slot.current is None:
            return None
        served = slot.current
        with self._lock:
            stats = self._roles.get(slot.role)
            if stats is None or stats.model_version != served.name:
                stats = VariantStats(slot.role, served.name)
            doc = stats.to_dict()
        version = served.version
        return {
            "ref": slot.ref,
            "model": None if version is None else version.model,
            "version": None if version is None else version.number,
            **doc,
        }

    def snapshot(self, server: Server) -> dict[str, Any]:
        """What ``GET /v1/canary`` answers for ``server`` (see the module docstring)."""
        spec, deployment = server.spec, server.deployment
        return {
            "deployment": spec.name,
            "deployment_version": None if deployment is None else deployment.number,
            "traffic": None if spec.canary is None else spec.canary.traffic,
            "primary_ref": server.primary.ref,
            "canary_ref": None if server.canary is None else server.canary.ref,
            "primary": self.variant(server.primary),
            "canary": self.variant(server.canary),
        }
