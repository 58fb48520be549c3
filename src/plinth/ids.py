"""Time-sortable record IDs (UUIDv7, RFC 9562) and the clock every record uses."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_id", "now_ms"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def now_ms() -> int:
    """Milliseconds since the Unix epoch: the unit of every timestamp in the ledger."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A UUIDv7 string; IDs made later in this process sort after earlier ones.

    Within one millisecond a 12-bit counter (seeded randomly) keeps the order monotonic;
    62 random bits keep IDs from different processes apart.
    """
    global _last_ms, _counter
    with _lock:
        ms = now_ms()
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
