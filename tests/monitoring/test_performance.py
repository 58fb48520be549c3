from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.entities import DeploymentVersion
from plinth.errors import NotFoundError, UsageError
from plinth.ids import new_id
from plinth.monitoring.performance import (
    classification_metrics,
    infer_task,
    join_labels,
    performance_windows,
    record_labels,
    regression_metrics,
)
from plinth.serving.predlog import PredictionLog

metrics = pytest.importorskip("sklearn.metrics")

DAY = 86_400_000
DAY0 = 19_676 * DAY  # 2023-11-15 00:00 UTC


# -- metrics against scikit-learn --------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_scikit_learn_on_scores_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    # Scores rounded to one decimal: many ties, inside and across the classes.
    p = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0.0, 1.0), 1)
    p[:5] = [0.0, 1.0, 0.5, 0.5, 0.5]  # the clip and the threshold itself
    got = classification_metrics(y, p, threshold=0.5)
    hard = (p >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, hard))
    assert got["precision"] == pytest.approx(metrics.precision_score(y, hard))
    assert got["recall"] == pytest.approx(metrics.recall_score(y, hard))
    assert got["f1"] == pytest.approx(metrics.f1_score(y, hard))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, clipped), rel=1e-9)


def test_log_loss_and_threshold_on_unrounded_probabilities() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.99, 300)
    y = (rng.uniform(size=300) < p).astype(bool)  # booleans are labels too
    got = classification_metrics(y, p, threshold=0.3)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, p), rel=1e-9)
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)
    assert got["recall"] == pytest.approx(metrics.recall_score(y, p >= 0.3))


def test_hard_predictions_get_no_roc_auc_nor_log_loss() -> None:
    y = [0, 1, 1, 0, 1, 1]
    pred = [0, 1, 0, 1, 1, 1]
    got = classification_metrics(y, pred)
    assert set(got) == {"accuracy", "precision", "recall", "f1"}
    assert got["precision"] == pytest.approx(metrics.precision_score(y, pred))
    assert got["f1"] == pytest.approx(metrics.f1_score(y, pred))


def test_undefined_metrics_are_none() -> None:
    got = classification_metrics([1, 1, 1], [0.2, 0.3, 0.1])
    assert got["roc_auc"] is None  # one class only
    assert got["precision"] is None  # nothing predicted positive
    assert got["recall"] == 0.0
    assert got["accuracy"] == 0.0
    assert math.isfinite(got["log_loss"] or math.nan)


def test_scores_outside_zero_one_get_roc_auc_but_no_log_loss() -> None:
    got = classification_metrics([0, 1, 0, 1], [-2.0, 3.0, 0.1, 0.2], threshold=0.0)
    assert got["roc_auc"] == pytest.approx(1.0)
    assert "log_loss" not in got
    assert got["accuracy"] == 0.75  # 0.1 >= 0.0 is class 1


def test_multi_class_gets_averaged_and_per_class_metrics_and_scores_are_refused() -> None:
    got = classification_metrics([0, 1, 2, 2], [0, 1, 2, 1])
    assert got["accuracy"] == 0.75
    assert got["recall:2"] == 0.5
    assert got["precision:1"] == 0.5
    assert "roc_auc" not in got
    with pytest.raises(UsageError, match="other than 0 and 1"):
        classification_metrics([0, 1, 2], [0.1, 0.5, 0.9])


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, 400)
    pred = y + rng.normal(0.5, 2, 400)
    got = regression_metrics(y, pred)
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(math.sqrt(metrics.mean_squared_error(y, pred)))
    assert got["bias"] == pytest.approx(float(np.mean(pred - y)))
    assert got["bias"] > 0


def test_bad_metric_inputs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="2 labels for 3 predictions"):
        regression_metrics([1, 2], [1, 2, 3])
    with pytest.raises(UsageError, match="no rows"):
        classification_metrics([], [])
    with pytest.raises(UsageError, match="missing or infinite value at row 1"):
        regression_metrics([1.0, float("nan")], [1.0, 2.0])


