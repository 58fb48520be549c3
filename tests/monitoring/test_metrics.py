"""The metrics a scikit-learn or Evidently user expects (issue 13, problem 4), checked against
scikit-learn on random data, and usable as bounds in ``plinth monitor labels``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.errors import UsageError
from plinth.ids import new_id
from plinth.monitoring.metrics import (
    REGRESSION_METRICS,
    calibration_bins,
    check_metric,
    classification_metrics,
    infer_task,
    regression_metrics,
)
from plinth.monitoring.spec import MonitorSpec
from plinth.serving.predlog import PredictionLog

metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")

EXACT = 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_has_r2_mape_smape_and_quantile_errors_matching_scikit_learn(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    y = rng.lognormal(6.5, 0.7, 800)  # prices: hundreds to thousands
    pred = y * rng.normal(1.0, 0.15, 800) + rng.normal(0, 30, 800)
    got = regression_metrics(y, pred)
    assert set(got) == set(REGRESSION_METRICS)
    expected = {
        "r2": metrics.r2_score(y, pred),
        "mae": metrics.mean_absolute_error(y, pred),
        "mse": metrics.mean_squared_error(y, pred),
        "rmse": math.sqrt(metrics.mean_squared_error(y, pred)),
        "mape": metrics.mean_absolute_percentage_error(y, pred),
        "median_abs_error": metrics.median_absolute_error(y, pred),
        "max_abs_error": metrics.max_error(y, pred),
        "pinball_q10": metrics.mean_pinball_loss(y, pred, alpha=0.1),
        "pinball_q90": metrics.mean_pinball_loss(y, pred, alpha=0.9),
        "bias": float(np.mean(pred - y)),
        "smape": float(np.mean(2 * np.abs(pred - y) / (np.abs(y) + np.abs(pred)))),
        "q90_abs_error": float(np.percentile(np.abs(pred - y), 90)),
        "q95_abs_error": float(np.percentile(np.abs(pred - y), 95)),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=EXACT, abs=EXACT), name


def test_r2_over_constant_labels_is_undefined_and_smape_of_zero_over_zero_is_zero() -> None:
    got = regression_metrics([5.0, 5.0, 5.0], [4.0, 5.0, 6.0])
    assert got["r2"] is None
    assert regression_metrics([0.0, 2.0], [0.0, 2.0])["smape"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_classification_has_pr_auc_brier_and_calibration_matching_scikit_learn(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(2, 3, 1000), 2)  # ties, and values on the bin edges
    y = (rng.uniform(size=1000) < p).astype(int)
    got = classification_metrics(y, p, threshold=0.4)
    hard = p >= 0.4
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, hard), abs=EXACT)
    assert got["precision"] == pytest.approx(metrics.precision_score(y, hard), abs=EXACT)
    assert got["recall"] == pytest.approx(metrics.recall_score(y, hard), abs=EXACT)
    assert got["f1"] == pytest.approx(metrics.f1_score(y, hard), abs=EXACT)
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=EXACT)
    assert got["pr_auc"] == pytest.approx(metrics.average_precision_score(y, p), abs=EXACT)
    assert got["brier"] == pytest.approx(metrics.brier_score_loss(y, p), abs=EXACT)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, p), abs=EXACT)

    observed, predicted = calibration.calibration_curve(y, p, n_bins=10, strategy="uniform")
    bins = calibration_bins(y, p)
    assert [b["observed"] for b in bins] == pytest.approx(observed, abs=EXACT)
    assert [b["mean_predicted"] for b in bins] == pytest.approx(predicted, abs=EXACT)
    assert sum(b["rows"] for b in bins) == 1000
    ece = sum(b["rows"] * abs(b["observed"] - b["mean_predicted"]) for b in bins) / 1000
    assert got["ece"] == pytest.approx(ece, abs=EXACT)


def test_a_miscalibrated_model_has_a_larger_ece_and_brier() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(size=4000)
    y = (rng.uniform(size=4000) < p).astype(int)
    honest = classification_metrics(y, p)
    overconfident = classification_metrics(y, np.clip(p * 1.6 - 0.3, 0, 1))
    assert (honest["ece"] or 1) < 0.05 < (overconfident["ece"] or 0)
    assert (honest["brier"] or 1) < (overconfident["brier"] or 0)


def test_multi_class_has_macro_micro_and_per_class_metrics_matching_scikit_learn() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 4, 700)
    probs = rng.dirichlet(np.ones(4), 700)
    probs[np.arange(700), y] += 0.6
    probs /= probs.sum(axis=1, keepdims=True)
    got = classification_metrics(y, probs)
    pred = probs.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=EXACT)
    for avg in ("macro", "micro"):
        for name, fn in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            assert got[f"{name}_{avg}"] == pytest.approx(fn(y, pred, average=avg), abs=EXACT)
    per_class = metrics.f1_score(y, pred, average=None)
    assert [got[f"f1:{c}"] for c in range(4)] == pytest.approx(per_class, abs=EXACT)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, probs), abs=EXACT)
    # hard class predictions get the same, without the log loss
    hard = classification_metrics(y, pred)
    assert hard["f1_macro"] == pytest.approx(got["f1_macro"], abs=EXACT)
    assert "log_loss" not in hard


def test_an_unknown_metric_gets_a_did_you_mean_and_the_list() -> None:
    with pytest.raises(UsageError, match=r"unknown regression metric 'r_2' — did you mean 'r2'"):
        check_metric("r_2", task="regression", field="max")
    with pytest.raises(UsageError) as info:
        check_metric("roc-auc", task="classification", field="min")
    assert "did you mean 'roc_auc'" in info.value.message
    assert "pr_auc" in (info.value.hint or "")
    assert info.value.field == "min"
    assert check_metric("f1:cat", task="classification") == "f1:cat"
    with pytest.raises(UsageError):
        check_metric("f1:cat", task="regression")


def test_a_monitor_file_with_a_misspelt_metric_is_refused_with_a_suggestion() -> None:
    text = "deployment: shop\nchecks: {performance: {task: regression, max: {mapee: 0.2}}}\n"
    with pytest.raises(UsageError, match="did you mean 'mape'"):
        MonitorSpec.from_yaml(text, "shop.yaml")
    good = "deployment: shop\nchecks: {performance: {threshold: 0.3, min: {r2: 0.8, f1: 0.6}}}\n"
    assert MonitorSpec.from_yaml(good, "shop.yaml").checks["performance"]["threshold"] == 0.3


# -- bounds on a served regression model, through the CLI ---------------------------------
def _regression_log(project: Context, tmp_path: Path, *, noise: float) -> Path:
    """Deployment ``shop`` with 200 logged price predictions, and their labels file."""
    digest = project.blobs.put_bytes(b"name: shop\nmodel: price@1\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "shop", digest, {"model": "price@1"}
    )
    rng = np.random.default_rng(4)
    price = rng.uniform(200, 3000, 200)
    predicted = price * (1 + rng.normal(0, noise, 200))
    log = PredictionLog(project, deployment)
    ids = [new_id() for _ in range(200)]
    for i, rid in enumerate(ids):
        log.append(rid, 1_700_000_000_000 + i, "price@1", {"rooms": [3]}, [float(predicted[i])])
    log.close()
    path = tmp_path / "prices.parquet"
    pq.write_table(pa.table({"request_id": ids, "price": price}), path)
    return path


@pytest.mark.parametrize(("noise", "code"), [(0.05, 0), (0.5, 1)])
def test_regression_bounds_on_r2_and_mape_are_checked_by_monitor_labels(
    project: Context, tmp_path: Path, cli: Callable[..., Any], noise: float, code: int
) -> None:
    path = _regression_log(project, tmp_path, noise=noise)
    args = ("--window", "all", "--max", "mape=0.2", "--min", "r2=0.8", "--json")
    result = cli("monitor", "labels", "shop", str(path), *args)
    assert result.code == code, result.err
    out = json.loads(result.out)
    [window] = out["windows"]
    assert {"r2", "mape", "smape", "q90_abs_error"} <= set(window["metrics"])
    crossed = {b["metric"] for b in out["breaches"]}
    assert crossed == (set() if code == 0 else {"r2", "mape"})


def test_a_misspelt_bound_in_monitor_labels_exits_2_naming_the_metric(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = _regression_log(project, tmp_path, noise=0.05)
    result = cli("monitor", "labels", "shop", str(path), "--min", "r^2=0.8")
    assert result.code == 2
    assert "unknown regression metric 'r^2'" in result.err
    assert "mape" in result.err  # the list of names
    assert project.ledger.monitoring.label_batches(project.project.id) == []


def test_multiclass_labels_are_read_as_classes_not_as_a_regression() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    predicted = np.where(rng.random(200) < 0.8, y, (y + 1) % 3)
    assert infer_task(y, predicted) == "classification"
    # a regression on whole-number targets with fractional predictions stays a regression
    assert infer_task(y, predicted + 0.25) == "regression"
    assert infer_task(rng.normal(size=50), rng.normal(size=50)) == "regression"


def test_a_classification_metric_under_a_regression_task_says_to_pass_the_task() -> None:
    with pytest.raises(UsageError) as caught:
        check_metric("f1_macro", task="regression")
    assert "--task classification" in caught.value.hint
