"""The prediction log: sampled requests buffered in memory, written as Parquet batches.

The request path only appends references to a bounded buffer (no conversion, no I/O, never
blocks); a daemon thread swaps the buffer out every ``prediction_log_flush_seconds``,
builds one Arrow table sorted by request id, stores it as a Parquet blob (zstd) and
records the batch in the ledger. The buffer is bounded in rows and in bytes (the request
bodies', ``prediction_log_max_bytes``); past half the byte bound the thread writes early.
A failed write keeps its rows for the next try, up to the bounds; past them requests are
dropped and counted, never waited for::

    log = PredictionLog(ctx, deployment, sample=0.1).start()
    log.append(request_id, now_ms(), "delays@3", {"distance": [120.0]}, [0.31])
    log.close()                                   # flushes what is left
    lineage_of_request(ctx, request_id)           # model, run, commit, env, data

Columns of a batch: ``request_id``, ``ts`` (timestamp, ms), ``model_version``, each input
column (``input.NAME`` when NAME is one of those or ``prediction``), each pass-through field
and ``input_check_failures`` when the app gives them (they are just more columns here),
``prediction``.
"""

from __future__ import annotations

import io
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plinth.serving._logrows import (
    Chunk,
    Request,
    batch_table,
    estimate,
    give_back_memory,
    request_table,
)
from plinth.serving.lookup import find_prediction, lineage_of_request

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DeploymentVersion, PredictionBatch

__all__ = ["PredictionLog", "find_prediction", "lineage_of_request"]

log = logging.getLogger("plinth.serving")

#: Seconds ``close()`` waits for the writer thread before the final flush.
CLOSE_TIMEOUT = 30.0
#: Seconds between two compactions of the buffer into Arrow (see :meth:`PredictionLog._compact`).
COMPACT_SECONDS = 0.5


