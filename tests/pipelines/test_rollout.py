"""Canary rollouts through a served app: a healthy canary is promoted (alias
compare-and-swap), one with an injected latency regression or failing requests is rolled
back; each decision is in the ledger with its evidence and reaches the alert routes."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    # starlette's TestClient warns once, on import, that it prefers httpx2 over httpx.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import plinth
from plinth.context import Context
from plinth.errors import ConflictError, UsageError
from plinth.pipelines.rollout import Thresholds, judge, rollout, start_canary, watch_canary
from plinth.serving.app import Server, create_app
from plinth.serving.spec import DeploymentSpec

ROW = {"distance": 0.5, "hour": 3}
SPEC = "name: web\nmodel: m@champion\ncanary: {model: m@challenger, traffic: 0.5}\n"
LOG_ROUTE = {"name": "ops", "type": "log", "path": "alerts.log"}


@pytest.fixture
def models(project: Context) -> Context:
    """Model ``m``: version 1 (champion) and version 2, a candidate with no alias."""
    pytest.importorskip("sklearn")
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"distance": rng.normal(size=120), "hour": rng.integers(0, 24, 120)})
    for flip in (False, True):
        target = (frame["distance"] > 0).astype(int)
        fitted = LogisticRegression().fit(frame, 1 - target if flip else target)
        with plinth.start_run(experiment="rollout") as run:
            run.log_model(fitted, name="m", input_example=frame.head())
    plinth.models.set_alias("m", "champion", 1)
    return project


@pytest.fixture
def client(models: Context) -> Iterator[TestClient]:
    app = create_app(
        DeploymentSpec.from_yaml(SPEC),
        ctx=models,
        log_predictions=False,
        seed=1,
        poll_seconds=0.05,
    )
    with TestClient(app) as c:
        yield c


def _server(client: TestClient) -> Server:
    app = client.app
    assert isinstance(app, Starlette)
    server: Server = app.state.server
    return server


def _traffic(client: TestClient, n: int) -> None:
    for _ in range(n):
        client.post("/v1/predict", json={"records": [ROW]})


class Slow:
    """The served model, answering ``seconds`` later: an injected latency regression."""

    def __init__(self, model: Any, seconds: float) -> None:
        self.model, self.seconds = model, seconds

    def predict_proba(self, data: Any) -> Any:
        time.sleep(self.seconds)
        return self.model.predict_proba(data)


def _alerts(project: Context) -> list[dict[str, Any]]:
    path = project.settings.root / "alerts.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _kinds(project: Context) -> list[tuple[str, str]]:
    decisions = project.ledger.pipelines.decisions(project.project.id, subject="m")
    return [(d.kind, d.outcome) for d in reversed(decisions)]


def test_healthy_canary_is_promoted(models: Context, client: TestClient) -> None:
    server = _server(client)
    start_canary("m", 2, deployment="web")
    server.refresh()
    assert client.get("/v1/canary").json()["canary"]["model_version"] == "m@2"
    _traffic(client, 60)
    result = watch_canary(client, min_requests=10, latency_slack_ms=50, routes=[LOG_ROUTE])
    assert result.outcome == "promoted"
    assert plinth.models.aliases("m") == {"champion": 2}  # and challenger removed
    assert _kinds(models) == [("canary", "started"), ("promote", "promoted")]
    assert result.decision is not None
    evidence = result.decision.evidence
    assert evidence["moved"] == {"alias": "champion", "from": 1, "to": 2}
    assert evidence["canary"]["requests"] >= 10
    assert evidence["primary"]["requests"] >= 10
    assert evidence["canary"]["latency_ms"]["p95"] is not None
    assert evidence["thresholds"]["min_requests"] == 10
    assert evidence["reasons"] == []
    (alert,) = _alerts(models)
    assert alert["details"]["decision_id"] == result.decision.id
    assert "promoted" in alert["title"]
    history = plinth.models.history("m", "champion")
    assert "healthy" in (history[0].reason or "")
    # the server follows the aliases: the promoted version is primary, the canary is empty
    server.refresh()
    stats = client.get("/v1/canary").json()
    assert (stats["primary"]["model_version"], stats["canary"]) == ("m@2", None)


def test_canary_with_a_latency_regression_is_rolled_back(
    models: Context, client: TestClient
) -> None:
    server = _server(client)
    start_canary("m", 2)
    server.refresh()
    assert server.canary is not None
    assert server.canary.current is not None
    server.canary.current.model = Slow(server.canary.current.model, 0.08)
    _traffic(client, 50)
    result = watch_canary(
        client, min_requests=10, max_latency_ratio=1.5, latency_slack_ms=20, routes=[LOG_ROUTE]
    )
    assert result.outcome == "rolled_back"
    assert plinth.models.aliases("m") == {"champion": 1}
    assert _kinds(models) == [("canary", "started"), ("rollback", "rolled_back")]
    assert result.decision is not None
    evidence = result.decision.evidence
    assert evidence["canary"]["latency_ms"]["p95"] >= 80
    assert evidence["canary"]["latency_ms"]["p95"] > evidence["latency_limit_ms"]
    (reason,) = evidence["reasons"]
    assert "p95 latency" in reason
    assert evidence["removed"] == {"alias": "challenger", "removed": True, "version": 2}
    (alert,) = _alerts(models)
    assert alert["severity"] == "critical"
    assert "rolled back" in alert["title"]
    server.refresh()  # the canary is out of traffic
    assert {
        client.post("/v1/predict", json={"records": [ROW]}).headers["x-plinth-variant"]
        for _ in range(10)
    } == {"primary"}


class Failing:
    def predict_proba(self, data: Any) -> Any:
        raise RuntimeError("the canary is broken")


def test_failing_canary_is_rolled_back_before_min_requests(
    models: Context, client: TestClient
) -> None:
    server = _server(client)
    start_canary("m", 2)
    server.refresh()
    assert server.canary is not None
    assert server.canary.current is not None
    server.canary.current.model = Failing()
    _traffic(client, 20)
    result = watch_canary(client, min_requests=1000, max_error_rate_increase=0.01)
    assert result.outcome == "rolled_back"
    assert result.evidence["canary"]["requests"] < 1000
    assert "error rate" in result.evidence["reasons"][0]
    assert plinth.models.aliases("m") == {"champion": 1}


def test_too_few_requests_decide_nothing(models: Context, client: TestClient) -> None:
    start_canary("m", 2)
    _server(client).refresh()
    _traffic(client, 4)
    result = watch_canary(client, min_requests=50)
    assert (result.outcome, result.decision) == ("waiting", None)
    assert plinth.models.aliases("m") == {"champion": 1, "challenger": 2}
    assert _kinds(models) == [("canary", "started")]


def test_rollout_waits_for_traffic_and_promotes(models: Context, client: TestClient) -> None:
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            client.post("/v1/predict", json={"records": [ROW]})

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        result = rollout(
            "m", 2, client, min_requests=15, latency_slack_ms=50, timeout_s=60, poll_s=0.05
        )
    finally:
        stop.set()
        sender.join()
    assert result.outcome == "promoted"
    assert plinth.models.aliases("m") == {"champion": 2}
    assert _kinds(models) == [("canary", "started"), ("promote", "promoted")]


def test_rollout_without_traffic_rolls_back_at_the_deadline(
    models: Context, client: TestClient
) -> None:
    result = rollout("m", 2, client, min_requests=5, timeout_s=0.5, poll_s=0.05)
    assert result.outcome == "rolled_back"
    assert "timed out" in result.evidence["reasons"][0]
    assert plinth.models.aliases("m") == {"champion": 1}


def test_a_rollout_in_progress_is_not_overtaken(models: Context) -> None:
    start_canary("m", 2)
    with pytest.raises(ConflictError, match="in progress"):
        start_canary("m", 1)


def test_promotion_is_a_compare_and_swap(models: Context, client: TestClient) -> None:
    start_canary("m", 2)
    _server(client).refresh()
    _traffic(client, 40)
    plinth.models.set_alias("m", "champion", 2)  # somebody moved it meanwhile
    with pytest.raises(ConflictError):
        watch_canary(client, min_requests=10, latency_slack_ms=50)
    assert _kinds(models)[-1] == ("promote", "conflict")


def test_rollout_refuses_a_deployment_without_that_canary(models: Context) -> None:
    app = create_app(
        DeploymentSpec.from_yaml("name: web\nmodel: m@champion\n"),
        ctx=models,
        log_predictions=False,
    )
    with TestClient(app) as c, pytest.raises(UsageError, match="serves canary None"):
        rollout("m", 2, c, timeout_s=1)
    assert plinth.models.aliases("m") == {"champion": 1}


def _variant(requests: int, errors: int, p95: float) -> dict[str, Any]:
    return {
        "ref": "m@x",
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else None,
        "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95},
    }


@pytest.mark.parametrize(
    ("canary", "verdict"),
    [
        (_variant(100, 0, 12.0), "healthy"),
        (_variant(100, 0, 16.0), "regressed"),  # above 10 * 1.5 + 0
        (_variant(100, 2, 10.0), "regressed"),  # 0.02 above the primary's 0
        (_variant(100, 1, 10.0), "healthy"),  # 0.01: within
        (_variant(50, 0, 99.0), "waiting"),
        (_variant(50, 3, 10.0), "regressed"),  # 3 errors: over 1% even after 100 requests
    ],
)
def test_judge(canary: dict[str, Any], verdict: str) -> None:
    stats = {"deployment": "web", "primary": _variant(900, 0, 10.0), "canary": canary}
    thresholds = Thresholds(min_requests=100, max_latency_ratio=1.5, latency_slack_ms=0.0)
    assert judge(stats, thresholds)[0] == verdict


@pytest.fixture
def real_server(models: Context) -> Iterator[str]:
    """The deployment on a real uvicorn server in a thread; its base URL."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(
        DeploymentSpec.from_yaml(SPEC), ctx=models, log_predictions=False, poll_seconds=0.05
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_rollout_against_a_real_server_by_url(models: Context, real_server: str) -> None:
    import httpx

    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=real_server) as http:
            while not stop.is_set():
                http.post("/v1/predict", json={"records": [ROW]})

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        result = rollout(
            "m", 2, real_server, min_requests=10, latency_slack_ms=50, timeout_s=60, poll_s=0.05
        )
    finally:
        stop.set()
        sender.join()
    assert result.outcome == "promoted"
    assert result.evidence["deployment"] == "web"
    assert plinth.models.aliases("m") == {"champion": 2}
