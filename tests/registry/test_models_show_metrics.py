"""``plinth models show NAME`` lists versions with their key metrics, and a model card reads
suite versions as suites (issue 13, point 9)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth import datasets
from plinth.context import Context


def _log(run_metrics: dict[str, float], frame: Any) -> None:
    from sklearn.linear_model import LinearRegression

    with plinth.start_run(experiment="price") as run:
        for key, value in run_metrics.items():
            run.log_metric(key, value)
        run.log_metric("system/cpu", 12.0)
        run.log_model(LinearRegression().fit(frame[["a"]], frame["y"]), name="price")


def test_models_show_lists_each_version_with_its_runs_metrics(
    project: Context, cli: Callable[..., Any]
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 2.0, 2.5, 4.0]})
    _log({"r2": 0.81, "rmse": 0.25}, frame)
    _log({"r2": 0.9, "rmse": 0.125}, frame)
    text = cli("models", "show", "price")
    assert text.code == 0, text.err
    v2, v1 = (line for line in text.out.splitlines() if line.strip().startswith("v"))
    assert v2.strip().startswith("v2")
    assert v2.endswith("r2=0.9  rmse=0.125")
    assert v1.strip().startswith("v1")
    assert v1.endswith("r2=0.81  rmse=0.25")
    assert "system/cpu" not in text.out
    doc = json.loads(cli("models", "show", "price", "--json").out)
    assert [v["run_metrics"] for v in doc["versions"]] == [
        {"r2": 0.9, "rmse": 0.125},
        {"r2": 0.81, "rmse": 0.25},
    ]


def test_model_card_reads_a_suite_version_as_a_suite(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 2.0, 2.5, 4.0]})
    frame.to_parquet(tmp_path / "items.parquet")
    suite = tmp_path / "items.yaml"
    suite.write_text("suite: items\nchecks:\n  - {check: max_null_fraction, column: a, value: 0}\n")
    datasets.add(tmp_path / "items.parquet", "items", suite=suite)
    from sklearn.linear_model import LinearRegression

    with plinth.start_run(experiment="price") as run:
        data = datasets.load("items@1")
        run.log_model(LinearRegression().fit(data[["a"]], data["y"]), name="price")
    text = cli("models", "card", "price@1")
    assert text.code == 0, text.err
    assert "passed suite items v1 (0 errors" in text.out, text.out
    assert "items@1 (" not in text.out
