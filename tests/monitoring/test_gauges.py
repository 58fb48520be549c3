"""Monitor results as Prometheus gauges: in the server's /metrics and the batch exporter."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
import warnings
from typing import Any

import pytest

from plinth.context import Context
from plinth.monitoring.gauges import MONITOR_METRIC_NAMES, MonitorGauges, latest_reports
from plinth.serving.metrics import METRIC_NAMES

CHECKS = {
    "checks": [
        {
            "check": "drift",
            "status": "alert",
            "share": 0.5,
            "columns": [
                {"column": "x", "method": "wasserstein", "statistic": 0.31, "threshold": 0.1},
                {"column": "c", "method": "jensenshannon", "statistic": 0.02, "threshold": 0.1},
            ],
        },
        {"check": "performance", "status": "ok", "metrics": {"roc_auc": 0.81, "f1": None}},
    ]
}


def _report(ctx: Context, monitor: str, deployment: str, results: Any = CHECKS) -> None:
    ctx.ledger.monitoring.record_report(
        ctx.project.id,
        kind="monitor",
        monitor=monitor,
        status="alert",
        rows=10,
        results=results,
        spec={"deployment": deployment},
    )


def test_gauges_come_from_the_newest_report_of_each_monitor(project: Context) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    _report(project, "web", "web", {"checks": []})
    _report(project, "web", "web")  # newer: this one counts
    _report(project, "other", "batch")
    assert {r.monitor for r in latest_reports(project)} == {"web", "other"}
    assert [r.monitor for r in latest_reports(project, deployment="web")] == ["web"]
    registry = CollectorRegistry()
    gauges = MonitorGauges(registry)
    gauges.update(latest_reports(project, deployment="web"))
    text = generate_latest(registry).decode()
    assert 'plinth_drift_statistic{column="x",method="wasserstein",monitor="web"} 0.31' in text
    assert 'plinth_drift_score{column="x",method="wasserstein",monitor="web"} 3.0999' in text
    assert 'plinth_drift_threshold{column="x",method="wasserstein",monitor="web"} 0.1' in text
    assert 'plinth_drift_share{monitor="web"} 0.5' in text
    assert 'plinth_drift_detected{monitor="web"} 1.0' in text
    assert 'plinth_model_performance{metric="roc_auc",monitor="web"} 0.81' in text
    assert 'metric="f1"' not in text  # undefined metrics are left out, not 0
    assert 'plinth_monitor_status{monitor="web"} 1.0' in text
    assert set(MONITOR_METRIC_NAMES) <= set(METRIC_NAMES)


def _values(text: str, metric: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels, value = line.rsplit(" ", 1)
            column = labels.split('column="')[1].split('"')[0]
            found[column] = float(value)
    return found


def test_drift_scores_are_comparable_one_means_drifted_for_every_method(
    project: Context,
) -> None:
    """Issue 13, problem 8: plinth_drift_score held a KS or chi-squared statistic while
    plinth_drift_threshold held a p-value level, so "score above threshold" meant nothing."""
    from prometheus_client import CollectorRegistry, generate_latest

    from plinth.monitoring import drift

    from .conftest import make_table

    report = drift(make_table(800, 1), make_table(800, 3, "unseen"))  # ks and chisquare
    assert {c.method for c in report.columns} == {"ks", "chisquare"}
    check = {"check": "drift", "status": "alert", "share": report.share}
    check["columns"] = [c.to_dict() for c in report.columns]
    check["columns"].append(  # a p-value that underflowed to 0: still finite and >= 1
        {"column": "zero", "method": "ks", "statistic": 0.9, "threshold": 0.05, "p_value": 0.0}
    )
    _report(project, "web", "web", {"checks": [check]})
    registry = CollectorRegistry()
    MonitorGauges(registry).update(latest_reports(project))
    text = generate_latest(registry).decode()
    scores = _values(text, "plinth_drift_score")
    assert {k for k, v in scores.items() if v >= 1.0} == {"route", "zero"}
    assert report.drifted_columns == ["route"]
    assert 1e200 < scores["zero"] < float("inf")
    statistics = _values(text, "plinth_drift_statistic")
    p_values = _values(text, "plinth_drift_p_value")
    by_column = {c.column: c for c in report.columns}
    assert statistics["route"] == pytest.approx(by_column["route"].statistic)
    assert p_values["route"] == pytest.approx(by_column["route"].p_value)
    assert scores["route"] == pytest.approx(0.05 / by_column["route"].p_value)


def test_the_server_exposes_its_monitors_gauges(project: Context) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("starlette")
    from sklearn.linear_model import LogisticRegression

    import plinth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette warns once, on import, it prefers httpx2
        from starlette.testclient import TestClient
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with plinth.start_run(experiment="t") as run:
        run.log_model(LogisticRegression().fit(frame, [0, 0, 1, 1]), name="m", input_example=frame)
    _report(project, "web-monitor", "web")
    _report(project, "elsewhere", "other")
    app = create_app(DeploymentSpec.from_yaml("name: web\nmodel: m@1\n"), ctx=project)
    with TestClient(app) as client:
        text = client.get("/metrics").text
    assert 'plinth_drift_score{column="x",method="wasserstein",monitor="web-monitor"}' in text
    assert 'monitor="elsewhere"' not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_monitor_export_serves_the_gauges_for_batch_use(project: Context, cli: Any) -> None:
    _report(project, "nightly", "batch")
    port = _free_port()
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r", cli("monitor", "export", "--port", str(port), "--every", "1s", "--count", "3")
        )
    )
    thread.start()
    text = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                text = answer.read().decode()
            break
        except OSError:
            time.sleep(0.1)
    thread.join(timeout=30)
    assert 'plinth_drift_statistic{column="x",method="wasserstein",monitor="nightly"} 0.31' in text
    assert result["r"].code == 0
    assert f"http://127.0.0.1:{port}/metrics" in result["r"].out
