"""The agent: each event fires exactly once however many agents race for it (threads on
SQLite and PostgreSQL, processes on SQLite), every run records its trigger and why, --once
makes one pass, SIGTERM stops it gracefully."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.pipelines.agent import agent_pass, load_triggers, run_agent, trigger_status
from plinth.pipelines.triggers import TriggerSpec
from plinth.testing.races import race

FLOW = """
import plinth


@plinth.step
def measure(version: str, report: str) -> int:
    if version == "flights@99":
        raise ValueError("month 99 is corrupt")
    return len(version) + len(report)


@plinth.pipeline(
    name="retrain",
    triggers=[
        {"dataset": "flights", "param": "version"},
        {"cron": "0 * * * *", "name": "hourly"},
        {"monitor": "delays", "on": "drift", "param": "report"},
        {"manual": True},
    ],
)
def retrain(version: str = "none", report: str = "none") -> None:
    measure(version, report)
"""


def _write_flow(folder: Path) -> str:
    (folder / "flow.py").write_text(FLOW, encoding="utf-8")
    return "flow.py:retrain"


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 1, hour, minute, tzinfo=UTC)


def _add_month(ctx: Context, month: int) -> str:
    table = pa.table({"month": [month] * 4, "delay": [1.0, 2.5, 0.0, float(month)]})
    return plinth.datasets.save(table, "flights", ctx=ctx).version.ref


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata(request: pytest.FixtureRequest, project_dir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{project_dir / '.plinth' / 'plinth.db'}"
    schema = request.getfixturevalue("pg_schema")
    return f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


@pytest.fixture
def agents(project_dir: Path, metadata: str) -> Iterator[Callable[[], Context]]:
    """Contexts on one project and ledger, one per agent (each its own connections)."""
    opened: list[Context] = []

    def open_one() -> Context:
        ctx = Context.open(project_dir, metadata=metadata, system_metrics=False)
        opened.append(ctx)
        return ctx

    yield open_one
    for ctx in opened:
        ctx.close()


def test_racing_agents_fire_each_event_exactly_once(
    project_dir: Path, agents: Callable[[], Context]
) -> None:
    target = _write_flow(project_dir)
    contexts = [agents() for _ in range(4)]
    first = contexts[0]
    specs = load_triggers([target], ctx=first)
    # The agents' first sight: flights@1 and the 10:00 tick came before it.
    _add_month(first, 1)
    assert agent_pass(specs, ctx=first, now=_at(10, 30)) == []
    added = [_add_month(first, month) for month in (2, 3, 4)]
    turn = iter(range(len(contexts)))
    lock = threading.Lock()

    def one_agent() -> list[Any]:
        with lock:
            ctx = contexts[next(turn)]
        return agent_pass(specs, ctx=ctx, now=_at(11, 5))

    fired = [f for one in race(len(contexts), one_agent) for f in one]
    assert sorted(f.reason for f in fired) == sorted(
        [f"dataset {ref} was added" for ref in added]
        + ["cron 0 * * * * ticked at 2024-03-01T11:00:00Z"]
    )
    assert {f.status for f in fired} == {"succeeded"}
    project_id = first.project.id
    runs = first.ledger.pipelines.runs(project_id, pipeline="retrain")
    assert len(runs) == 4  # one run per event, whichever agent won it
    by_id = {run.id: run for run in runs}
    for f in fired:
        run = by_id[f.pipeline_run_id or ""]
        assert (run.trigger, run.reason, run.status) == (f.kind, f.reason, "succeeded")
        [firing] = first.ledger.pipelines.firings(
            project_id, trigger=f.trigger, event_keys=[f.event_key]
        )
        assert firing.pipeline_run_id == run.id
    assert sorted(r.params["version"] for r in runs) == [*added, "none"]  # cron: the default
    # Later passes find nothing new.
    assert race(2, lambda: agent_pass(specs, ctx=contexts[1], now=_at(11, 50))) == [[], []]


def test_agents_in_two_processes_fire_each_event_once(project: Context, project_dir: Path) -> None:
    target = _write_flow(project_dir)
    specs = load_triggers([target], ctx=project)
    agent_pass(specs, ctx=project)  # first sight
    added = [_add_month(project, month) for month in (1, 2, 3)]
    start = time.time() + 3.0
    script = textwrap.dedent(
        f"""
        import sys, time
        from plinth.cli.main import main
        import plinth.pipelines.agent, plinth.pipelines.api  # imported before the start line
        time.sleep(max(0.0, {start!r} - time.time()))
        sys.exit(main(["agent", {target!r}, "--once", "--json"]))
        """
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=project_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reports.append(json.loads(out))
    fired = [f for report in reports for f in report["fired"]]
    assert sorted(f["reason"] for f in fired) == [f"dataset {ref} was added" for ref in added]
    assert all(report["passes"] == 1 for report in reports)
    runs = project.ledger.pipelines.runs(project.project.id)
    assert sorted(r.params["version"] for r in runs) == added
    assert {r.id for r in runs} == {f["pipeline_run_id"] for f in fired}


def test_a_monitor_alert_starts_a_run_that_says_why(project: Context, project_dir: Path) -> None:
    target = _write_flow(project_dir)
    report = run_agent([target], once=True, ctx=project)
    assert (report.passes, report.fired) == (1, [])
    time.sleep(0.005)
    alert = project.ledger.monitoring.record_report(
        project.project.id,
        kind="monitor",
        monitor="delays",
        status="alert",
        rows=100,
        results={
            "checks": [
                {"check": "drift", "status": "alert", "drifted_columns": ["temp", "dewp"]},
                {"check": "validation", "status": "ok"},
            ]
        },
    )
    report = run_agent([target], once=True, ctx=project)
    [fired] = report.fired
    run = project.ledger.pipelines.get_run(fired.pipeline_run_id or "")
    assert (run.trigger, run.status) == ("monitor", "succeeded")
    assert run.reason == "monitor delays alerted: drift in temp, dewp"
    assert run.params == {"report": alert.id, "version": "none"}
    assert report.ok


def test_a_failed_run_is_reported_and_not_retried(project: Context, project_dir: Path) -> None:
    target = _write_flow(project_dir)
    spec = TriggerSpec(
        name="bad-month",
        kind="dataset",
        pipeline="retrain",
        target=target,
        dataset="flights",
        params={"version": "flights@99"},  # the step refuses this one
    )
    assert run_agent([spec], once=True, ctx=project).fired == []  # first sight
    time.sleep(0.005)
    _add_month(project, 1)
    report = run_agent([spec], once=True, ctx=project)
    [fired] = report.fired
    assert fired.status == "failed"
    assert not report.ok
    run = project.ledger.pipelines.get_run(fired.pipeline_run_id or "")
    assert (run.status, run.trigger, run.reason) == ("failed", "dataset", fired.reason)
    assert run_agent([spec], once=True, ctx=project).fired == []  # claimed: never again


def test_a_pipeline_that_cannot_start_is_an_error_of_that_firing(
    project: Context, project_dir: Path
) -> None:
    target = _write_flow(project_dir)
    spec = TriggerSpec(
        name="wrong-param",
        kind="dataset",
        pipeline="retrain",
        target=target,
        dataset="flights",
        param="month",  # retrain takes no parameter 'month'
        since="first",
    )
    _add_month(project, 1)
    report = run_agent([spec], once=True, ctx=project)
    [fired] = report.fired
    assert (fired.status, fired.pipeline_run_id) == ("error", None)
    assert "month" in (fired.error or "")
    [firing] = project.ledger.pipelines.firings(project.project.id, trigger="wrong-param")
    assert firing.pipeline_run_id is None


def test_triggers_are_read_from_the_targets_and_checked(
    project: Context, project_dir: Path
) -> None:
    target = _write_flow(project_dir)
    specs = load_triggers([target], ctx=project)
    assert [(s.name, s.kind) for s in specs] == [
        ("retrain.dataset.flights", "dataset"),
        ("hourly", "cron"),
        ("retrain.monitor.delays", "monitor"),
        ("retrain.manual", "manual"),
    ]
    with pytest.raises(UsageError, match=r"declared by flow\.py:retrain and flow\.py:retrain"):
        load_triggers([target, target], ctx=project)
    with pytest.raises(UsageError, match="name the pipelines"):
        load_triggers([], ctx=project)
    (project_dir / "bad.py").write_text(
        FLOW.replace('{"cron": "0 * * * *", "name": "hourly"}', '{"cron": "0 * * * *", "nme": 1}'),
        encoding="utf-8",
    )
    with pytest.raises(UsageError, match=r"bad.py:retrain: triggers\[1\]: unknown key 'nme'"):
        load_triggers(["bad.py:retrain"], ctx=project)
    with pytest.raises(UsageError, match="poll_seconds must be > 0"):
        run_agent([target], poll_seconds=0, ctx=project)


def test_triggers_list_shows_next_tick_last_firing_and_pending(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    target = _write_flow(project_dir)
    never = cli("triggers", "list", target, "--json")
    assert never.code == 0, never.err
    rows = {row["name"]: row for row in json.loads(never.out)}
    assert rows["hourly"]["first_seen"] is None  # listing writes nothing
    assert project.ledger.pipelines.firings(project.project.id) == []
    cli("agent", target, "--once")
    time.sleep(0.005)
    ref = _add_month(project, 1)
    rows = {row["name"]: row for row in json.loads(cli("triggers", "list", target, "--json").out)}
    assert [p["reason"] for p in rows["retrain.dataset.flights"]["pending"]] == [
        f"dataset {ref} was added"
    ]
    assert rows["retrain.dataset.flights"]["pending"][0]["params"] == {"version": ref}
    assert rows["hourly"]["next_tick"].endswith(":00:00+00:00")
    assert rows["retrain.manual"]["pending"] == []
    ran = cli("agent", target, "--once")
    assert ran.code == 0, ran.err
    assert f"retrain.dataset.flights: dataset {ref} was added -> run " in ran.out
    status = trigger_status(load_triggers([target], ctx=project)[0], ctx=project)
    assert status["pending"] == []
    assert status["last_firing"]["reason"] == f"dataset {ref} was added"
    human = cli("triggers", "list", target)
    assert "retrain.dataset.flights" in human.out
    assert "hourly" in human.out
    assert "4 trigger(s), 0 pending event(s)" in human.out


def test_agent_once_makes_one_pass_and_exits_1_on_a_failed_run(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    target = _write_flow(project_dir)
    first = cli("agent", target, "--once", "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["passes"] == 1
    bad = project_dir / "flow.py"
    bad.write_text(FLOW.replace('"flights@99"', "version"), encoding="utf-8")  # always fails
    time.sleep(0.005)
    _add_month(project, 1)
    failed = cli("agent", "flow.py:retrain", "--once", "--json")
    assert failed.code == 1
    assert [f["status"] for f in json.loads(failed.out)["fired"]] == ["failed"]
    assert cli("agent", target, "--poll", "0s").code == 2


def test_a_looping_agent_keeps_polling_until_stopped(project: Context, project_dir: Path) -> None:
    target = _write_flow(project_dir)
    stop = threading.Event()
    seen: list[Any] = []

    def fired(f: Any) -> None:
        seen.append(f)
        stop.set()  # stop once the new version has been run

    result: list[Any] = []
    loop = threading.Thread(
        target=lambda: result.append(
            run_agent([target], poll_seconds=0.05, ctx=project, stop=stop, on_fired=fired)
        )
    )
    loop.start()
    # The version must come after the agent's first pass has seen the trigger (it records a
    # first-seen firing): on a loaded machine a fixed sleep is not enough.
    deadline = time.monotonic() + 30
    pid = project.project.id
    while not project.ledger.pipelines.firings(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a few empty passes
    ref = _add_month(project, 1)
    loop.join(timeout=60)
    assert not loop.is_alive()
    [report] = result
    assert report.passes >= 2
    assert [f.reason for f in report.fired] == [f"dataset {ref} was added"]


def test_sigterm_stops_the_agent_gracefully(project_dir: Path) -> None:
    target = _write_flow(project_dir)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "plinth", "agent", target, "--poll", "0.1"],
        cwd=project_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("Watching 4 trigger(s) (every 0.1; Ctrl-C to stop)"), line
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "pass(es), 0 run(s) started" in out
    assert "stopping after the run in progress" in err


def test_a_yaml_pipeline_declares_its_triggers_too(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    (project_dir / "steps.py").write_text(
        "def size(version: str) -> int:\n    return len(version)\n", encoding="utf-8"
    )
    (project_dir / "nightly.yaml").write_text(
        textwrap.dedent(
            """
            pipeline: nightly
            params: {version: none}
            triggers:
              - dataset: flights
                param: version
              - cron: "30 2 * * *"
            steps:
              size:
                function: steps.py:size
                inputs: {version: {param: version}}
            """
        ),
        encoding="utf-8",
    )
    assert cli("agent", "nightly.yaml", "--once").code == 0
    time.sleep(0.005)
    ref = _add_month(project, 1)
    ran = cli("agent", "nightly.yaml", "--once", "--json")
    assert ran.code == 0, ran.err
    [fired] = json.loads(ran.out)["fired"]
    run = project.ledger.pipelines.get_run(fired["pipeline_run_id"])
    assert (run.pipeline, run.trigger, run.reason) == (
        "nightly",
        "dataset",
        f"dataset {ref} was added",
    )
    assert run.params == {"version": ref}
    listed = {
        row["name"]: row
        for row in json.loads(cli("triggers", "list", "nightly.yaml", "--json").out)
    }
    assert listed["nightly.cron"]["next_tick"].endswith("T02:30:00+00:00")
