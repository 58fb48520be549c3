"""The sqlite3 reads (:mod:`plinth.ledger.sqlite_reads`) answer exactly as the SQLAlchemy
stores do, over one database; what they do not read themselves goes to the full ledger."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from plinth.entities import MetricPoint, RecordRef
from plinth.errors import NotFoundError, PlinthError
from plinth.ledger import Ledger
from plinth.ledger.sqlite_reads import SqliteReads, open_sqlite_reads

from .conftest import sqlite_url


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(sqlite_url(tmp_path), user="tester") as opened:
        yield opened


def _never() -> NoReturn:
    pytest.fail("the fast read handed this call to the full ledger")


def _reads(ledger: Ledger, full: Callable[[], Ledger] | None = None) -> SqliteReads:
    reads = open_sqlite_reads(ledger.url, user=ledger.user, full=full or _never)
    assert reads is not None
    return reads


@pytest.fixture
def scene(ledger: Ledger) -> dict[str, Any]:
    """Two experiments, runs with params, tags, metrics (NaN and infinities among them),
    a deleted run, an environment, artifacts, lineage, a model with aliases, reports."""
    project = ledger.projects.ensure_project("p")
    a = ledger.projects.ensure_experiment(project.id, "a")
    b = ledger.projects.ensure_experiment(project.id, "b")
    env = ledger.environments.put(
        "e" * 64, python="3.11.9", platform="linux", packages={"numpy": "2.0.0"}, extra={}
    )
    runs = []
    for i in range(6):
        run = ledger.runs.create_run(
            (a if i % 2 else b).id,
            name=f"r{i}",
            params={"lr": 0.1 * i, "model": "hgb"},
            tags={"team": "ml"} if i < 4 else None,
            source={"git": {"commit": "c" * 40}} if i == 1 else None,
            environment_id=env.id if i == 1 else None,
        )
        values = [0.5 + i, math.nan, math.inf, -math.inf, 0.25 * i]
        ledger.runs.log_metrics(
            run.id,
            [MetricPoint("loss", v, step, 1000 + step, step) for step, v in enumerate(values)]
            + [MetricPoint("auc", 0.1 * i, 0, 1000, 10)],
        )
        if i < 5:
            ledger.runs.finish(run.id, "finished" if i % 3 else "failed")
        runs.append(run)
    ledger.runs.delete_run(runs[2].id)
    ref = RecordRef("run", runs[1].id)
    ledger.artifacts.record(ref, "model/model.skops", "d" * 64, 12, "application/octet-stream")
    ledger.artifacts.record(ref, "a.txt", "f" * 64, 3)
    dataset = ledger.datasets.ensure(project.id, "flights")
    version, _ = ledger.datasets.add_version(
        dataset, kind="file", manifest_digest="a" * 64, size=1, file_count=1
    )
    ledger.lineage.add(ref, RecordRef("dataset_version", version.id), "used")
    ledger.lineage.add(RecordRef("run", runs[3].id), ref, "used")
    model = ledger.models.ensure(project.id, "delays")
    for n in (1, 2, 3):
        ledger.models.register(
            model,
            flavor="sklearn",
            manifest_digest=f"{n:064x}",
            run_id=runs[n].id,
            metrics={"rmse": 1.0 / n, "nan": math.nan},
            signature={"inputs": [{"name": "x", "type": "double"}]} if n == 2 else None,
            description="second" if n == 2 else None,
        )
    ledger.models.set_alias(model, "champion", 2)
    ledger.models.set_alias(model, "challenger", 3)
    ledger.models.ensure(project.id, "empty")
    for kind, status in (("drift", "alert"), ("monitor", "ok"), ("drift", "ok")):
        ledger.monitoring.record_report(
            project.id,
            kind=kind,
            monitor="web",
            status=status,
            rows=10,
            results={"checks": [{"check": "drift", "status": status}], "share": 0.5},
            drifted=status == "alert",
            drift_share=0.5,
            spec={"every": "1h"} if kind == "monitor" else None,
        )
    return {"project": project, "experiments": [a, b], "runs": runs, "env": env, "ref": ref}


@pytest.fixture
def trail(ledger: Ledger, scene: dict[str, Any]) -> dict[str, Any]:
    """What ``plinth lineage`` walks, on top of ``scene``: validation results of the
    dataset version, a deployment with prediction batches (two overlapping), and a pipeline
    run with a firing, steps (one cached, with outputs and links) and decisions."""
    project, runs = scene["project"], scene["runs"]
    dataset = ledger.datasets.get(project.id, "flights")
    version = ledger.datasets.resolve(dataset, 1)
    for number in (1, 2):
        suite = ledger.validation.save_suite(project.id, "checks", f"{number:064x}")
        for success in (True, False):
            ledger.validation.record_result(
                suite,
                target="flights@1",
                dataset_version_id=version.id,
                success=success,
                error_count=0 if success else 2,
                warning_count=1,
                results=[{"check": "not_null", "ok": success}],
                report_digest=None if success else "b" * 64,
            )
    deployment = ledger.deployments.save(project.id, "web", "c" * 64, {"model": "delays@2"})
    ids = sorted(f"01a2535f-0000-7000-8000-{n:012d}" for n in range(6))
    for start, (first, last) in enumerate(((ids[0], ids[2]), (ids[1], ids[4]), (ids[5], ids[5]))):
        ledger.deployments.record_batch(
            deployment,
            start_ms=1000 * start,
            end_ms=1000 * start + 500,
            rows=2,
            digest=f"{start + 1:064x}",
            model_versions=["delays@2", "delays@1"],
            first_request_id=first,
            last_request_id=last,
            dropped=start,
        )
    store = ledger.pipelines
    mv = ledger.models.resolve(ledger.models.get(project.id, "delays"), 2)
    firing = store.claim_firing(project.id, "drift", "report-1", reason="drift alert")
    assert firing is not None
    prun = store.start_run(
        project.id,
        "retrain",
        trigger="drift",
        reason="drift alert",
        params={"months": 3, "nested": {"a": [1, 2]}},
        code_digest="d" * 64,
        executor="local",
    )
    store.attach_firing(firing.id, prun.id)
    store.claim_firing(project.id, "nightly", "2026-12-01", reason="schedule")
    load = store.record_step(prun, "load", status="running")
    store.end_step(
        load,
        status="succeeded",
        attempts=1,
        outputs=[{"kind": "dataset", "ref": "flights@1"}],
        links=[(RecordRef("dataset_version", version.id), "used")],
    )
    store.record_step(prun, "train", status="succeeded", cache_key="k" * 64, cache_hit=True)
    for kind, outcome in (("gate", "passed"), ("promote", "done")):
        store.record_decision(
            project.id,
            kind=kind,
            subject="delays@2",
            outcome=outcome,
            evidence={"reasons": [f"{kind} ok"], "auc": 0.9},
            pipeline_run_id=prun.id,
        )
    store.record_decision(
        project.id, kind="rollback", subject="delays@1", outcome="done", evidence={}
    )
    store.finish_run(prun.id, "succeeded")
    return {
        "deployment": deployment,
        "ids": ids,
        "pipeline_run": prun,
        "version": version,
        "model_version": mv,
        "run": runs[1],
    }


def _same(fast: Any, full: Any) -> None:
    # repr: NaN compares unequal to itself, its repr does not; records compare field by field.
    assert repr(fast) == repr(full)


def test_reads_answer_like_the_sqlalchemy_stores(ledger: Ledger, scene: dict[str, Any]) -> None:
    fast = _reads(ledger)
    project, runs, ref = scene["project"], scene["runs"], scene["ref"]
    ids = [r.id for r in runs]
    _same(fast.projects.ensure_project("p"), ledger.projects.ensure_project("p"))
    _same(fast.projects.list_experiments(project.id), ledger.projects.list_experiments(project.id))
    for e in scene["experiments"]:
        _same(fast.projects.get_experiment(e.id), ledger.projects.get_experiment(e.id))
    for run_id in ids:
        _same(fast.runs.get_run(run_id), ledger.runs.get_run(run_id))
        _same(fast.runs.get_params(run_id), ledger.runs.get_params(run_id))
        _same(fast.search.metric_summaries(run_id), ledger.search.metric_summaries(run_id))
        for points in (1, 2, 50):
            _same(
                fast.search.metric_samples(run_id, points),
                ledger.search.metric_samples(run_id, points),
            )
        # 23 characters: past the millisecond timestamp (runs made in one millisecond share
        # it, and an ambiguous prefix is the full ledger's to explain) into the random bits.
        prefix = run_id[:23]
        _same(fast.search.resolve_run_id(prefix), ledger.search.resolve_run_id(prefix))
    for run_id in ids[:4]:  # runs 4 and 5 have no tags
        _same(fast.runs.get_tags(run_id), ledger.runs.get_tags(run_id))
    _same(fast.search.latest_metrics_of(ids), ledger.search.latest_metrics_of(ids))
    a, b = scene["experiments"]
    for kwargs in (
        {"project_id": project.id},
        {"project_id": project.id, "limit": 2, "offset": 1},
        {"project_id": project.id, "include_deleted": True},
        {"project_id": project.id, "experiment_ids": [a.id]},
        {"project_id": project.id, "experiment_ids": []},
        {"project_id": project.id, "status": "failed"},
        {"project_id": project.id, "status": ["finished", "running"], "experiment_ids": [b.id]},
        {},
    ):
        _same(fast.search.search_runs(**kwargs), ledger.search.search_runs(**kwargs))
    _same(fast.environments.get(scene["env"].id), ledger.environments.get(scene["env"].id))
    _same(fast.artifacts.list(ref), ledger.artifacts.list(ref))
    _same(fast.lineage.edges_from(ref), ledger.lineage.edges_from(ref))
    _same(fast.lineage.edges_to(ref), ledger.lineage.edges_to(ref))
    _same(fast.models.list(project.id), ledger.models.list(project.id))
    for name in ("delays", "empty"):
        model = ledger.models.get(project.id, name)
        _same(fast.models.get(project.id, name), model)
        _same(fast.models.aliases(model), ledger.models.aliases(model))
        for limit in (None, 1, 2):
            _same(
                fast.models.list_versions(model, limit), ledger.models.list_versions(model, limit)
            )
    delays = ledger.models.get(project.id, "delays")
    for spec in (None, "latest", 1, "2", "v3", "champion", "challenger"):
        _same(fast.models.resolve(delays, spec), ledger.models.resolve(delays, spec))
    for kwargs in ({}, {"monitor": "web", "kind": "drift"}, {"limit": 1}, {"kind": "performance"}):
        _same(
            fast.monitoring.reports(project.id, **kwargs),
            ledger.monitoring.reports(project.id, **kwargs),
        )
    fast.close()


def test_lineage_reads_answer_like_the_sqlalchemy_stores(
    ledger: Ledger, scene: dict[str, Any], trail: dict[str, Any]
) -> None:
    fast = _reads(ledger)
    project, deployment, prun = scene["project"], trail["deployment"], trail["pipeline_run"]
    for run in scene["runs"]:
        _same(fast.runs.latest_metrics(run.id), ledger.runs.latest_metrics(run.id))
    delays = ledger.models.get(project.id, "delays")
    for version in ledger.models.list_versions(delays):
        _same(
            fast.models.get_version_by_id(version.id), ledger.models.get_version_by_id(version.id)
        )
    for kwargs in (
        {"dataset_version_id": trail["version"].id},
        {"dataset_version_id": trail["version"].id, "limit": 1},
        {"limit": 0},
        {},
    ):
        found = fast.validation.results(**kwargs)
        _same(found, ledger.validation.results(**kwargs))
    assert len(fast.validation.results()) == 4  # the comparison saw records
    _same(fast.deployments.get_by_id(deployment.id), ledger.deployments.get_by_id(deployment.id))
    probes = [*trail["ids"], "01a2535f-0000-7000-8000-000000000003", "0", "f" * 36]
    for request_id in probes:
        _same(fast.deployments.find_batch(request_id), ledger.deployments.find_batch(request_id))
    assert fast.deployments.find_batch(trail["ids"][2]) is not None
    for window in ((None, None), (600, None), (None, 600), (1200, 1800)):
        _same(
            fast.deployments.batches(deployment.id, *window),
            ledger.deployments.batches(deployment.id, *window),
        )
    _same(fast.pipelines.get_run(prun.id), ledger.pipelines.get_run(prun.id))
    _same(fast.pipelines.steps(prun.id), ledger.pipelines.steps(prun.id))
    assert [s.step for s in fast.pipelines.steps(prun.id)] == ["load", "train"]
    for limit in (100, 1, 0):
        _same(
            fast.pipelines.firings(project.id, limit=limit),
            ledger.pipelines.firings(project.id, limit=limit),
        )
    for kwargs in (
        {},
        {"pipeline_run_id": prun.id},
        {"subject": "delays@1"},
        {"subject": "delays@2", "pipeline_run_id": prun.id, "limit": 1},
    ):
        _same(
            fast.pipelines.decisions(project.id, **kwargs),
            ledger.pipelines.decisions(project.id, **kwargs),
        )
    fast.close()


def _outcome(call: Callable[[], object]) -> tuple[str, ...]:
    """What a call gave: its value's repr, or its error's type and one-line message."""
    try:
        return ("value", repr(call()))
    except PlinthError as error:
        return (type(error).__name__, error.one_line())


Call = Callable[[Any, dict[str, Any]], object]
#: (the call on a store set, what it must give: an error type, or "value").
MISSES: list[tuple[Call, str]] = [
    (lambda s, x: s.runs.get_run("0" * 36), "NotFoundError"),
    (lambda s, x: s.runs.get_params("0" * 36), "NotFoundError"),
    (lambda s, x: s.runs.get_tags(x["runs"][5].id), "value"),  # no tags, the run exists
    (lambda s, x: s.search.resolve_run_id("0190"), "UsageError"),  # too short
    (lambda s, x: s.search.resolve_run_id("zzzzzzzzzz"), "NotFoundError"),
    (lambda s, x: s.search.resolve_run_id(x["runs"][0].id[:8]), "UsageError"),  # ambiguous
    (
        lambda s, x: s.search.search_runs(where="metrics.auc > 0.2", order_by=["metrics.auc"]),
        "value",
    ),
    (lambda s, x: s.search.search_runs(limit=0), "UsageError"),
    (lambda s, x: s.search.search_runs(status="lost"), "UsageError"),
    (lambda s, x: s.search.metric_samples(x["runs"][0].id, 0), "UsageError"),
    (lambda s, x: s.projects.get_experiment("0" * 36), "NotFoundError"),
    (lambda s, x: s.environments.get("0" * 36), "NotFoundError"),
    (lambda s, x: s.models.get(x["project"].id, "nope"), "NotFoundError"),
    (lambda s, x: s.models.get(x["project"].id, "bad name!"), "UsageError"),
    (lambda s, x: s.models.resolve(s.models.get(x["project"].id, "delays"), 9), "NotFoundError"),
    (
        lambda s, x: s.models.resolve(s.models.get(x["project"].id, "delays"), "gold"),
        "NotFoundError",
    ),
    (
        lambda s, x: s.models.resolve(s.models.get(x["project"].id, "empty"), None),
        "NotFoundError",
    ),
    (lambda s, x: s.monitoring.reports(x["project"].id, limit=-1), "UsageError"),
    (lambda s, x: s.models.get_version_by_id("0" * 36), "NotFoundError"),
    (lambda s, x: s.runs.latest_metrics("0" * 36), "NotFoundError"),
    (lambda s, x: s.runs.latest_metrics(x["runs"][0].id), "value"),
    (lambda s, x: s.deployments.get_by_id("0" * 36), "NotFoundError"),
    (lambda s, x: s.deployments.find_batch("x" * 37), "UsageError"),
    (lambda s, x: s.deployments.find_batch("not-a-request-id"), "value"),  # None
    (lambda s, x: s.pipelines.get_run("0" * 36), "NotFoundError"),
    (lambda s, x: s.pipelines.steps("0" * 36), "value"),  # []
    (lambda s, x: s.pipelines.firings(x["project"].id, trigger="drift"), "value"),
    (lambda s, x: s.pipelines.decisions(x["project"].id, limit=5), "value"),
    (lambda s, x: s.validation.results(dataset_version_id="0" * 36), "value"),  # []
]


@pytest.mark.parametrize(("call", "kind"), MISSES)
def test_misses_and_rejections_say_what_the_full_ledger_says(
    ledger: Ledger, scene: dict[str, Any], call: Call, kind: str
) -> None:
    fast = _reads(ledger, full=lambda: ledger)
    expected = _outcome(lambda: call(ledger, scene))
    assert expected[0] == kind
    assert _outcome(lambda: call(fast, scene)) == expected
    fast.close()


def test_other_stores_and_writes_go_to_the_full_ledger(
    ledger: Ledger, scene: dict[str, Any]
) -> None:
    opened: list[Ledger] = []

    def full() -> Ledger:
        opened.append(ledger)
        return ledger

    fast = _reads(ledger, full)
    run_id = scene["runs"][0].id
    fast.runs.set_tags(run_id, {"stage": "dev"})  # a write: the SQLAlchemy store's
    assert fast.runs.get_tags(run_id)["stage"] == "dev"
    ref = scene["ref"]
    _same(fast.lineage.upstream(ref), ledger.lineage.upstream(ref))  # a method not read here
    with pytest.raises(NotFoundError, match="no deployment"):  # nor this one
        fast.deployments.get(scene["project"].id, "web")
    assert len(opened) == 3
    fast.close()


def test_only_a_current_embedded_ledger_gets_fast_reads(tmp_path: Path) -> None:
    assert open_sqlite_reads("sqlite:///relative.db", user="u", full=_never) is None
    assert open_sqlite_reads(f"sqlite:///{tmp_path}/missing.db", user="u", full=_never) is None
    assert open_sqlite_reads("postgresql+psycopg://u@h/db", user="u", full=_never) is None


def test_context_reads_fast_only_where_it_may(tmp_path: Path) -> None:
    import threading

    from plinth.context import Context

    (tmp_path / "plinth.yaml").write_text("project: p\n", encoding="utf-8")
    with Context.open(tmp_path) as ctx:
        ctx.ledger.projects.ensure_project("p")  # creates and migrates the database
    with Context.open(tmp_path) as ctx:
        assert isinstance(ctx.reads, SqliteReads)
        assert ctx.project.name == "p"
        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(ctx.reads))
        thread.start()
        thread.join()
        assert other == [ctx.ledger]  # a sqlite3 connection stays in its thread
        assert ctx.reads is ctx.ledger  # and once the full ledger is open, it answers
    with Context.open(tmp_path, metadata="sqlite:///:memory:") as ctx:
        assert ctx.reads is ctx.ledger


def test_context_closes_reads_another_thread_opened(tmp_path: Path) -> None:
    """A model server's start-up thread opens the reads; the main thread closes the
    context (sqlite3 refuses to close a connection from another thread)."""
    import threading

    from plinth.context import Context

    (tmp_path / "plinth.yaml").write_text("project: p\n", encoding="utf-8")
    with Context.open(tmp_path) as ctx:
        ctx.ledger.projects.ensure_project("p")
    ctx = Context.open(tmp_path)
    opened: list[object] = []
    thread = threading.Thread(target=lambda: opened.append(ctx.reads))
    thread.start()
    thread.join()
    assert isinstance(opened[0], SqliteReads)
    ctx.close()
    assert isinstance(ctx.reads, SqliteReads)  # opened again, for this thread
    assert ctx.project.name == "p"
    ctx.close()
