"""A window of batches logged with different column types (each batch's types inferred
from its own JSON, before the log took the signature's): int64 and double for one
input, null and string for input_check_failures. The monitor widens and evaluates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import plinth
from plinth.context import Context
from plinth.entities import DeploymentVersion, PredictionBatch
from plinth.errors import UsageError
from plinth.ids import new_id, now_ms
from plinth.monitoring.monitors import run_monitor
from plinth.monitoring.spec import MonitorSpec
from plinth.monitoring.window import merged_profile, read_batches
from plinth.profiles import TableProfile, profile_table
from plinth.serving.predlog import PredictionLog

pytest.importorskip("sklearn")
pytest.importorskip("skops")


@pytest.fixture
def deployment(project: Context, tmp_path: Path) -> DeploymentVersion:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(5.0, 2.0, 1000), "z": rng.normal(0.0, 1.0, 1000)})
    path = tmp_path / "train.parquet"
    frame.assign(y=(frame["x"] > 5).astype(int)).to_parquet(path)
    plinth.datasets.add(path, "train")
    with plinth.start_run() as run:
        data = plinth.datasets.load("train")
        model = LogisticRegression().fit(data[["x", "z"]], data["y"])
        run.log_model(model, name="m", input_example=data[["x", "z"]].head())
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    return project.ledger.deployments.save(
        project.project.id, "web", digest, {"name": "web", "model": "m@1"}
    )


def _log(
    ctx: Context, deployment: DeploymentVersion, seed: int, *, ints: bool, failed: bool
) -> PredictionBatch:
    """One batch written without types: x as JSON integers (int64) or floats (double),
    input_check_failures all null (type null) or with one failure (string)."""
    rng = np.random.default_rng(seed)
    log = PredictionLog(ctx, deployment)
    for i in range(300):
        x = rng.normal(5.0, 2.0)
        value = round(x) if ints else float(x)
        failure = "range(x)" if failed and i == 0 else None
        columns = {"x": [value], "z": [float(rng.normal())], "input_check_failures": [failure]}
        log.append(new_id(), now_ms(), "m@1", columns, [float(x > 5)])
    batch = log.flush()
    assert batch is not None
    return batch


def test_a_monitor_over_batches_of_mixed_types_runs_and_evaluates_drift(
    project: Context, deployment: DeploymentVersion
) -> None:
    _log(project, deployment, 1, ints=True, failed=False)
    _log(project, deployment, 2, ints=False, failed=True)
    _log(project, deployment, 3, ints=True, failed=True)
    batches = project.ledger.deployments.batches_of(project.project.id, "web")
    merged = merged_profile(project, batches)
    assert merged is not None
    assert merged.row_count == 900
    types = {c["name"]: c["type"] for c in merged.schema}
    assert (types["x"], types["input_check_failures"]) == ("double", "string")
    assert merged.columns["input_check_failures"].kind == "categorical"
    rows = read_batches(project, batches)
    assert rows.schema.field("x").type == "double"
    assert merged.columns["x"].mean == pytest.approx(profile_table(rows).columns["x"].mean)

    folder = project.settings.root / "monitoring"
    folder.mkdir()
    path = folder / "monitor.yaml"
    path.write_text("deployment: web\nwindow: {rows: 900}\n", encoding="utf-8")
    outcome = run_monitor(MonitorSpec.load(path), ctx=project)
    (check,) = outcome.checks
    assert check["check"] == "drift"
    assert check.get("status") != "error", check
    assert {c["column"] for c in check["columns"]} == {"x", "z"}
    assert outcome.report.rows == 900


def test_only_the_safe_widenings_merge() -> None:
    import pyarrow as pa

    def profile(**columns: pa.Array) -> TableProfile:
        return profile_table(pa.table(columns))

    ints = profile(a=pa.array([1, 2, 3]), b=pa.nulls(3))
    doubles = profile(a=pa.array([1.5, 2.5]), b=pa.array(["u", "v"]))
    merged = ints.merge(doubles)
    assert [(c["name"], c["type"]) for c in merged.schema] == [("a", "double"), ("b", "string")]
    assert (merged.columns["a"].count, merged.columns["b"].null_count) == (5, 3)
    assert merged.columns["a"].mean == pytest.approx(2.0)
    with pytest.raises(UsageError, match=r"different schemas: a \(double vs string\)"):
        doubles.merge(profile(a=pa.array(["x"]), b=pa.array(["w"])))
