"""Canary rollouts: serve a new version to a share of traffic, then promote it or roll back.

A deployment made for rollouts names a canary alias beside its primary (``model:
delays@champion``, ``canary: {model: delays@challenger, traffic: 0.1}``); while the alias
is unset the primary answers everything. :func:`rollout` moves ``challenger`` to the new
version (compare-and-swap), waits for the server to load it, then reads the server's
per-variant statistics (``GET /v1/canary``, :mod:`plinth.serving.canary`) until the canary
has answered ``min_requests`` requests, and decides:

- **promote** when the canary's error rate is at most ``max_error_rate_increase`` above the
  primary's and its latency quantile at most ``max_latency_ratio`` times the primary's plus
  ``latency_slack_ms``: ``champion`` moves to the canary's version with ``expected=`` the
  version the primary served (compare-and-swap), and ``challenger`` is removed;
- **roll back** otherwise, or when the canary is certain to fail before ``min_requests``,
  or when ``timeout_s`` passes first: ``challenger`` is removed (the server stops sending
  it traffic at its next alias poll) and ``champion`` is untouched.

Each step is a ledger decision (kinds ``canary``, ``promote``, ``rollback``) with the counts,
error rates, latency quantiles and thresholds as evidence; promotions and rollbacks are
sent to the alert routes::

    result = rollout("delays", 7, "http://127.0.0.1:8000", min_requests=500,
                     routes=[{"name": "ops", "type": "log", "path": "alerts.log"}])
    result.outcome        # "promoted" or "rolled_back"

:func:`watch_canary` takes one look and decides if it can (``outcome="waiting"`` if not):
call it from a schedule instead of blocking in :func:`rollout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.pipelines.decisions import Routes, placed, record
from plinth.pipelines.rollout_judge import Thresholds, canary_stats, judge

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Decision, ModelVersion

__all__ = [
    "CanaryResult",
    "Thresholds",
    "canary_stats",
    "judge",
    "rollout",
    "start_canary",
    "watch_canary",
]


@dataclass(frozen=True)
class CanaryResult:
    """``outcome`` is ``promoted``, ``rolled_back`` or ``waiting`` (no decision yet)."""

    outcome: str
    decision: Decision | None
    evidence: dict[str, Any] = field(default_factory=dict)


# -- deciding and acting ---------------------------------------------------------------------
def watch_canary(
    server: Any,
    *,
    min_requests: int = 100,
    max_error_rate_increase: float = 0.01,
    max_latency_ratio: float = 1.5,
    latency_slack_ms: float = 5.0,
    quantile: str = "p95",
    routes: Routes = (),
    pipeline_run_id: str | None = None,
    ctx: Context | None = None,
) -> CanaryResult:
    """Look at the canary once: promote it, roll it back, or report ``waiting``."""
    context, pipeline_run_id = placed(ctx, pipeline_run_id)
    thresholds = Thresholds(
        min_requests, max_error_rate_increase, max_latency_ratio, latency_slack_ms, quantile
    )
    verdict, evidence = judge(canary_stats(server, ctx=context), thresholds)
    if verdict == "waiting":
        return CanaryResult("waiting", None, evidence)
    if verdict == "healthy":
        return _promote(evidence, routes=routes, ctx=context, pipeline_run_id=pipeline_run_id)
    return _roll_back(evidence, routes=routes, ctx=context, pipeline_run_id=pipeline_run_id)


def _refs(evidence: Mapping[str, Any]) -> tuple[str, str, int, str, int]:
    """``(model, primary alias, primary version, canary alias, canary version)``."""
    from plinth.refs import parse_ref

    primary, canary = evidence["primary"], evidence["canary"]
    first = parse_ref(primary["ref"], what="model")
    second = parse_ref(canary["ref"], what="model")
    if first.name != second.name or first.label is None or second.label is None:
        raise UsageError(
            f"cannot move aliases between {primary['ref']} and {canary['ref']}: a rollout "
            "needs one model's two aliases",
            hint="serve model: NAME@champion with canary: {model: NAME@challenger, ...}",
            field="canary",
        )
    if primary["version"] is None or canary["version"] is None:
        raise UsageError("the server does not serve registered versions", field="server")
    return first.name, first.label, primary["version"], second.label, canary["version"]


def _promote(
    evidence: dict[str, Any], *, routes: Routes, ctx: Context, pipeline_run_id: str | None
) -> CanaryResult:
    from plinth.registry import api

    model, alias, old, canary_alias, new = _refs(evidence)
    reason = f"canary {model}@{new} healthy against {model}@{old} on {evidence['deployment']}"
    evidence["moved"] = {"alias": alias, "from": old, "to": new}
    try:
        api.set_alias(model, alias, new, expected=old, reason=reason, ctx=ctx)
    except ConflictError as exc:  # somebody moved it since the primary loaded it
        evidence["conflict"] = exc.message
        record("promote", model, "conflict", evidence, ctx=ctx, pipeline_run_id=pipeline_run_id)
        raise
    evidence["removed"] = _remove(model, canary_alias, new, reason, ctx)
    decision = record(
        "promote",
        model,
        "promoted",
        evidence,
        ctx=ctx,
        pipeline_run_id=pipeline_run_id,
        routes=routes,
        severity="warning",
        title=f"{model}@{new} promoted to {alias} (was {model}@{old})",
    )
    return CanaryResult("promoted", decision, decision.evidence)


def _roll_back(
    evidence: dict[str, Any], *, routes: Routes, ctx: Context, pipeline_run_id: str | None
) -> CanaryResult:
    model, alias, old, canary_alias, new = _refs(evidence)
    reasons = evidence.get("reasons") or []
    why = "; ".join(reasons) if reasons else "rolled back"
    evidence["removed"] = _remove(model, canary_alias, new, f"rollback: {why}", ctx)
    decision = record(
        "rollback",
        model,
        "rolled_back",
        evidence,
        ctx=ctx,
        pipeline_run_id=pipeline_run_id,
        routes=routes,
        severity="critical",
        title=f"canary {model}@{new} rolled back; {model}@{alias} stays {model}@{old}",
    )
    return CanaryResult("rolled_back", decision, decision.evidence)


def _remove(model: str, alias: str, version: int, reason: str, ctx: Context) -> dict[str, Any]:
    """Remove ``alias`` if it still points at ``version``; what happened, for the evidence."""
    from plinth.registry import api

    try:
        api.delete_alias(model, alias, expected=version, reason=reason, ctx=ctx)
    except (ConflictError, NotFoundError) as exc:  # moved on since: not ours to remove
        return {"alias": alias, "removed": False, "why": exc.message}
    return {"alias": alias, "removed": True, "version": version}


# -- the whole rollout ---------------------------------------------------------------------
def start_canary(
    model: str,
    version: int | ModelVersion,
    *,
    alias: str = "challenger",
    deployment: str | None = None,
    pipeline_run_id: str | None = None,
    ctx: Context | None = None,
) -> Decision:
    """Point ``alias`` of ``model`` at ``version`` (only if it is unset: a rollout in
    progress is not overtaken) and record a ``canary`` decision."""
    from plinth.registry import api

    context, pipeline_run_id = placed(ctx, pipeline_run_id)
    number = version if isinstance(version, int) else version.number
    try:
        api.set_alias(model, alias, number, expected=None, reason="canary rollout", ctx=context)
    except ConflictError:
        current = api.aliases(model, ctx=context).get(alias)
        raise ConflictError(
            f"{model}@{alias} already points at version {current}: a rollout is in progress",
            hint=f"let it finish, or remove it: plinth models alias {model} {alias} --delete",
            field="alias",
        ) from None
    evidence = {"alias": alias, "version": number, "deployment": deployment}
    return record(
        "canary", model, "started", evidence, ctx=context, pipeline_run_id=pipeline_run_id
    )


def rollout(
    model: str,
    version: int | ModelVersion,
    server: Any,
    *,
    alias: str = "challenger",
    min_requests: int = 100,
    max_error_rate_increase: float = 0.01,
    max_latency_ratio: float = 1.5,
    latency_slack_ms: float = 5.0,
    quantile: str = "p95",
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
    routes: Routes = (),
    pipeline_run_id: str | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    ctx: Context | None = None,
) -> CanaryResult:
    """Start a canary of ``version`` on ``server`` and wait (at most ``timeout_s``) until it
    is promoted or rolled back; see the module docstring. The server must already serve
    ``NAME@champion`` with the canary ``NAME@alias``."""
    context, pipeline_run_id = placed(ctx, pipeline_run_id)
    number = version if isinstance(version, int) else version.number
    thresholds = Thresholds(
        min_requests, max_error_rate_increase, max_latency_ratio, latency_slack_ms, quantile
    )
    stats = canary_stats(server, ctx=context)
    if stats.get("canary_ref") != f"{model}@{alias}":
        raise UsageError(
            f"deployment {stats.get('deployment')!r} serves canary {stats.get('canary_ref')!r}, "
            f"not {model}@{alias}",
            hint=f"add canary: {{model: {model}@{alias}, traffic: 0.1}} to the deployment",
            field="canary",
        )
    start_canary(
        model,
        number,
        alias=alias,
        deployment=stats.get("deployment"),
        pipeline_run_id=pipeline_run_id,
        ctx=context,
    )
    deadline = time.monotonic() + timeout_s
    wanted = f"{model}@{number}"
    while True:
        stats = canary_stats(server, ctx=context)
        canary = stats.get("canary")
        if canary is not None and canary.get("model_version") == wanted:
            break
        if time.monotonic() > deadline:
            return _give_up(
                model,
                alias,
                number,
                stats,
                f"{wanted} was never served",
                routes,
                context,
                pipeline_run_id,
                thresholds,
            )
        sleep(poll_s)
    while True:
        verdict, evidence = judge(stats, thresholds)
        if verdict == "healthy":
            return _promote(evidence, routes=routes, ctx=context, pipeline_run_id=pipeline_run_id)
        if verdict == "regressed":
            return _roll_back(evidence, routes=routes, ctx=context, pipeline_run_id=pipeline_run_id)
        if time.monotonic() > deadline:
            evidence["reasons"] = [
                f"timed out after {timeout_s:g} s: {evidence['canary']['requests']} canary "
                f"requests of {min_requests}"
            ]
            return _roll_back(evidence, routes=routes, ctx=context, pipeline_run_id=pipeline_run_id)
        sleep(poll_s)
        stats = canary_stats(server, ctx=context)


def _give_up(
    model: str,
    alias: str,
    number: int,
    stats: Mapping[str, Any],
    why: str,
    routes: Routes,
    ctx: Context,
    pipeline_run_id: str | None,
    thresholds: Thresholds,
) -> CanaryResult:
    """Roll back a canary the server never loaded (a load that failed, a wrong server)."""
    evidence = {
        "deployment": stats.get("deployment"),
        "primary": stats.get("primary"),
        "canary": stats.get("canary"),
        "thresholds": asdict(thresholds),
        "reasons": [why],
        "removed": _remove(model, alias, number, f"rollback: {why}", ctx),
    }
    decision = record(
        "rollback",
        model,
        "rolled_back",
        evidence,
        ctx=ctx,
        pipeline_run_id=pipeline_run_id,
        routes=routes,
        severity="critical",
        title=f"canary {model}@{number} rolled back: {why}",
    )
    return CanaryResult("rolled_back", decision, decision.evidence)
