"""Starting a run's helper threads only once the run has lived long enough to need them.

A run's ingest thread first has work after ``interval`` seconds and its system-metrics
sampler after ``system_metrics_interval``; a run that ends sooner stores everything from
the thread that ends it. Starting a thread (and joining it) costs a scheduling round trip
each, more than the rest of a short run on a busy machine, so a run asks one process-wide
timer thread (started once) to call ``start`` at the deadline instead, and cancels that
when it ends first::

    handle = call_later(0.5, ingester.start_now)
    ...
    handle.cancel()   # the run ended first: the thread is never started
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

__all__ = ["Deferred", "call_later"]

log = logging.getLogger("plinth.tracking")


class Deferred:
    """One pending call; :meth:`cancel` drops it (and the reference to its function)."""

    __slots__ = ("_func",)

    def __init__(self, func: Callable[[], object]) -> None:
        self._func: Callable[[], object] | None = func

    def cancel(self) -> None:
        self._func = None

    @property
    def pending(self) -> bool:
        return self._func is not None

    def _run(self) -> None:
        func, self._func = self._func, None
        if func is not None:
            func()


class _Timer:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deferred]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, func: Callable[[], object]) -> Deferred:
        handle = Deferred(func)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), handle))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="plinth-deferred", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is handle:
                self._cond.notify()  # an earlier deadline than the one the thread waits for
        return handle

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and not self._heap[0][2].pending:
                        heapq.heappop(self._heap)  # cancelled
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            try:
                handle._run()
            except Exception:  # a helper that cannot start must not stop the others
                log.exception("plinth: a deferred start failed")

    def reset_after_fork(self) -> None:
        """In a forked child: no timer thread exists there, and no parent's run is ours."""
        self._cond = threading.Condition()
        self._heap = []
        self._thread = None


_timer = _Timer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_timer.reset_after_fork)


def call_later(delay: float, func: Callable[[], object]) -> Deferred:
    """Call ``func`` in the process's timer thread in ``delay`` seconds, unless cancelled.

    ``func`` must return quickly (it starts a thread): every deferred call shares one thread.
    """
    return _timer.call_later(delay, func)
