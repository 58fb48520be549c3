"""The serving edge (issue 13, problems 2 and 6): pass-through fields travel with a request
without reaching the model, and a deployment's suite rejects or counts bad rows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.serving.app import create_app
from plinth.serving.spec import DeploymentSpec

SUITE = """suite: serving
checks:
  - {check: row_count, min: 100}
  - {check: between, column: size, min: 0, max: 500}
  - {check: allowed_values, column: color, values: [red, blue]}
  - {check: max_null_fraction, column: size, value: 0}
  - {check: mean_between, column: size, min: 10, max: 200}
  - {check: between, column: price, min: 0}
"""
GOOD = {"size": 50.0, "color": "red"}


class Recorder:
    """A prediction log that keeps what it is given (the model's input is checked apart)."""

    def __init__(self) -> None:
        self.columns: list[dict[str, Any]] = []
        self.rows_logged = 0
        self.rows_dropped = 0

    def append(self, rid: str, ts: int, version: str, columns: Any, preds: Any, **kw: Any) -> None:
        self.columns.append(dict(columns))

    def close(self) -> None:
        pass


class PriceModel:
    """A regression model that remembers the columns of every frame it was given."""

    def __init__(self) -> None:
        import pandas as pd
        from sklearn.linear_model import LinearRegression

        from plinth.registry.flavors.signature import infer_signature

        frame = pd.DataFrame({"size": [10.0, 20.0, 30.0, 40.0], "color": ["red", "blue"] * 2})
        self.signature = infer_signature(frame)
        self.native = LinearRegression().fit(frame[["size"]], [100.0, 200.0, 300.0, 400.0])
        self.seen: list[list[str]] = []

    def predict(self, data: Any) -> Any:
        self.seen.append([str(c) for c in data.columns])
        return self.native.predict(data[["size"]].fillna(0.0))  # as a model with an imputer


def serve(folder: Path, text: str, model: PriceModel | None = None, log: Any = None) -> Any:
    path = folder / "deployment.yaml"
    path.write_text("name: prices\nmodel: price@champion\n" + text, encoding="utf-8")
    spec = DeploymentSpec.load(path)
    return create_app(spec, models={"price@champion": model or PriceModel()}, predlog=log)


@pytest.fixture(autouse=True)
def _sklearn() -> None:
    pytest.importorskip("sklearn")


# -- problem 2: pass-through fields ---------------------------------------------------------
def test_passthrough_business_key_is_accepted_logged_echoed_and_not_given_to_model(
    tmp_path: Path,
) -> None:
    model, log = PriceModel(), Recorder()
    with TestClient(serve(tmp_path, "passthrough: [order_id]\n", model, log)) as client:
        answer = client.post(
            "/v1/predict",
            json={"records": [{**GOOD, "order_id": "o-1"}], "return_passthrough": True},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["passthrough"] == [{"order_id": "o-1"}]
        plain = client.post("/v1/predict", json={"records": [{**GOOD, "order_id": "o-2"}]})
        assert "passthrough" not in plain.json()
        columns = client.post(
            "/v1/predict",
            json={"columns": {"size": [1.0, 2.0], "color": ["red"] * 2, "order_id": [7, 8]}},
        )
        assert columns.status_code == 200, columns.text
    assert all("order_id" not in seen for seen in model.seen)
    assert [c["order_id"] for c in log.columns] == [["o-1"], ["o-2"], [7, 8]]


def test_passthrough_declared_type_and_required_flag_are_enforced_with_422_naming_field(
    tmp_path: Path,
) -> None:
    text = "passthrough: {order_id: {type: integer, required: true}, note: string}\n"
    with TestClient(serve(tmp_path, text)) as client:
        wrong = client.post("/v1/predict", json={"records": [{**GOOD, "order_id": "x"}]})
        missing = client.post("/v1/predict", json={"records": [GOOD]})
        null = client.post(
            "/v1/predict", json={"columns": {"size": [1.0], "color": ["red"], "order_id": [None]}}
        )
        optional = client.post("/v1/predict", json={"records": [{**GOOD, "order_id": 3}]})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "records[0].order_id"
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "records[0].order_id"
    assert null.status_code == 422
    assert null.json()["errors"][0]["field"] == "columns.order_id[0]"
    assert optional.status_code == 200, optional.text


def test_passthrough_spec_refuses_reserved_names_bad_types_and_model_inputs(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError) as reserved:
        DeploymentSpec.from_yaml("name: p\nmodel: price@1\npassthrough: [prediction]\n")
    assert reserved.value.field == "passthrough"
    with pytest.raises(UsageError) as bad_type:
        DeploymentSpec.from_yaml("name: p\nmodel: price@1\npassthrough: {id: uuid}\n")
    assert bad_type.value.field == "passthrough.id.type"
    spec = DeploymentSpec.from_yaml("name: p\nmodel: price@1\npassthrough: [order_id]\n")
    assert spec.to_dict()["passthrough"] == {"order_id": {"type": "any", "required": False}}
    with pytest.raises(UsageError) as clash, TestClient(serve(tmp_path, "passthrough: [size]\n")):
        pass
    assert clash.value.field == "passthrough.size"


def test_labels_join_on_a_passthrough_business_key_of_served_traffic(project: Context) -> None:
    import pandas as pd

    from plinth.monitoring.performance import record_labels

    frame = pd.DataFrame({"size": [10.0, 20.0, 30.0, 40.0]})
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(frame, [100.0, 200.0, 300.0, 400.0])
    with plinth.start_run(experiment="prices") as run:
        run.log_model(model, name="price", input_example=frame)
    plinth.models.set_alias("price", "champion", 1)
    spec = DeploymentSpec.from_yaml(
        "name: prices\nmodel: price@champion\npassthrough: [order_id]\n"
    )
    with TestClient(create_app(spec, ctx=project)) as client:
        for i in range(6):
            answer = client.post(
                "/v1/predict", json={"records": [{"size": 10.0 * i, "order_id": f"o-{i}"}]}
            )
            assert answer.status_code == 200, answer.text
    # closing the app flushed the log; the client only kept its own order ids
    labels = pd.DataFrame(
        {"order_id": [f"o-{i}" for i in range(6)], "price": [10.0 * i * 10 for i in range(6)]}
    )
    result = record_labels("prices", labels, key="order_id", label_column="price", ctx=project)
    assert result.matched == 6
    assert result.windows[0]["metrics"]["mae"] == pytest.approx(0.0, abs=1e-6)


# -- problem 6: suites at the serving edge ---------------------------------------------------
BAD = [
    {"size": 50.0, "color": "green"},  # an unseen category
    {"size": -3.0, "color": "red"},  # a negative size
    {"size": None, "color": "blue"},  # a null in a required column
]


def test_reject_mode_refuses_unseen_category_negative_size_and_null_per_row(
    tmp_path: Path,
) -> None:
    (tmp_path / "serving.yaml").write_text(SUITE, encoding="utf-8")
    model, log = PriceModel(), Recorder()
    app = serve(tmp_path, "validate: {suite: serving.yaml, mode: reject}\n", model, log)
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json={"records": [GOOD, *BAD]})
        good = client.post("/v1/predict", json={"records": [GOOD]})
        columns = client.post("/v1/predict", json={"columns": {"size": [-1.0], "color": ["red"]}})
    assert answer.status_code == 422
    fields = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert set(fields) == {"records[1].color", "records[2].size", "records[3].size"}
    assert "allowed_values" in fields["records[1].color"]
    assert "between" in fields["records[2].size"]
    assert "max_null_fraction" in fields["records[3].size"]
    assert columns.json()["errors"][0]["field"] == "columns.size[0]"
    assert good.status_code == 200
    assert len(model.seen) == 1  # only the good request was served
    assert len(log.columns) == 1


def test_warn_mode_serves_counts_failures_per_check_and_logs_them(tmp_path: Path) -> None:
    (tmp_path / "serving.yaml").write_text(SUITE, encoding="utf-8")
    log = Recorder()
    app = serve(tmp_path, "validate: {suite: serving.yaml, mode: warn}\n", log=log)
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json={"records": [GOOD, *BAD]})
        metrics = client.get("/metrics").text
    assert answer.status_code == 200
    failures = log.columns[0]["input_check_failures"]
    assert failures == [
        None,
        "allowed_values(color)",
        "between(size)",
        "max_null_fraction(size)",
    ]
    for check, column in (("allowed_values", "color"), ("between", "size")):
        line = f'check="{check}",column="{column}",deployment="prices"'
        assert f"plinth_input_check_failures_total{{{line}}} 1.0" in metrics


