from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError


def _artifact(ctx: Context, run_id: str, path: str) -> bytes:
    (artifact,) = [a for a in plinth.get_run(run_id).artifacts if a.path == path]
    return ctx.blobs.read_bytes(artifact.digest)


def test_classification_predictions_with_confusion_matrix(project: Context) -> None:
    y_true = np.array([0, 0, 1, 1, 1, 0])
    y_pred = np.array([0, 1, 1, 1, 0, 0])
    with plinth.start_run() as run:
        summary = run.log_predictions(
            y_true, y_pred, ids=[10, 11, 12, 13, 14, 15], scores=[0.1, 0.6, 0.9, 0.8, 0.4, 0.2]
        )
    assert summary["kind"] == "classification"
    assert summary["labels"] == ["0", "1"]
    assert summary["confusion_matrix"] == [[2, 1], [1, 2]]  # rows: truth, columns: prediction
    assert summary["accuracy"] == pytest.approx(4 / 6)
    table = pq.read_table(io.BytesIO(_artifact(project, run.id, "predictions/holdout.parquet")))
    assert table.column_names == ["id", "y_true", "y_pred", "score"]
    assert table.column("id").to_pylist() == [10, 11, 12, 13, 14, 15]
    stored = json.loads(_artifact(project, run.id, "predictions/holdout.summary.json"))
    assert stored == summary


def test_regression_predictions_have_error_quantiles(project: Context) -> None:
    y_true = np.arange(100, dtype=float)
    y_pred = y_true + 2.0
    with plinth.start_run() as run:
        summary = run.log_predictions(y_true, y_pred, name="valid")
    assert summary["kind"] == "regression"
    assert summary["mae"] == pytest.approx(2.0)
    assert summary["rmse"] == pytest.approx(2.0)
    assert summary["error_quantiles"]["0.5"] == pytest.approx(2.0)
    assert {a.path for a in plinth.get_run(run.id).artifacts} >= {"predictions/valid.parquet"}


def test_bad_prediction_input_is_refused(project: Context) -> None:
    with plinth.start_run() as run:
        with pytest.raises(UsageError, match="y_pred has 2"):
            run.log_predictions([1, 0, 1], [1, 0])
        with pytest.raises(UsageError, match="ids has 1"):
            run.log_predictions([1, 0], [1, 0], ids=[7])
        with pytest.raises(UsageError, match="one-dimensional"):
            run.log_predictions([[1, 0]], [[1, 0]])
    assert plinth.get_run(run.id).artifacts == []


def test_weights_of_a_linear_model(project: Context) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with plinth.start_run() as run:
        summary = run.log_weights(model, stage="final")
    assert summary["parameters"]["coef"]["shape"] == [1, 3]
    assert summary["parameters"]["coef"]["max"] == pytest.approx(float(model.coef_.max()))
    arrays = np.load(
        io.BytesIO(_artifact(project, run.id, "weights/final.npz")), allow_pickle=False
    )
    np.testing.assert_array_equal(arrays["coef"], model.coef_)


def test_weights_of_a_tree_ensemble_and_of_nothing(project: Context) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(
        [[0, 1], [1, 0], [1, 1], [0, 0]], [0, 1, 1, 0]
    )
    with plinth.start_run() as run:
        summary = run.log_weights(model, stage="initial")
        assert summary["parameters"]["feature_importances"]["count"] == 2
        with pytest.raises(UsageError, match="found no weights"):
            run.log_weights(object())
        with pytest.raises(UsageError, match="stage"):
            run.log_weights(model, stage="middle")
