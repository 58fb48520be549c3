"""The point-in-time join: entity rows with the feature values valid at their time.

For each entity row and each view, the value taken is that of the view row that

1. has the entity row's join-key values (a null key matches nothing),
2. has an event time at or before the entity row's time (``event <= entity``),
3. among those, has the latest event time; ties of equal event time go to the latest
   created timestamp (a missing one counts as the earliest), then to the later row of the
   view's table;

and that row is used only while ``entity - ttl <= event`` (TTL inclusive; no TTL, no
limit). Otherwise the view's features are null. Every entity row comes back once, in input
order (duplicate rows kept), with its columns unchanged. A null feature value in the chosen
row stays null: an earlier value is not carried forward.

Time zones: every time is compared as an instant. A tz-aware column is exact; a naive one
(and a ``date``, at midnight) is read as UTC. Times are compared as whole numbers in the
finest unit among the columns involved, so nanoseconds are exact.

The join runs in DuckDB through :mod:`plinth.guards.sql` on narrow Arrow tables whose
columns are renamed to plinth's own positional names: no user-supplied column name or
value is ever spliced into SQL. That is what lets it run, given ``spill_root``, on
:func:`plinth.guards.sql.spill_connection`, which spills to disk past ``memory_limit``
(a sandbox where SQL may reach the spill folder, so one that must never see user text).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SEPARATOR", "ViewData", "point_in_time_join"]

#: Between a view's name and a feature's in ``full_names=True`` output: ``view__feature``.
SEPARATOR = "__"

_UNITS = ("s", "ms", "us", "ns")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True)
class ViewData:
    """One feature view's rows and the columns that key and time them.

    ``table`` holds ``join_keys``, ``timestamp`` (the event time), ``created_timestamp``
    when given (breaks ties of equal event time: the latest wins) and ``features``.
    ``ttl`` is how old a value may be at the entity's time and still be used (inclusive).
    """

    name: str
    join_keys: tuple[str, ...]
    timestamp: str
    created_timestamp: str | None
    ttl: timedelta | None
    features: tuple[str, ...]
    table: pa.Table


def point_in_time_join(
    entities: Any,
    views: Sequence[ViewData],
    *,
    entity_timestamp: str = "event_timestamp",
    full_names: bool = False,
    spill_root: Path | None = None,
    memory_limit: str | None = None,
) -> pa.Table:
    """``entities`` (Arrow, pandas or polars) with each view's features as of each row's time.

    Feature columns are named after the feature (``full_names=False``) or
    ``view__feature`` (``full_names=True``); a name that two views share, or that is
    already an entity column, is a :class:`UsageError` asking for ``full_names=True``.
    See the module's docstring for the exact rules. With ``spill_root`` (a folder plinth
    owns, e.g. ``ctx.settings.data_dir / "tmp"``) DuckDB spills what does not fit in
    ``memory_limit`` ("4GB"; DuckDB's default is 80% of RAM) to a private folder in it;
    without one, a join past the limit fails with DuckDB's out-of-memory error.
    """
    import pyarrow as pa

    from plinth.tables import to_arrow

    table = to_arrow(entities, field="entities")
    views = list(views)
    _check_views(views)
    view_tables = [to_arrow(v.table, field=f"views[{v.name!r}].table") for v in views]
    _check_columns(table, "entities", [entity_timestamp], "entities")
    names = _output_names(table, views, full_names)
    unit = _finest_unit(table, views, view_tables, entity_timestamp)

    # The entity side: row number, time and every join key any view uses, renamed.
    key_names: list[str] = []
    for view in views:
        _check_columns(table, "entities", view.join_keys, f"views[{view.name!r}].join_keys")
        key_names.extend(k for k in view.join_keys if k not in key_names)
    narrow = {
        "r": _row_numbers(table.num_rows),
        "ts": _instants(table.column(entity_timestamp), unit, f"entities.{entity_timestamp}"),
    }
    for i, key in enumerate(key_names):
        narrow[f"k{i}"] = table.column(key)
    entity_side = pa.table(narrow)

    with _database(spill_root, memory_limit) as con:
        con.register("plinth_entities", entity_side)
        out = table
        for view, view_table, view_names in zip(views, view_tables, names, strict=True):
            keys = [f"k{key_names.index(k)}" for k in view.join_keys]
            features = _join_one(con, view, view_table, keys, table, unit)
            if features.num_rows != table.num_rows:  # pragma: no cover - the join's contract
                raise AssertionError(f"view {view.name!r}: {features.num_rows} rows back")
            for i, name in enumerate(view_names):
                out = out.append_column(name, features.column(f"f{i}"))
    return out


@contextlib.contextmanager
def _database(spill_root: Path | None, memory_limit: str | None) -> Iterator[Any]:
    """Where the join runs: a spill sandbox (its SQL is plinth's own: no user text), else
    the shared sandbox's cursor, or a sandbox of its own when a memory limit is asked."""
    from plinth.guards import sql

    if spill_root is not None:
        with sql.spill_connection(spill_root, memory_limit=memory_limit) as con:
            yield con
        return
    con = sql.cursor() if memory_limit is None else sql.connect(memory_limit=memory_limit)
    try:
        yield con
    finally:
        con.close()


def _join_one(
    con: Any, view: ViewData, table: pa.Table, keys: list[str], entities: pa.Table, unit: str
) -> pa.Table:
    """The view's features (``f0``, ``f1``, ...) for every entity row, in row order."""
    import pyarrow as pa

    where = f"views[{view.name!r}]"
    needed = [*view.join_keys, view.timestamp, *view.features]
    if view.created_timestamp is not None:
        needed.append(view.created_timestamp)
    _check_columns(table, f"view {view.name!r}", needed, f"{where}.table")
    narrow: dict[str, Any] = {}
    for key, alias in zip(view.join_keys, keys, strict=True):
        _check_key_types(entities.column(key).type, table.column(key).type, view, key)
        narrow[alias] = table.column(key)
    narrow["ts"] = _instants(table.column(view.timestamp), unit, f"{where}.timestamp")
    if view.created_timestamp is not None:
        narrow["cr"] = _instants(
            table.column(view.created_timestamp), unit, f"{where}.created_timestamp"
        )
    narrow["r"] = _row_numbers(table.num_rows)
    for i, feature in enumerate(view.features):
        narrow[f"f{i}"] = table.column(feature)
    con.register("plinth_view", pa.table(narrow))

    # Only plinth's own names and integers below: nothing a user wrote reaches the SQL.
    # m: the event time each entity row takes (ASOF: the latest at or before its time);
    # w: for just those (key, time) pairs, the one row that wins the tie;
    # then each entity row gets that row's features while within the TTL.
    fs = [f"f{i}" for i in range(len(view.features))]
    not_null = "".join(f"{k} IS NOT NULL AND " for k in keys)
    on = "".join(f"e.{k} = v.{k} AND " for k in keys) + "e.ts >= v.ts"
    same = "".join(f"p.{k} = d.{k} AND " for k in keys) + "p.ts = d.vts"
    back = "".join(f"m.{k} = w.{k} AND " for k in keys) + "m.vts = w.ts"
    order = ("p.cr DESC NULLS LAST, " if view.created_timestamp is not None else "") + "p.r DESC"
    if view.ttl is None:
        valid = "TRUE"
    else:
        valid = f"m.ets::HUGEINT - m.vts <= {_ttl_units(view.ttl, unit)}"
    # plinth's own column names and integers only (S608 does not apply):
    sql = (
        f"WITH m AS (SELECT e.r, {''.join(f'e.{k}, ' for k in keys)}e.ts AS ets, v.ts AS vts"  # noqa: S608
        f" FROM plinth_entities e ASOF LEFT JOIN"
        f" (SELECT {''.join(f'{k}, ' for k in keys)}ts FROM plinth_view"
        f" WHERE {not_null}ts IS NOT NULL) v ON {on}),"
        f" w AS (SELECT {''.join(f'p.{k}, ' for k in keys)}p.ts"
        f"{''.join(f', p.{f}' for f in fs)} FROM plinth_view p SEMI JOIN"
        f" (SELECT DISTINCT {''.join(f'{k}, ' for k in keys)}vts FROM m"
        f" WHERE vts IS NOT NULL AND {valid}) d ON {same}"
        f" QUALIFY row_number() OVER (PARTITION BY {''.join(f'p.{k}, ' for k in keys)}p.ts"
        f" ORDER BY {order}) = 1)"
        f" SELECT m.r{''.join(f', CASE WHEN {valid} THEN w.{f} END AS {f}' for f in fs)}"
        f" FROM m LEFT JOIN w ON {back} ORDER BY m.r"
    )
    try:
        result: pa.Table = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("plinth_view")
    return result


def _row_numbers(n: int) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    return pa.array(np.arange(n, dtype=np.int64))


def _check_views(views: list[ViewData]) -> None:
    seen: set[str] = set()
    for i, view in enumerate(views):
        if not isinstance(view, ViewData):
            raise UsageError(
                f"views[{i}] is a {type(view).__name__}, not a ViewData",
                hint="pass plinth.features.ViewData(name, join_keys, timestamp, ...)",
                field=f"views[{i}]",
            )
        if view.name in seen:
            raise UsageError(f"two views are named {view.name!r}", field=f"views[{i}].name")
        seen.add(view.name)
        if view.ttl is not None and view.ttl < timedelta(0):
            raise UsageError(
                f"view {view.name!r} has a negative ttl ({view.ttl})",
                hint="a ttl is how old a value may be: zero or more, or None for no limit",
                field=f"views[{view.name!r}].ttl",
            )


def _check_columns(table: pa.Table, what: str, columns: Sequence[str], field: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise UsageError(
            f"{what} has no column {', '.join(repr(c) for c in missing)}",
            hint=f"its columns: {', '.join(table.column_names)}",
            field=field,
        )
    duplicated = sorted({c for c in columns if table.column_names.count(c) > 1})
    if duplicated:
        raise UsageError(f"{what} has more than one column named {duplicated[0]!r}", field=field)


def _check_key_types(entity: pa.DataType, feature: pa.DataType, view: ViewData, key: str) -> None:
    import pyarrow as pa

    def family(t: pa.DataType) -> str:
        if pa.types.is_integer(t):
            return "integer"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return "string"
        return str(t)

    if family(entity) != family(feature):
        raise UsageError(
            f"join key {key!r} is {entity} in the entities and {feature} in view {view.name!r}",
            hint="cast one side so both have the same type",
            field=f"views[{view.name!r}].join_keys",
        )


def _output_names(table: pa.Table, views: list[ViewData], full_names: bool) -> list[list[str]]:
    taken = dict.fromkeys(table.column_names, "an entity column")
    names: list[list[str]] = []
    for view in views:
        ours: list[str] = []
        for feature in view.features:
            name = f"{view.name}{SEPARATOR}{feature}" if full_names else feature
            if name in taken:
                raise UsageError(
                    f"feature {feature!r} of view {view.name!r} would be named {name!r}, "
                    f"which is already {taken[name]}",
                    hint="pass full_names=True to name features view__feature"
                    if not full_names
                    else "rename the view, the feature or the entity column",
                    field=f"views[{view.name!r}].features",
                )
            taken[name] = f"a feature of view {view.name!r}"
            ours.append(name)
        names.append(ours)
    return names


def _time_unit(dtype: pa.DataType) -> str | None:
    """The unit of a timestamp or date type ("s" for a date), None for anything else."""
    import pyarrow as pa

    if pa.types.is_timestamp(dtype):
        return str(dtype.unit)
    if pa.types.is_date(dtype):
        return "s"
    return None


def _finest_unit(
    table: pa.Table, views: list[ViewData], view_tables: list[pa.Table], entity_timestamp: str
) -> str:
    columns = [(table, entity_timestamp, f"entities.{entity_timestamp}")]
    for view, view_table in zip(views, view_tables, strict=True):
        where = f"views[{view.name!r}]"
        for attr in ("timestamp", "created_timestamp"):
            name = getattr(view, attr)
            if name is not None:
                _check_columns(view_table, f"view {view.name!r}", [name], f"{where}.{attr}")
                columns.append((view_table, name, f"{where}.{attr}"))
    finest = 0
    for source, name, field in columns:
        dtype = source.column(name).type
        unit = _time_unit(dtype)
        if unit is None:
            raise UsageError(
                f"column {name!r} is {dtype}, not a timestamp or a date",
                hint="convert it first (pandas: pd.to_datetime; polars: str.to_datetime)",
                field=field,
            )
        finest = max(finest, _UNITS.index(unit))
    return _UNITS[finest]


def _instants(column: pa.ChunkedArray, unit: str, field: str) -> pa.ChunkedArray:
    """A timestamp or date column as int64 counts of ``unit`` since the epoch, in UTC."""
    import pyarrow as pa

    dtype = column.type
    try:
        if pa.types.is_date(dtype):
            column = column.cast(pa.timestamp("s"))
            dtype = column.type
        # Naive is UTC: Arrow keeps every timestamp as a UTC count, so the cast is exact.
        column = column.cast(pa.timestamp(unit, tz=dtype.tz))
        return column.cast(pa.int64())
    except pa.ArrowInvalid as exc:
        raise UsageError(
            f"{field}: a time does not fit in {unit} since the epoch ({exc})", field=field
        ) from None


def _ttl_units(ttl: timedelta, unit: str) -> int:
    """``ttl`` in whole ``unit`` (rounded down: the boundary stays exact on integers)."""
    micro = (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds
    return micro * _PER_SECOND[unit] // 1_000_000