def test_table_level_checks_are_skipped_at_the_serving_edge_and_said_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "serving.yaml").write_text(SUITE, encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="plinth.serving"):
        app = serve(tmp_path, "validate: {suite: serving.yaml}\n")
        with TestClient(app) as client:
            # 1 row would fail row_count (min 100) and mean_between if they ran per request
            assert client.post("/v1/predict", json={"records": [GOOD]}).status_code == 200
    text = caplog.text
    assert "3 row checks per request, 3 skipped" in text
    assert "row_count: a table-level check" in text
    assert "between(price): not a field of the request" in text


def test_serving_suite_path_outside_the_deployment_folder_is_refused_and_nothing_served(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "deploy"
    folder.mkdir()
    (tmp_path / "outside.yaml").write_text(SUITE, encoding="utf-8")
    model = PriceModel()
    with pytest.raises(UsageError) as refused:
        serve(folder, "validate: {suite: ../outside.yaml}\n", model)
    assert refused.value.field == "validate.suite"
    assert model.seen == []


def test_an_inferred_size_aware_null_check_is_skipped_at_the_edge_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Inferred suites write max_null_fraction with reference_fraction (no 'value'): a share
    # sized to the rows met is a table-level check, so the edge skips it and still serves.
    suite = SUITE.replace(
        "{check: max_null_fraction, column: size, value: 0}",
        "{check: max_null_fraction, column: size, reference_fraction: 0.01}",
    )
    (tmp_path / "serving.yaml").write_text(suite, encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="plinth.serving"):
        app = serve(tmp_path, "validate: {suite: serving.yaml}\n")
        with TestClient(app) as client:
            assert client.post("/v1/predict", json={"records": [GOOD]}).status_code == 200
    assert "max_null_fraction(size): a share of nulls above 0" in caplog.text
