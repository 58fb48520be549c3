"""A feature view's rows as the joins read them: its source narrowed and typed, plus the
values pushed to it (:mod:`plinth.features.push`).

``view_rows(view, join_keys, ctx=ctx)`` loads ``view.source``
(:func:`plinth.features.sources.load_source`), keeps the join keys, the event and created
timestamps and the features asked for, casts each feature to its declared type
(``float64``, ``int64``, ``string``, ``bool``, ``timestamp`` = ``timestamp[us, UTC]``) and
appends the view's push log. A missing column or a value of the wrong kind is a
:class:`~plinth.errors.UsageError` naming the view and the definition's field
(``features.temp``, ``timestamp``, ``entities``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.features.definitions import FeatureView

__all__ = ["ViewRows", "arrow_type", "view_rows"]


@dataclass(frozen=True)
class ViewRows:
    """A view's rows (join keys, timestamps, features; typed) and the dataset versions read."""

    table: pa.Table
    versions: tuple[DatasetVersion, ...]


def arrow_type(feature_type: str) -> pa.DataType:
    """The Arrow type a feature of ``feature_type`` has in training sets."""
    import pyarrow as pa

    return {
        "float64": pa.float64(),
        "int64": pa.int64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[feature_type]


def _castable(source: pa.DataType, feature_type: str) -> bool:
    """Whether a column of ``source`` may hold ``feature_type`` values (no silent
    reinterpretation: a string never becomes a number, a number never a string)."""
    return bool(_castable_any(source, feature_type))


def _castable_any(source: pa.DataType, feature_type: str) -> Any:
    import pyarrow as pa

    if pa.types.is_null(source):
        return True
    if pa.types.is_dictionary(source):
        source = source.value_type
    if feature_type == "float64":
        return (
            pa.types.is_integer(source)
            or pa.types.is_floating(source)
            or (pa.types.is_decimal(source))
        )
    if feature_type == "int64":
        return pa.types.is_integer(source) or pa.types.is_floating(source)
    if feature_type == "string":
        return (
            pa.types.is_string(source)
            or pa.types.is_large_string(source)
            or pa.types.is_string_view(source)
        )
    if feature_type == "bool":
        return pa.types.is_boolean(source)
    return pa.types.is_timestamp(source) or pa.types.is_date(source)


def _cast(column: pa.ChunkedArray, feature_type: str, view: str, name: str) -> pa.ChunkedArray:
    import pyarrow as pa

    field = f"features.{name}"
    if not _castable(column.type, feature_type):
        raise UsageError(
            f"view {view!r}: feature {name!r} is declared {feature_type} but its column is "
            f"{column.type}",
            hint="change the declared type, or convert the column in the source (sql(...))",
            field=field,
        )
    target = arrow_type(feature_type)
    try:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_date(column.type):
            column = column.cast(pa.timestamp("s"))
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UsageError(
            f"view {view!r}: feature {name!r} does not fit {feature_type} ({exc})",
            hint="fractional values cannot be int64: declare float64 or round in the source",
            field=field,
        ) from None


def _narrow(
    table: pa.Table, view: FeatureView, join_keys: Sequence[str], features: Sequence[str]
) -> pa.Table:
    """``table`` cut to keys, timestamps and ``features`` (cast), in that order."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    wanted: list[tuple[str, str]] = [(k, "entities") for k in join_keys]
    wanted.append((view.timestamp, "timestamp"))
    if view.created_timestamp is not None:
        wanted.append((view.created_timestamp, "created_timestamp"))
    wanted.extend((f, f"features.{f}") for f in features)
    for name, field in wanted:
        if name not in table.column_names:
            what = "join key" if field == "entities" else field.partition(".")[0].rstrip("s")
            raise UsageError(
                f"view {view.name!r}: its source has no column {name!r} (the {what})",
                hint=f"the source's columns: {', '.join(table.column_names) or '(none)'}",
                field=field,
            )
        if name in columns:
            continue
        column = table.column(name)
        if field.startswith("features."):
            column = _cast(column, view.features[name], view.name, name)
        columns[name] = column
    return pa.table(columns)


def _pushed_reader() -> Callable[..., pa.Table | None] | None:
    """``plinth.features.push.pushed_table`` when that module provides it."""
    try:
        module = importlib.import_module("plinth.features.push")
    except ModuleNotFoundError as exc:
        if exc.name == "plinth.features.push":
            return None
        raise
    reader = getattr(module, "pushed_table", None)
    return reader if callable(reader) else None


def _conform(pushed: pa.Table, schema: pa.Schema, view: FeatureView) -> pa.Table:
    """Pushed rows with the columns and types of ``schema`` (absent columns are null)."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in pushed.column_names:
            column = pushed.column(field.name)
            if column.type != field.type:
                if field.name in view.features:
                    column = _cast(column, view.features[field.name], view.name, field.name)
                else:
                    column = column.cast(field.type)
            columns.append(column)
        else:
            columns.append(pa.nulls(pushed.num_rows, field.type))
    return pa.table(columns, schema=schema)


def view_rows(
    view: FeatureView,
    join_keys: tuple[str, ...],
    *,
    ctx: Context,
    features: Sequence[str] | None = None,
) -> ViewRows:
    """``view``'s rows: ``join_keys``, its timestamps and ``features`` (default: all of
    them) typed as declared, followed by the rows pushed to it (see the module docstring)."""
    import pyarrow as pa

    from plinth.features.definitions import Source
    from plinth.features.sources import load_source

    names = tuple(view.features) if features is None else tuple(features)
    for name in names:
        if name not in view.features:
            raise UsageError(
                f"view {view.name!r} has no feature {name!r}",
                hint=f"its features: {', '.join(view.features)}",
                field=f"features.{name}",
            )
    assert isinstance(view.source, Source)
    loaded = load_source(view.source, ctx=ctx, field="source")
    table = _narrow(loaded.table, view, join_keys, names)
    reader = _pushed_reader()
    if reader is not None:
        pushed = reader(view, ctx=ctx)
        if pushed is not None and pushed.num_rows:
            extra = _conform(pushed, table.schema, view)
            table = pa.concat_tables([table, extra])
    return ViewRows(table, loaded.versions)