def test_infer_task() -> None:
    assert infer_task([0, 1, 1], [0.2, 0.7, 0.9]) == "classification"
    assert infer_task([True, False], [1, 0]) == "classification"
    assert infer_task([3.5, 1.0], [3.0, 1.2]) == "regression"
    assert infer_task([0, 1], [12.0, -3.0]) == "regression"  # scores, not probabilities
    assert infer_task([3.5, 1.0], [0, 1], task="classification") == "classification"
    with pytest.raises(UsageError, match="task must be one of"):
        infer_task([0], [0], task="ranking")


# -- windows ------------------------------------------------------------------------------
def _joined(ts: list[int], label: list[float], prediction: list[float]) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "ts": pa.array(ts, pa.timestamp("ms")),
            "model_version": ["m@1"] * (n - 1) + ["m@2"],
            "prediction": pa.array(prediction, pa.float64()),
            "label": pa.array(label, pa.float64()),
        }
    )


def test_windows_by_duration_rows_and_all() -> None:
    # Days 0, 0, 0, 2, 2, 3 (day 1 is empty), given out of order.
    ts = [DAY0 + 5, DAY0 + 2 * DAY + 1, DAY0 + 1, DAY0 + 3 * DAY, DAY0 + 7, DAY0 + 2 * DAY + 9]
    label = [1.0, 0.0, 0.0, 4.0, 2.0, 1.0]
    pred = [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]
    joined = _joined(ts, label, pred)
    days = performance_windows(joined, window="1d")
    assert [(w["start_ms"], w["end_ms"], w["rows"]) for w in days] == [
        (DAY0, DAY0 + DAY, 3),
        (DAY0 + 2 * DAY, DAY0 + 3 * DAY, 2),
        (DAY0 + 3 * DAY, DAY0 + 4 * DAY, 1),
    ]
    # Day 0 holds (label, prediction) (0, 0), (1, 2), (2, 2): errors 0, 1, 0.
    got = {k: days[0]["metrics"][k] for k in ("mae", "rmse", "bias", "r2")}
    assert got == pytest.approx({"mae": 1 / 3, "rmse": math.sqrt(1 / 3), "bias": 1 / 3, "r2": 0.5})
    assert days[2]["metrics"]["bias"] == -3.0
    assert days[0]["model_versions"] == ["m@1"]
    assert days[2]["model_versions"] == ["m@1"]
    assert "m@2" in days[1]["model_versions"]  # the last row given is at DAY0 + 2d + 9

    rows = performance_windows(joined, window="rows:4")
    assert [(w["start_ms"], w["end_ms"], w["rows"]) for w in rows] == [
        (DAY0 + 1, DAY0 + 2 * DAY + 1, 4),
        (DAY0 + 2 * DAY + 9, DAY0 + 3 * DAY, 2),
    ]
    whole = performance_windows(joined, window="all")
    assert len(whole) == 1
    assert whole[0]["rows"] == 6
    assert whole[0]["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(label, pred))
    hours = performance_windows(joined, window="12h")
    assert [w["rows"] for w in hours] == [3, 2, 1]


def test_windows_infer_the_task_once_over_every_row() -> None:
    ts = [DAY0, DAY0 + 1, DAY0 + DAY]
    joined = _joined(ts, [1.0, 0.0, 1.0], [0.9, 0.2, 0.6])
    days = performance_windows(joined, window="1d")
    assert days[1]["metrics"]["roc_auc"] is None  # one class in that day
    assert days[0]["metrics"]["roc_auc"] == 1.0
    assert performance_windows(joined.slice(0, 0), window="1d") == []


@pytest.mark.parametrize("window", ["", "0d", "1y", "rows:0", "rows:x", "daily"])
def test_a_bad_window_is_a_usage_error(window: str) -> None:
    with pytest.raises(UsageError, match="is not understood") as info:
        performance_windows(_joined([DAY0], [1.0], [1.0]), window=window)
    assert info.value.field == "window"


# -- end to end: the prediction log, a labels file, the CLI and the ledger ---------------
@dataclass
class Logged:
    ctx: Context
    deployment: DeploymentVersion
    ids: list[str]
    ts: list[int]
    prediction: np.ndarray
    label: np.ndarray
    flight: list[int]


@pytest.fixture
def logged(project: Context) -> Logged:
    """Deployment ``web`` with 60 logged one-row requests over three days (20 a day);
    labels drawn so the model is good on days 0 and 1 and inverted on day 2."""
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "web", digest, {"model": "m@1"}
    )
    rng = np.random.default_rng(11)
    n = 60
    prediction = np.round(rng.uniform(0.05, 0.95, n), 2)
    label = (prediction >= 0.5).astype(int)
    label[40:] = 1 - label[40:]
    ts = [DAY0 + (i // 20) * DAY + i * 1000 for i in range(n)]
    ids: list[str] = []
    flight = list(range(1000, 1000 + n))
    log = PredictionLog(project, deployment)
    for i in range(n):
        rid = new_id()
        ids.append(rid)
        log.append(rid, ts[i], "m@1", {"flight_id": [flight[i]]}, [float(prediction[i])])
        if i == 29:
            assert log.flush() is not None  # two batches
    log.close()
    return Logged(project, deployment, ids, ts, prediction, label, flight)


def _labels_file(path: Path, logged: Logged, rows: list[int], *, unknown: int = 0) -> Path:
    table = pa.table(
        {
            "request_id": [logged.ids[i] for i in rows] + [new_id() for _ in range(unknown)],
            "label": [int(logged.label[i]) for i in rows] + [1] * unknown,
        }
    )
    pq.write_table(table, path)
    return path


def test_labels_join_logged_predictions_and_are_scored_per_day(
    logged: Logged, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    rows = list(range(0, 60, 2))  # every other request has its label
    path = _labels_file(tmp_path / "labels.parquet", logged, rows, unknown=4)
    result = cli("monitor", "labels", "web", str(path), "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert (out["rows"], out["matched"], out["unmatched"]) == (34, 30, 4)
    assert (out["status"], out["task"], out["key"], out["label_column"]) == (
        "ok",
        "classification",
        "request_id",
        "label",
    )
    assert [(w["start_ms"], w["rows"]) for w in out["windows"]] == [
        (DAY0, 10),
        (DAY0 + DAY, 10),
        (DAY0 + 2 * DAY, 10),
    ]
    for day, w in enumerate(out["windows"]):
        picked = [i for i in rows if day * 20 <= i < day * 20 + 20]
        y, p = logged.label[picked], logged.prediction[picked]
        assert w["metrics"]["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p))
        assert w["metrics"]["log_loss"] == pytest.approx(metrics.log_loss(y, p))
        assert w["metrics"]["accuracy"] == pytest.approx(metrics.accuracy_score(y, p >= 0.5))
    assert out["windows"][0]["metrics"]["accuracy"] == 1.0
    assert out["windows"][2]["metrics"]["accuracy"] == 0.0

    ctx = logged.ctx
    (report,) = ctx.ledger.monitoring.reports(ctx.project.id, kind="performance")
    assert report.id == out["report_id"]
    assert (report.monitor, report.status, report.rows) == ("web", "ok", 30)
    assert report.deployment_id == logged.deployment.id
    assert (report.window_start_ms, report.window_end_ms) == (DAY0, DAY0 + 3 * DAY)
    assert report.results["windows"] == out["windows"]
    (batch,) = ctx.ledger.monitoring.label_batches(ctx.project.id, "web")
    assert (batch.id, batch.key, batch.rows, batch.matched) == (
        out["label_batch_id"],
        "request_id",
        34,
        30,
    )
    stored = pq.read_table(pa.BufferReader(ctx.blobs.read_bytes(batch.digest)))
    assert stored.equals(pq.read_table(path))

    human = cli("monitor", "labels", "web", str(path), "--window", "all")
    assert human.code == 0, human.err
    assert "roc_auc" in human.out
    assert "30 of 34 labels matched" in human.out


def test_a_crossed_bound_alerts_and_exits_1(
    logged: Logged, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = _labels_file(tmp_path / "labels.parquet", logged, list(range(60)))
    args = ("monitor", "labels", "web", str(path), "--min", "roc_auc=0.7", "--max", "log_loss=5")
    result = cli(*args, "--json")
    assert result.code == 1
    out = json.loads(result.out)
    assert out["status"] == "alert"
    assert [(b["start_ms"], b["metric"], b["bound"]) for b in out["breaches"]] == [
        (DAY0 + 2 * DAY, "roc_auc", "min")
    ]
    assert out["breaches"][0]["value"] < 0.7
    ctx = logged.ctx
    (report,) = ctx.ledger.monitoring.reports(ctx.project.id, kind="performance")
    assert report.status == "alert"
    assert report.spec is not None
    assert report.spec["min"] == {"roc_auc": 0.7}
    assert report.results["breaches"] == out["breaches"]

    human = cli(*args)
    assert human.code == 1
    assert "1 bound crossed in 1 of 3 windows of web" in human.err
    assert cli("monitor", "labels", "web", str(path), "--max", "log_loss=5").code == 0


def test_labels_join_on_an_input_column_from_csv(
    logged: Logged, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "truth.csv"
    picked = list(range(20, 40))
    lines = ["flight_id,delayed"] + [f"{logged.flight[i]},{logged.label[i]}" for i in picked]
    path.write_text("\n".join(lines) + "\n")
    result = cli(
        "monitor", "labels", "web", str(path), "--key", "flight_id", "--window", "rows:8", "--json"
    )
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert (out["matched"], out["label_column"]) == (20, "delayed")
    assert [w["rows"] for w in out["windows"]] == [8, 8, 4]
    assert out["windows"][0]["start_ms"] == logged.ts[20]


def test_join_labels_keeps_the_time_range_and_takes_frames(logged: Logged, tmp_path: Path) -> None:
    labels = pa.table({"request_id": logged.ids, "label": logged.label})
    joined = join_labels("web", labels, since_ms=DAY0 + 2 * DAY, ctx=logged.ctx)
    assert joined.column_names == ["request_id", "ts", "model_version", "prediction", "label"]
    assert joined.column("request_id").to_pylist() == logged.ids[40:]
    assert joined.column("prediction").to_pylist() == pytest.approx(logged.prediction[40:])
    everything = join_labels("web", labels.to_pandas(), ctx=logged.ctx)
    assert everything.num_rows == 60
    with pytest.raises(NotFoundError, match="no deployment 'nope'"):
        join_labels("nope", labels, ctx=logged.ctx)


def test_several_rows_per_request_are_refused_with_their_ids(project: Context) -> None:
    digest = project.blobs.put_bytes(b"name: multi\n").digest
    deployment = project.ledger.deployments.save(project.project.id, "multi", digest, {})
    log = PredictionLog(project, deployment)
    rid = new_id()
    log.append(rid, DAY0, "m@1", {"x": [1.0, 2.0]}, [0.1, 0.9])
    log.close()
    with pytest.raises(UsageError, match=f"several rows for request_id {rid}") as info:
        join_labels("multi", pa.table({"request_id": [rid], "label": [1]}), ctx=project)
    assert "--key" in info.value.hint


@pytest.mark.parametrize(
    ("table", "extra", "message"),
    [
        ({"id": ["a"], "label": [1]}, (), "has no key column 'request_id'; its columns: id, label"),
        ({"request_id": ["a"], "y": [1]}, ("--label-column", "label"), "no label column 'label'"),
        ({"request_id": ["a"], "y": [1], "z": [0]}, (), "which column of .* holds the labels"),
        ({"request_id": ["a"], "label": ["yes"]}, (), "label column 'label' of .* must hold"),
        # A key labelled twice is no longer an error (the latest label wins): see
        # tests/monitoring/test_labels_idempotent.py.
        ({"request_id": ["a"], "label": [1]}, ("--label-column", "request_id"), "^error: the la"),
        ({"request_id": ["a"], "label": [1]}, ("--window", "monthly"), "^error: window 'monthly'"),
        ({"request_id": ["a"], "label": [1]}, ("--min", "roc_auc"), "^error: --min 'roc_auc' is"),
    ],
)
def test_bad_labels_exit_2_naming_the_column(
    logged: Logged,
    tmp_path: Path,
    cli: Callable[..., Any],
    table: dict[str, list[Any]],
    extra: tuple[str, ...],
    message: str,
) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table(table), path)
    result = cli("monitor", "labels", "web", str(path), *extra)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert re.search(message, result.err), result.err
    if not message.startswith("^"):
        assert str(path) in result.err  # the file is named
    ctx = logged.ctx
    assert ctx.ledger.monitoring.label_batches(ctx.project.id) == []  # nothing half-written


def test_zero_matches_unknown_metrics_and_hard_predictions_exit_2(
    logged: Logged, project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    stranger = _labels_file(tmp_path / "stranger.parquet", logged, [], unknown=3)
    result = cli("monitor", "labels", "web", str(stranger), "--json")
    assert result.code == 2
    assert "none of the 3 labels" in result.err
    assert "flushed" in result.err
    assert json.loads(result.out)["errors"][0]["field"] == "key"

    path = _labels_file(tmp_path / "labels.parquet", logged, [1, 2, 3])
    unknown = cli("monitor", "labels", "web", str(path), "--max", "rmse=3")
    assert unknown.code == 2
    assert "unknown classification metric 'rmse'" in unknown.err
    assert cli("monitor", "labels", "nope", str(path)).code == 2

    digest = project.blobs.put_bytes(b"name: hard\n").digest
    deployment = project.ledger.deployments.save(project.project.id, "hard", digest, {})
    log = PredictionLog(project, deployment)
    ids = [new_id() for _ in range(4)]
    for i, rid in enumerate(ids):
        log.append(rid, DAY0 + i, "m@1", {"x": [float(i)]}, [i % 2])
    log.close()
    hard = tmp_path / "hard.parquet"
    pq.write_table(pa.table({"request_id": ids, "label": [0, 1, 1, 1]}), hard)
    result = cli("monitor", "labels", "hard", str(hard), "--min", "roc_auc=0.5")
    assert result.code == 2
    assert "roc_auc is not computed" in result.err
    ok = cli("monitor", "labels", "hard", str(hard), "--min", "accuracy=0.5", "--json")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["windows"][0]["metrics"]["accuracy"] == 0.75
    assert len(project.ledger.monitoring.label_batches(project.project.id)) == 1


def test_record_labels_in_python_on_a_regression_frame(project: Context) -> None:
    pd = pytest.importorskip("pandas")
    digest = project.blobs.put_bytes(b"name: eta\n").digest
    deployment = project.ledger.deployments.save(project.project.id, "eta", digest, {})
    log = PredictionLog(project, deployment)
    ids = [new_id() for _ in range(6)]
    for i, rid in enumerate(ids):
        log.append(rid, DAY0 + i * 3_600_000, "eta@1", {"km": [float(i)]}, [10.0 + i])
    log.close()
    frame = pd.DataFrame({"request_id": ids, "minutes": [10.0, 12.0, 12.0, 13.0, 30.0, 15.0]})
    result = record_labels("eta", frame, window="3h", max_metrics={"mae": 2.0}, ctx=project)
    assert (result.task, result.matched, result.status) == ("regression", 6, "alert")
    assert [w["rows"] for w in result.windows] == [3, 3]
    assert result.windows[0]["metrics"]["mae"] == pytest.approx(1 / 3)
    assert [b["metric"] for b in result.breaches] == ["mae"]
    assert result.breaches[0]["value"] == pytest.approx(16 / 3)
    assert result.to_dict()["unmatched"] == 0
