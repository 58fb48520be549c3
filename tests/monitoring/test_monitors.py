"""Monitors end to end: a trained model with lineage, a prediction log, monitor files."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import plinth
from plinth.context import Context
from plinth.entities import DeploymentVersion
from plinth.ids import new_id, now_ms
from plinth.monitoring.monitors import run_monitor, watch
from plinth.monitoring.spec import MonitorSpec
from plinth.serving.predlog import PredictionLog

pytest.importorskip("sklearn")
pytest.importorskip("skops")

ROWS = 2000


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "z": rng.normal(0.0, 1.0, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )


@dataclass
class Scene:
    ctx: Context
    deployment: DeploymentVersion
    folder: Path

    def log(self, frame: pd.DataFrame, predictions: Any = None, ts: int | None = None) -> list[str]:
        """Log ``frame`` as one-row requests in one batch; returns the request ids."""
        log = PredictionLog(self.ctx, self.deployment)
        ids = []
        preds = frame["x"].to_numpy() > 0 if predictions is None else predictions
        stamp = now_ms() if ts is None else ts
        for i, row in enumerate(frame.itertuples(index=False)):
            rid = new_id()
            log.append(
                rid, stamp, "m@1", {"x": [row.x], "z": [row.z], "c": [row.c]}, [float(preds[i])]
            )
            ids.append(rid)
        assert log.flush() is not None
        return ids

    def spec(self, text: str) -> MonitorSpec:
        path = self.folder / "monitor.yaml"
        path.write_text(text, encoding="utf-8")
        return MonitorSpec.load(path)


@pytest.fixture
def scene(project: Context, tmp_path: Path) -> Scene:
    """Dataset train@1 -> run -> model m@1 -> deployment 'web'."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = _frame(rng, ROWS)
    path = tmp_path / "train.parquet"
    frame.assign(y=(frame["x"] > 0).astype(int)).to_parquet(path)
    plinth.datasets.add(path, "train")
    with plinth.start_run() as run:
        data = plinth.datasets.load("train")
        model = LogisticRegression().fit(data[["x", "z"]], data["y"])
        run.log_model(model, name="m", input_example=data[["x", "z"]].head())
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "web", digest, {"name": "web", "model": "m@1"}
    )
    folder = project.settings.root / "monitoring"  # log routes must stay in the project
    folder.mkdir()
    return Scene(project, deployment, folder)


LOG_ROUTE = """\
alerts:
  cooldown: 1h
  routes:
    - {name: ops, type: log, path: alerts.log}
"""


def test_a_clean_window_is_ok_and_batch_profiles_are_computed_once(scene: Scene) -> None:
    scene.log(_frame(np.random.default_rng(1), 800))
    spec = scene.spec("deployment: web\nwindow: {rows: 800}\n" + LOG_ROUTE)
    outcome = run_monitor(spec, ctx=scene.ctx)
    assert outcome.status == "ok", outcome.checks
    (check,) = outcome.checks
    assert check["check"] == "drift"
    assert check["drifted_columns"] == []
    # only the model's inputs (issue 13, problem 7): its target and other fields skipped
    assert {c["column"] for c in check["columns"]} == {"x", "z"}
    assert check["skipped"] == {
        "y": "the target of m@1",
        "c": "not an input of m@1",
        "prediction": "the model's output: see prediction_drift",
    }
    report = outcome.report
    assert (report.reference, report.rows, report.drifted) == ("train@1", 800, False)
    assert report.report_digest is not None
    html = scene.ctx.blobs.read_bytes(report.report_digest).decode()
    assert "<svg" in html
    (batch,) = scene.ctx.ledger.deployments.batches_of(scene.ctx.project.id, "web")
    assert batch.profile_digest is not None
    again = run_monitor(spec, ctx=scene.ctx)
    (same,) = scene.ctx.ledger.deployments.batches_of(scene.ctx.project.id, "web")
    assert same.profile_digest == batch.profile_digest
    assert again.report.drift_share == report.drift_share
    assert not (scene.folder / "alerts.log").exists()
    assert scene.ctx.ledger.monitoring.reports(scene.ctx.project.id, monitor="web") == [
        again.report,
        report,
    ]


