"""Serving with online features: a request sends entity keys, the server looks the features
up (three views in the project's SQLite online store), predicts, logs what it used."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from tests.serving.test_app import FakeLog, errors_of

import plinth
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import Entity, FeatureService, FeatureView, parquet
from plinth.serving.app import Server, create_app
from plinth.serving.features import FEATURE_METRIC_NAMES
from plinth.serving.spec import DeploymentSpec

NOW = datetime.now(UTC).replace(microsecond=0)
FRESH = NOW - timedelta(hours=1)
STALE = NOW - timedelta(days=30)  # older than the carrier view's 7-day TTL

PLANE = Entity("plane", join_keys=["tailnum"])
CARRIER = Entity("carrier", join_keys=["carrier"])
ROUTE = Entity("route", join_keys=["origin", "dest"])
PLANES = FeatureView(
    "planes",
    entities=["plane"],
    source=parquet("data/planes.parquet"),
    timestamp="ts",
    features={"plane_age": "float64", "seats": "int64"},
)
CARRIERS = FeatureView(
    "carriers",
    entities=["carrier"],
    source=parquet("data/carriers.parquet"),
    timestamp="ts",
    ttl="7d",
    features={"carrier_delay": "float64"},
)
ROUTES = FeatureView(
    "routes",
    entities=["route"],
    source=parquet("data/routes.parquet"),
    timestamp="ts",
    features={"route_flights": "int64", "route_delay": "float64"},
)
SERVICE = FeatureService("delays", [PLANES, CARRIERS, ROUTES[["route_flights"]]])
ROWS = {
    "planes": [
        {"tailnum": "N1", "ts": FRESH, "plane_age": 3.0, "seats": 150},
        {"tailnum": "N2", "ts": FRESH, "plane_age": 21.5, "seats": 90},
    ],
    "carriers": [
        {"carrier": "AA", "ts": FRESH, "carrier_delay": 12.5},
        {"carrier": "UA", "ts": FRESH, "carrier_delay": -4.0},
        {"carrier": "ZZ", "ts": STALE, "carrier_delay": 99.0},  # expired online
    ],
    "routes": [
        {"origin": "JFK", "dest": "LAX", "ts": FRESH, "route_flights": 40, "route_delay": 1.0},
        {"origin": "LGA", "dest": "ORD", "ts": FRESH, "route_flights": 7, "route_delay": 2.0},
    ],
}
KEYS = {"tailnum": "N1", "carrier": "AA", "origin": "JFK", "dest": "LAX"}
DEPLOYMENT = "name: web\nmodel: d@champion\nfeatures: {service: delays}\n"


def apply(definitions: list[Any], ctx: Context) -> None:
    from plinth.features.registry import apply as record

    record(definitions, ctx=ctx)


def train() -> Any:
    """A gradient-boosted regressor (takes NaN) on three features and one direct input."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "plane_age": rng.uniform(0, 30, n),
            "carrier_delay": rng.normal(0, 10, n),
            "route_flights": rng.integers(1, 50, n),
            "distance": rng.uniform(100, 3000, n),
        }
    )
    target = frame["carrier_delay"] + 0.3 * frame["plane_age"] - 0.01 * frame["distance"]
    frame.loc[::10, "carrier_delay"] = np.nan  # the model has seen missing delays
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(frame, target)
    return model, frame


@pytest.fixture
def feature_project(project: Context) -> Context:
    """Three views materialized online, service ``delays``, model ``d@champion`` over them."""
    pytest.importorskip("sklearn")
    import pyarrow as pa

    from plinth.features.materialize import materialize
    from plinth.tables import write_parquet

    data = project.settings.root / "data"
    data.mkdir()
    for name, rows in ROWS.items():
        write_parquet(pa.Table.from_pylist(rows), data / f"{name}.parquet")
    apply([PLANE, CARRIER, ROUTE, PLANES, CARRIERS, ROUTES, SERVICE], project)
    materialize(end=NOW, ctx=project)  # the latest row per key, to the SQLite online store
    model, frame = train()
    with plinth.start_run(experiment="features") as run:
        run.log_model(model, name="d", input_example=frame.head())
    plinth.models.set_alias("d", "champion", 1)
    return project


