"""The prediction log's rows as Arrow: buffered requests, chunks, tables; memory given back.

Split from :mod:`plinth.serving.predlog` (the buffer and its writer thread): these build one
Arrow table from many requests (a column a request lacks is null for its rows; a column's
type from the model's signature where it converts) and hand freed memory back to the OS.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.serving.lookup import RESERVED

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Chunk", "Request", "batch_table", "estimate", "give_back_memory", "request_table"]


@dataclass(frozen=True)
class Request:
    """One buffered request: references to its decoded values, as the app handed them."""

    request_id: str
    ts_ms: int
    model_version: str
    columns: Mapping[str, Any]
    predictions: Any
    rows: int
    nbytes: int
    types: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Chunk:
    """Buffered requests already turned into one Arrow table by the writer thread: a row
    costs its Arrow bytes there, not the Python objects of its request."""

    table: pa.Table
    rows: int
    nbytes: int
    start_ms: int
    end_ms: int
    versions: frozenset[str]


def estimate(columns: Mapping[str, Any], rows: int) -> int:
    """About the bytes a request's values hold (for callers that give no body size)."""
    size = 64 * (rows + 1)
    for values in columns.values():
        nbytes = getattr(values, "nbytes", None)
        if isinstance(nbytes, int):
            size += nbytes
            continue
        for value in values:
            size += len(value) if isinstance(value, str | bytes) else sys.getsizeof(value)
    return size


def give_back_memory() -> None:
    """Return what a written batch used to the operating system: Arrow's pool keeps freed
    memory for reuse, and so does glibc's heap, so without this a server's resident memory
    ratchets up to its largest batch and stays there (``plinth serve`` also picks Arrow's
    system allocator, which ``malloc_trim`` can release)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def _values(values: Any, rows: int, what: str) -> list[Any]:
    import numpy as np

    if isinstance(values, np.ndarray):
        out: list[Any] = values.tolist() if values.ndim == 1 else list(values)
    else:
        out = list(values)
    if len(out) != rows:
        raise ValueError(f"{what} has {len(out)} values for {rows} predictions")
    return out


def batch_table(requests: list[Request]) -> pa.Table:
    """One Arrow table of many requests, built column by column (a column a request lacks
    is null for its rows)."""
    import pyarrow as pa

    ids: list[str] = []
    ts: list[int] = []
    versions: list[str] = []
    columns: dict[str, list[Any]] = {}
    predictions: list[Any] = []
    total = 0
    for request in requests:
        n = request.rows
        ids.extend([request.request_id] * n)
        ts.extend([request.ts_ms] * n)
        versions.extend([request.model_version] * n)
        for name, values in request.columns.items():
            column = columns.setdefault(str(name), [None] * total)
            column.extend(_values(values, n, f"column {name!r}"))
        total += n
        for column in columns.values():
            if len(column) < total:
                column.extend([None] * (total - len(column)))
        predictions.extend(_values(request.predictions, n, "the predictions"))
    data: dict[str, Any] = {
        "request_id": pa.array(ids, pa.string()),
        "ts": pa.array(ts, pa.timestamp("ms")),
        "model_version": pa.array(versions, pa.string()),
    }
    types: dict[str, str] = {}
    for request in requests:
        for name, alias in (request.types or {}).items():
            types.setdefault(name, alias)
    for name, values in columns.items():
        stored = f"input.{name}" if name in RESERVED else name
        data[stored] = _array(values, _type_of(types, name))
    data["prediction"] = _array(predictions, _type_of(types, "prediction"))
    return pa.table(data)


#: Logged columns whose type never depends on the values (an all-null batch included).
_FIXED_TYPES = {"input_check_failures": "string"}


def _type_of(types: Mapping[str, str] | None, name: str) -> pa.DataType | None:
    """The Arrow type column ``name`` is stored as; None: inferred from the values."""
    import pyarrow as pa

    alias = _FIXED_TYPES.get(name) or (types or {}).get(name)
    if alias is None:
        return None
    try:
        return pa.type_for_alias(alias)
    except (ValueError, KeyError):
        return None


def _array(values: Any, type_: pa.DataType | None) -> pa.Array:
    """``values`` as an Arrow array of ``type_`` (inferred when None, or when the values
    do not convert: the signature's type is a preference, never a reason to drop rows)."""
    import pyarrow as pa

    if type_ is not None:
        try:
            return pa.array(values, type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        array = pa.array(values)
        try:
            return array.cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return array
    return pa.array(values)


def request_table(request: Request) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    n = request.rows
    data: dict[str, Any] = {
        "request_id": pa.array([request.request_id] * n, pa.string()),
        "ts": pa.array([request.ts_ms] * n, pa.timestamp("ms")),
        "model_version": pa.array([request.model_version] * n, pa.string()),
    }
    for name, values in request.columns.items():
        column = f"input.{name}" if name in RESERVED else str(name)
        array = _array(values, _type_of(request.types, str(name)))
        if len(array) != n:
            raise ValueError(f"column {name!r} has {len(array)} values for {n} predictions")
        data[column] = array
    predictions = request.predictions
    if isinstance(predictions, np.ndarray) and predictions.ndim > 1:
        predictions = list(predictions)  # one list per row (probabilities, multi-output)
    data["prediction"] = _array(predictions, _type_of(request.types, "prediction"))
    return pa.table(data)
