from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import plinth
from plinth.context import Context
from plinth.entities import DeploymentVersion, ModelVersion, RecordRef
from plinth.errors import BlobStoreError, NotFoundError
from plinth.ids import new_id, now_ms
from plinth.serving.predlog import PredictionLog, find_prediction, lineage_of_request

pd = pytest.importorskip("pandas")
pytest.importorskip("skops")


@dataclass
class Scene:
    ctx: Context
    version: ModelVersion
    deployment: DeploymentVersion
    dataset_version_id: str
    run_id: str


@pytest.fixture
def scene(project: Context, tmp_path: Any) -> Scene:
    """A dataset version, a run that used it and logged a model, a saved deployment."""
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "z": [1.0, 0.0, 1.0, 0.0]})
    path = tmp_path / "train.parquet"
    frame.assign(y=[0, 0, 1, 1]).to_parquet(path)
    added = plinth.datasets.add(path, "train")
    with plinth.start_run() as run:
        data = plinth.datasets.load("train")
        model = LogisticRegression().fit(data[["x", "z"]], data["y"])
        version = run.log_model(model, name="m", input_example=frame)
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "web", digest, {"model": "m@1"}
    )
    return Scene(project, version, deployment, added.version.id, run.id)


def _append(log: PredictionLog, n: int = 1, x: float = 1.0) -> list[str]:
    ids = []
    for i in range(n):
        rid = new_id()
        log.append(rid, now_ms(), "m@1", {"x": [x + i], "z": [0.0]}, np.array([i % 2]))
        ids.append(rid)
    return ids


def _table(ctx: Context, digest: str) -> Any:
    return pq.read_table(io.BytesIO(ctx.blobs.read_bytes(digest)))


def test_appended_rows_are_written_as_a_sorted_parquet_batch_with_a_record(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment)
    ids = _append(log, 3)
    log.append(new_id(), now_ms(), "m@1", {"x": [7.0, 8.0], "z": [1.0, 1.0]}, [1, 0])
    batch = log.flush()
    assert batch is not None
    assert (log.rows_logged, log.batches_written, log.rows_dropped) == (5, 1, 0)
    recorded = scene.ctx.ledger.deployments.batches(scene.deployment.id)
    assert [b.id for b in recorded] == [batch.id]
    assert batch.rows == 5
    assert batch.model_versions == ("m@1",)
    assert batch.first_request_id == ids[0]
    table = _table(scene.ctx, batch.digest)
    assert table.column_names == ["request_id", "ts", "model_version", "x", "z", "prediction"]
    assert str(table.schema.field("ts").type) == "timestamp[ms]"
    request_ids = table.column("request_id").to_pylist()
    assert request_ids == sorted(request_ids)
    assert batch.last_request_id == request_ids[-1]
    assert table.column("x").to_pylist()[:3] == [1.0, 2.0, 3.0]
    assert log.flush() is None  # nothing new: no empty batch
    assert len(scene.ctx.ledger.deployments.batches(scene.deployment.id)) == 1


def test_sampling_zero_logs_nothing_and_half_logs_about_half(scene: Scene) -> None:
    none = PredictionLog(scene.ctx, scene.deployment, sample=0.0)
    _append(none, 50)
    assert none.flush() is None
    assert none.rows_logged == 0
    half = PredictionLog(scene.ctx, scene.deployment, sample=0.5, seed=7)
    _append(half, 400)
    half.flush()
    assert 140 < half.rows_logged < 260
    again = PredictionLog(scene.ctx, scene.deployment, sample=0.5, seed=7)
    _append(again, 400)
    assert again.rows_buffered == half.rows_logged  # the same seed keeps the same requests


def test_past_the_bound_requests_are_dropped_and_counted_never_waited_for(
    scene: Scene,
) -> None:
    log = PredictionLog(scene.ctx, scene.deployment, max_buffered_rows=10)
    # no writer thread runs: append must return at once and drop past the bound
    done = threading.Event()

    def fill() -> None:
        _append(log, 25)
        done.set()

    thread = threading.Thread(target=fill)
    thread.start()
    thread.join(60)
    assert done.is_set()
    assert (log.rows_buffered, log.rows_dropped) == (10, 15)
    batch = log.flush()
    assert batch is not None
    assert (batch.rows, batch.dropped) == (10, 15)
    _append(log, 2)
    second = log.flush()
    assert second is not None
    assert second.dropped == 0  # counted once, on the batch after the drops


def test_close_flushes_what_is_left_and_later_appends_are_dropped(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment, flush_seconds=3600).start()
    ids = _append(log, 4)
    log.close()
    assert (log.rows_logged, log.batches_written) == (4, 1)
    (batch,) = scene.ctx.ledger.deployments.batches(scene.deployment.id)
    assert (batch.first_request_id, batch.last_request_id) == (ids[0], ids[-1])
    _append(log, 1)
    assert log.rows_dropped == 1


def test_the_writer_thread_flushes_on_its_own(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment, flush_seconds=0.01)
    written = threading.Event()
    flush = log.flush

    def watched(timeout: float | None = None) -> Any:
        batch = flush(timeout)
        if batch is not None:
            written.set()
        return batch

    log.flush = watched  # type: ignore[method-assign]
    log.start()
    _append(log, 3)
    assert written.wait(60)
    log.close()
    assert log.rows_logged == 3


