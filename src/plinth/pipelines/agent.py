"""The agent: one process that watches the triggers of some pipelines and runs them.

``plinth agent flow.py:retrain pipeline.yaml`` loads each pipeline target once, collects the
triggers it declares and, every ``poll_seconds``, makes one pass: each trigger's pending
events (:func:`plinth.pipelines.triggers.pending_events`) are claimed in the ledger with
``ledger.pipelines.claim_firing`` — a unique (project, trigger, event) row, so of two agents
on one ledger exactly one wins an event — and only the winner runs the pipeline, recording the
trigger's kind and why (``dataset flights@7 was added``) on the pipeline run, then naming the
run on the firing. Runs happen one at a time, in the agent's process.

A claimed event is never claimed again: if the agent dies between the claim and the run, or
the pipeline cannot start, the firing stays without a run (``plinth triggers list`` shows
it) and the event is not retried — start the run by hand (``plinth pipeline run``).
SIGINT or SIGTERM stops the agent after the run in progress; a second one interrupts it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from plinth.errors import PlinthError, UsageError
from plinth.pipelines.triggers import (
    FIRST_SEEN,
    Event,
    TriggerSpec,
    first_seen,
    next_tick,
    parse_triggers,
    pending_events,
)

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "AgentReport",
    "Fired",
    "agent_pass",
    "load_triggers",
    "run_agent",
    "trigger_status",
]

log = logging.getLogger("plinth.pipelines.agent")

#: Runs one pipeline for one event: ``(target, params, trigger=KIND, reason=WHY, ctx=...)``
#: -> the id of the pipeline run and its status.
Runner = Callable[..., tuple[str, str]]


@dataclass(frozen=True)
class Fired:
    """One event an agent claimed and the pipeline run it started (``status``: the run's
    status, or ``error`` when the pipeline could not start)."""

    trigger: str
    kind: str
    event_key: str
    reason: str
    firing_id: str
    pipeline_run_id: str | None
    status: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AgentReport:
    """What an agent did: its passes and every event it fired."""

    triggers: list[TriggerSpec]
    passes: int = 0
    fired: list[Fired] = field(default_factory=list)
    #: Triggers whose evaluation failed in some pass: ``trigger: error``.
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failed run, no run that could not start, no trigger that could not be read."""
        return not self.errors and all(f.status == "succeeded" for f in self.fired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "triggers": [t.to_dict() for t in self.triggers],
            "passes": self.passes,
            "fired": [f.to_dict() for f in self.fired],
            "errors": list(self.errors),
            "ok": self.ok,
        }


# -- finding the triggers ----------------------------------------------------------------------
def load_triggers(targets: Sequence[str], *, ctx: Context | None = None) -> list[TriggerSpec]:
    """The triggers every pipeline target declares (``FILE.py:NAME`` or a pipeline YAML
    file), checked; UsageError if two share a name or none is declared at all."""
    from plinth.context import resolve_context
    from plinth.pipelines.api import load_pipeline

    context = resolve_context(ctx)
    if not targets:
        raise UsageError(
            "name the pipelines whose triggers to watch",
            hint="plinth agent flow.py:retrain pipeline.yaml",
            field="targets",
        )
    specs: list[TriggerSpec] = []
    owner: dict[str, str] = {}
    for target in targets:
        pipeline = load_pipeline(target, ctx=context)
        for spec in parse_triggers(
            pipeline.triggers, pipeline=pipeline.name, target=target, where=f"{target}: triggers"
        ):
            if spec.name in owner:
                raise UsageError(
                    f"trigger {spec.name!r} is declared by {owner[spec.name]} and {target}",
                    hint="give one of them its own name: name: ...",
                    field="name",
                )
            owner[spec.name] = target
            specs.append(spec)
    return specs


