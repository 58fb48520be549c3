"""Triggers: what starts a pipeline without a person — a cron schedule, a new dataset version,
a monitor alert — and the manual trigger (``plinth pipeline run``).

A pipeline declares them in ``@plinth.pipeline(triggers=[...])`` or under ``triggers:`` in
its YAML file; each is a mapping, checked strictly (an unknown key names the closest one)::

    triggers:
      - cron: "0 * * * *"                 # every hour, in UTC
      - dataset: flights                  # each new version of flights
        param: version                    # ... passed as params["version"] = "flights@7"
      - monitor: delays                   # a report of monitor delays with status alert
        on: drift                         # drift | performance | any (the default)
      - manual: true                      # `plinth pipeline run` (listed, never polled)

Optional keys: ``name`` (default ``PIPELINE.KIND[.WATCHED]``), ``params`` (passed to every
run it starts), ``param`` (dataset and monitor: the parameter that gets the version ref or
report id) and ``since`` (``now``, the default, or ``first``).

Every event has a key (the cron tick as UTC ISO time, the dataset version id, the report id)
that :mod:`plinth.pipelines.agent` claims in the ledger, so an event starts at most one run.
A trigger reacts to what happens after it is first seen: the first agent pass that evaluates
it records a ``first-seen`` firing. With ``since: first`` a dataset trigger fires for every
version ever added and a monitor trigger for its newest alert. Rules for what was missed while
no agent ran: a cron trigger fires only its LATEST missed tick (not one run per tick), a
monitor trigger only its newest alert, a dataset trigger every new version (oldest first:
each is data to process). Quarantined versions fire too, so the pipeline can stop with an
alert; erased versions do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError
from plinth.pipelines.monitor_alerts import alert_problems
from plinth.specfile import no_unknown, short_repr

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion, TriggerFiring

__all__ = [
    "FIRST_SEEN",
    "MONITOR_ON",
    "TRIGGER_KINDS",
    "Event",
    "TriggerSpec",
    "alert_problems",
    "first_seen",
    "next_tick",
    "parse_triggers",
    "pending_events",
]

TRIGGER_KINDS: tuple[str, ...] = ("cron", "dataset", "monitor", "manual")
#: Which alert reports a monitor trigger reacts to.
MONITOR_ON: tuple[str, ...] = ("drift", "performance", "any")
#: The event key of the firing that records when a trigger was first seen.
FIRST_SEEN = "first-seen"

_COMMON = ("name", "params")
_KEYS: dict[str, tuple[str, ...]] = {
    "cron": ("cron", *_COMMON),
    "dataset": ("dataset", "param", "since", *_COMMON),
    "monitor": ("monitor", "on", "param", "since", *_COMMON),
    "manual": ("manual", *_COMMON),
}
_ALL_KEYS = ("cron", "dataset", "monitor", "manual", "name", "on", "param", "params", "since")
_SEEN_PREFIX = "first seen at "
#: Monitor reports read per pass (newest first): older alerts are superseded anyway.
_REPORTS_READ = 200
_HINT = (
    "a trigger is one of {cron: '0 * * * *'}, {dataset: NAME}, {monitor: NAME, on: drift}, "
    "{manual: true}; see docs/pipelines.md, 'Triggers and the agent'"
)


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of a pipeline: what it watches and the run it starts."""

    name: str
    kind: str
    pipeline: str
    #: What the agent runs: ``FILE.py:NAME`` or a pipeline YAML file.
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    dataset: str | None = None
    monitor: str | None = None
    on: str = "any"
    param: str | None = None
    since: str = "now"

    @property
    def watches(self) -> str:
        """What the trigger watches, in words: ``cron 0 * * * *``, ``dataset flights``..."""
        if self.kind == "cron":
            return f"cron {self.cron} (UTC)"
        if self.kind == "dataset":
            return f"dataset {self.dataset}"
        if self.kind == "monitor":
            return f"monitor {self.monitor} ({self.on} alerts)"
        return "plinth pipeline run"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "target": self.target,
            "params": dict(self.params),
            "watches": self.watches,
        }
        for key in ("cron", "dataset", "monitor", "param"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.kind == "monitor":
            out["on"] = self.on
        if self.kind in ("dataset", "monitor"):
            out["since"] = self.since
        return out


@dataclass(frozen=True)
class Event:
    """Something a trigger reacts to: its ledger key, why it fires, the run's params."""

    trigger: TriggerSpec
    key: str
    reason: str
    params: dict[str, Any]


# -- parsing ---------------------------------------------------------------------------------
def parse_triggers(
    raw: Any, *, pipeline: str, target: str, where: str = "triggers"
) -> list[TriggerSpec]:
    """The triggers of ``pipeline`` from their raw form (a list of mappings, or None).

    UsageError names ``where``, the trigger's position and the key at fault.
    """
    if raw is None:
        return []
    if isinstance(raw, Mapping) or not isinstance(raw, Sequence) or isinstance(raw, str):
        raise UsageError(
            f"{where}: triggers must be a list of mappings, got {short_repr(raw)}",
            hint=_HINT,
            field="triggers",
        )
    specs = [
        _parse_one(item, pipeline=pipeline, target=target, where=f"{where}[{i}]")
        for i, item in enumerate(raw)
    ]
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise UsageError(
                f"{where}[{i}]: two triggers are named {spec.name!r} "
                f"(also {where}[{seen[spec.name]}])",
                hint="give one of them its own name: name: ...",
                field="name",
            )
        seen[spec.name] = i
    return specs


def _parse_one(item: Any, *, pipeline: str, target: str, where: str) -> TriggerSpec:
    if isinstance(item, str) and item in TRIGGER_KINDS:
        raise UsageError(
            f"{where}: a trigger is a mapping, got {item!r}", hint=_HINT, field="triggers"
        )
    if not isinstance(item, Mapping):
        raise UsageError(
            f"{where}: a trigger must be a mapping, got {short_repr(item)}",
            hint=_HINT,
            field="triggers",
        )
    no_unknown(item, _ALL_KEYS, where, "")
    kinds = [k for k in TRIGGER_KINDS if k in item]
    if len(kinds) != 1:
        found = f"both {' and '.join(kinds)}" if kinds else "none"
        raise UsageError(
            f"{where}: a trigger has exactly one of {', '.join(TRIGGER_KINDS)} ({found} here)",
            hint=_HINT,
            field="triggers",
        )
    kind = kinds[0]
    no_unknown(item, _KEYS[kind], f"{where} ({kind} trigger)", "")
    params = item.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise UsageError(
            f"{where}: 'params' must be a mapping of parameter names to values, got "
            f"{short_repr(params)}",
            field="params",
        )
    spec: dict[str, Any] = {"kind": kind, "pipeline": pipeline, "target": target}
    spec["params"] = dict(params)
    watched = ""
    if kind == "cron":
        spec["cron"] = _cron(item["cron"], where)
    elif kind == "manual":
        if item["manual"] is not True:
            raise UsageError(
                f"{where}: 'manual' must be true, got {short_repr(item['manual'])}",
                field="manual",
            )
    else:
        watched = _text(item[kind], where, kind)
        spec[kind] = watched
        if "param" in item:
            spec["param"] = _text(item["param"], where, "param")
        since = item.get("since", "now")
        if since not in ("now", "first"):
            raise UsageError(
                f"{where}: 'since' must be now or first, got {short_repr(since)}",
                hint="now: only what happens after the trigger is first seen; first: all of it",
                field="since",
            )
        spec["since"] = since
    if kind == "monitor":
        on = item.get("on", "any")
        if on not in MONITOR_ON:
            raise UsageError(
                f"{where}: 'on' must be one of {', '.join(MONITOR_ON)}, got {short_repr(on)}",
                field="on",
            )
        spec["on"] = on
    default = f"{pipeline}.{kind}" + (f".{watched}" if watched else "")
    spec["name"] = _text(item.get("name", default), where, "name")
    return TriggerSpec(**spec)


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise UsageError(
            f"{where}: '{key}' must be a non-empty name (at most 200 characters), got "
            f"{short_repr(value)}",
            hint=_HINT,
            field=key,
        )
    return value


def _croniter() -> Any:
    from plinth._extras import require

    return require("croniter", feature="a cron trigger", field="cron")


def _cron(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(
            f"{where}: 'cron' must be a cron expression like '0 * * * *', got {short_repr(value)}",
            field="cron",
        )
    if not _croniter().croniter.is_valid(value):
        raise UsageError(
            f"{where}: 'cron' is not a valid cron expression: {value!r}",
            hint="five fields: minute hour day-of-month month day-of-week, e.g. '0 * * * *' "
            "(every hour) or '30 6 * * 1' (Mondays 06:30 UTC)",
            field="cron",
        )
    return value


# -- evaluating ------------------------------------------------------------------------------
def _iso(moment: datetime, timespec: str = "seconds") -> str:
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise UsageError(f"now must carry a time zone, got {now!r}", field="now")
    return now.astimezone(UTC)


def next_tick(spec: TriggerSpec, now: datetime | None = None) -> datetime | None:
    """The next cron tick after ``now`` (UTC), or None for other kinds."""
    if spec.cron is None:
        return None
    nxt: datetime = _croniter().croniter(spec.cron, _utc(now)).get_next(datetime)
    return nxt


def first_seen(
    spec: TriggerSpec, ctx: Context, *, now: datetime | None = None, record: bool = True
) -> datetime | None:
    """When ``spec`` was first seen by an agent: recorded now (``record``) if never before."""
    store = ctx.ledger.pipelines
    project_id = ctx.project.id
    found = store.firings(project_id, trigger=spec.name, event_keys=[FIRST_SEEN], limit=1)
    if not found and record:
        at = _utc(now)
        store.claim_firing(
            project_id, spec.name, FIRST_SEEN, reason=_SEEN_PREFIX + _iso(at, "milliseconds")
        )
        # Another agent may have won the claim: its time is the one that counts.
        found = store.firings(project_id, trigger=spec.name, event_keys=[FIRST_SEEN], limit=1)
    if not found:
        return None
    return _seen_time(found[0])


def _seen_time(firing: TriggerFiring) -> datetime:
    text = firing.reason.removeprefix(_SEEN_PREFIX)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # written by hand? the firing's own time is the next best thing
        return datetime.fromtimestamp(firing.created_at / 1000, UTC)


def pending_events(
    spec: TriggerSpec, ctx: Context, *, now: datetime | None = None, record: bool = True
) -> list[Event]:
    """The events of ``spec`` no agent has claimed yet, in the order to fire them.

    ``now`` is the clock cron triggers read (default: the current time; tests inject one).
    ``record=False`` (``plinth triggers list``) writes nothing: a trigger never seen before
    has no pending events yet.
    """
    if spec.kind == "manual":
        return []
    at = _utc(now)
    seen = None
    if spec.kind == "cron" or spec.since == "now":
        # ``now`` is the cron clock; datasets and monitors compare the ledger's own times.
        clock = at if spec.kind == "cron" else None
        seen = first_seen(spec, ctx, now=clock, record=record)
        if seen is None:
            return []
    if spec.kind == "cron":
        assert seen is not None
        events = _cron_events(spec, seen, at)
    elif spec.kind == "dataset":
        events = _dataset_events(spec, ctx, seen)
    else:
        events = _monitor_events(spec, ctx, seen)
    if not events:
        return []
    claimed = {
        f.event_key
        for f in ctx.ledger.pipelines.firings(
            ctx.project.id,
            trigger=spec.name,
            event_keys=[e.key for e in events],
            limit=len(events),
        )
    }
    return [e for e in events if e.key not in claimed]


def _event(spec: TriggerSpec, key: str, reason: str, value: str | None = None) -> Event:
    params = dict(spec.params)
    if spec.param is not None and value is not None:
        params[spec.param] = value
    return Event(spec, key, reason, params)


def _cron_events(spec: TriggerSpec, seen: datetime, now: datetime) -> list[Event]:
    assert spec.cron is not None
    tick: datetime = _croniter().croniter(spec.cron, now).get_prev(datetime)
    if tick <= seen:
        return []
    return [_event(spec, _iso(tick), f"cron {spec.cron} ticked at {_iso(tick)}")]


def _after(created_at_ms: int, seen: datetime | None) -> bool:
    return seen is None or created_at_ms > seen.timestamp() * 1000


def _dataset_events(spec: TriggerSpec, ctx: Context, seen: datetime | None) -> list[Event]:
    assert spec.dataset is not None
    try:
        dataset = ctx.ledger.datasets.get(ctx.project.id, spec.dataset)
    except NotFoundError:
        return []  # not created yet: its first version will fire
    versions: list[DatasetVersion] = ctx.ledger.datasets.list_versions(dataset)
    out = []
    for version in reversed(versions):  # oldest first
        if version.status == "erased" or not _after(version.created_at, seen):
            continue
        note = " (quarantined)" if version.status == "quarantined" else ""
        reason = f"dataset {version.ref} was added{note}"
        out.append(_event(spec, version.id, reason, version.ref))
    return out


def _monitor_events(spec: TriggerSpec, ctx: Context, seen: datetime | None) -> list[Event]:
    assert spec.monitor is not None
    reports = ctx.ledger.monitoring.reports(
        ctx.project.id, monitor=spec.monitor, limit=_REPORTS_READ
    )
    for report in reports:  # newest first: the newest alert supersedes older ones
        if not _after(report.created_at, seen):
            break
        problems = alert_problems(report, spec.on)
        if problems:
            reason = f"monitor {spec.monitor} alerted: {'; '.join(problems)}"
            return [_event(spec, report.id, _clip(reason), report.id)]
    return []


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
