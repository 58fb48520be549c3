"""Triggers: strict parsing, cron ticks (an injected clock), new dataset versions and monitor
alerts as events, each claimed once in the ledger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.pipelines.triggers import (
    FIRST_SEEN,
    TriggerSpec,
    alert_problems,
    first_seen,
    next_tick,
    parse_triggers,
    pending_events,
)


def _one(raw: dict[str, Any], pipeline: str = "retrain") -> TriggerSpec:
    [spec] = parse_triggers([raw], pipeline=pipeline, target="flow.py:retrain")
    return spec


def _at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


# -- parsing -----------------------------------------------------------------------------------
def test_each_kind_parses_with_a_default_name() -> None:
    specs = parse_triggers(
        [
            {"cron": "0 * * * *", "params": {"full": True}},
            {"dataset": "flights", "param": "version"},
            {"monitor": "delays", "on": "drift", "since": "first"},
            {"manual": True},
        ],
        pipeline="retrain",
        target="flow.py:retrain",
    )
    assert [s.name for s in specs] == [
        "retrain.cron",
        "retrain.dataset.flights",
        "retrain.monitor.delays",
        "retrain.manual",
    ]
    cron, dataset, monitor, manual = specs
    assert (cron.cron, cron.params, cron.target) == ("0 * * * *", {"full": True}, "flow.py:retrain")
    assert (dataset.dataset, dataset.param, dataset.since) == ("flights", "version", "now")
    assert (monitor.monitor, monitor.on, monitor.since) == ("delays", "drift", "first")
    assert manual.kind == "manual"
    assert manual.watches == "plinth pipeline run"
    assert parse_triggers(None, pipeline="p", target="t") == []
    named = _one({"dataset": "flights", "name": "on-new-month"})
    assert named.name == "on-new-month"


@pytest.mark.parametrize(
    ("raw", "message", "field"),
    [
        ({"crn": "0 * * * *"}, "unknown key 'crn' — did you mean 'cron'?", "crn"),
        ({"dataset": "f", "parm": "v"}, "did you mean 'param'?", "parm"),
        ({"cron": "0 * * * *", "since": "first"}, "unknown key 'since'", "since"),
        ({"cron": "0 * * * *", "dataset": "f"}, "exactly one of", "triggers"),
        ({"name": "x"}, "exactly one of", "triggers"),
        ({"cron": "every hour"}, "not a valid cron expression", "cron"),
        ({"cron": 5}, "must be a cron expression", "cron"),
        ({"monitor": "m", "on": "latency"}, "'on' must be one of drift, performance, any", "on"),
        ({"dataset": "f", "since": "yesterday"}, "'since' must be now or first", "since"),
        ({"dataset": ""}, "'dataset' must be a non-empty name", "dataset"),
        ({"manual": "yes"}, "'manual' must be true", "manual"),
        ({"dataset": "f", "params": [1]}, "'params' must be a mapping", "params"),
    ],
)
def test_bad_triggers_name_the_key(raw: dict[str, Any], message: str, field: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_triggers([{"manual": True}, raw], pipeline="p", target="t", where="flow.yaml")
    assert message in info.value.message
    assert info.value.message.startswith("flow.yaml[1]")
    assert info.value.field == field


def test_triggers_must_be_a_list_and_names_unique() -> None:
    with pytest.raises(UsageError, match="must be a list of mappings"):
        parse_triggers({"cron": "0 * * * *"}, pipeline="p", target="t")
    with pytest.raises(UsageError, match="a trigger is a mapping, got 'manual'"):
        parse_triggers(["manual"], pipeline="p", target="t")
    with pytest.raises(UsageError, match=r"two triggers are named 'p.cron' \(also triggers\[0\]\)"):
        parse_triggers([{"cron": "0 * * * *"}, {"cron": "5 * * * *"}], pipeline="p", target="t")


# -- cron --------------------------------------------------------------------------------------
def test_cron_fires_ticks_after_it_was_first_seen_and_only_the_latest_missed(
    project: Context,
) -> None:
    spec = _one({"cron": "0 * * * *"})
    # First pass at 10:30: the trigger is seen now; the 10:00 tick is before that.
    assert pending_events(spec, project, now=_at(10, 30)) == []
    assert first_seen(spec, project) == _at(10, 30)
    assert next_tick(spec, _at(10, 30)) == _at(11)
    [event] = pending_events(spec, project, now=_at(11, 5))
    assert event.key == "2024-03-01T11:00:00Z"
    assert event.reason == "cron 0 * * * * ticked at 2024-03-01T11:00:00Z"
    claimed = project.ledger.pipelines.claim_firing(
        project.project.id, spec.name, event.key, reason=event.reason
    )
    assert claimed is not None
    assert pending_events(spec, project, now=_at(11, 59)) == []
    # Down from 11:59 to 15:20: one run for the 15:00 tick, not four.
    late = pending_events(spec, project, now=_at(15, 20))
    assert [e.key for e in late] == ["2024-03-01T15:00:00Z"]


def test_a_trigger_never_seen_has_nothing_pending_when_not_recording(project: Context) -> None:
    spec = _one({"cron": "*/5 * * * *"})
    assert pending_events(spec, project, now=_at(9), record=False) == []
    assert first_seen(spec, project, record=False) is None
    assert project.ledger.pipelines.firings(project.project.id) == []  # nothing written


def test_racing_first_sights_agree_on_one_time(project: Context) -> None:
    spec = _one({"cron": "0 * * * *"})
    assert first_seen(spec, project, now=_at(8)) == _at(8)
    assert first_seen(spec, project, now=_at(9)) == _at(8)  # the first one counts
    [firing] = project.ledger.pipelines.firings(project.project.id, trigger=spec.name)
    assert firing.event_key == FIRST_SEEN


# -- datasets ----------------------------------------------------------------------------------
def _version(ctx: Context, month: int) -> str:
    table = pa.table({"month": [month] * 3, "delay": [1.0, 2.0, float(month)]})
    return plinth.datasets.save(table, "flights", ctx=ctx).version.ref


def test_dataset_trigger_fires_for_versions_added_after_it_was_seen(project: Context) -> None:
    spec = _one({"dataset": "flights", "param": "version", "params": {"epochs": 2}})
    _version(project, 1)
    assert pending_events(spec, project) == []  # flights@1 existed when it was first seen
    second, third = _version(project, 2), _version(project, 3)
    versions = project.ledger.datasets.list_versions(
        project.ledger.datasets.get(project.project.id, "flights")
    )
    project.ledger.datasets.set_status([versions[0].id], "quarantined")
    events = pending_events(spec, project)
    assert [e.params for e in events] == [
        {"epochs": 2, "version": second},
        {"epochs": 2, "version": third},
    ]
    assert [e.reason for e in events] == [
        "dataset flights@2 was added",
        "dataset flights@3 was added (quarantined)",
    ]
    assert [e.key for e in events] == [versions[1].id, versions[0].id]
    store = project.ledger.pipelines
    store.claim_firing(project.project.id, spec.name, events[0].key, reason=events[0].reason)
    assert [e.key for e in pending_events(spec, project)] == [versions[0].id]


def test_a_dataset_that_does_not_exist_yet_fires_its_first_version(project: Context) -> None:
    spec = _one({"dataset": "flights"})
    assert pending_events(spec, project) == []  # no dataset yet: nothing, and no error
    first = _version(project, 1)
    assert [e.reason for e in pending_events(spec, project)] == [f"dataset {first} was added"]


def test_dataset_trigger_since_first_fires_for_every_version(project: Context) -> None:
    _version(project, 1)
    _version(project, 2)
    spec = _one({"dataset": "flights", "since": "first"})
    events = pending_events(spec, project)
    assert [e.reason for e in events] == [
        "dataset flights@1 was added",
        "dataset flights@2 was added",
    ]
    assert all(e.params == {} for e in events)  # no param: the run gets none


# -- monitors ----------------------------------------------------------------------------------
def _report(ctx: Context, status: str, checks: list[dict[str, Any]], kind: str = "monitor") -> str:
    report = ctx.ledger.monitoring.record_report(
        ctx.project.id,
        kind=kind,
        monitor="delays",
        status=status,
        rows=10,
        results={"checks": checks} if kind != "performance" else {"breaches": checks},
    )
    return report.id


DRIFT = {"check": "drift", "status": "alert", "drifted_columns": ["temp", "dewp"], "summary": "x"}
PERF = {"check": "performance", "status": "alert", "summary": "roc_auc 0.61 < 0.7"}


def test_monitor_trigger_fires_on_the_newest_matching_alert(project: Context) -> None:
    drift = _one({"monitor": "delays", "on": "drift", "param": "report"})
    perf = _one({"monitor": "delays", "on": "performance", "name": "perf"})
    anything = _one({"monitor": "delays", "name": "any"})
    _report(project, "alert", [DRIFT])  # before the triggers were seen: ignored
    for spec in (drift, perf, anything):
        assert pending_events(spec, project) == []
    time.sleep(0.005)  # reports below come at least a millisecond after the first sight
    _report(project, "ok", [{"check": "drift", "status": "ok"}])
    assert pending_events(drift, project) == []
    older = _report(project, "alert", [DRIFT])
    newer = _report(project, "alert", [DRIFT, PERF])
    [event] = pending_events(drift, project)
    assert (event.key, event.params) == (newer, {"report": newer})
    assert event.reason == "monitor delays alerted: drift in temp, dewp"
    assert older != newer  # the older alert is superseded, never fired on its own
    [event] = pending_events(perf, project)
    assert event.reason == "monitor delays alerted: performance: roc_auc 0.61 < 0.7"
    [event] = pending_events(anything, project)
    assert event.reason == (
        "monitor delays alerted: drift in temp, dewp; performance: roc_auc 0.61 < 0.7"
    )
    project.ledger.pipelines.claim_firing(project.project.id, "perf", newer, reason="r")
    assert pending_events(perf, project) == []


def test_performance_reports_alert_performance_triggers_only() -> None:
    from plinth.entities import MonitorReport

    def report(kind: str, status: str, results: Any) -> MonitorReport:
        fields = dict.fromkeys(MonitorReport.__dataclass_fields__)
        fields.update(kind=kind, status=status, results=results, monitor="m")
        return MonitorReport(**fields)  # type: ignore[arg-type]

    breach = {"breaches": [{"metric": "roc_auc", "value": 0.6}, {"metric": "f1"}]}
    perf = report("performance", "alert", breach)
    assert alert_problems(perf, "performance") == ["performance below bounds on f1, roc_auc"]
    assert alert_problems(perf, "any") == alert_problems(perf, "performance")
    assert alert_problems(perf, "drift") == []
    assert alert_problems(report("performance", "ok", breach)) == []
    skew = {"checks": [{"check": "feature_skew", "status": "alert", "drifted_columns": ["a"]}]}
    assert alert_problems(report("monitor", "alert", skew), "drift") == ["feature skew in a"]


def test_manual_triggers_are_never_pending(project: Context) -> None:
    assert pending_events(_one({"manual": True}), project, now=_at(1) + timedelta(days=9)) == []
