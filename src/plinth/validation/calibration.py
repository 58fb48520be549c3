"""Tolerances sized to the data a check meets, and the margins inference widens ranges by.

Inferred suites must pass clean samples of any size from the reference's distribution, so
statistics that vary with the sample (a mean, a null share) are judged against a reference
value with a tolerance computed from the rows at hand, and ranges are widened by how far
the reference's own tail reaches.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LARGEST_SAMPLE",
    "Z_MEAN",
    "Z_NULLS",
    "looks_like_key",
    "mean_tolerance",
    "null_limit",
    "range_margins",
]

#: Standard errors a sample's mean may be from the reference's (a warning-level check).
Z_MEAN = 4.0
#: Standard errors a sample's null share may exceed the reference's (an error-level check).
Z_NULLS = 5.0
#: Inferred ranges hold for clean samples of up to this many rows.
LARGEST_SAMPLE = 1_000_000
#: Extreme values read at each end of a column to size its tail (rows / 1000, within).
_TAIL_K, _TAIL_K_MAX = 10, 200
_KEY_NAME = re.compile(r"(^|[_\-.])(id|key|uuid|guid|code)$|^id[_\-.]", re.IGNORECASE)


def mean_tolerance(reference_std: float, n: int, z: float = Z_MEAN) -> float:
    """How far the mean of ``n`` values may be from the reference mean: z standard errors."""
    return z * reference_std / math.sqrt(max(n, 1))


def null_limit(reference: float, n: int, z: float = Z_NULLS) -> float:
    """The largest null share ``n`` clean rows may show when the reference had ``reference``.

    ``np + z·sqrt(np(1-p)) + z`` nulls: the normal bound plus ``z`` so that small expected
    counts (where the binomial is far from normal) keep the same false-alarm rate.
    """
    if n <= 0:
        return 1.0
    expected = n * reference
    count = expected + z * math.sqrt(expected * (1 - reference)) + (z if reference > 0 else 0)
    return min(1.0, count / n)


def looks_like_key(name: str, family: str, low: Any, high: Any, rows: int) -> bool:
    """Whether a column whose every value is distinct reads as a key, not as a measure.

    A name such as ``id``/``order_id``/``key``, a string column, or integers packed into
    a range not much wider than the rows (sequence numbers). A price in cents that happens
    to be distinct in a small reference is none of those.
    """
    if _KEY_NAME.search(name) or family == "string":
        return True
    if family == "integer" and isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return high - low < 4 * rows
    return False


def _margin(scale: float, rows: int) -> float:
    # P(one of n new values passes max + m) ~ (n / N) exp(-m / scale) for an exponential
    # tail: below 1e-3 for every n up to LARGEST_SAMPLE.
    return scale * (math.log(1000) + math.log(max(1.0, LARGEST_SAMPLE / max(rows, 1))))


def _scales(x: Any) -> tuple[float, float, str] | None:
    """The tail scales below and above ``x``'s range (mean excess over the k-th extreme)."""
    import numpy as np

    rows = int(x.size)
    if rows < 2 * _TAIL_K + 2:
        return None
    # Past the k-th most extreme value the excesses of an exponential-like tail are
    # exponential, their mean its scale; k grows with the rows for a steadier estimate.
    k = min(_TAIL_K_MAX, max(_TAIL_K, rows // 1000))
    part = np.partition(x, [k, rows - k - 1])
    bottom, top = part[: k + 1], part[rows - k - 1 :]
    below = float(np.max(bottom) - np.mean(np.sort(bottom)[:k]))
    above = float(np.mean(np.sort(top)[1:]) - np.min(top))
    return below, above, f"the tails beyond the {k} lowest and highest values"


def range_margins(
    column: pa.ChunkedArray | None,
    low: float,
    high: float,
    quantiles: dict[float, float],
    count: int,
) -> tuple[float, float, str]:
    """How far below the min and above the max a range check reaches, and why.

    From the column's most extreme values when the table is at hand, else from the
    profile's 1 % and 99 % quantiles (a coarser guess of the same tail).
    """
    import numpy as np

    found = None
    log_found = None
    if column is not None:
        x = column.drop_null().to_numpy().astype(np.float64, copy=False)
        x = x[~np.isnan(x)]
        found = _scales(x)
        if found is not None and low > 0:
            log_found = _scales(np.log(x))
        rows = int(x.size)
    elif count >= 1000 and 0.01 in quantiles and 0.99 in quantiles:
        # Past the 1 % quantile lie count / 100 values: the min is ~ln(count / 100) scales out.
        rows, spread = count, math.log(count / 100)
        q01, q99 = quantiles[0.01], quantiles[0.99]
        why = "the spread between the 1%/99% quantiles and the min/max"
        found = (q01 - low) / spread, (high - q99) / spread, why
        if low > 0 and q01 > 0:
            log_found = (
                math.log(q01 / low) / spread,
                math.log(high / q99) / spread,
                why,
            )
    if found is None:
        wide = (high - low) or abs(high) or 1.0
        return wide, wide, "few values: widened by the whole range"
    below, above = _margin(found[0], rows), _margin(found[1], rows)
    if log_found is not None:
        # Positive values often have a heavy (lognormal-like) tail, exponential only on a
        # log scale: take the wider reach of the two.
        below = max(below, low * -math.expm1(-_margin(log_found[0], rows)))
        above = max(above, high * math.expm1(min(_margin(log_found[1], rows), 700.0)))
    return below, above, found[2]
