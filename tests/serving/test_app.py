"""The serving app in-process: predictions, every bad input, routes, metrics, canary,
alias moves and micro-batching."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import plinth
from plinth.context import Context
from plinth.serving.app import Server, create_app
from plinth.serving.metrics import METRIC_NAMES
from plinth.serving.spec import DeploymentSpec

ROW = {"distance": 0.5, "hour": 3}


class FakeLog:
    """A prediction log that keeps what it is given."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, str, dict[str, Any], list[Any]]] = []
        self.rows_logged = 0
        self.rows_dropped = 0
        self.closed = False

    def append(
        self,
        request_id: str,
        ts_ms: int,
        version: str,
        columns: Any,
        preds: Any,
        nbytes: int | None = None,
        types: Any = None,
    ) -> None:
        self.appended.append((request_id, version, dict(columns), list(preds)))
        self.types = types
        self.rows_logged += len(preds)

    def close(self) -> None:
        self.closed = True


def make_app(ctx: Context, text: str = "", **kwargs: Any) -> Starlette:
    spec = DeploymentSpec.from_yaml(text or "name: web\nmodel: m@champion\n")
    kwargs.setdefault("predlog", FakeLog())
    return create_app(spec, ctx=ctx, **kwargs)


@pytest.fixture
def client(served_project: Context) -> Iterator[TestClient]:
    with TestClient(make_app(served_project)) as c:
        yield c


def server_of(client: TestClient) -> Server:
    app = client.app
    assert isinstance(app, Starlette)
    server: Server = app.state.server
    return server


def test_predict_records_and_columns_agree(client: TestClient) -> None:
    rows = [ROW, {"distance": -2.0, "hour": 23}]
    answer = client.post("/v1/predict", json={"records": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"predictions", "model_version", "request_id"}
    assert body["model_version"] == "m@1"
    assert answer.headers["x-request-id"] == body["request_id"]
    high, low = body["predictions"]
    assert 0.5 < high <= 1.0
    assert 0.0 <= low < 0.5
    columns = {"distance": [0.5, -2.0], "hour": [3, 23]}
    again = client.post("/v1/predict", json={"columns": columns}).json()
    assert again["predictions"] == pytest.approx(body["predictions"])
    assert again["request_id"] != body["request_id"]


def test_predictions_match_the_model_and_are_logged(served_project: Context) -> None:
    import pandas as pd

    log = FakeLog()
    with TestClient(make_app(served_project, predlog=log)) as c:
        body = c.post("/v1/predict", json={"records": [ROW]}).json()
    model = plinth.models.load("m@1")
    expected = model.predict_proba(pd.DataFrame([ROW]))[:, 1]
    assert body["predictions"] == pytest.approx(list(expected))
    assert log.appended == [
        (body["request_id"], "m@1", {"distance": [0.5], "hour": [3]}, body["predictions"])
    ]
    # stored as the signature's types, whatever JSON the client sent (issue: mixed batches)
    assert log.types == {"distance": "double", "hour": "int64", "prediction": "double"}
    assert log.closed


def errors_of(answer: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


def test_every_bad_field_is_named(client: TestClient) -> None:
    rows = [
        ROW,
        {"distance": "abc", "hour": 3},
        {"hour": 4},
        {"distance": 1.0, "hour": 2, "colour": "red"},
        {"distance": 1.0, "hour": "noon"},
    ]
    answer = client.post("/v1/predict", json={"records": rows})
    assert answer.status_code == 422
    errors = errors_of(answer)
    assert set(errors) == {
        "records[1].distance",
        "records[2].distance",
        "records[3].colour",
        "records[4].hour",
    }
    assert "'abc'" in errors["records[1].distance"]
    assert "missing" in errors["records[2].distance"]
    assert "not an input" in errors["records[3].colour"]
    bad_columns = client.post("/v1/predict", json={"columns": {"distance": [1.0, None, "x"]}})
    assert bad_columns.status_code == 422
    assert set(errors_of(bad_columns)) == {"columns.distance[2]", "columns.hour"}
    assert client.post("/v1/predict", json={"records": [ROW]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "body"),
        (b'{"records": []}', "records"),
        (b'{"records": [1]}', "records[0]"),
        (b'{"rows": [{}]}', "rows"),
        (b'{"columns": {}}', "columns"),
        (b'{"columns": {"distance": [1.0], "hour": [1, 2]}}', "columns"),
    ],
)
def test_malformed_bodies_get_422_and_the_server_keeps_serving(
    client: TestClient, body: bytes, field: str
) -> None:
    answer = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert field in errors_of(answer)
    assert client.post("/v1/predict", json={"records": [ROW]}).status_code == 200


def test_limits_give_413(served_project: Context) -> None:
    text = "name: web\nmodel: m@champion\nlimits: {max_rows: 3, max_body_bytes: 400}\n"
    with TestClient(make_app(served_project, text)) as c:
        many = c.post("/v1/predict", json={"records": [ROW] * 4})
        assert many.status_code == 413
        assert "records" in errors_of(many)
        columns = c.post("/v1/predict", json={"columns": {"distance": [1.0] * 4, "hour": [1] * 4}})
        assert columns.status_code == 413
        big = orjson.dumps({"records": [ROW] * 3, "pad": "x" * 500})
        oversized = c.post("/v1/predict", content=big, headers={"content-type": "application/json"})
        assert oversized.status_code == 413
        assert "body" in errors_of(oversized)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size counts
            yield b'{"records": ['
            for _ in range(40):
                yield orjson.dumps(ROW) + b","
            yield b"{}]}"

        streamed = c.post("/v1/predict", content=chunks())
        assert streamed.status_code == 413
        assert c.post("/v1/predict", json={"records": [ROW] * 3}).status_code == 200
        metrics = c.get("/metrics").text
    assert 'plinth_errors_total{deployment="web",type="too_large"} 4.0' in metrics


def test_health_ready_model_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"ready": True, "model_version": "m@1"}
    model = client.get("/v1/model").json()
    assert model["model_version"] == "m@1"
    assert model["version"]["number"] == 1
    assert [f["name"] for f in model["signature"]["inputs"]] == ["distance", "hour"]
    assert model["output"]["kind"] == "probability"
    assert "positive class" in model["output"]["description"]
    assert model["lineage"]["run_id"] == model["version"]["run_id"]
    assert model["deployment"]["name"] == "web"
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == ["distance", "hour"]
    assert record["properties"]["hour"]["type"] == "integer"
    assert "/v1/predict" in doc["paths"]


