"""Alerts: what a monitor says when a check fails, and their delivery to the routes.

:func:`deliver` sends each alert to each route once per cool-down: an alert whose
fingerprint was sent on a route less than ``cooldown_seconds`` ago is recorded as
``suppressed`` and not sent; a failing send is retried with exponential back-off and then
recorded as ``failed``. Every decision is a row in the ledger (``ledger.monitoring``), and
no delivery failure ever raises out of :func:`deliver`::

    alert = AlertMessage.create("delays", "drift", severity="warning",
                                title="delays: 3 columns drifted", message="...",
                                key={"columns": ["distance", "carrier", "hour"]})
    for d in deliver(ctx.project.id, [alert], notifiers_from_spec(routes), ctx=ctx):
        print(d.route, d.status, d.attempts, d.error)

The fingerprint names what is wrong (monitor, check, severity and the key fields), never
the measured numbers, so the same problem seen again an hour later de-duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plinth._deprecation import renamed
from plinth.context import resolve_context
from plinth.errors import BackendError, PlinthError, UsageError
from plinth.ids import now_ms
from plinth.monitoring.notifiers import DELIVERY_ERRORS, redact_text

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.monitoring.notifiers import Notifier

__all__ = ["AlertMessage", "Delivery", "deliver", "fingerprint"]

log = logging.getLogger("plinth.monitoring")

Severity = Literal["warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
#: Characters of a failure kept in the ledger.
ERROR_LIMIT = 500


def fingerprint(monitor: str, check: str, severity: str, key: Any = None) -> str:
    """A stable 32-hex-digit hash of what an alert is about.

    ``key`` holds the fields that tell one problem from another (the drifted columns, the
    metric name), not changing numbers; it must be JSON-serialisable, and mapping order
    does not matter.
    """
    text = json.dumps([monitor, check, severity, key], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class AlertMessage:
    """One alert raised by a monitor; :meth:`create` computes the fingerprint."""

    monitor: str
    check: str
    severity: Severity
    title: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    fingerprint: str
    report_id: str | None = None
    created_ms: int = field(default_factory=now_ms)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise UsageError(
                f"alert severity must be 'warning' or 'critical', got {self.severity!r}",
                field="severity",
            )
        for name in ("monitor", "check", "title", "fingerprint"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"alert {name} must be a non-empty string, got {value!r}")

    @classmethod
    def create(
        cls,
        monitor: str,
        check: str,
        *,
        severity: Severity,
        title: str,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        key: Any = None,
        report_id: str | None = None,
    ) -> AlertMessage:
        """An alert whose fingerprint is :func:`fingerprint` of monitor, check, severity, key."""
        return cls(
            monitor=monitor,
            check=check,
            severity=severity,
            title=title,
            message=message,
            details=dict(details or {}),
            fingerprint=fingerprint(monitor, check, severity, key),
            report_id=report_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The alert as a JSON-ready dict: what webhooks receive and log files hold."""
        return asdict(self)


@dataclass(frozen=True)
class Delivery:
    """What :func:`deliver` did with one alert on one route.

    ``status`` is ``sent``, ``suppressed`` (sent less than the cool-down ago) or
    ``failed``; ``error`` is the last failure, one line, URLs redacted.
    """

    route: str
    fingerprint: str
    status: str
    attempts: int
    error: str | None = None


def _error_text(exc: BaseException) -> str:
    text = exc.one_line() if isinstance(exc, PlinthError) else f"{type(exc).__name__}: {exc}"
    text = redact_text(" ".join(text.split()))
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def _attempt(
    route: Notifier,
    alert: AlertMessage,
    retries: int,
    backoff: float,
    sleep: Callable[[float], Any],
) -> tuple[int, str | None]:
    """Send with retries: ``(attempts, None)`` on success, ``(attempts, error)`` if not."""
    error = ""
    for attempt in range(1, retries + 1):
        try:
            route.send(alert)
        except DELIVERY_ERRORS as exc:
            error = _error_text(exc)
            # Only what may pass is retried: a refused target or a 4xx will not.
            if isinstance(exc, PlinthError) and not isinstance(exc, BackendError):
                return attempt, error
            if attempt < retries and backoff > 0:
                sleep(backoff * 2 ** (attempt - 1))
        else:
            return attempt, None
    return retries, error


@renamed(positional_ctx=True)
def deliver(
    project_id: str,
    alerts: Sequence[AlertMessage],
    routes: Sequence[Notifier],
    *,
    cooldown_seconds: float = 3600,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], int] = now_ms,
    ctx: Context | None = None,
) -> list[Delivery]:
    """Send every alert to every route, de-duplicated, and record each outcome.

    Alerts with the same monitor and fingerprint are sent once per call. On each route an
    alert sent less than ``cooldown_seconds`` ago (by ``clock``, epoch ms) is suppressed.
    A send is tried ``retries`` times, waiting ``backoff_seconds * 2**i`` between tries;
    a refused target (SSRF rule, HTTP 4xx, a missing password) is not retried. Failures
    are recorded and logged, never raised; the ledger's own errors are.
    """
    ctx = resolve_context(ctx)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise UsageError(f"retries must be an integer >= 1, got {retries!r}", field="retries")
    if cooldown_seconds < 0 or backoff_seconds < 0:
        raise UsageError("cooldown_seconds and backoff_seconds must be >= 0")
    store = ctx.ledger.monitoring
    seen: set[tuple[str, str]] = set()
    deliveries: list[Delivery] = []
    for alert in alerts:
        if (alert.monitor, alert.fingerprint) in seen:
            continue
        seen.add((alert.monitor, alert.fingerprint))
        for route in routes:
            last = store.last_alert(
                project_id, monitor=alert.monitor, fingerprint=alert.fingerprint, route=route.name
            )
            if last is not None and clock() - last.created_at < cooldown_seconds * 1000:
                attempts, status, error = 0, "suppressed", None
            else:
                attempts, error = _attempt(route, alert, retries, backoff_seconds, sleep)
                status = "sent" if error is None else "failed"
            if error is not None:
                log.warning(
                    "alert %r of monitor %r not delivered to route %r after %d attempt(s): %s",
                    alert.title,
                    alert.monitor,
                    route.name,
                    attempts,
                    error,
                )
            store.record_alert(
                project_id,
                monitor=alert.monitor,
                fingerprint=alert.fingerprint,
                route=route.name,
                status=status,
                attempts=attempts,
                message=f"{alert.title}: {alert.message}" if alert.message else alert.title,
                report_id=alert.report_id,
                error=error,
            )
            deliveries.append(Delivery(route.name, alert.fingerprint, status, attempts, error))
    return deliveries
