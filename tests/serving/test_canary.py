"""Per-variant statistics of a served canary (``GET /v1/canary``), the variant header, and a
canary alias that is not set (yet, or any more): the primary answers everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import plinth
from plinth.context import Context
from plinth.serving.app import Server, create_app
from plinth.serving.canary import CanaryStats, VariantStats
from plinth.serving.spec import DeploymentSpec

ROW = {"distance": 0.5, "hour": 3}
CANARY = "name: web\nmodel: m@champion\ncanary: {model: m@challenger, traffic: 0.5}\n"


def _server(client: TestClient) -> Server:
    app = client.app
    assert isinstance(app, Starlette)
    server: Server = app.state.server
    return server


@pytest.fixture
def client(served_project: Context) -> Iterator[TestClient]:
    spec = DeploymentSpec.from_yaml(CANARY)
    app = create_app(spec, ctx=served_project, log_predictions=False, seed=1, poll_seconds=3600)
    with TestClient(app) as c:
        yield c


def test_each_variant_is_counted_and_named_on_the_response(client: TestClient) -> None:
    answered: dict[str, set[str]] = {"primary": set(), "canary": set()}
    for _ in range(40):
        response = client.post("/v1/predict", json={"records": [ROW]})
        answered[response.headers["x-plinth-variant"]].add(response.json()["model_version"])
    assert answered == {"primary": {"m@1"}, "canary": {"m@2"}}
    stats = client.get("/v1/canary").json()
    assert (stats["deployment"], stats["traffic"]) == ("web", 0.5)
    assert (stats["primary_ref"], stats["canary_ref"]) == ("m@champion", "m@challenger")
    primary, canary = stats["primary"], stats["canary"]
    assert (primary["model_version"], primary["model"], primary["version"]) == ("m@1", "m", 1)
    assert canary["model_version"] == "m@2"
    assert primary["requests"] + canary["requests"] == 40
    assert min(primary["requests"], canary["requests"]) > 5
    assert primary["errors"] == canary["errors"] == 0
    assert primary["error_rate"] == 0.0
    assert canary["latency_ms"]["samples"] == canary["requests"]
    assert (
        0
        < canary["latency_ms"]["p50"]
        <= canary["latency_ms"]["p95"]
        <= canary["latency_ms"]["max"]
    )


class Failing:
    """A model stand-in whose every call fails."""

    def predict_proba(self, data: Any) -> Any:
        raise RuntimeError("boom")


def test_model_failures_are_errors_and_bad_requests_are_not(client: TestClient) -> None:
    server = _server(client)
    assert server.canary is not None
    assert server.canary.current is not None
    server.canary.current.model = Failing()
    codes = [client.post("/v1/predict", json={"records": [ROW]}).status_code for _ in range(30)]
    assert set(codes) == {200, 500}
    for _ in range(4):  # a request the decoder refuses is the client's mistake
        assert (
            client.post("/v1/predict", json={"records": [{"distance": "far"}]}).status_code == 422
        )
    stats = client.get("/v1/canary").json()
    canary, primary = stats["canary"], stats["primary"]
    assert canary["errors"] == canary["requests"] == codes.count(500)
    assert canary["error_rate"] == 1.0
    assert primary["errors"] == 0
    assert primary["requests"] == codes.count(200)
    assert canary["rejected"] + primary["rejected"] == 4


def test_unset_canary_alias_sends_everything_to_the_primary(served_project: Context) -> None:
    plinth.models.delete_alias("m", "challenger")
    spec = DeploymentSpec.from_yaml(CANARY)
    app = create_app(spec, ctx=served_project, log_predictions=False, seed=1, poll_seconds=3600)
    with TestClient(app) as c:  # starts although m@challenger does not resolve
        server = _server(c)
        variants = {
            c.post("/v1/predict", json={"records": [ROW]}).headers["x-plinth-variant"]
            for _ in range(10)
        }
        assert variants == {"primary"}
        assert c.get("/v1/canary").json()["canary"] is None
        assert c.get("/v1/model").json()["canary"] is None
        plinth.models.set_alias("m", "challenger", 2)
        assert server.refresh() is True
        assert c.get("/v1/canary").json()["canary"]["model_version"] == "m@2"
        served = 'plinth_model_info{deployment="web",model_version="m@2",role="canary"} 1.0'
        assert served in c.get("/metrics").text
        plinth.models.delete_alias("m", "challenger")  # a rollback
        assert server.refresh() is True
        variants = {
            c.post("/v1/predict", json={"records": [ROW]}).headers["x-plinth-variant"]
            for _ in range(10)
        }
        assert variants == {"primary"}
        served = 'plinth_model_info{deployment="web",model_version="m@2",role="canary"} 1.0'
        assert served not in c.get("/metrics").text


def test_a_missing_canary_model_still_stops_the_server(served_project: Context) -> None:
    from plinth.errors import NotFoundError

    spec = DeploymentSpec.from_yaml(
        "name: web\nmodel: m@champion\ncanary: {model: nosuch@challenger, traffic: 0.5}\n"
    )
    app = create_app(spec, ctx=served_project, log_predictions=False)
    with pytest.raises(NotFoundError), TestClient(app):
        pass


def test_a_load_starts_a_new_window_for_every_role() -> None:
    stats = CanaryStats()
    stats.loaded("primary", "m@1")
    stats.loaded("canary", "m@2")
    stats.observe("primary", "m@1", 0.002, "ok")
    stats.observe("canary", "m@2", 0.004, "error")
    stats.observe("canary", "m@9", 0.004, "ok")  # a version no longer served: not counted
    assert stats._roles["canary"].errors == 1
    assert stats._roles["canary"].requests == 1
    stats.loaded("canary", "m@3")
    assert stats._roles["primary"].requests == 0
    assert stats._roles["canary"].model_version == "m@3"


def test_latency_quantiles_are_nearest_rank() -> None:
    variant = VariantStats("primary", "m@1")
    for ms in range(1, 101):
        variant.observe(ms / 1000.0, "ok")
    latency = variant.to_dict()["latency_ms"]
    assert (latency["p50"], latency["p95"], latency["p99"], latency["max"]) == (
        50.0,
        95.0,
        99.0,
        100.0,
    )
