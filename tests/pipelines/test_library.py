"""Library steps in one pipeline: add a dataset version -> validate -> train -> alias, with
the records each makes and a failing suite stopping the run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from plinth.context import Context
from plinth.entities import RecordRef
from plinth.pipelines import run_pipeline

FLOW = """
from pathlib import Path

import plinth
from plinth.pipelines import library as lib


@plinth.pipeline
def retrain(path: Path, suite: Path):
    version = lib.add_dataset_version(path, "points")
    checked = lib.validate_dataset(
        version, suite, routes=[{"name": "ops", "type": "log", "path": "alerts.log"}]
    )
    model = lib.train_and_log(checked, target="y", model="points")
    lib.move_alias(model, "challenger")
    lib.evaluate(model, checked, target="y")
"""


@pytest.fixture
def scene(project: Context, project_dir: Path, write_flow: Callable[[str, str], str]) -> Path:
    pytest.importorskip("sklearn")
    frame = pd.DataFrame({"x": [float(i) for i in range(30)]})
    frame["y"] = frame["x"] * 2.0 + 1.0
    frame.to_parquet(project_dir / "points.parquet")
    (project_dir / "suite.yaml").write_text(
        "suite: points\nchecks:\n  - {check: row_count, min: 10}\n"
        "  - {check: required_columns, columns: [x, y]}\n"
    )
    write_flow("retrain.py", FLOW)
    return project_dir


def test_add_validate_train_register_alias(project: Context, scene: Path) -> None:
    result = run_pipeline("retrain.py:retrain", {"path": "points.parquet", "suite": "suite.yaml"})
    assert result.ok, result.error
    version = result.value("add_dataset_version")
    assert (version.dataset, version.number) == ("points", 1)
    model = result.value("move_alias")
    assert model.model == "points"
    assert "challenger" in model.aliases
    assert result.value("evaluate")["r2"] > 0.99
    train = result.steps["train_and_log"]
    assert train.run_id is not None  # the run opened inside the step is on the step run
    edges = project.ledger.lineage.edges_from(RecordRef("step_run", train.step_run.id))  # type: ignore[union-attr]
    assert {(e.relation, e.dst.type) for e in edges} >= {
        ("ran", "run"), ("produced", "model_version"), ("used", "step_run"),
    }  # fmt: skip
    assert result.steps["add_dataset_version"].outputs[0]["kind"] == "dataset_version"
    # nothing changed: the whole loop is a cache hit, the model is not retrained
    again = run_pipeline("retrain.py:retrain", {"path": "points.parquet", "suite": "suite.yaml"})
    assert again.ok
    assert all(s.cache_hit for s in again.steps.values())


def test_a_failing_suite_stops_the_run(project: Context, scene: Path) -> None:
    (scene / "suite.yaml").write_text("suite: points\nchecks:\n  - {check: row_count, min: 1000}\n")
    result = run_pipeline("retrain.py:retrain", {"path": "points.parquet", "suite": "suite.yaml"})
    assert result.status == "failed"
    assert result.steps["validate_dataset"].status == "failed"
    assert "validation gate" in (result.steps["validate_dataset"].error or "")
    assert result.steps["validate_dataset"].attempts == 1
    assert result.steps["train_and_log"].status == "skipped"
    assert result.steps["train_and_log"].run_id is None
    # the gate decided, on this pipeline run, with the failing check as evidence
    [decision] = project.ledger.pipelines.decisions(project.project.id, pipeline_run_id=result.id)
    assert (decision.kind, decision.subject, decision.outcome) == ("gate", "points@1", "failed")
    assert decision.evidence["failures"][0]["check"] == "row_count"
    # and its alert reached the route
    [line] = (scene / "alerts.log").read_text().splitlines()
    alert = json.loads(line)
    assert alert["details"]["decision_id"] == decision.id
    assert alert["severity"] == "critical"