def test_not_ready_before_start_up(served_project: Context) -> None:
    app = make_app(served_project)
    c = TestClient(app)  # no lifespan: nothing loaded
    assert c.get("/ready").status_code == 503
    assert c.post("/v1/predict", json={"records": [ROW]}).status_code == 503


def test_metrics_expose_every_name(client: TestClient) -> None:
    for n in (1, 2, 5):
        assert client.post("/v1/predict", json={"records": [ROW] * n}).status_code == 200
    assert client.post("/v1/predict", json={"records": [{"distance": "x"}]}).status_code == 422
    text = client.get("/metrics").text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")} | {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }
    missing = [n for n in METRIC_NAMES if n not in names and f"{n}_count" not in names]
    assert not missing
    assert (
        'plinth_predictions_total{deployment="web",model_version="m@1",role="primary"} 8.0' in text
    )
    assert 'plinth_rows_per_request_count{deployment="web"} 3.0' in text
    assert 'plinth_errors_total{deployment="web",type="validation"} 1.0' in text
    assert 'plinth_model_info{deployment="web",model_version="m@1",role="primary"} 1.0' in text
    assert 'plinth_prediction_value_count{deployment="web",model_version="m@1"} 8.0' in text
    assert 'plinth_prediction_log_rows_total{deployment="web"} 8.0' in text


def test_canary_split(served_project: Context) -> None:
    text = "name: web\nmodel: m@champion\ncanary: {model: m@challenger, traffic: 0.5}\n"
    with TestClient(make_app(served_project, text, seed=1)) as c:
        versions = {
            c.post("/v1/predict", json={"records": [ROW]}).json()["model_version"]
            for _ in range(20)
        }
        metrics = c.get("/metrics").text
        model = c.get("/v1/model").json()
    assert versions == {"m@1", "m@2"}
    assert 'model_version="m@1",role="primary"' in metrics
    assert 'model_version="m@2",role="canary"' in metrics
    assert model["canary"]["model_version"] == "m@2"
    assert model["canary"]["traffic"] == 0.5


def test_shadow_runs_without_touching_the_response(served_project: Context) -> None:
    text = "name: web\nmodel: m@champion\nshadow: m@challenger\n"
    with TestClient(make_app(served_project, text)) as c:
        for _ in range(3):
            assert c.post("/v1/predict", json={"records": [ROW]}).json()["model_version"] == "m@1"
        metrics = c.get("/metrics").text
    assert 'plinth_predictions_total{deployment="web",model_version="m@2",role="shadow"}' in metrics


def test_alias_move_swaps_the_model_without_failing_requests(served_project: Context) -> None:
    with TestClient(make_app(served_project, poll_seconds=3600)) as c:
        server = server_of(c)
        assert c.post("/v1/predict", json={"records": [ROW]}).json()["model_version"] == "m@1"
        assert server.refresh() is False  # nothing moved
        plinth.models.set_alias("m", "champion", 2)
        failures: list[int] = []
        seen: set[str] = set()
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                answer = c.post("/v1/predict", json={"records": [ROW]})
                if answer.status_code != 200:
                    failures.append(answer.status_code)
                else:
                    seen.add(answer.json()["model_version"])

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            assert server.refresh() is True  # loads m@2 off the request path, then swaps
        finally:
            stop.set()
            thread.join()
        assert not failures
        after = c.post("/v1/predict", json={"records": [ROW]}).json()
        assert after["model_version"] == "m@2"
        assert c.get("/ready").json()["model_version"] == "m@2"
        metrics = c.get("/metrics").text
    assert 'plinth_model_info{deployment="web",model_version="m@2",role="primary"} 1.0' in metrics
    assert 'model_version="m@1",role="primary"} 1.0' not in metrics.split("plinth_model_info")[-1]


def test_concurrent_requests_are_batched(served_project: Context) -> None:
    with TestClient(make_app(served_project, batch_wait_ms=2)) as c:
        answers: list[Any] = [None] * 50
        barrier = threading.Barrier(50)

        def one(i: int) -> None:
            barrier.wait()
            row = {"distance": float(i - 25), "hour": i % 24}
            answers[i] = c.post("/v1/predict", json={"records": [row]})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metrics = c.get("/metrics").text
    assert all(a.status_code == 200 for a in answers)
    # each answer belongs to its own row: far negative distances score low, far positive high
    assert answers[0].json()["predictions"][0] < 0.5 < answers[49].json()["predictions"][0]
    count_line = next(
        line for line in metrics.splitlines() if line.startswith("plinth_batch_size_count")
    )
    batches = float(count_line.split()[-1])
    assert batches < 50
    assert 'plinth_batch_size_sum{deployment="web"} 50.0' in metrics
