"""Finding a logged prediction in its Parquet batch (:mod:`plinth.serving.lookup`): row
groups skipped by their request-id statistics, every matching row kept, in order."""

from __future__ import annotations

import io

import pytest

from plinth.context import Context
from plinth.errors import NotFoundError
from plinth.serving.lookup import find_prediction

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

IDS = [f"01a2535f-0000-7000-8000-{n:012d}" for n in (1, 2, 3, 3, 5, 6)]


def _batch(ctx: Context) -> None:
    """Six rows in three row groups of two; id ...3 spans the first two groups."""
    table = pa.table(
        {
            "request_id": pa.array(IDS, pa.string()),
            "ts": pa.array([1000 + n for n in range(6)], pa.timestamp("ms")),
            "model_version": pa.array(["m@1"] * 6, pa.string()),
            "x": pa.array([float(n) for n in range(6)], pa.float64()),
            "prediction": pa.array(list(range(6)), pa.int64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    assert pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.num_row_groups == 3
    digest = ctx.blobs.put_bytes(sink.getvalue()).digest
    spec_digest = ctx.blobs.put_bytes(b"name: web\n").digest
    deployment = ctx.ledger.deployments.save(ctx.project.id, "web", spec_digest, {"model": "m@1"})
    ctx.ledger.deployments.record_batch(
        deployment,
        start_ms=1000,
        end_ms=1005,
        rows=6,
        digest=digest,
        model_versions=["m@1"],
        first_request_id=IDS[0],
        last_request_id=IDS[-1],
    )


def test_every_row_of_a_request_across_row_groups(project: Context) -> None:
    _batch(project)
    found = find_prediction(project, IDS[2])
    assert found["rows"] == [
        {"inputs": {"x": 2.0}, "prediction": 2},
        {"inputs": {"x": 3.0}, "prediction": 3},
    ]
    assert found["ts_ms"] == 1002  # the raw milliseconds, not a datetime
    assert found["deployment"]["ref"] == "web@1"
    last = find_prediction(project, IDS[-1])  # the last row group only
    assert last["rows"] == [{"inputs": {"x": 5.0}, "prediction": 5}]
    assert last["ts_ms"] == 1005


def test_an_id_inside_the_batch_range_but_not_logged_is_not_found(project: Context) -> None:
    _batch(project)
    missing = "01a2535f-0000-7000-8000-000000000004"
    with pytest.raises(NotFoundError, match="no logged prediction with request id"):
        find_prediction(project, missing)