def test_drift_on_one_feature_alerts_once_then_cools_down(scene: Scene) -> None:
    scene.log(_frame(np.random.default_rng(2), 1000, shift=1.0))
    spec = scene.spec(
        "deployment: web\nwindow: {rows: 1000}\nchecks: {drift: {share: 0.3}}\n" + LOG_ROUTE
    )
    first = run_monitor(spec, ctx=scene.ctx)
    assert first.status == "alert"
    assert first.checks[0]["drifted_columns"] == ["x"]
    assert [d.status for d in first.deliveries] == ["sent"]
    lines = (scene.folder / "alerts.log").read_text().splitlines()
    assert len(lines) == 1
    alert = json.loads(lines[0])
    assert alert["monitor"] == "web"
    assert alert["check"] == "drift"
    assert "x" in alert["message"]
    second = run_monitor(spec, ctx=scene.ctx)
    assert [d.status for d in second.deliveries] == ["suppressed"]
    assert len((scene.folder / "alerts.log").read_text().splitlines()) == 1
    statuses = [a.status for a in scene.ctx.ledger.monitoring.alerts(scene.ctx.project.id)]
    assert statuses == ["suppressed", "sent"]


def test_a_failing_webhook_is_recorded_and_never_stops_the_monitor(scene: Scene) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    scene.log(_frame(np.random.default_rng(3), 1000, shift=1.0))
    spec = scene.spec(
        "deployment: web\nwindow: {rows: 1000}\nchecks: {drift: {share: 0.3}}\n"
        "alerts:\n  routes:\n"
        f"    - {{name: hook, type: webhook, url: 'http://127.0.0.1:{port}/alerts'}}\n"
        "    - {name: ops, type: log, path: alerts.log}\n"
    )
    outcome = run_monitor(spec, ctx=scene.ctx, retries=2, backoff_seconds=0)
    by_route = {d.route: d for d in outcome.deliveries}
    assert by_route["hook"].status == "failed"
    assert by_route["hook"].attempts == 2
    assert by_route["ops"].status == "sent"
    recorded = {a.route: a for a in scene.ctx.ledger.monitoring.alerts(scene.ctx.project.id)}
    assert recorded["hook"].status == "failed"
    assert recorded["hook"].error
    assert outcome.report.status == "alert"


def test_prediction_drift_compares_with_the_first_window(scene: Scene) -> None:
    rng = np.random.default_rng(4)
    scene.log(_frame(rng, 600), predictions=rng.uniform(0.0, 0.4, 600))
    spec = scene.spec("deployment: web\nwindow: {rows: 600}\nchecks: {prediction_drift: {}}\n")
    first = run_monitor(spec, ctx=scene.ctx)
    assert first.checks[0]["status"] == "skipped"
    scene.log(_frame(rng, 600), predictions=rng.uniform(0.5, 0.9, 600))
    second = run_monitor(spec, ctx=scene.ctx)
    check = second.checks[0]
    assert check["status"] == "alert", check
    assert check["column"]["column"] == "prediction"


def test_performance_check_scores_labelled_predictions_in_the_window(scene: Scene) -> None:
    from plinth.monitoring.performance import record_labels

    rng = np.random.default_rng(5)
    frame = _frame(rng, 500)
    scores = rng.uniform(size=500)  # unrelated to the labels: AUC about 0.5
    ids = scene.log(frame, predictions=scores)
    labels = pd.DataFrame({"request_id": ids, "label": (frame["x"] > 0).astype(int)})
    record_labels("web", labels, window="all", ctx=scene.ctx)
    spec = scene.spec(
        "deployment: web\nwindow: {rows: 500}\nchecks: {performance: {min: {roc_auc: 0.8}}}\n"
    )
    outcome = run_monitor(spec, ctx=scene.ctx)
    check = outcome.checks[0]
    assert check["status"] == "alert", check
    assert check["rows"] == 500
    assert 0.35 < check["metrics"]["roc_auc"] < 0.65
    assert check["breaches"][0].startswith("roc_auc")


def test_validation_runs_the_suite_on_the_window_rows(scene: Scene) -> None:
    scene.log(_frame(np.random.default_rng(6), 300))
    (scene.folder / "suite.yaml").write_text(
        "suite: window\nchecks:\n  - {check: between, column: x, min: -1.0, max: 1.0}\n",
        encoding="utf-8",
    )
    spec = scene.spec(
        "deployment: web\nwindow: {rows: 300}\nchecks: {validation: {suite: suite.yaml}}\n"
    )
    outcome = run_monitor(spec, ctx=scene.ctx)
    check = outcome.checks[0]
    assert check["status"] == "alert", check
    assert check["failures"][0]["column"] == "x"


