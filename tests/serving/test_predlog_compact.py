"""Between two writes the prediction log's writer thread turns buffered requests into Arrow
chunks (a row then costs its Arrow bytes, not its request's Python objects); a batch made of
chunks and newer requests is the batch the requests alone would have made."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from plinth.context import Context
from plinth.entities import DeploymentVersion
from plinth.errors import BlobStoreError
from plinth.ids import new_id, now_ms
from plinth.serving.predlog import PredictionLog

pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def deployment(project: Context) -> DeploymentVersion:
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    return project.ledger.deployments.save(project.project.id, "web", digest, {"model": "m@1"})


def _append(log: PredictionLog, n: int, version: str = "m@1", x: float = 0.0) -> list[str]:
    ids = []
    for i in range(n):
        rid = new_id()
        log.append(rid, now_ms(), version, {"x": [x + i]}, [float(i)])
        ids.append(rid)
    return ids


def _wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the writer thread did not compact the buffer"
        time.sleep(0.02)


def _ids(ctx: Context, digest: str) -> list[str]:
    table = pq.read_table(io.BytesIO(ctx.blobs.read_bytes(digest)))
    return list(table.column("request_id").to_pylist())


def test_chunks_and_newer_requests_make_one_batch(
    project: Context, deployment: DeploymentVersion
) -> None:
    log = PredictionLog(project, deployment, flush_seconds=3600).start()
    first = _append(log, 3)
    log.append(new_id(), now_ms(), "m@1", {"x": [1.0, 2.0]}, [1.0])  # Arrow cannot hold it
    # Only the compaction counts it before a write: the batch is written an hour from now.
    _wait_for(lambda: log.rows_dropped == 1)
    assert (log.rows_buffered, log.rows_logged, log.batches_written) == (3, 0, 0)
    later = _append(log, 2, version="m@2", x=10.0)
    log.close()
    assert (log.rows_logged, log.rows_dropped, log.batches_written) == (5, 1, 1)
    (batch,) = project.ledger.deployments.batches(deployment.id)
    assert batch.rows == 5
    assert batch.dropped == 1
    assert batch.model_versions == ("m@1", "m@2")
    assert _ids(project, batch.digest) == sorted(first + later)


def test_a_failed_write_keeps_compacted_rows_for_the_next_flush(
    project: Context, deployment: DeploymentVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = project.blobs.put_bytes
    calls: list[int] = []

    def failing_once(data: bytes) -> Any:
        calls.append(len(data))
        if len(calls) == 1:
            raise BlobStoreError("the artifact store is down")
        return put(data)

    log = PredictionLog(project, deployment, flush_seconds=3600).start()
    first = _append(log, 4)
    log.append(new_id(), now_ms(), "m@1", {"x": [1.0, 2.0]}, [1.0])
    _wait_for(lambda: log.rows_dropped == 1)  # compacted
    monkeypatch.setattr(project.blobs, "put_bytes", failing_once)
    assert log.flush() is None
    assert (log.rows_buffered, log.rows_logged) == (4, 0)
    later = _append(log, 1)
    batch = log.flush()
    log.close()
    assert batch is not None
    assert (batch.rows, batch.dropped) == (5, 1)
    assert _ids(project, batch.digest) == sorted(first + later)
