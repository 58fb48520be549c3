"""Every refusal of the model server is a PlinthError, answered in the one error shape."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

import plinth
from plinth import errors
from plinth.context import Context
from plinth.serving.app import create_app
from plinth.serving.spec import DeploymentSpec

ROW = {"distance": 0.5, "hour": 3}
SPEC = "name: web\nmodel: m@champion\nlimits: {max_rows: 3}\n"
ENTRY_KEYS = {"type", "field", "message", "hint"}


def _app(ctx: Context, **kwargs: Any) -> Any:
    return create_app(DeploymentSpec.from_yaml(SPEC), ctx=ctx, log_predictions=False, **kwargs)


def _counted(client: TestClient, kind: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'plinth_errors_total\{{deployment="web",type="{kind}"\}} (\S+)', text)
    assert match, text
    return float(match[1])


def _refusal(answer: Any, cls: type[errors.PlinthError]) -> list[dict[str, Any]]:
    """The entries of an error answer, checked against ``cls``'s status and name."""
    assert answer.status_code == cls.status, answer.text
    entries: list[dict[str, Any]] = answer.json()["errors"]
    assert entries
    for entry in entries:
        assert set(entry) == ENTRY_KEYS
        assert entry["type"] == cls.__name__
        assert entry["hint"]
    return entries


def test_422_413_and_503_come_from_the_error_tree_in_one_shape(served_project: Context) -> None:
    with TestClient(_app(served_project)) as client:
        bad = client.post("/v1/predict", json={"records": [{"distance": "x"}, {"hour": 1}]})
        fields = [e["field"] for e in _refusal(bad, errors.RequestError)]
        assert fields == ["records[0].distance", "records[0].hour", "records[1].distance"]
        many = client.post("/v1/predict", json={"records": [ROW] * 4})
        assert _refusal(many, errors.PayloadTooLargeError)[0]["field"] == "records"
        assert "limits.max_rows" in many.json()["errors"][0]["hint"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["Errors"]
        assert set(schema["properties"]["errors"]["items"]["properties"]) == ENTRY_KEYS
        assert _counted(client, "validation") == 1
        assert _counted(client, "too_large") == 1
    loading = TestClient(_app(served_project))  # no lifespan: nothing loaded yet
    for answer in (
        loading.post("/v1/predict", json={"records": [ROW]}),
        loading.get("/v1/model"),
        loading.get("/openapi.json"),
    ):
        assert _refusal(answer, errors.NotReadyError)[0]["field"] == "model"


class ExplodingModel:
    """A user's model that raises on every call, with a real logged model's signature."""

    def __init__(self, signature: Any) -> None:
        self.signature = signature

    def predict(self, data: Any) -> Any:
        raise ValueError("the model's own words")


def test_model_that_raises_is_a_500_counted_as_a_model_error_not_internal(
    served_project: Context,
) -> None:
    signature = plinth.models.load("m@1").signature
    app = _app(served_project, models={"m@champion": ExplodingModel(signature)})
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json={"records": [ROW]})
        [entry] = _refusal(answer, errors.ModelFailedError)
        assert entry["field"] == "model"
        assert entry["message"] == "the model failed: ValueError: the model's own words"
        assert _counted(client, "model") == 1
        assert _counted(client, "internal") == 0
        assert _counted(client, "validation") == 0
        assert client.get("/health").status_code == 200


class QuotingModel(ExplodingModel):
    """A model whose error quotes a (huge) request value back."""

    def predict(self, data: Any) -> Any:
        raise ValueError("could not convert string to float: '" + "A" * 100_000 + "'")


def test_a_model_error_quoting_a_huge_value_is_bounded_in_the_answer(
    served_project: Context,
) -> None:
    signature = plinth.models.load("m@1").signature
    app = _app(served_project, models={"m@champion": QuotingModel(signature)})
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json={"records": [ROW]})
        [entry] = _refusal(answer, errors.ModelFailedError)
        assert entry["message"].startswith("the model failed: ValueError: could not convert")
        assert len(entry["message"]) < 300
        assert len(answer.content) < 2_000
