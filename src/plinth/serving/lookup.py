"""Reading the prediction log back: a request id to its logged rows and its lineage.

::

    find_prediction(ctx, request_id)      # model version, time, inputs and prediction
    lineage_of_request(ctx, request_id)   # model, run, commit, env, data
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, PlinthError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import PredictionBatch

__all__ = ["RESERVED", "find_prediction", "lineage_of_request"]

#: Columns every batch has; input columns with these names are stored as ``input.NAME``.
RESERVED = ("request_id", "ts", "model_version", "prediction")


def _batch_dict(batch: PredictionBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "deployment_id": batch.deployment_id,
        "start_ms": batch.start_ms,
        "end_ms": batch.end_ms,
        "rows": batch.rows,
        "digest": batch.digest,
        "model_versions": list(batch.model_versions),
        "first_request_id": batch.first_request_id,
        "last_request_id": batch.last_request_id,
        "dropped": batch.dropped,
        "created_at": batch.created_at,
        "created_by": batch.created_by,
    }


def _rows_of(ctx: Context, batch: PredictionBatch, request_id: str) -> list[dict[str, Any]]:
    """The rows of ``request_id`` in ``batch``'s Parquet blob.

    Only the row groups whose ``request_id`` statistics hold the id are read, their id
    column first; matching rows are sliced out. Nothing here converts a Python value to
    Arrow (``pc.equal(column, "id")`` would), which would import pandas (~0.3 s).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(pa.BufferReader(ctx.blobs.read_bytes(batch.digest)))
    meta = parquet.metadata
    id_column = parquet.schema_arrow.get_field_index("request_id")
    rows: list[dict[str, Any]] = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(id_column).statistics
        low, high = (stats.min, stats.max) if stats is not None and stats.has_min_max else (0, 0)
        if isinstance(low, str) and isinstance(high, str) and not low <= request_id <= high:
            continue  # the row group's id range cannot hold it
        ids = (
            parquet.read_row_group(group, columns=["request_id"], use_threads=False)
            .column(0)
            .to_pylist()
        )
        hits = [i for i, found in enumerate(ids) if found == request_id]
        if not hits:
            continue
        table = parquet.read_row_group(group, use_threads=False)
        ts = table.schema.get_field_index("ts")
        # The raw int64 under timestamp[ms]: as a cast, without loading pyarrow.compute.
        raw = [chunk.view(pa.int64()) for chunk in table.column("ts").chunks]
        table = table.set_column(ts, "ts", pa.chunked_array(raw, type=pa.int64()))
        for i in hits:
            rows += table.slice(i, 1).to_pylist()
    return rows


def _candidates(ctx: Context, request_id: str) -> list[PredictionBatch]:
    """Batches whose request-id range holds ``request_id``, the likeliest first.

    A request that reached the log after a later one was written (or one logged by
    another replica) lies in a batch whose range overlaps another's, so every batch of
    the deployment whose range holds the id is a candidate.
    """
    store = ctx.reads.deployments
    first = store.find_batch(request_id)
    if first is None:
        return []
    others = [
        b
        for b in store.batches(first.deployment_id)
        if b.id != first.id and b.first_request_id <= request_id <= b.last_request_id
    ]
    return [first, *others]


def find_prediction(ctx: Context, request_id: str) -> dict[str, Any]:
    """The logged prediction of ``request_id``: its batch, deployment, model version,
    time and rows (inputs and prediction each). NotFoundError when none was logged."""
    try:
        candidates = _candidates(ctx, request_id)
    except PlinthError:  # a malformed id cannot have been logged
        candidates = []
    for batch in candidates:
        rows = _rows_of(ctx, batch, request_id)
        if not rows:
            continue
        deployment = ctx.reads.deployments.get_by_id(batch.deployment_id)
        first = rows[0]
        return {
            "request_id": request_id,
            "model_version": first["model_version"],
            "ts_ms": first["ts"],
            "deployment": {"id": deployment.id, "ref": deployment.ref, "name": deployment.name},
            "batch": _batch_dict(batch),
            "rows": [
                {
                    "inputs": {k: v for k, v in row.items() if k not in RESERVED},
                    "prediction": row["prediction"],
                }
                for row in rows
            ],
        }
    raise NotFoundError(
        f"no logged prediction with request id {request_id!r}; "
        "was it sampled out or not flushed yet?",
        hint="the log keeps a sample of requests (deployment 'sample') and writes every "
        "prediction_log_flush_seconds; check the id and try again shortly",
        field="request_id",
    )


def lineage_of_request(ctx: Context, request_id: str) -> dict[str, Any]:
    """From a logged prediction back to its model version, run, code commit, environment
    and training dataset versions (with their validation results), as JSON-ready data.
    Parts the ledger no longer holds are None."""
    from plinth.registry import api

    prediction = find_prediction(ctx, request_id)
    out: dict[str, Any] = {"prediction": prediction}
    try:
        card = api.card(prediction["model_version"], ctx=ctx)
    except NotFoundError:
        out.update(model_version=None, run=None, code=None, environment=None, data=[])
        return out
    out["model_version"] = {
        key: card[key]
        for key in ("ref", "id", "model", "version", "flavor", "aliases", "created_at")
    }
    run = card["run"]
    out["run"] = None
    out["code"] = None
    if run is not None:
        source = run["source"]
        out["run"] = {key: run[key] for key in ("id", "name", "status", "start_time", "end_time")}
        out["code"] = {
            "commit": source.get("git_commit", source.get("commit")),
            "branch": source.get("git_branch"),
            "dirty": source.get("git_dirty"),
            "remote": source.get("git_remote"),
        }
    env = card["environment"]
    out["environment"] = None
    if env is not None:
        packages = env.get("packages")
        out["environment"] = {
            "id": env["id"],
            "digest": env.get("digest"),
            "python": env.get("python"),
            "platform": env.get("platform"),
            "packages": None if packages is None else len(packages),
            "missing": bool(env.get("missing")),
        }
    out["data"] = card["data"]
    return out
