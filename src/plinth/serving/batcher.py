"""Adaptive micro-batching: concurrent requests share one model call.

A request's rows are queued; when the model is idle, everything queued (up to
``max_rows``) goes to the model at once. A request alone is sent at once; only while
other requests are still being read (``arriving`` counts them) does the batcher wait, at
most ``wait_s``, for them to join. Requests that arrive during a model call form the next
batch.

Where the call runs: while the model's calls take less than ``inline_s`` on average
(20 ms), on the event loop's own thread; a slower model is called in a worker thread so
that the loop keeps reading requests (and answering ``/health``) meanwhile. Measured on
one core with a 1-3 ms model, the thread hop cost more than it gave: the worker thread
and the loop contend for the GIL (each waiting up to the 5 ms switch interval), and the
requests that arrive during an inline call simply form the next batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher", "Item"]


@dataclass
class Item:
    """One request's decoded columns and row count; ``future`` gets its predictions."""

    columns: dict[str, list[Any]]
    rows: int
    future: asyncio.Future[list[Any]] = field(repr=False)


class Batcher:
    """Feeds queued items to ``predict(items) -> one list of predictions per item``."""

    def __init__(
        self,
        predict: Callable[[Sequence[Item]], list[list[Any]]],
        *,
        max_rows: int,
        wait_s: float,
        arriving: Callable[[], int],
        on_batch: Callable[[int], None] | None = None,
        inline_s: float = 0.02,
    ) -> None:
        self._predict = predict
        self._inline_s = inline_s
        #: A moving average of the model call's duration (seconds).
        self.call_s = 0.0
        self._max_rows = max_rows
        self._wait_s = wait_s
        self._arriving = arriving
        self._on_batch = on_batch
        self._queue: list[Item] = []
        self._running = False
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None  # held so it is not collected
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="plinth-model")

    async def submit(self, columns: dict[str, list[Any]], rows: int) -> list[Any]:
        """The predictions for one request's rows (raises what the model raised)."""
        loop = asyncio.get_running_loop()
        item = Item(columns, rows, loop.create_future())
        self._queue.append(item)
        if self._arrived is not None:
            self._arrived.set()
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await item.future

    async def _gather(self) -> None:
        """Wait (bounded) while requests still being read may join this batch."""
        if self._wait_s <= 0:
            return
        deadline = time.monotonic() + self._wait_s
        while self._arriving() > 0 and self._rows() < self._max_rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return
            finally:
                self._arrived = None

    def _rows(self) -> int:
        return sum(item.rows for item in self._queue)

    def _take(self) -> list[Item]:
        taken: list[Item] = []
        rows = 0
        while self._queue:
            nxt = self._queue[0]
            if taken and rows + nxt.rows > self._max_rows:
                break
            taken.append(self._queue.pop(0))
            rows += nxt.rows
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                await self._gather()
                batch = self._take()
                if self._on_batch is not None:
                    self._on_batch(sum(item.rows for item in batch))
                try:
                    results = await self._call(loop, batch)
                except Exception as exc:
                    if len(batch) == 1:
                        _fail(batch[0], exc)
                        continue
                    # One bad request must not fail its neighbours: retry each alone.
                    for item in batch:
                        try:
                            (result,) = await self._call(loop, [item])
                        except Exception as single:
                            _fail(item, single)
                        else:
                            _done(item, result)
                    continue
                for item, result in zip(batch, results, strict=True):
                    _done(item, result)
        finally:
            self._running = False
            if self._queue:  # an item queued while we were leaving
                self._running = True
                self._task = loop.create_task(self._drain())

    async def _call(self, loop: asyncio.AbstractEventLoop, batch: list[Item]) -> list[list[Any]]:
        """One model call: on the loop's thread while calls are quick, else in the pool."""
        if self.call_s < self._inline_s:
            start = time.perf_counter()
            try:
                return self._predict(batch)
            finally:
                self._took(time.perf_counter() - start)
        start = time.perf_counter()
        try:
            return await loop.run_in_executor(self._pool, self._predict, batch)
        finally:
            self._took(time.perf_counter() - start)

    def _took(self, seconds: float) -> None:
        # A moving average, so one slow call (a first call, a page fault) does not move
        # a quick model off the loop, but a model that is slow stays in the pool.
        self.call_s += (seconds - self.call_s) * 0.2

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _done(item: Item, result: list[Any]) -> None:
    if not item.future.done():
        item.future.set_result(result)


def _fail(item: Item, exc: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