def test_a_failed_write_keeps_its_rows_for_the_next_flush(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(scene.ctx, scene.deployment, max_buffered_rows=6)
    put = scene.ctx.blobs.put_bytes
    calls: list[int] = []

    def failing_once(data: bytes) -> Any:
        calls.append(len(data))
        if len(calls) == 1:
            raise BlobStoreError("the artifact store is down")
        return put(data)

    monkeypatch.setattr(scene.ctx.blobs, "put_bytes", failing_once)
    first = _append(log, 4)
    with caplog.at_level("WARNING", logger="plinth.serving"):
        assert log.flush() is None
    assert "kept for the next try" in caplog.text
    assert (log.rows_buffered, log.rows_logged, log.rows_dropped) == (4, 0, 0)
    later = _append(log, 3)  # 4 kept + 3 new > 6: the newest request over the bound drops
    assert log.rows_dropped == 1
    batch = log.flush()
    assert batch is not None
    assert batch.rows == 6
    ids = _table(scene.ctx, batch.digest).column("request_id").to_pylist()
    assert ids == first + later[:2]
    assert batch.dropped == 1


def test_a_request_arrow_cannot_hold_is_dropped_and_counted(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment)
    log.append(new_id(), now_ms(), "m@1", {"x": [1.0, 2.0]}, [1])  # 2 inputs, 1 prediction
    assert log.flush() is None
    assert (log.rows_dropped, log.rows_logged) == (1, 0)
    good = _append(log, 1)
    batch = log.flush()
    assert batch is not None
    assert (batch.rows, batch.dropped) == (1, 1)
    assert batch.first_request_id == good[0]


def test_find_prediction_returns_the_logged_row(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment)
    ids = _append(log, 3, x=10.0)
    log.flush()
    found = find_prediction(scene.ctx, ids[1])
    assert found["request_id"] == ids[1]
    assert found["model_version"] == "m@1"
    assert found["deployment"]["ref"] == "web@1"
    assert found["rows"] == [{"inputs": {"x": 11.0, "z": 0.0}, "prediction": 1}]
    assert isinstance(found["ts_ms"], int)
    with pytest.raises(NotFoundError, match="sampled out or not flushed"):
        find_prediction(scene.ctx, new_id())


def test_a_late_request_in_an_overlapping_batch_is_still_found(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment)
    late = new_id()  # made first, logged after a later request was written
    ids = _append(log, 1) + _append(log, 1)
    log.flush()
    log.append(late, now_ms(), "m@1", {"x": [5.0], "z": [5.0]}, [0])
    _append(log, 1)
    log.flush()
    assert ids[0] > late
    assert find_prediction(scene.ctx, late)["rows"][0]["inputs"] == {"x": 5.0, "z": 5.0}


def test_lineage_of_request_walks_to_run_code_environment_and_data(scene: Scene) -> None:
    log = PredictionLog(scene.ctx, scene.deployment)
    (rid,) = _append(log, 1)
    log.close()
    chain = lineage_of_request(scene.ctx, rid)
    assert chain["prediction"]["request_id"] == rid
    assert chain["model_version"]["ref"] == "m@1"
    assert chain["model_version"]["id"] == scene.version.id
    assert chain["run"]["id"] == scene.run_id
    assert set(chain["code"]) == {"commit", "branch", "dirty", "remote"}
    env = chain["environment"]
    assert env["python"]
    assert env["platform"]
    assert env["packages"] > 0
    assert [d["id"] for d in chain["data"]] == [scene.dataset_version_id]
    assert chain["data"][0]["ref"] == "train@1"
    edges = scene.ctx.ledger.lineage.edges_from(RecordRef("run", scene.run_id))
    assert (RecordRef("dataset_version", scene.dataset_version_id), "used") in {
        (e.dst, e.relation) for e in edges
    }


def test_stored_columns_take_the_given_types_whatever_json_was_sent(scene: Scene) -> None:
    """A JSON integer for a double input is stored as double, input check failures are
    always strings (an all-passing batch included): every batch of a version shares one
    schema, so the monitor can merge their profiles."""
    import pyarrow as pa

    from plinth.serving.decode import Decoder

    decoder = Decoder(
        [("x", "double"), ("z", "double")],
        max_rows=10,
        passthrough=[("n", "number", False), ("tag", "any", False)],
    )
    types = decoder.log_types()
    assert types == {"x": "double", "z": "double", "n": "double"}
    schemas = []
    for failures in ([None, None], ["range(x)", None]):
        log = PredictionLog(scene.ctx, scene.deployment)
        log.append(
            new_id(),
            now_ms(),
            "m@1",
            {"x": [10, 11], "z": [0, 1.5], "n": [3, 4], "input_check_failures": failures},
            [1, 0],
            types={**types, "prediction": "double"},
        )
        batch = log.flush()
        assert batch is not None
        schemas.append(_table(scene.ctx, batch.digest).schema)
    assert schemas[0] == schemas[1]
    for name in ("x", "z", "n", "prediction"):
        assert schemas[0].field(name).type == pa.float64(), name
    assert schemas[0].field("input_check_failures").type == pa.string()
    # a request the type cannot hold is stored as Arrow infers it, never dropped
    log = PredictionLog(scene.ctx, scene.deployment)
    log.append(new_id(), now_ms(), "m@1", {"x": ["a"]}, [1], types={"x": "double"})
    batch = log.flush()
    assert batch is not None
    assert log.rows_dropped == 0
    assert _table(scene.ctx, batch.digest).schema.field("x").type == pa.string()