def trigger_status(
    spec: TriggerSpec, *, ctx: Context | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """What ``plinth triggers list`` shows of one trigger: what it watches, when it was first
    seen, its next cron tick, its last firing and the events pending now (nothing written)."""
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    seen = first_seen(spec, context, record=False)
    tick = next_tick(spec, now)
    recent = context.ledger.pipelines.firings(context.project.id, trigger=spec.name, limit=2)
    last = next((f for f in recent if f.event_key != FIRST_SEEN), None)
    pending = pending_events(spec, context, now=now, record=False)
    return {
        **spec.to_dict(),
        "first_seen": None if seen is None else seen.isoformat(),
        "next_tick": None if tick is None else tick.isoformat(),
        "last_firing": None
        if last is None
        else {
            "event_key": last.event_key,
            "reason": last.reason,
            "at_ms": last.created_at,
            "pipeline_run_id": last.pipeline_run_id,
        },
        "pending": [{"event_key": e.key, "reason": e.reason, "params": e.params} for e in pending],
    }


# -- one pass ----------------------------------------------------------------------------------
def _default_runner(
    target: str, params: dict[str, Any], *, trigger: str, reason: str, ctx: Context
) -> tuple[str, str]:
    from plinth.pipelines.api import run_pipeline

    result = run_pipeline(target, params, trigger=trigger, reason=reason, ctx=ctx)
    return result.run.id, result.run.status


def agent_pass(
    triggers: Sequence[TriggerSpec],
    *,
    now: datetime | None = None,
    runner: Runner | None = None,
    stop: threading.Event | None = None,
    errors: list[str] | None = None,
    ctx: Context | None = None,
) -> list[Fired]:
    """Evaluate every trigger once; claim and run each pending event this agent wins.

    A trigger that cannot be evaluated (its dataset name is malformed, the ledger is briefly
    unreachable) is logged and appended to ``errors``; the others still run.
    """
    from plinth.context import resolve_context

    context = resolve_context(ctx)
    run = runner or _default_runner
    fired: list[Fired] = []
    for spec in triggers:
        if stop is not None and stop.is_set():
            break
        try:
            events = pending_events(spec, context, now=now)
        except Exception as exc:  # one broken trigger must not stop the others
            message = f"{spec.name}: {_one_line(exc)}"
            log.warning("plinth agent: cannot evaluate trigger %s", message)
            if errors is not None:
                errors.append(message)
            continue
        for event in events:
            if stop is not None and stop.is_set():
                break
            done = _fire(event, context, run)
            if done is not None:
                fired.append(done)
    return fired


def _fire(event: Event, ctx: Context, run: Runner) -> Fired | None:
    spec = event.trigger
    store = ctx.ledger.pipelines
    firing = store.claim_firing(ctx.project.id, spec.name, event.key, reason=event.reason)
    if firing is None:
        return None  # another agent has it
    log.info("plinth agent: %s fires: %s", spec.name, event.reason)
    common = {"trigger": spec.name, "kind": spec.kind, "event_key": event.key}
    try:
        run_id, status = run(
            spec.target, dict(event.params), trigger=spec.kind, reason=event.reason, ctx=ctx
        )
    except Exception as exc:  # the pipeline could not start: say so, keep watching
        log.warning("plinth agent: %s could not run %s: %s", spec.name, spec.target, exc)
        return Fired(
            **common,
            reason=event.reason,
            firing_id=firing.id,
            pipeline_run_id=None,
            status="error",
            error=_one_line(exc),
        )
    store.attach_firing(firing.id, run_id)
    return Fired(
        **common, reason=event.reason, firing_id=firing.id, pipeline_run_id=run_id, status=status
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PlinthError):
        return exc.one_line()
    return f"{type(exc).__name__}: {exc}"


# -- the loop ----------------------------------------------------------------------------------
def run_agent(
    targets: Sequence[str | TriggerSpec],
    *,
    once: bool = False,
    poll_seconds: float = 30.0,
    now: Callable[[], datetime] | None = None,
    runner: Runner | None = None,
    stop: threading.Event | None = None,
    on_fired: Callable[[Fired], Any] | None = None,
    ctx: Context | None = None,
) -> AgentReport:
    """Watch the triggers of ``targets`` (pipeline targets, or parsed triggers) and run
    their pipelines: one pass with ``once``, else a pass every ``poll_seconds`` until
    ``stop`` is set or the process gets SIGINT/SIGTERM (the run in progress finishes).

    ``now`` is the clock cron triggers read (tests inject one); ``on_fired`` sees each run.
    """
    from plinth.context import resolve_context

    if isinstance(poll_seconds, bool) or not isinstance(poll_seconds, int | float):
        raise UsageError(f"poll_seconds must be a number, got {poll_seconds!r}", field="poll")
    if poll_seconds <= 0:
        raise UsageError(f"poll_seconds must be > 0, got {poll_seconds}", field="poll")
    context = resolve_context(ctx)
    names = [t for t in targets if isinstance(t, str)]
    specs = [t for t in targets if isinstance(t, TriggerSpec)]
    if names or not specs:
        specs += load_triggers(names, ctx=context)
    report = AgentReport(specs)
    stopping = stop or threading.Event()
    with _stop_on_signals(stopping):
        while not stopping.is_set():
            fired = agent_pass(
                specs,
                ctx=context,
                now=None if now is None else now(),
                runner=runner,
                stop=stopping,
                errors=report.errors,
            )
            report.passes += 1
            for done in fired:
                report.fired.append(done)
                if on_fired is not None:
                    on_fired(done)
            if once:
                break
            stopping.wait(poll_seconds)
    return report


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the second one interrupts); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("plinth agent: stopping after the run in progress (again to interrupt)")
        stop.set()

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
