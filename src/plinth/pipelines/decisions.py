"""Gate and rollout decisions: one ledger record each, with its evidence, and a notification.

Gates (:mod:`plinth.pipelines.gates`) and rollouts (:mod:`plinth.pipelines.rollout`) decide;
this module records what they decided (``ledger.pipelines.record_decision``) with evidence
made JSON-safe, and sends the alert routes an alert naming the decision::

    decision = record("gate", "delays", "failed", {"metric": "roc_auc", ...},
                      ctx=ctx, routes=[{"name": "ops", "type": "log", "path": "alerts.log"}],
                      severity="critical", title="delays@4 lost to the champion")

Routes are what a monitor's ``routes:`` list holds (mappings, checked by
:func:`plinth.monitoring.routes.notifiers_from_spec`) or notifiers already built. Delivery
failures are recorded by :func:`plinth.monitoring.alerts.deliver`, never raised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from plinth.errors import GateFailedError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Decision
    from plinth.monitoring.alerts import Delivery
    from plinth.monitoring.notifiers import Notifier

__all__ = ["GateFailedError", "Routes", "notify", "placed", "plain", "record"]

#: Alert routes: route mappings as in a monitor file, or built notifiers.
Routes = Sequence["Notifier | Mapping[str, Any]"]


def placed(ctx: Context | None, pipeline_run_id: str | None) -> tuple[Context, str | None]:
    """The context and pipeline run a decision belongs to: those given, else those of the
    step running in this thread (:func:`plinth.pipelines.current_step`), else the default
    context and no run."""
    from plinth.context import resolve_context
    from plinth.pipelines.executors import current_step

    here = current_step()
    if here is not None:
        ctx = ctx if ctx is not None else here.ctx
        pipeline_run_id = pipeline_run_id if pipeline_run_id is not None else here.pipeline_run_id
    return resolve_context(ctx), pipeline_run_id


def plain(value: Any) -> Any:
    """``value`` as JSON data: numpy scalars as numbers, NaN and infinities as None,
    tuples as lists, anything else JSON cannot hold as its text."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return plain(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def record(
    kind: str,
    subject: str,
    outcome: str,
    evidence: Mapping[str, Any],
    *,
    ctx: Context,
    pipeline_run_id: str | None = None,
    routes: Routes = (),
    severity: Literal["warning", "critical"] | None = None,
    title: str | None = None,
) -> Decision:
    """Record a decision; with ``severity``, also send it to ``routes``."""
    data = plain(evidence)
    json.dumps(data)  # what the ledger stores must be JSON: fail here, not in the driver
    decision = ctx.ledger.pipelines.record_decision(
        ctx.project.id,
        kind=kind,
        subject=subject,
        outcome=outcome,
        evidence=data,
        pipeline_run_id=pipeline_run_id,
    )
    if severity is not None and routes:
        notify(decision, routes, ctx=ctx, severity=severity, title=title)
    return decision


def notify(
    decision: Decision,
    routes: Routes,
    *,
    ctx: Context,
    severity: Literal["warning", "critical"] = "warning",
    title: str | None = None,
) -> list[Delivery]:
    """Send ``decision`` to each route (no cool-down: every decision is news once)."""
    from plinth.monitoring.alerts import AlertMessage, deliver
    from plinth.monitoring.routes import notifier_from_spec

    notifiers: list[Notifier] = []
    for index, route in enumerate(routes):
        if isinstance(route, Mapping):
            notifiers.append(
                notifier_from_spec(
                    route, root=ctx.settings.root, index=index, settings=ctx.settings
                )
            )
        else:
            notifiers.append(route)
    alert = AlertMessage.create(
        f"pipeline:{decision.subject}",
        decision.kind,
        severity=severity,
        title=title or f"{decision.kind} {decision.subject}: {decision.outcome}",
        message=_summary(decision),
        details={
            "decision_id": decision.id,
            "kind": decision.kind,
            "subject": decision.subject,
            "outcome": decision.outcome,
            "pipeline_run_id": decision.pipeline_run_id,
            "evidence": decision.evidence,
        },
        key={"decision": decision.id},
    )
    return deliver(ctx.project.id, [alert], notifiers, cooldown_seconds=0, ctx=ctx)


def _summary(decision: Decision) -> str:
    reasons = decision.evidence.get("reasons")
    if isinstance(reasons, list) and reasons:
        return "; ".join(str(r) for r in reasons)
    return f"decision {decision.id}"