class PredictionLog:
    """The prediction log of one deployment version; see the module docstring.

    ``rows_logged`` counts rows written to the blob store and recorded, ``rows_dropped``
    rows lost to the memory bounds (or to inputs Arrow cannot hold), ``batches_written``
    the batches recorded. Sampling is per request, with probability ``sample``.
    ``max_buffered_bytes`` defaults to the ``prediction_log_max_bytes`` setting.
    """

    def __init__(
        self,
        ctx: Context,
        deployment: DeploymentVersion,
        *,
        sample: float = 1.0,
        flush_seconds: float | None = None,
        max_buffered_rows: int = 100_000,
        max_buffered_bytes: int | None = None,
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
        max_bytes = (
            ctx.settings.prediction_log_max_bytes
            if max_buffered_bytes is None
            else max_buffered_bytes
        )
        if max_bytes < 1:
            raise UsageError(
                f"the prediction log's byte bound must be >= 1, got {max_bytes!r}",
                hint="set prediction_log_max_bytes to a positive number of bytes",
                field="prediction_log_max_bytes",
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
        self.max_buffered_bytes = int(max_bytes)
        self.rows_logged = 0
        self.rows_dropped = 0
        self.batches_written = 0
        self._random = random.Random(seed)  # noqa: S311 (sampling, not secrets)
        self._lock = threading.Lock()  # guards the buffer and the counters
        self._write_lock = threading.Lock()  # one write at a time (thread or flush())
        self._buffer: deque[Request | Chunk] = deque()
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._dropped_unrecorded = 0  # dropped since the last recorded batch
        self._warned_at = 0.0  # when dropping was last logged (at most once a minute)
        self._stop = threading.Event()
        self._wake = threading.Event()  # write now: the buffer is filling up
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def rows_buffered(self) -> int:
        """Rows waiting for the next write."""
        return self._buffered_rows

    @property
    def bytes_buffered(self) -> int:
        """Bytes (of request bodies) waiting for the next write."""
        return self._buffered_bytes

    # -- the request path --------------------------------------------------------------
    def append(
        self,
        request_id: str,
        ts_ms: int,
        model_version: str,
        columns: Mapping[str, Any],
        predictions: Any,
        nbytes: int | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        """Buffer one request's rows (or drop and count them); never blocks on I/O.

        ``nbytes``: the size of the request (its body); estimated from the values when None.
        ``types``: the Arrow type (an alias: ``double``, ``int64``...) each column is stored
        as, by column name (``prediction`` for the predictions), from the model's signature
        so that every batch of a version has one schema whatever JSON the client sent (a
        ``10`` for a double input); a column not named there takes the type Arrow infers.
        """
        rows = len(predictions)
        with self._lock:
            if self.sample < 1.0 and self._random.random() >= self.sample:
                return
            size = estimate(columns, rows) if nbytes is None else nbytes
            if (
                self._closed
                or self._buffered_rows + rows > self.max_buffered_rows
                or self._buffered_bytes + size > self.max_buffered_bytes
            ):
                self.rows_dropped += rows
                self._dropped_unrecorded += rows
                self._wake.set()
                dropped = self.rows_dropped
            else:
                self._buffer.append(
                    Request(
                        request_id, ts_ms, model_version, columns, predictions, rows, size, types
                    )
                )
                self._buffered_rows += rows
                self._buffered_bytes += size
                if self._buffered_bytes * 2 > self.max_buffered_bytes:
                    self._wake.set()
                return
        self._warn_dropped(dropped)

    def _warn_dropped(self, dropped: int) -> None:
        now = time.monotonic()
        if now - self._warned_at < 60.0 or self._closed:
            return
        self._warned_at = now
        log.warning(
            "plinth: the prediction log of %s is full (%d rows, %d of %d bytes buffered); "
            "%d rows dropped so far",
            self.deployment.ref,
            self._buffered_rows,
            self._buffered_bytes,
            self.max_buffered_bytes,
            dropped,
        )

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
        due = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            left = due - time.monotonic()
            woken = self._wake.wait(max(0.0, min(left, COMPACT_SECONDS)))
            if self._stop.is_set():  # close() writes what is left
                return
            if woken or time.monotonic() >= due:
                self._wake.clear()
                self.flush()
                due = time.monotonic() + self.flush_seconds
            else:
                self._compact()

    def _compact(self) -> None:
        """Turn the requests buffered since the last look into one Arrow chunk, between two
        writes: without it a server's memory between writes grows with the Python objects
        of every request buffered (kilobytes each) and stays at that high-water mark."""
        if not self._write_lock.acquire(blocking=False):  # a write in progress takes them
            return
        try:
            with self._lock:
                items = list(self._buffer)
                requests = [r for r in items if isinstance(r, Request)]
                if len(requests) < 2:
                    return
                self._buffer.clear()
            chunk, refused = self._chunk(requests)
            done = [r for r in items if isinstance(r, Chunk)] + ([chunk] if chunk else [])
            with self._lock:  # newer requests stay behind the chunks, in arrival order
                self._buffer.extendleft(reversed(done))
                lost_rows = sum(r.rows for r in refused)
                self._buffered_rows -= lost_rows
                self._buffered_bytes -= sum(r.nbytes for r in refused)
                self.rows_dropped += lost_rows
                self._dropped_unrecorded += lost_rows
        finally:
            self._write_lock.release()

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
                self._buffered_bytes = 0
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
            finally:
                del taken
                give_back_memory()
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

    def _keep(self, taken: list[Request | Chunk]) -> None:
        """Put rows that failed to write back in front of newer ones; past the memory
        bounds, drop the oldest and count them."""
        with self._lock:
            self._buffer.extendleft(reversed(taken))
            self._buffered_rows += sum(r.rows for r in taken)
            self._buffered_bytes += sum(r.nbytes for r in taken)
            while self._buffer and (
                self._buffered_rows > self.max_buffered_rows
                or self._buffered_bytes > self.max_buffered_bytes
            ):
                lost = self._buffer.popleft()
                self._buffered_rows -= lost.rows
                self._buffered_bytes -= lost.nbytes
                self.rows_dropped += lost.rows
                self._dropped_unrecorded += lost.rows

    def _chunk(self, requests: list[Request]) -> tuple[Chunk | None, list[Request]]:
        """One Arrow chunk of ``requests`` (None when Arrow holds none of them) and the
        requests it could not hold (logged here; the caller counts them as dropped)."""
        import pyarrow as pa

        refused: list[Request] = []
        try:  # one table built from every request's values at once
            table = batch_table(requests)
            good = requests
        except (pa.ArrowException, ValueError, TypeError):
            # Some request Arrow cannot hold: find it, one table per request.
            tables = []
            good = []
            for request in requests:
                try:
                    tables.append(request_table(request))
                    good.append(request)
                except (pa.ArrowException, ValueError, TypeError) as exc:
                    refused.append(request)
                    log.warning(
                        "plinth: request %s of %s cannot be logged (%s); dropped",
                        request.request_id,
                        self.deployment.ref,
                        exc,
                    )
            if not tables:
                return None, refused
            table = pa.concat_tables(tables, promote_options="permissive")
        ts = [r.ts_ms for r in good]
        chunk = Chunk(
            table,
            rows=sum(r.rows for r in good),
            nbytes=sum(r.nbytes for r in good),
            start_ms=min(ts),
            end_ms=max(ts),
            versions=frozenset(r.model_version for r in good),
        )
        return chunk, refused

    def _write(
        self, taken: list[Request | Chunk], dropped: int
    ) -> tuple[PredictionBatch | None, int, int]:
        """Store and record one batch: (the batch, rows written, rows Arrow refused)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        chunks = [t for t in taken if isinstance(t, Chunk)]
        requests = [t for t in taken if isinstance(t, Request)]
        bad = 0
        if requests:
            chunk, refused = self._chunk(requests)
            bad = sum(r.rows for r in refused)
            chunks += [chunk] if chunk is not None else []
        if not chunks:
            return None, 0, bad
        tables = [c.table for c in chunks]
        if len(tables) == 1:
            table = tables[0]
        else:  # a column one chunk lacks is null for its rows, types widened where needed
            table = pa.concat_tables(tables, promote_options="permissive")
        table = table.sort_by("request_id")
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        ref = self.ctx.blobs.put_bytes(sink.getvalue())
        ids = table.column("request_id")
        from plinth.serving.spec import deployment_store

        with deployment_store(self.ctx) as store:  # sqlite3 on an embedded ledger
            batch: PredictionBatch = store.record_batch(
                self.deployment,
                start_ms=min(c.start_ms for c in chunks),
                end_ms=max(c.end_ms for c in chunks),
                rows=table.num_rows,
                digest=ref.digest,
                model_versions=sorted(frozenset().union(*(c.versions for c in chunks))),
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
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT)
            self._thread = None
        self.flush(timeout=CLOSE_TIMEOUT)

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
