"""Serving suites off the request path (issue 13, problem 6): ``models predict --suite
[--reject]`` and ``validate infer --for-serving MODEL@ALIAS``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import plinth
from plinth.context import Context

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

SUITE = """suite: serving
checks:
  - {check: row_count, min: 1000}
  - {check: between, column: size, min: 0, max: 500}
  - {check: allowed_values, column: color, values: [red, blue]}
  - {check: max_null_fraction, column: size, value: 0}
"""


def _trained(project: Context, tmp_path: Path) -> None:
    """Dataset prices@1 (order_id, size, color, price) -> run -> model price@1 (size, color)."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {
            "order_id": [f"o-{i}" for i in range(200)],
            "size": [float(10 + i) for i in range(200)],
            "color": ["red", "blue"] * 100,
        }
    ).assign(price=lambda f: f["size"] * 10)
    path = tmp_path / "prices.parquet"
    frame.to_parquet(path)
    plinth.datasets.add(path, "prices")
    with plinth.start_run() as run:
        data = plinth.datasets.load("prices")
        features = data[["size", "color"]]
        model = make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["color"]), (SimpleImputer(), ["size"])
            ),
            LinearRegression(),
        ).fit(features, data["price"])
        run.log_model(model, name="price", input_example=features.head())
    plinth.models.set_alias("price", "champion", 1)


def _requests(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {
            "size": [50.0, 60.0, -3.0, None],
            "color": ["red", "green", "blue", "blue"],  # row 1: an unseen category
        }
    )
    path = tmp_path / "requests.parquet"
    frame.to_parquet(path)
    return path


def test_models_predict_suite_counts_failures_per_check_and_scores_every_row(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    _trained(project, tmp_path)
    (tmp_path / "serving.yaml").write_text(SUITE, encoding="utf-8")
    out = tmp_path / "preds.parquet"
    result = cli(
        "models", "predict", "price@champion", "--input", str(_requests(tmp_path)),
        "--output", str(out), "--suite", str(tmp_path / "serving.yaml"), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["check_failures"] == {
        "allowed_values(color)": 1,
        "between(size)": 1,
        "max_null_fraction(size)": 1,
    }
    table = pq.read_table(out)
    assert table.num_rows == 4
    assert table.column("input_check_failures").to_pylist() == [
        None, "allowed_values(color)", "between(size)", "max_null_fraction(size)"
    ]  # fmt: skip


def test_models_predict_reject_does_not_score_failing_rows_writes_rejects_and_exits_1(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    _trained(project, tmp_path)
    (tmp_path / "serving.yaml").write_text(SUITE, encoding="utf-8")
    out = tmp_path / "preds.parquet"
    result = cli(
        "models", "predict", "price@champion", "--input", str(_requests(tmp_path)),
        "--output", str(out), "--suite", str(tmp_path / "serving.yaml"), "--reject",
    )  # fmt: skip
    assert result.code == 1
    assert "3 rejected (not scored)" in result.out
    scored = pq.read_table(out)
    assert scored.column("size").to_pylist() == [50.0]  # the null was never predicted
    rejects = pq.read_table(tmp_path / "preds.rejects.parquet")
    assert rejects.num_rows == 3
    assert "prediction" not in rejects.column_names


def test_validate_infer_for_serving_writes_a_suite_over_the_model_inputs_only(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    _trained(project, tmp_path)
    out = tmp_path / "serving.yaml"
    result = cli("validate", "infer", "--for-serving", "price@champion", "-o", str(out))
    assert result.code == 0, result.err
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    columns = {check.get("column") for check in doc["checks"]}
    assert columns == {"size", "color"}  # not the target price, not the id order_id
    kinds = {check["check"] for check in doc["checks"]}
    assert kinds <= {"between", "allowed_values", "max_null_fraction", "string_length", "regex"}
    # the suite it wrote gates batch scoring: an unseen colour and a null are caught
    preds = tmp_path / "preds.parquet"
    gated = cli(
        "models", "predict", "price@champion", "--input", str(_requests(tmp_path)),
        "--output", str(preds), "--suite", str(out), "--reject", "--json",
    )  # fmt: skip
    assert gated.code == 1
    failures = json.loads(gated.out)["check_failures"]
    assert failures["allowed_values(color)"] == 1
    assert failures["max_null_fraction(size)"] == 1
