"""Column-wise encoding for :meth:`OnlineStore.write_columns`: the same stored entries as
:meth:`OnlineStore.write`, built one column at a time.

A column is an Arrow ``Array`` or ``ChunkedArray`` or any Python sequence. Arrow columns of
the feature's own type take a fast path: the values are checked by their Arrow type (an
``int64`` column cannot hold a float) and turned into their JSON text column by column,
timestamps as integer microseconds computed by Arrow. Every other column (another Arrow
type, a list, a numpy array) goes value by value through the row-wise checks, so what is
accepted, refused or left out as null is the same as for ``write``, and so is the stored
text (byte for byte: the standard library's float and string encodings, which orjson does
not share: it writes ``1e+308`` as ``1e308`` and ``NaN`` as ``null``).

The one difference: a batch with several bad values reports the first found column by
column, where ``write`` reports the first row by row; either way nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from plinth.errors import UsageError
from plinth.storage.online import (
    _DUMPS,
    _INT64,
    Encoded,
    _encode_basestring,
    _encode_value,
    _micros,
    encode_key,
)

__all__ = ["encode_columns"]

_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_BOOL = {True: "true", False: "false"}
_TO_MICROS = {"s", "ms", "us"}  # units Arrow casts to microseconds exactly


def encode_columns(
    view: str,
    keys: Sequence[Any],
    columns: Mapping[str, Any],
    events: Any,
    kinds: Mapping[str, str],
) -> list[Encoded]:
    """The encoded rows of a column batch (``kinds``: checked feature name -> type)."""
    if not isinstance(columns, Mapping):
        raise UsageError(
            f"view {view!r}: columns must map each feature name to its values", field="columns"
        )
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise UsageError(
            f"view {view!r}: keys must be a list of key columns, one per join key",
            hint="e.g. keys=[table.column('origin')], or [[1, 2, 3]] for three integer keys",
            field="key",
        )
    event_list = _events(view, _arrow(events))
    n = len(event_list)
    key_texts = _keys(view, [_sized(view, "key", _arrow(k), n) for k in keys], n)
    fragments: list[list[str | None]] = []
    for name, column in columns.items():
        kind = kinds.get(name)
        if kind is None:
            raise UsageError(
                f"view {view!r}: unknown feature {name!r}",
                hint="name it in features, with its type",
                field=f"features.{name}",
            )
        fragments.append(_fragments(name, kind, _sized(view, name, _arrow(column), n)))
    if not fragments:
        return [(key, ts, "{}") for key, ts in zip(key_texts, event_list, strict=True)]
    if len(fragments) == 1:
        vals = ["{}" if f is None else "{" + f + "}" for f in fragments[0]]
    else:
        vals = [
            "{" + ",".join([f for f in row if f is not None]) + "}"
            for row in zip(*fragments, strict=True)
        ]
    return list(zip(key_texts, event_list, vals, strict=True))


def _arrow(column: Any) -> Any:
    """A ChunkedArray as one Array (dictionaries decoded); anything else as it is."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        column = (
            column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        )  # zero chunks combine to an empty array
    if isinstance(column, pa.Array) and pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def _sized(view: str, name: str, column: Any, n: int) -> Any:
    try:
        if isinstance(column, str | bytes):
            raise TypeError
        size = len(column)
    except TypeError:
        raise UsageError(
            f"view {view!r}: {name} values must be an Arrow array or a sequence, "
            f"not {type(column).__name__}",
            field="key" if name == "key" else f"features.{name}",
        ) from None
    if size != n:
        raise UsageError(
            f"view {view!r}: {name} has {size} values but there are {n} event timestamps",
            hint="give every column one value per row",
            field="key" if name == "key" else f"features.{name}",
        )
    return column


def _python(column: Any) -> list[Any]:
    import pyarrow as pa

    return column.to_pylist() if isinstance(column, pa.Array) else list(column)


