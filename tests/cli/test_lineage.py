from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.ids import new_id, now_ms
from plinth.serving.predlog import PredictionLog

pd = pytest.importorskip("pandas")
pytest.importorskip("skops")


def _logged_request(ctx: Context, folder: Path) -> tuple[str, str]:
    """A model trained on a dataset version, one logged request: (request id, run id)."""
    from sklearn.linear_model import LogisticRegression

    path = folder / "train.parquet"
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]}).to_parquet(path)
    plinth.datasets.add(path, "train")
    with plinth.start_run() as run:
        data = plinth.datasets.load("train")
        model = LogisticRegression().fit(data[["x"]], data["y"])
        run.log_model(model, name="m", input_example=data[["x"]])
    digest = ctx.blobs.put_bytes(b"name: web\n").digest
    deployment = ctx.ledger.deployments.save(ctx.project.id, "web", digest, {"model": "m@1"})
    log = PredictionLog(ctx, deployment)
    request_id = new_id()
    log.append(request_id, now_ms(), "m@1", {"x": [2.5]}, [1])
    log.close()
    return request_id, run.id


def test_lineage_prints_the_chain(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    request_id, run_id = _logged_request(project, tmp_path)
    result = cli("lineage", request_id)
    assert result.code == 0, result.err
    for text in (request_id, "web@1", "x=2.5", "prediction 1", "m@1", run_id, "train@1"):
        assert text in result.out
    assert "python" in result.out
    assert "packages" in result.out


def test_lineage_json(project: Context, tmp_path: Path, cli: Callable[..., Any]) -> None:
    request_id, run_id = _logged_request(project, tmp_path)
    result = cli("lineage", request_id, "--json")
    assert result.code == 0, result.err
    chain = json.loads(result.out)
    assert chain["prediction"]["rows"] == [{"inputs": {"x": 2.5}, "prediction": 1}]
    assert chain["model_version"]["ref"] == "m@1"
    assert chain["run"]["id"] == run_id
    assert [d["ref"] for d in chain["data"]] == ["train@1"]
    assert chain["environment"]["packages"] > 0


def test_lineage_of_an_unknown_request_exits_2(project: Context, cli: Callable[..., Any]) -> None:
    for request_id in (new_id(), "not-a-request-id"):
        result = cli("lineage", request_id)
        assert result.code == 2
        assert f"no logged prediction with request id {request_id!r}" in result.err
        assert "sampled out or not flushed yet" in result.err
    result = cli("lineage", new_id(), "--json")
    assert result.code == 2
    assert json.loads(result.out)["errors"][0]["type"] == "NotFoundError"
