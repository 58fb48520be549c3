"""The SQLite online store writes a batch in key order (a B-tree walk, not random pages):
what is stored must not depend on that order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from plinth.storage.online_sqlite import SqliteOnlineStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FEATURES = {"count": "int64"}


def test_equal_keys_far_apart_in_a_batch_keep_batch_order(tmp_path: Path) -> None:
    """Sorting by key must be stable: of two rows with one key and one event time, the
    later in the batch wins, even with other keys between them and before them."""
    store = SqliteOnlineStore(tmp_path / "online.db")
    try:
        store.write_columns(
            "v",
            [pa.array(["z", "c", "a", "c", "b", "c"])],
            {"count": pa.array([1, 10, 2, 11, 3, 12])},
            pa.array([T0] * 6),
            FEATURES,
        )
        assert store.read("v", ["a", "b", "c", "z"], FEATURES)["count"] == [2, 3, 12, 1]
    finally:
        store.close()


def test_a_shuffled_batch_stores_every_key_with_its_newest_event(tmp_path: Path) -> None:
    """A few thousand integer keys (their texts sort apart from their numbers: "[10]" <
    "[9]"), each twice with different event times, shuffled: every key reads its newest."""
    rng = random.Random(17)
    keys = list(range(3_000)) * 2
    events = [T0 + timedelta(seconds=i // 3_000) for i in range(len(keys))]  # 2nd copy newer
    counts = [k + (i // 3_000) * 100_000 for i, k in enumerate(keys)]
    order = list(range(len(keys)))
    rng.shuffle(order)
    store = SqliteOnlineStore(tmp_path / "online.db")
    try:
        written = store.write_columns(
            "v",
            [pa.array([keys[i] for i in order], pa.int64())],
            {"count": pa.array([counts[i] for i in order], pa.int64())},
            pa.array([events[i] for i in order], pa.timestamp("us", tz="UTC")),
            FEATURES,
        )
        assert written == 6_000
        wanted = rng.sample(range(3_000), 500)
        got = store.read("v", wanted, FEATURES)["count"]
        assert got == [k + 100_000 for k in wanted]
    finally:
        store.close()
