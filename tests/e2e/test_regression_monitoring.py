"""Issue 13's acceptance test: a new user's regression model monitored end to end.

Train a price model on a versioned data set, register and serve it with a pass-through
business key, record labels by that key twice, and run a monitor with ``r2`` and ``mape``
bounds: a clean batch must not alert, a shifted one must.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import plinth
from plinth.context import Context

pytest.importorskip("sklearn")
pytest.importorskip("skops")
with warnings.catch_warnings():
    # starlette's TestClient warns once, on import, that it prefers httpx2 over httpx.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

DISTRICTS = ["north", "south", "east", "west", "centre"]
FACTOR = {"north": 1.1, "south": 0.9, "east": 1.0, "west": 0.95, "centre": 1.6}
BATCH = 600
MONITOR = """\
deployment: prices
window: {rows: 600}
checks:
  drift: {}
  performance: {key: order_id, min: {r2: 0.8}, max: {mape: 0.15}}
alerts:
  cooldown: 1h
  routes:
    - {name: ops, type: log, path: alerts.log}
"""


def homes(rng: np.random.Generator, n: int, first_id: int, shifted: bool = False) -> pd.DataFrame:
    """Homes and their prices; ``shifted``: three times larger, a new district, and a
    market where a square metre is worth far less."""
    size = rng.lognormal(np.log(70.0), 0.35, n) * (3.0 if shifted else 1.0)
    rooms = np.clip(np.round(size / 25.0) + rng.integers(-1, 2, n), 1, 12).astype(np.int64)
    district = np.array(DISTRICTS, dtype=object)[rng.choice(5, n, p=[0.25, 0.2, 0.2, 0.2, 0.15])]
    factor = np.array([FACTOR[d] for d in district])
    if shifted:
        district[rng.random(n) < 0.2] = "harbour"
        price = 600.0 * size + 2_000.0 * rooms + rng.normal(0.0, 10_000.0, n)
    else:
        price = 2_500.0 * size * factor + 8_000.0 * rooms + rng.normal(0.0, 8_000.0, n)
    return pd.DataFrame(
        {
            "order_id": [f"o-{first_id + i}" for i in range(n)],
            "size": size,
            "rooms": rooms,
            "district": district,
            "price": price,
        }
    )


def train(project: Context, folder: Path) -> None:
    """Version the training data, train in a run that loads it, register ``price@champion``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    path = folder / "homes.parquet"
    homes(np.random.default_rng(0), 4_000, first_id=0).to_parquet(path)
    plinth.datasets.add(path, "homes")
    with plinth.start_run(experiment="prices") as run:
        data = plinth.datasets.load("homes")  # recorded as an input of the run: lineage
        features = data[["size", "rooms", "district"]]
        model = Pipeline(
            [
                (
                    "encode",
                    ColumnTransformer(
                        [("district", OneHotEncoder(handle_unknown="ignore"), ["district"])],
                        remainder="passthrough",
                    ),
                ),
                ("regress", HistGradientBoostingRegressor(max_iter=150, random_state=0)),
            ]
        ).fit(features, data["price"])
        run.log_model(model, name="price", input_example=features.head())
    plinth.models.set_alias("price", "champion", 1)


def serve(project: Context, deployment: Path, batch: pd.DataFrame) -> None:
    """Serve ``price@champion`` in-process and send ``batch`` (with its order ids) in
    requests of 100 rows; closing the app flushes the prediction log."""
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    spec = DeploymentSpec.load(deployment)
    records = batch.drop(columns=["price"]).to_dict(orient="records")
    with TestClient(create_app(spec, ctx=project)) as client:
        for start in range(0, len(records), 100):
            answer = client.post(
                "/v1/predict",
                json={"records": records[start : start + 100], "return_passthrough": True},
            )
            assert answer.status_code == 200, answer.text
            echoed = [p["order_id"] for p in answer.json()["passthrough"]]
            assert echoed == [r["order_id"] for r in records[start : start + 100]]


