"""The server's /metrics carries the gauges of its deployment's monitors."""

from __future__ import annotations

import warnings

from plinth.context import Context


def _report(ctx: Context, monitor: str, deployment: str) -> None:
    results = {
        "checks": [
            {
                "check": "drift",
                "status": "alert",
                "share": 0.5,
                "columns": [
                    {"column": "x", "method": "wasserstein", "statistic": 0.31, "threshold": 0.1}
                ],
            }
        ]
    }
    ctx.ledger.monitoring.record_report(
        ctx.project.id,
        kind="monitor",
        monitor=monitor,
        status="alert",
        rows=10,
        results=results,
        spec={"deployment": deployment},
    )


def test_the_server_exposes_its_monitors_gauges(served_project: Context) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    _report(served_project, "web-monitor", "web")
    _report(served_project, "elsewhere", "other")
    app = create_app(DeploymentSpec.from_yaml("name: web\nmodel: m@champion\n"), ctx=served_project)
    with TestClient(app) as client:
        text = client.get("/metrics").text
    assert 'plinth_drift_score{column="x",method="wasserstein",monitor="web-monitor"}' in text
    assert 'monitor="elsewhere"' not in text
