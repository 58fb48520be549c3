"""The prediction log: sampled requests buffered in memory, written as Parquet batches.

The request path only appends references to a bounded buffer (no conversion, no I/O, never
blocks); a daemon thread swaps the buffer out every ``prediction_log_flush_seconds``,
builds one Arrow table sorted by request id, stores it as a Parquet blob (zstd) and
records the batch in the ledger. A failed write keeps its rows for the next try, up to
the memory bound; past it requests are dropped and counted, never waited for::

    log = PredictionLog(ctx, deployment, sample=0.1).start()
    log.append(request_id, now_ms(), "delays@3", {"distance": [120.0]}, [0.31])
    log.close()                                   # flushes what is left
    lineage_of_request(ctx, request_id)           # model, run, commit, env, data

Columns of a batch: ``request_id``, ``ts`` (timestamp, ms), ``model_version``, each input
column (``input.NAME`` when NAME is one of those or ``prediction``), ``prediction``.
"""

from __future__ import annotations

import io
import logging
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, PlinthError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DeploymentVersion, PredictionBatch

__all__ = ["PredictionLog", "find_prediction", "lineage_of_request"]

log = logging.getLogger("plinth.serving")

#: Columns every batch has; input columns with these names are stored as ``input.NAME``.
RESERVED = ("request_id", "ts", "model_version", "prediction")
#: Seconds ``close()`` waits for the writer thread before the final flush.
CLOSE_TIMEOUT = 30.0


@dataclass(frozen=True)
class _Request:
    request_id: str
    ts_ms: int
    model_version: str
    columns: Mapping[str, Any]
    predictions: Any
    rows: int


class PredictionLog:
    """The prediction log of one deployment version; see the module docstring.

    ``rows_logged`` counts rows written to the blob store and recorded, ``rows_dropped``
    rows lost to the memory bound (or to inputs Arrow cannot hold), ``batches_written``
    the batches recorded. Sampling is per request, with probability ``sample``.
    """

    def __init__(
        self,
        ctx: Context,
        deployment: DeploymentVersion,
        *,
        sample: float = 1.0,
        flush_seconds: float | None = None,
        max_buffered_rows: int = 100_000,
        seed: int | None = None,
    ) -> None:
        from plinth.errors import UsageError

        if not 0.0 <= sample <= 1.0:
            raise UsageError(f"sample must be between 0 and 1, got {sample!r}", field="sample")
        if max_buffered_rows < 1:
            raise UsageError(
                f"max_buffered_rows must be >= 1, got {max_buffered_rows!r}",
                field="max_buffered_rows",
            )
        seconds = (
            ctx.settings.prediction_log_flush_seconds if flush_seconds is None else flush_seconds
        )
        if seconds <= 0:
            raise UsageError(
                f"flush_seconds must be > 0, got {seconds!r}", field="prediction_log_flush_seconds"
            )
        self.ctx = ctx
        self.deployment = deployment
        self.sample = sample
        self.flush_seconds = float(seconds)
        self.max_buffered_rows = max_buffered_rows
        self.rows_logged = 0
        self.rows_dropped = 0
        self.batches_written = 0
        self._random = random.Random(seed)  # noqa: S311 (sampling, not secrets)
        self._lock = threading.Lock()  # guards the buffer and the counters
        self._write_lock = threading.Lock()  # one write at a time (thread or flush())
        self._buffer: deque[_Request] = deque()
        self._buffered_rows = 0
        self._dropped_unrecorded = 0  # dropped since the last recorded batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def rows_buffered(self) -> int:
        """Rows waiting for the next write."""
        return self._buffered_rows

    # -- the request path --------------------------------------------------------------
    def append(
        self,
        request_id: str,
        ts_ms: int,
        model_version: str,
        columns: Mapping[str, Any],
        predictions: Any,
    ) -> None:
        """Buffer one request's rows (or drop and count them); never blocks on I/O."""
        rows = len(predictions)
        with self._lock:
            if self.sample < 1.0 and self._random.random() >= self.sample:
                return
            if self._closed or self._buffered_rows + rows > self.max_buffered_rows:
                self.rows_dropped += rows
                self._dropped_unrecorded += rows
                return
            self._buffer.append(
                _Request(request_id, ts_ms, model_version, columns, predictions, rows)
            )
            self._buffered_rows += rows

    # -- the writer ----------------------------------------------------------------------
    def start(self) -> PredictionLog:
        """Start the writer thread (a daemon); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"plinth-predlog-{self.deployment.name}", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self, timeout: float | None = None) -> PredictionBatch | None:
        """Write what is buffered now as one batch; None when there was nothing to write
        or the write failed (its rows are kept for the next flush, up to the bound).

        ``timeout``: seconds to wait for a write in progress (None: as long as it takes);
        past it nothing is written now.
        """
        if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
            log.warning(
                "plinth: the prediction log of %s is still writing; %d rows wait",
                self.deployment.ref,
                self._buffered_rows,
            )
            return None
        try:
            with self._lock:
                taken = list(self._buffer)
                self._buffer.clear()
                self._buffered_rows = 0
                dropped = self._dropped_unrecorded
            if not taken:
                return None
            try:
                batch, written, bad = self._write(taken, dropped)
            except Exception as exc:  # a writer must survive any backend failure
                self._keep(taken)
                log.warning(
                    "plinth: the prediction log of %s could not be written (%s); "
                    "its %d rows are kept for the next try",
                    self.deployment.ref,
                    exc,
                    sum(r.rows for r in taken),
                )
                return None
            with self._lock:
                if batch is not None:  # the batch record carries the drops counted so far
                    self._dropped_unrecorded -= dropped
                self._dropped_unrecorded += bad
                self.rows_dropped += bad
                self.rows_logged += written
                if batch is not None:
                    self.batches_written += 1
            return batch
        finally:
            self._write_lock.release()

    def _keep(self, taken: list[_Request]) -> None:
        """Put rows that failed to write back in front of newer ones; past the memory
        bound, drop the oldest and count them."""
        with self._lock:
            self._buffer.extendleft(reversed(taken))
            self._buffered_rows += sum(r.rows for r in taken)
            while self._buffered_rows > self.max_buffered_rows and self._buffer:
                lost = self._buffer.popleft()
                self._buffered_rows -= lost.rows
                self.rows_dropped += lost.rows
                self._dropped_unrecorded += lost.rows

    def _write(
        self, taken: list[_Request], dropped: int
    ) -> tuple[PredictionBatch | None, int, int]:
        """Store and record one batch: (the batch, rows written, rows Arrow refused)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        bad = 0
        try:  # one table built from every request's values at once
            table = _batch_table(taken)
            good = taken
        except (pa.ArrowException, ValueError, TypeError):
            # Some request Arrow cannot hold: find it, one table per request.
            tables = []
            good = []
            for request in taken:
                try:
                    tables.append(_request_table(request))
                    good.append(request)
                except (pa.ArrowException, ValueError, TypeError) as exc:
                    bad += request.rows
                    log.warning(
                        "plinth: request %s of %s cannot be logged (%s); dropped",
                        request.request_id,
                        self.deployment.ref,
                        exc,
                    )
            if not tables:
                return None, 0, bad
            table = pa.concat_tables(tables, promote_options="permissive")
        table = table.sort_by("request_id")
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        ref = self.ctx.blobs.put_bytes(sink.getvalue())
        ts = [r.ts_ms for r in good]
        ids = table.column("request_id")
        batch = self.ctx.ledger.deployments.record_batch(
            self.deployment,
            start_ms=min(ts),
            end_ms=max(ts),
            rows=table.num_rows,
            digest=ref.digest,
            model_versions=sorted({r.model_version for r in good}),
            first_request_id=str(ids[0]),
            last_request_id=str(ids[-1]),
            dropped=dropped,
        )
        return batch, table.num_rows, bad

    def close(self) -> None:
        """Stop the writer thread and write what is left, waiting at most
        :data:`CLOSE_TIMEOUT` seconds for each. Later appends are dropped and counted."""
        with self._lock:
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT)
            self._thread = None
        self.flush(timeout=CLOSE_TIMEOUT)

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _values(values: Any, rows: int, what: str) -> list[Any]:
    import numpy as np

    if isinstance(values, np.ndarray):
        out: list[Any] = values.tolist() if values.ndim == 1 else list(values)
    else:
        out = list(values)
    if len(out) != rows:
        raise ValueError(f"{what} has {len(out)} values for {rows} predictions")
    return out