def make_app(ctx: Context, text: str = DEPLOYMENT, **kwargs: Any) -> Starlette:
    kwargs.setdefault("predlog", FakeLog())
    return create_app(DeploymentSpec.from_yaml(text), ctx=ctx, **kwargs)


@pytest.fixture
def client(feature_project: Context) -> Iterator[TestClient]:
    with TestClient(make_app(feature_project)) as c:
        yield c


def server_of(client: TestClient) -> Server:
    assert isinstance(client.app, Starlette)
    server: Server = client.app.state.server
    return server


def expected(rows: list[dict[str, Any]]) -> list[float]:
    import pandas as pd

    model = plinth.models.load("d@1")
    frame = pd.DataFrame(rows, columns=["plane_age", "carrier_delay", "route_flights", "distance"])
    return [float(v) for v in model.predict(frame.astype({"carrier_delay": float}))]


def test_keys_only_predicts_on_the_looked_up_values(client: TestClient) -> None:
    records = [
        {**KEYS, "distance": 1000.0},
        {"tailnum": "N2", "carrier": "UA", "origin": "LGA", "dest": "ORD", "distance": 700.0},
    ]
    answer = client.post("/v1/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    want = expected(
        [
            {"plane_age": 3.0, "carrier_delay": 12.5, "route_flights": 40, "distance": 1000.0},
            {"plane_age": 21.5, "carrier_delay": -4.0, "route_flights": 7, "distance": 700.0},
        ]
    )
    assert answer.json()["predictions"] == pytest.approx(want)
    columns = {k: [r[k] for r in records] for k in records[0]}
    again = client.post("/v1/predict", json={"columns": columns}).json()
    assert again["predictions"] == pytest.approx(want)


def test_feature_values_and_keys_are_logged(feature_project: Context) -> None:
    log = FakeLog()
    with TestClient(make_app(feature_project, predlog=log)) as c:
        body = c.post("/v1/predict", json={"records": [{**KEYS, "distance": 500.0}]}).json()
    (_, version, columns, predictions) = log.appended[0]
    assert version == "d@1"
    assert predictions == body["predictions"]
    assert columns == {
        "plane_age": [3.0],
        "carrier_delay": [12.5],
        "route_flights": [40],
        "distance": [500.0],
        "tailnum": ["N1"],
        "carrier": ["AA"],
        "origin": ["JFK"],
        "dest": ["LAX"],
        "seats": [150],  # in the service, not a model input: logged too
    }
    assert log.types is not None
    assert log.types["seats"] == "int64"
    assert log.types["plane_age"] == "double"