@pytest.fixture
def metrics_server() -> Iterator[Callable[[str], str]]:
    """A real HTTP server answering /metrics with whatever text the test sets."""
    state = {"text": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state["text"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def set_text(text: str) -> str:
        state["text"] = text
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield set_text
    server.shutdown()
    server.server_close()
    thread.join()


def _metrics(fast: int, slow: int, errors: int) -> str:
    route = 'deployment="web",route="/v1/predict"'
    total = fast + slow
    return (
        "# TYPE plinth_request_duration_seconds histogram\n"
        f'plinth_request_duration_seconds_bucket{{{route},le="0.01"}} {fast}\n'
        f'plinth_request_duration_seconds_bucket{{{route},le="0.5"}} {total}\n'
        f'plinth_request_duration_seconds_bucket{{{route},le="+Inf"}} {total}\n'
        f"plinth_request_duration_seconds_count{{{route}}} {total}\n"
        f"plinth_request_duration_seconds_sum{{{route}}} 1.0\n"
        "# TYPE plinth_errors_total counter\n"
        f'plinth_errors_total{{deployment="web",type="model"}} {errors}\n'
    )


def test_server_check_judges_latency_and_errors_since_the_last_evaluation(
    scene: Scene, metrics_server: Callable[[str], str]
) -> None:
    url = metrics_server(_metrics(fast=1000, slow=0, errors=0))
    spec = scene.spec(
        f"deployment: web\nchecks: {{server: {{url: '{url}', p95_ms: 100, error_rate: 0.05}}}}\n"
    )
    first = run_monitor(spec, ctx=scene.ctx)
    check = first.checks[0]
    assert check["status"] == "ok", check
    assert check["requests"] == 1000
    assert check["p95_ms"] < 10
    metrics_server(_metrics(fast=1000, slow=200, errors=30))  # 200 new, slow; 30 failed
    second = run_monitor(spec, ctx=scene.ctx)
    check = second.checks[0]
    assert check["requests"] == 200
    assert check["error_rate"] == pytest.approx(30 / 200)
    assert check["p95_ms"] > 100
    assert check["status"] == "alert"
    assert "p95 latency" in check["summary"]
    assert "error rate" in check["summary"]


def test_an_unreachable_server_is_a_check_error_not_a_crash(scene: Scene) -> None:
    scene.log(_frame(np.random.default_rng(7), 200))
    spec = scene.spec(
        "deployment: web\nwindow: {rows: 200}\n"
        "checks: {drift: {}, server: {url: 'http://127.0.0.1:9/', timeout: 1}}\n"
    )
    outcome = run_monitor(spec, ctx=scene.ctx)
    by_check = {c["check"]: c for c in outcome.checks}
    assert by_check["server"]["status"] == "error"
    assert "cannot read the server's metrics" in by_check["server"]["summary"]
    assert by_check["drift"]["status"] == "ok"
    assert outcome.report.status == "error"


def test_a_dataset_monitor_compares_the_latest_version_with_the_previous(
    project: Context, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    for shift in (0.0, 0.0, 2.0):
        path = tmp_path / "part.parquet"
        _frame(rng, 3000, shift=shift).to_parquet(path)
        plinth.datasets.add(path, "events")
    monitor = tmp_path / "events.yaml"
    monitor.write_text("dataset: events\nchecks: {drift: {share: 0.3}}\n", encoding="utf-8")
    outcome = run_monitor(MonitorSpec.load(monitor), ctx=project)
    assert outcome.report.reference == "events@2"
    assert outcome.checks[0]["drifted_columns"] == ["x"]
    assert outcome.status == "alert"


def test_watch_runs_on_an_interval_and_survives_errors(scene: Scene) -> None:
    spec = scene.spec("deployment: web\nwindow: {rows: 10}\n")
    seen: list[str] = []
    waits: list[float] = []
    runs = watch(
        spec,
        every_seconds=60,
        ctx=scene.ctx,
        max_runs=3,
        on_outcome=lambda o: seen.append(o.status),
        sleep=waits.append,
    )
    assert runs == 3
    assert len(seen) == 3
    assert len(waits) == 2
    assert all(55 < w <= 60 for w in waits)
    # no batch logged yet: drift is skipped, not an error
    assert seen == ["ok", "ok", "ok"]


def test_cli_run_reports_and_exit_codes(scene: Scene, cli: Any) -> None:
    scene.log(_frame(np.random.default_rng(9), 1000, shift=1.0))
    path = scene.folder / "monitor.yaml"
    path.write_text(
        "deployment: web\nwindow: {rows: 1000}\nchecks: {drift: {share: 0.3}}\n",
        encoding="utf-8",
    )
    result = cli("monitor", "run", str(path), "--json", "--html", str(scene.folder / "d.html"))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["status"] == "alert"
    assert doc["checks"][0]["drifted_columns"] == ["x"]
    assert (scene.folder / "d.html").stat().st_size < 1_000_000
    assert cli("monitor", "run", str(path), "--fail-on-alert").code == 1
    listed = cli("monitor", "reports", "--json", "--monitor", "web")
    assert listed.code == 0
    assert [r["status"] for r in json.loads(listed.out)] == ["alert", "alert"]
    out_html = scene.folder / "newest.html"
    assert cli("monitor", "reports", "--html", str(out_html)).code == 0
    assert "<svg" in out_html.read_text()
    watched = cli("monitor", "watch", str(path), "--every", "0s", "--count", "2", "--json")
    assert watched.code == 0
    assert len(watched.out.strip().splitlines()) == 2
    bad = scene.folder / "bad.yaml"
    bad.write_text("deployment: web\nwindw: {rows: 5}\n", encoding="utf-8")
    wrong = cli("monitor", "run", str(bad))
    assert wrong.code == 2
    assert "unknown key 'windw'" in wrong.err
    assert "did you mean 'window'" in wrong.err
    assert cli("monitor", "run", str(scene.folder / "missing.yaml")).code == 2


def test_merged_batch_profiles_equal_the_profile_of_the_window_rows(scene: Scene) -> None:
    from plinth.monitoring.window import LOG_COLUMNS, merged_profile, read_batches
    from plinth.profiles import profile_table

    rng = np.random.default_rng(10)
    for _ in range(3):
        scene.log(_frame(rng, 700))
    batches = scene.ctx.ledger.deployments.batches_of(scene.ctx.project.id, "web")
    assert len(batches) == 3
    merged = merged_profile(scene.ctx, batches)
    assert merged is not None
    rows = read_batches(scene.ctx, batches)
    whole = profile_table(rows.drop_columns(list(LOG_COLUMNS)))
    assert merged.row_count == whole.row_count == 2100
    for name in ("x", "z", "prediction"):
        m, w = merged.columns[name], whole.columns[name]
        assert (m.count, m.null_count) == (w.count, w.null_count)
        assert m.mean == pytest.approx(w.mean, rel=1e-9)
        assert m.std == pytest.approx(w.std, rel=1e-9)
        if name == "prediction":
            continue  # 0/1: quantiles of two values say nothing about ranks
        values = np.sort(rows.column(name).to_numpy())
        for q in w.quantiles:  # KLL: each quantile's true rank within the sketch's rank error
            rank = np.searchsorted(values, m.quantiles[q], side="right") / len(values)
            assert abs(rank - q) <= 0.025, (name, q, rank)
    assert merged.columns["c"].top_values == whole.columns["c"].top_values  # exact counts


def test_a_reference_that_cannot_be_found_fails_drift_only(
    scene: Scene, metrics_server: Callable[[str], str]
) -> None:
    scene.log(_frame(np.random.default_rng(11), 200))
    url = metrics_server(_metrics(fast=10, slow=0, errors=0))
    spec = scene.spec(
        "deployment: web\nreference: nosuch@3\nwindow: {rows: 200}\n"
        f"checks: {{drift: {{}}, server: {{url: '{url}'}}}}\n"
    )
    outcome = run_monitor(spec, ctx=scene.ctx)
    by_check = {c["check"]: c for c in outcome.checks}
    assert by_check["drift"]["status"] == "error"
    assert "nosuch" in by_check["drift"]["summary"]
    assert by_check["server"]["status"] == "ok"
    assert outcome.report.status == "error"