def _batch_table(requests: list[_Request]) -> pa.Table:
    """One Arrow table of many requests, built column by column (a column a request lacks
    is null for its rows)."""
    import pyarrow as pa

    ids: list[str] = []
    ts: list[int] = []
    versions: list[str] = []
    columns: dict[str, list[Any]] = {}
    predictions: list[Any] = []
    total = 0
    for request in requests:
        n = request.rows
        ids.extend([request.request_id] * n)
        ts.extend([request.ts_ms] * n)
        versions.extend([request.model_version] * n)
        for name, values in request.columns.items():
            column = columns.setdefault(str(name), [None] * total)
            column.extend(_values(values, n, f"column {name!r}"))
        total += n
        for column in columns.values():
            if len(column) < total:
                column.extend([None] * (total - len(column)))
        predictions.extend(_values(request.predictions, n, "the predictions"))
    data: dict[str, Any] = {
        "request_id": pa.array(ids, pa.string()),
        "ts": pa.array(ts, pa.timestamp("ms")),
        "model_version": pa.array(versions, pa.string()),
    }
    for name, values in columns.items():
        data[f"input.{name}" if name in RESERVED else name] = pa.array(values)
    data["prediction"] = pa.array(predictions)
    return pa.table(data)


def _request_table(request: _Request) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    n = request.rows
    data: dict[str, Any] = {
        "request_id": pa.array([request.request_id] * n, pa.string()),
        "ts": pa.array([request.ts_ms] * n, pa.timestamp("ms")),
        "model_version": pa.array([request.model_version] * n, pa.string()),
    }
    for name, values in request.columns.items():
        column = f"input.{name}" if name in RESERVED else str(name)
        array = pa.array(values)
        if len(array) != n:
            raise ValueError(f"column {name!r} has {len(array)} values for {n} predictions")
        data[column] = array
    predictions = request.predictions
    if isinstance(predictions, np.ndarray) and predictions.ndim > 1:
        predictions = list(predictions)  # one list per row (probabilities, multi-output)
    data["prediction"] = pa.array(predictions)
    return pa.table(data)


# -- reading the log back ----------------------------------------------------------------
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
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(ctx.blobs.read_bytes(batch.digest)))
    table = table.filter(pc.equal(table.column("request_id"), request_id))
    ts = table.schema.get_field_index("ts")
    table = table.set_column(ts, "ts", table.column("ts").cast(pa.int64()))
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _candidates(ctx: Context, request_id: str) -> list[PredictionBatch]:
    """Batches whose request-id range holds ``request_id``, the likeliest first.

    A request that reached the log after a later one was written (or one logged by
    another replica) lies in a batch whose range overlaps another's, so every batch of
    the deployment whose range holds the id is a candidate.
    """
    store = ctx.ledger.deployments
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
        deployment = ctx.ledger.deployments.get_by_id(batch.deployment_id)
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