def test_missing_and_expired_entities_predict_with_nulls_where_allowed(
    client: TestClient,
) -> None:
    # carrier ZZ was written 30 days ago (TTL 7d); XX never: both read as null, and the
    # float input takes a null (NaN): predicted as the model predicts NaN there
    records = [
        {**KEYS, "carrier": "ZZ", "distance": 1000.0},
        {**KEYS, "carrier": "XX", "distance": 1000.0},
    ]
    answer = client.post("/v1/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    row = {"plane_age": 3.0, "carrier_delay": None, "route_flights": 40, "distance": 1000.0}
    assert answer.json()["predictions"] == pytest.approx(expected([row, row]))
    metrics = client.get("/metrics").text
    assert (
        'plinth_feature_missing_total{deployment="web",feature="carrier_delay",view="carriers"} 2.0'
        in metrics
    )
    assert 'feature="plane_age",view="planes"} 0.0' in metrics


def test_missing_feature_for_an_input_that_takes_no_null_is_a_422(client: TestClient) -> None:
    records = [{**KEYS, "distance": 1.0}, {**KEYS, "origin": "SFO", "distance": 1.0}]
    answer = client.post("/v1/predict", json={"records": records})
    assert answer.status_code == 422
    errors = errors_of(answer)
    assert list(errors) == ["records[1].route_flights"]
    message = errors["records[1].route_flights"]
    assert "origin='SFO', dest='LAX'" in message
    assert "view 'routes'" in message
    assert "takes no null" in message
    cols = {k: [v, v] for k, v in KEYS.items()} | {"distance": [1.0, 2.0]}
    cols["dest"] = ["LAX", "BOS"]
    errors = errors_of(client.post("/v1/predict", json={"columns": cols}))
    assert list(errors) == ["columns.route_flights[1]"]


def test_bad_keys_and_missing_fields_are_named(client: TestClient) -> None:
    records = [
        {**KEYS, "tailnum": None, "distance": 1.0},
        {**KEYS, "carrier": 1.5, "distance": 1.0},
        {"tailnum": "N1", "distance": 1.0},
        {**KEYS, "distance": 1.0, "plane_age": 3.0},
    ]
    errors = errors_of(client.post("/v1/predict", json={"records": records}))
    assert "string or an integer, got null" in errors["records[0].tailnum"]
    assert "string or an integer, got 1.5" in errors["records[1].carrier"]
    assert errors["records[2].carrier"].startswith("missing")
    assert errors["records[2].origin"].startswith("missing")
    assert "looked up by the server" in errors["records[3].plane_age"]


def test_model_endpoint_lists_the_features(client: TestClient) -> None:
    doc = client.get("/v1/model").json()
    features = doc["features"]
    assert features["service"] == "delays"
    assert features["version"] == 1
    assert features["features"] == [
        {"name": "plane_age", "type": "float64", "view": "planes", "model_input": True},
        {"name": "seats", "type": "int64", "view": "planes", "model_input": False},
        {"name": "carrier_delay", "type": "float64", "view": "carriers", "model_input": True},
        {"name": "route_flights", "type": "int64", "view": "routes", "model_input": True},
    ]
    assert features["request"] == {
        "keys": ["tailnum", "carrier", "origin", "dest"],
        "request_fields": {},
        "inputs": {"distance": "double"},
    }
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert set(schema["required"]) == {"tailnum", "carrier", "origin", "dest", "distance"}


def test_metrics_have_lookup_latency(client: TestClient) -> None:
    for _ in range(3):
        assert client.post("/v1/predict", json={"records": [{**KEYS, "distance": 1.0}]}).is_success
    text = client.get("/metrics").text
    for name in FEATURE_METRIC_NAMES:
        assert name in text
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("plinth_feature_lookup_seconds_count{")
    )
    assert 'service="delays"' in count
    assert float(count.rsplit(" ", 1)[1]) == 3.0


def test_the_prediction_log_holds_the_feature_values(feature_project: Context) -> None:
    from plinth.serving.predlog import find_prediction

    with TestClient(make_app(feature_project, predlog=None)) as c:
        body = c.post("/v1/predict", json={"records": [{**KEYS, "distance": 42.0}]}).json()
    found = find_prediction(feature_project, body["request_id"])
    (row,) = found["rows"]
    assert row["inputs"] == {
        "plane_age": 3.0,
        "carrier_delay": 12.5,
        "route_flights": 40,
        "distance": 42.0,
        "tailnum": "N1",
        "carrier": "AA",
        "origin": "JFK",
        "dest": "LAX",
        "seats": 150,
    }
    assert row["prediction"] == pytest.approx(body["predictions"][0])