def _events(view: str, column: Any) -> list[int]:
    """Event times as integer microseconds: an Arrow timestamp column (naive is UTC), or
    integer microseconds, or ``datetime`` values."""
    import pyarrow as pa

    if isinstance(column, pa.Array) and not column.null_count:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.unit in _TO_MICROS:
            micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
            return list(micros.to_pylist())
        if pa.types.is_integer(kind) and kind != pa.uint64():
            return list(column.cast(pa.int64()).to_pylist())
    try:
        values = _python(column)
    except TypeError:
        raise UsageError(
            f"view {view!r}: event timestamps must be an Arrow array or a sequence",
            field="event_timestamp",
        ) from None
    out: list[int] = []
    for value in values:
        if type(value) is int:
            if not _INT64[0] <= value <= _INT64[1]:
                raise UsageError(
                    f"event_timestamp {value} is out of int64 range", field="event_timestamp"
                )
            out.append(value)
        else:
            out.append(_micros(value, "event_timestamp"))
    return out


def _keys(view: str, columns: list[Any], n: int) -> list[str]:
    """The canonical key text of each row (as :func:`encode_key`)."""
    import pyarrow as pa

    if not columns:
        raise UsageError(f"view {view!r}: an entity key needs at least one column", field="key")
    parts: list[list[str]] = []
    for column in columns:
        if not isinstance(column, pa.Array) or column.null_count:
            break
        kind = column.type
        if pa.types.is_integer(kind) and kind != pa.uint64():
            parts.append(list(map(str, column.cast(pa.int64()).to_pylist())))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            parts.append(list(map(_encode_basestring, column.to_pylist())))
        else:
            break
    else:
        if len(parts) == 1:
            return ["[" + p + "]" for p in parts[0]]
        return ["[" + ",".join(row) + "]" for row in zip(*parts, strict=True)]
    # Some column is not plainly integers or strings: check each key as write does.
    values = [_python(column) for column in columns]
    if len(values) == 1:
        return [encode_key(key) for key in values[0]]
    return [encode_key(key) for key in zip(*values, strict=True)]


def _float_text(value: float) -> str:
    text = repr(value)
    return _NONFINITE.get(text, text)


def _fragments(name: str, kind: str, column: Any) -> list[str | None]:
    """``"name":value`` JSON text for each row, ``None`` where the value is null."""
    import pyarrow as pa

    prefix = _encode_basestring(name) + ":"
    if isinstance(column, pa.Array):
        arrow = column.type
        if pa.types.is_null(arrow):
            return [None] * len(column)
        fast: list[str | None] | None = None
        if kind == "float64" and pa.types.is_floating(arrow):
            values = column.cast(pa.float64()).to_pylist()
            fast = [None if v is None else prefix + _float_text(v) for v in values]
        elif kind == "int64" and pa.types.is_integer(arrow) and arrow != pa.uint64():
            values = column.cast(pa.int64()).to_pylist()
            fast = [None if v is None else prefix + str(v) for v in values]
        elif kind == "string" and (pa.types.is_string(arrow) or pa.types.is_large_string(arrow)):
            fast = [
                None if v is None else prefix + _encode_basestring(v) for v in column.to_pylist()
            ]
        elif kind == "bool" and pa.types.is_boolean(arrow):
            fast = [None if v is None else prefix + _BOOL[v] for v in column.to_pylist()]
        elif kind == "timestamp" and pa.types.is_timestamp(arrow) and arrow.unit in _TO_MICROS:
            micros = column.cast(pa.timestamp("us", tz=arrow.tz)).cast(pa.int64())
            fast = [None if v is None else prefix + str(v) for v in micros.to_pylist()]
        if fast is not None:
            return fast
    # Value by value, exactly as write: None (and NaN outside float64) is null.
    where = f"features.{name}"
    out: list[str | None] = []
    for value in _python(column):
        if value is None or (isinstance(value, float) and kind != "float64" and math.isnan(value)):
            out.append(None)
        else:
            out.append(prefix + _DUMPS(_encode_value(value, kind, where)))
    return out