def label(cli: Callable[..., Any], folder: Path, batch: pd.DataFrame, name: str) -> str:
    """Record the true prices of ``batch`` by ``order_id`` twice; returns the batch id."""
    path = folder / name
    batch[["order_id", "price"]].to_parquet(path)
    args = ("monitor", "labels", "prices", str(path), "--key", "order_id", "--window", "all")
    first = cli(*args, "--json")
    assert first.code == 0, first.err
    recorded = json.loads(first.out)
    assert (recorded["matched"], recorded["unmatched"]) == (len(batch), 0)
    assert recorded["task"] == "regression"
    assert recorded["already_recorded"] is False
    again = cli(*args, "--json")  # the same file again: a no-op that says so
    assert again.code == 0, again.err
    repeated = json.loads(again.out)
    assert repeated["already_recorded"] is True
    assert repeated["label_batch_id"] == recorded["label_batch_id"]
    assert "Already recorded" in cli(*args).out
    return str(recorded["label_batch_id"])


def test_a_served_regression_model_alerts_on_a_shifted_batch_and_not_on_a_clean_one(
    project: Context, project_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    train(project, tmp_path)
    folder = project_dir / "monitoring"  # a log route's path must stay inside the project
    folder.mkdir()
    deployment = folder / "deployment.yaml"
    deployment.write_text(
        "name: prices\nmodel: price@champion\npassthrough: [order_id]\n", encoding="utf-8"
    )
    monitor = folder / "monitor.yaml"
    monitor.write_text(MONITOR, encoding="utf-8")
    alerts = folder / "alerts.log"
    rng = np.random.default_rng(1)

    # -- a clean batch from the training distribution: no alert ---------------------------
    clean = homes(rng, BATCH, first_id=100_000)
    serve(project, deployment, clean)
    first_batch = label(cli, tmp_path, clean, "clean-labels.parquet")
    run = cli("monitor", "run", str(monitor), "--json")
    assert run.code == 0, run.err
    ok = json.loads(run.out)
    checks = {c["check"]: c for c in ok["checks"]}
    assert ok["status"] == "ok", checks
    assert checks["performance"]["status"] == "ok"
    assert checks["performance"]["rows"] == BATCH
    assert checks["performance"]["metrics"]["r2"] > 0.9
    assert checks["performance"]["metrics"]["mape"] < 0.1
    assert checks["performance"]["labels_superseded"] == 0  # recorded twice, counted once
    assert checks["drift"]["status"] == "ok"
    assert checks["drift"]["drifted_columns"] == []
    assert {c["column"] for c in checks["drift"]["columns"]} == {"size", "rooms", "district"}
    skipped = checks["drift"]["skipped"]
    assert "target" in skipped["price"]  # the target and the business key are not features
    assert "pass-through" in skipped["order_id"]
    assert not alerts.exists()

    # -- a shifted batch: larger homes, a new district, another market --------------------
    shifted = homes(rng, BATCH, first_id=200_000, shifted=True)
    serve(project, deployment, shifted)
    second_batch = label(cli, tmp_path, shifted, "shifted-labels.parquet")
    run = cli("monitor", "run", str(monitor), "--json", "--fail-on-alert")
    assert run.code == 1, run.err
    alerted = json.loads(run.out)
    checks = {c["check"]: c for c in alerted["checks"]}
    assert alerted["status"] == "alert", checks
    performance = checks["performance"]
    assert performance["status"] == "alert"
    assert performance["rows"] == BATCH  # only the window's labelled predictions
    assert performance["metrics"]["r2"] < 0.8
    assert performance["metrics"]["mape"] > 0.15
    assert {b.split()[0] for b in performance["breaches"]} == {"r2", "mape"}
    drift = checks["drift"]
    assert drift["status"] == "alert"
    assert "size" in drift["drifted_columns"]
    assert "price" in drift["skipped"]
    assert "order_id" in drift["skipped"]
    assert {c["column"] for c in drift["columns"]} == {"size", "rooms", "district"}
    new = drift["new_categories"]["columns"]
    assert list(new) == ["district"]
    assert list(new["district"]) == ["harbour"]
    assert 0.1 * BATCH < new["district"]["harbour"] < 0.3 * BATCH

    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    by_check = {a["check"]: a for a in lines}
    assert len(lines) == len(by_check) == 2, lines  # one line per failing check
    assert all(a["monitor"] == "prices" for a in lines)
    assert "r2" in by_check["performance"]["message"]
    assert "mape" in by_check["performance"]["message"]
    assert "size" in by_check["drift"]["message"]
    listed = cli("monitor", "labels", "list", "prices", "--json")
    assert listed.code == 0, listed.err
    assert {b["id"] for b in json.loads(listed.out)} == {first_batch, second_batch}
