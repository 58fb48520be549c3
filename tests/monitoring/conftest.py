"""Drift fixtures: generated tables whose drifted columns are known."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CATEGORIES = ["AA", "B6", "DL", "UA", "WN", "F9"]
SHARES = [0.35, 0.25, 0.15, 0.1, 0.1, 0.05]
#: Each kind of shift, and the one column it drifts.
SHIFTS = {"mean": "x", "variance": "y", "frequency": "carrier", "unseen": "route"}


def make_table(n: int, seed: int, shift: str | None = None) -> pa.Table:
    """Rows of known distributions; ``shift`` (a key of SHIFTS) drifts one column.

    Columns: x, y (floats), count (int, 60 values), carrier and route (strings), flag
    (bool), level (int, 4 values: tested as categories), id (unique strings: skipped as
    id-like), seen (timestamps: skipped as temporal).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n) + (0.5 if shift == "mean" else 0.0)
    y = 5.0 + rng.normal(0.0, 2.0, n) * (2.0 if shift == "variance" else 1.0)
    shares = [0.1, 0.25, 0.15, 0.1, 0.1, 0.3] if shift == "frequency" else SHARES
    carrier = np.array(CATEGORIES)[rng.choice(6, n, p=shares)]
    route = np.array(["north", "south", "east", "west"])[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])]
    if shift == "unseen":
        new = rng.random(n) < 0.15
        route[new] = np.array(["up", "down"])[rng.integers(0, 2, int(new.sum()))]
    minutes = (rng.integers(0, 10_000, n) * 60).astype("timedelta64[s]")
    return pa.table(
        {
            "x": x,
            "y": y,
            "count": rng.integers(0, 60, n),
            "carrier": pa.array(carrier),
            "route": pa.array(route),
            "flag": rng.random(n) < 0.3,
            "level": rng.integers(1, 5, n),
            "id": pc.binary_join_element_wise(
                f"row-{seed}-", pa.array(np.arange(n)).cast(pa.string()), ""
            ),
            "seen": pa.array(np.datetime64("2024-01-01T00:00:00") + minutes).cast(
                pa.timestamp("us")
            ),
        }
    )
