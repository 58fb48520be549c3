"""Column types and SQL text: dtype families of Arrow types, quoted names and literals.

Shared by the expectations (what each check compiles to), the runner and inference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "families",
    "family_name",
    "in_range",
    "literal",
    "quote",
    "range_text",
    "type_matches",
    "values_text",
]


def quote(name: str) -> str:
    """A SQL identifier, double-quoted with inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a YAML scalar, date or timestamp."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value) if value == value and abs(value) != float("inf") else f"'{value}'::DOUBLE"
        )
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def families(arrow_type: pa.DataType) -> set[str]:
    """The dtype families an arrow type belongs to: int64 -> {integer, numeric}."""
    import pyarrow.types as pt

    t = arrow_type.value_type if pt.is_dictionary(arrow_type) else arrow_type
    if pt.is_integer(t):
        return {"integer", "numeric"}
    if pt.is_floating(t):
        return {"float", "numeric"}
    if pt.is_decimal(t):
        return {"numeric"}
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t):
        return {"string"}
    if pt.is_boolean(t):
        return {"boolean"}
    if pt.is_timestamp(t):
        return {"timestamp", "temporal"}
    if pt.is_date(t):
        return {"date", "temporal"}
    return set()


def type_matches(arrow_type: pa.DataType, wanted: str) -> bool:
    """Whether a column of ``arrow_type`` satisfies ``dtype: wanted``."""
    if wanted in families(arrow_type) or str(arrow_type) == wanted:
        return True
    import pyarrow as pa

    try:
        return bool(pa.type_for_alias(wanted) == arrow_type)
    except (ValueError, KeyError):
        return False


def family_name(arrow_type: pa.DataType) -> str:
    found = families(arrow_type) - {"numeric", "temporal"}
    return next(iter(found)) if found else str(arrow_type)


def range_text(low: Any, high: Any, what: str = "value") -> str:
    """``low <= value <= high``, or the one bound given, for messages."""
    if low is not None and high is not None:
        return f"{low} <= {what} <= {high}"
    return f"{what} >= {low}" if low is not None else f"{what} <= {high}"


def values_text(values: Sequence[Any]) -> str:
    """``one of a, b, c`` (the first eight), for messages."""
    shown = ", ".join(str(v) for v in values[:8])
    return f"one of {shown}" + (f", ... ({len(values)} values)" if len(values) > 8 else "")


def in_range(value: Any, low: Any, high: Any) -> bool:
    """Whether ``value`` is within the bounds given; no value (or NaN) never is."""
    if value is None or value != value:
        return False
    return (low is None or value >= low) and (high is None or value <= high)
