from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import plinth
from plinth.context import Context
from plinth.entities import ModelVersion, RecordRef
from plinth.errors import UsageError
from plinth.registry.model_files import load_model
from plinth.serving.batch import predict_file

pd = pytest.importorskip("pandas")
pytest.importorskip("skops")


def _model(project: Context) -> ModelVersion:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    labels = (train["a"] + train["b"] > 0).astype(int)
    with plinth.start_run() as run:
        return run.log_model(
            LogisticRegression().fit(train, labels), name="clf", input_example=train.head()
        )


def _input(folder: Path, rows: int = 1000) -> tuple[Path, Any]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "b": rng.normal(size=rows),
            "a": rng.normal(size=rows),
        }
    )
    path = folder / "in.parquet"
    frame.to_parquet(path, row_group_size=300)
    return path, frame


def test_predictions_match_the_model_and_stream_in_chunks(project: Context, tmp_path: Path) -> None:
    _model(project)
    source, frame = _input(tmp_path)
    out = tmp_path / "out" / "preds.parquet"
    result = predict_file("clf@1", source, out, chunk_rows=128, ctx=project)
    assert (result.rows, result.model_version, result.output_path) == (1000, "clf@1", out)
    assert result.chunks > 1000 // 300  # chunk_rows, not the file's row groups, sets the pace
    table = pq.read_table(out)
    assert table.column_names == ["id", "b", "a", "prediction", "score"]
    model = load_model("clf@1", ctx=project).model
    features = frame[["a", "b"]]
    np.testing.assert_array_equal(table.column("prediction").to_numpy(), model.predict(features))
    np.testing.assert_allclose(
        table.column("score").to_numpy(), model.predict_proba(features)[:, 1]
    )
    assert table.column("id").to_pylist() == list(range(1000))
    assert not [p for p in out.parent.iterdir() if p.name != "preds.parquet"]  # no leftovers


def test_a_signature_mismatch_names_every_problem_and_writes_nothing(
    project: Context, tmp_path: Path
) -> None:
    _model(project)
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"a": ["x", "y"], "c": [1.0, 2.0]}).to_parquet(path)
    out = tmp_path / "preds.parquet"
    with pytest.raises(UsageError) as info:
        predict_file("clf", path, out, ctx=project)
    message = info.value.message
    assert "column 'b' (double) is missing" in message
    assert "column 'a' should be double, got string" in message
    assert not out.exists()


def test_inside_a_run_scoring_records_that_the_run_used_the_model(
    project: Context, tmp_path: Path
) -> None:
    version = _model(project)
    source, _ = _input(tmp_path, rows=10)
    with plinth.start_run() as run:
        predict_file("clf@1", source, tmp_path / "p.parquet")
    edges = project.ledger.lineage.edges_from(RecordRef("run", run.id))
    assert (RecordRef("model_version", version.id), "used") in {(e.dst, e.relation) for e in edges}


def test_cli_predict_with_dataset_adds_a_version_and_the_lineage_edge(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    version = _model(project)
    source, _ = _input(tmp_path, rows=50)
    out = tmp_path / "preds.parquet"
    result = cli(
        "models", "predict", "clf@1", "--input", str(source), "--output", str(out),
        "--chunk-rows", "20", "--dataset", "scores", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["rows"] == 50
    assert data["model_version"] == "clf@1"
    assert data["dataset_version"] == "scores@1"
    assert data["chunks"] == 3
    dv = plinth.datasets.get("scores@1")
    assert dv.row_count == 50
    edges = project.ledger.lineage.edges_from(RecordRef("model_version", version.id))
    assert (RecordRef("dataset_version", dv.id), "produced") in {(e.dst, e.relation) for e in edges}
    human = cli("models", "predict", "clf", "--input", str(source), "--output", str(out))
    assert human.code == 0, human.err
    assert f"50 predictions of clf@1 -> {out}" in human.out


def test_cli_predict_bad_input_exits_2(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    _model(project)
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"a": [1.0]}).to_parquet(path)
    result = cli("models", "predict", "clf", "--input", str(path), "--output", "o.parquet")
    assert result.code == 2
    assert "column 'b' (double) is missing" in result.err
    missing = cli("models", "predict", "clf", "--input", "nope.parquet", "--output", "o.parquet")
    assert missing.code == 2
    assert "does not exist" in missing.err