def test_concurrent_requests_share_lookups(feature_project: Context) -> None:
    import asyncio

    import httpx

    planes = [("N1", 3.0), ("N2", 21.5)]
    carriers = [("AA", 12.5), ("UA", -4.0), ("ZZ", None)]

    async def go() -> tuple[list[Any], float]:
        app = make_app(feature_project)
        server: Server = app.state.server
        await asyncio.to_thread(server.start)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                bodies = [
                    {
                        "records": [
                            {
                                **KEYS,
                                "tailnum": planes[i % 2][0],
                                "carrier": carriers[i % 3][0],
                                "distance": float(i),
                            }
                        ]
                    }
                    for i in range(30)
                ]
                answers = await asyncio.gather(
                    *(client.post("/v1/predict", json=b) for b in bodies)
                )
            assert server.features is not None
            lookups = server.metrics.registry.get_sample_value(
                "plinth_feature_lookup_seconds_count", {"deployment": "web", "service": "delays"}
            )
            assert lookups is not None
            return [a.json()["predictions"][0] for a in answers], lookups
        finally:
            server.close()

    got, lookups = asyncio.run(go())
    assert lookups < 30  # requests queued together share one read (one multi-get per view)
    rows = [
        {
            "plane_age": planes[i % 2][1],
            "carrier_delay": carriers[i % 3][1],
            "route_flights": 40,
            "distance": float(i),
        }
        for i in range(30)
    ]
    assert got == pytest.approx(expected(rows))


# -- start-up: the spec and the model's inputs ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("features: {servce: delays}\n", "features.servce", "did you mean 'features.service'"),
        ("features: {service: delays@prod}\n", "features.service", "NAME@N"),
        ("features: {service: ''}\n", "features.service", "must name a feature service"),
        (
            "features: {service: d, trust_code: yes please}\n",
            "features.trust_code",
            "true or false",
        ),
        ("features: [delays]\n", "features", "mapping"),
    ],
)
def test_spec_errors_name_the_field(text: str, field: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        DeploymentSpec.from_yaml("name: web\nmodel: d@champion\n" + text)
    assert caught.value.field is not None
    assert field in caught.value.field
    assert words in str(caught.value)


def test_spec_round_trips() -> None:
    spec = DeploymentSpec.from_yaml(
        "name: web\nmodel: d@champion\nfeatures: {service: delays@2, trust_code: true}\n"
    )
    assert spec.features is not None
    assert (spec.features.service, spec.features.trust_code) == ("delays@2", True)
    again = DeploymentSpec.from_dict(spec.to_dict())
    assert again.features == spec.features


def test_a_service_that_does_not_exist_stops_the_server(feature_project: Context) -> None:
    app = make_app(feature_project, DEPLOYMENT.replace("delays", "nope"))
    with pytest.raises(NotFoundError, match="nope"), TestClient(app):
        pass


def test_an_input_of_the_wrong_type_stops_the_server(feature_project: Context) -> None:
    import pyarrow as pa

    from plinth.tables import write_parquet

    rows = [{"carrier": "AA", "ts": FRESH, "carrier_delay": "late"}]
    write_parquet(pa.Table.from_pylist(rows), feature_project.settings.root / "data/text.parquet")
    wrong = FeatureView(
        "carrier_text",
        entities=["carrier"],
        source=parquet("data/text.parquet"),
        timestamp="ts",
        features={"carrier_delay": "string"},
    )
    service = FeatureService("typed", [PLANES, wrong, ROUTES[["route_flights"]]])
    apply([wrong, service], feature_project)
    app = make_app(feature_project, DEPLOYMENT.replace("delays", "typed"))
    with pytest.raises(UsageError) as caught, TestClient(app):
        pass
    assert caught.value.field == "features.carrier_delay"
    assert "as double" in str(caught.value)
    assert "as string" in str(caught.value)


def test_a_service_providing_no_input_stops_the_server(feature_project: Context) -> None:
    apply([FeatureService("other", [ROUTES[["route_delay"]]])], feature_project)
    app = make_app(feature_project, DEPLOYMENT.replace("delays", "other"))
    with pytest.raises(UsageError, match="provides none of the inputs") as caught, TestClient(app):
        pass
    assert caught.value.field == "features.service"


def test_a_passthrough_field_named_like_a_key_stops_the_server(feature_project: Context) -> None:
    app = make_app(feature_project, DEPLOYMENT + "passthrough: [tailnum]\n")
    with pytest.raises(UsageError, match="join key") as caught, TestClient(app):
        pass
    assert caught.value.field == "passthrough.tailnum"
