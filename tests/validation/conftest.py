"""Validation fixtures: a generated table of known shape, clean or with injected faults."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

CARRIERS = ["AA", "B6", "DL", "UA", "WN"]


def make_table(seed: int, n: int = 4000) -> pa.Table:
    """Flights-like rows: a unique id, a bounded float, a small int, a category, a code."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1)
    return pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64) + seed * 1_000_000),
            "distance": pa.array(rng.uniform(100.0, 2000.0, n)),
            "delay": pa.array(rng.normal(10.0, 5.0, n)),
            "passengers": pa.array(rng.integers(1, 300, n)),
            "carrier": pa.array(rng.choice(CARRIERS, n)),
            "tailnum": pa.array([f"N{v:05d}" for v in rng.integers(0, 99999, n)]),
            "departed": pa.array(
                [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 30, n)],
                pa.timestamp("us"),
            ),
        }
    )


@pytest.fixture
def table() -> pa.Table:
    return make_table(1)
