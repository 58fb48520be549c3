"""Helpers the contract suites share: well-formed test digests and racing threads."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["digest_of", "race"]

T = TypeVar("T")


def digest_of(text: str) -> str:
    """A well-formed 64-hex-character blob digest for test data."""
    return hashlib.sha256(text.encode()).hexdigest()


def race(workers: int, call: Callable[[], T]) -> list[T]:
    """Run ``call`` in ``workers`` threads released at the same moment."""
    barrier = threading.Barrier(workers)

    def task() -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: task(), range(workers), timeout=120))
