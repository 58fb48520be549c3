"""What Arrow and numpy answer exactly for a check, without a query: distinct values,
uniqueness of integer ids, min/max and means of number columns, set membership.

:mod:`plinth.validation.expectations` uses these for the checks they cover (null counts come
from Arrow's metadata there); everything else goes to the one DuckDB query. Every function
is vectorised and exact (no sampling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "SAMPLE",
    "allowed_array",
    "distinct_integers",
    "epoch_us",
    "from_epoch_us",
    "is_dictionary",
    "mean",
    "min_max",
    "naive_timestamp",
    "not_in",
    "numbers",
    "plain_number",
    "plain_string",
]

#: Failing values a check keeps (the runner's SAMPLE_SIZE).
SAMPLE = 5


def is_dictionary(arrow_type: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_dictionary(arrow_type))


def distinct_integers(column: pa.ChunkedArray) -> tuple[int, int, tuple[int, ...]]:
    """Non-null values, distinct values and a few duplicated ones of an integer column.

    Exact, in O(n) or O(n log n): a bitmap over [min, max] when that span is at most 8 bytes
    per value (one byte per possible value: ~5 ms for 1M ids, where DuckDB's
    ``count(DISTINCT)`` takes ~190 ms); otherwise a sort of the values.
    """
    import numpy as np
    import pyarrow.compute as pc

    chunks = [c.to_numpy(zero_copy_only=False) for c in pc.drop_null(column).chunks if len(c)]
    if not chunks:
        return 0, 0, ()
    x = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    n = len(x)
    low, high = int(x.min()), int(x.max())
    span = high - low + 1
    if span <= max(8 * n, 1 << 16):
        seen = np.zeros(span, dtype=np.bool_)
        # In the values' own type for uint64 (they may not fit int64); int64 otherwise
        # (a small type would overflow on the subtraction).
        offsets = x - x.dtype.type(low) if x.dtype == np.uint64 else x.astype(np.int64) - low
        seen[offsets] = True
        distinct = int(np.count_nonzero(seen))
        if distinct == n:
            return n, n, ()
        counts = np.bincount(offsets, minlength=span)  # only on failure: 8 bytes per value
        twice = np.flatnonzero(counts > 1)[:SAMPLE]
        return n, distinct, tuple(low + int(v) for v in twice)
    ordered = np.sort(x)
    repeats = ordered[1:] == ordered[:-1]
    distinct = n - int(np.count_nonzero(repeats))
    if distinct == n:
        return n, n, ()
    twice = np.unique(ordered[1:][repeats])[:SAMPLE]
    return n, distinct, tuple(int(v) for v in twice)


_EPOCH = dt.datetime(1970, 1, 1)


def naive_timestamp(arrow_type: pa.DataType) -> bool:
    """A zone-less timestamp of at most microsecond precision (what datetime holds)."""
    import pyarrow.types as pt

    return bool(pt.is_timestamp(arrow_type) and arrow_type.tz is None and arrow_type.unit != "ns")


def epoch_us(stamp: dt.datetime) -> int:
    """Microseconds since the epoch; naive stamps are UTC, as DuckDB reads them here."""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return (stamp - _EPOCH) // dt.timedelta(microseconds=1)


def from_epoch_us(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)


def plain_number(arrow_type: pa.DataType) -> bool:
    """An integer or float column numpy reads as it is (not decimal, not dictionary)."""
    import pyarrow.types as pt

    return bool(pt.is_integer(arrow_type) or pt.is_floating(arrow_type))


def numbers(column: pa.ChunkedArray, nan_as_null: bool) -> list[Any]:
    """The non-null values of a number column as numpy arrays (zero-copy when no nulls)."""
    import numpy as np
    import pyarrow.compute as pc

    parts = []
    for chunk in column.chunks:
        values = pc.drop_null(chunk) if chunk.null_count else chunk
        x = values.to_numpy(zero_copy_only=False)
        if nan_as_null:
            x = x[~np.isnan(x)]
        if len(x):
            parts.append(x)
    return parts


def min_max(parts: Sequence[Any]) -> list[Any]:
    if not parts:
        return [None, None]
    return [min(x.min() for x in parts).item(), max(x.max() for x in parts).item()]


def mean(parts: Sequence[Any]) -> float | None:
    """The mean, as DuckDB's ``avg``: integers summed exactly, floats pairwise (numpy)."""
    import numpy as np

    n = sum(len(x) for x in parts)
    if not n:
        return None
    if parts[0].dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in SQL
            return sum(float(np.sum(x, dtype=np.float64)) for x in parts) / n
    low, high = min_max(parts)
    if max(abs(low), abs(high)) * n < 2**63:  # no int64 (or uint64) sum can overflow
        return sum(int(x.sum()) for x in parts) / n
    return sum(sum(x.tolist()) for x in parts) / n  # Python ints: exact, slower


def plain_string(arrow_type: pa.DataType) -> bool:
    import pyarrow.types as pt

    return bool(pt.is_string(arrow_type) or pt.is_large_string(arrow_type))


def allowed_array(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array | None:
    """``values`` as an Arrow array of the column's type, for a string or integer column.

    None (the SQL path) for other types, or when a value does not convert exactly (a float
    listed for an integer column, a value beyond the type's range).
    """
    import pyarrow as pa
    import pyarrow.types as pt

    if not (plain_string(arrow_type) or pt.is_integer(arrow_type)):
        return None
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def not_in(column: pa.ChunkedArray, allowed: pa.Array) -> tuple[int, tuple[Any, ...]]:
    """How many non-null values of ``column`` are not in ``allowed``, and a few of them.

    The column's distinct values are tested; its rows are counted only when some fail.
    """
    import pyarrow.compute as pc

    distinct = pc.drop_null(pc.unique(column))
    unexpected = distinct.filter(pc.invert(pc.is_in(distinct, value_set=allowed)))
    if not len(unexpected):
        return 0, ()
    present = pc.drop_null(column)
    failing = len(present) - int(pc.sum(pc.is_in(present, value_set=allowed)).as_py() or 0)
    return failing, tuple(unexpected[:SAMPLE].to_pylist())
