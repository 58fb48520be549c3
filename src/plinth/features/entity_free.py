"""Entity rows for entity-free retrieval: every entity known at each time of a grid.

``entity_grid(views, times, ...)`` builds the rows ``get_training_set(service, start=,
end=, every=)`` joins. The rule:

* the service's keyed views must all be keyed by the same join keys (in any order); a
  service mixing keys (``driver_id`` in one view, ``driver_id, route`` in another) has no
  single set of entities, so it needs an entity table (no cross product is taken);
* an entity is a distinct non-null join-key tuple seen in the rows of any keyed view;
* at time ``t`` the entities are those whose earliest row (over all keyed views) has an
  event time at or before ``t``: an entity appears from its first value on, and stays
  (with null features once its values expire);
* views with no join keys (global) add no entities; a service of only such views gets one
  row per time.

Rows come ordered by time, then by the entity's first event time, then by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.features.offline import ViewData

__all__ = ["MAX_TIMES", "entity_grid", "instant", "time_grid"]

#: The most times one entity-free call may ask for (a typo in ``every`` is not a hang).
MAX_TIMES = 1_000_000


def instant(value: object, field: str) -> datetime:
    """``value`` (a datetime, a date or an ISO 8601 string) as an aware UTC datetime; naive
    times are UTC, a date is its midnight."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(
                f"{field}: {value!r} is not an ISO 8601 time",
                hint="e.g. '2024-03-01' or '2024-03-01T12:00:00+00:00' (naive means UTC)",
                field=field,
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise UsageError(
        f"{field}: expected a datetime, a date or an ISO 8601 string, got {type(value).__name__}",
        field=field,
    )


def time_grid(start: object, end: object, every: object) -> list[datetime]:
    """``start``, ``start + every``, ... up to and including ``end`` (UTC)."""
    from plinth.features.definitions import parse_ttl

    first = instant(start, "start")
    last = instant(end, "end")
    if last < first:
        raise UsageError(f"end ({last}) is before start ({first})", field="end")
    step = parse_ttl(every, "every") if every is not None else None
    if step is None:
        if last != first:
            raise UsageError(
                "every= is needed when end is after start",
                hint="e.g. every='1d' or every=timedelta(hours=1)",
                field="every",
            )
        return [first]
    if step <= timedelta(0):
        raise UsageError(f"every must be positive, got {step}", field="every")
    count = (last - first) // step + 1
    if count > MAX_TIMES:
        raise UsageError(
            f"start, end and every ask for {count:,} times (at most {MAX_TIMES:,})",
            hint="use a longer every= or a shorter range",
            field="every",
        )
    return [first + i * step for i in range(count)]


def _first_seen(view: ViewData, keys: Sequence[str]) -> pa.Table:
    """Each non-null key tuple of ``view`` with its earliest event time (us, UTC)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = view.table.select([*view.join_keys, view.timestamp])
    column = table.column(view.timestamp)
    dtype = column.type
    if pa.types.is_date(dtype):
        column = column.cast(pa.timestamp("s"))
    elif not pa.types.is_timestamp(dtype):
        raise UsageError(
            f"view {view.name!r}: column {view.timestamp!r} is {dtype}, not a timestamp",
            field="timestamp",
        )
    if column.type.unit == "ns":  # round up: an entity never appears before its first row
        column = pc.ceil_temporal(column, unit="microsecond")
    column = column.cast(pa.timestamp("us", tz="UTC"))
    narrow = pa.table({**{k: table.column(k) for k in keys}, "_first": column})
    narrow = narrow.drop_null()
    return narrow.group_by(list(keys)).aggregate([("_first", "min")])


def _family(dtype: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    return str(dtype)


def entity_grid(
    views: Sequence[ViewData], times: Sequence[datetime], *, entity_timestamp: str
) -> pa.Table:
    """The entity rows (join keys + ``entity_timestamp``) for ``times`` (module docstring)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keyed = [v for v in views if v.join_keys]
    stamps = pa.array(times, type=pa.timestamp("us", tz="UTC"))
    if not keyed:
        return pa.table({entity_timestamp: stamps})
    keys = keyed[0].join_keys
    for view in keyed[1:]:
        if set(view.join_keys) != set(keys):
            raise UsageError(
                f"views {keyed[0].name!r} and {view.name!r} are keyed by different join keys "
                f"({', '.join(keys)} / {', '.join(view.join_keys)}): entity-free retrieval "
                "needs one set of entities",
                hint="pass an entity table: get_training_set(entity_df, service)",
                field="entity_df",
            )
    if entity_timestamp in keys:
        raise UsageError(
            f"entity_timestamp {entity_timestamp!r} is also a join key",
            hint="pass another entity_timestamp= name",
            field="entity_timestamp",
        )
    parts = [_first_seen(v, keys) for v in keyed]
    schema = parts[0].schema
    for i in range(1, len(keyed)):
        view, part = keyed[i], parts[i]
        try:
            if any(_family(part.schema.field(f.name).type) != _family(f.type) for f in schema):
                raise pa.ArrowInvalid("different key types")
            parts[i] = part.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UsageError(
                f"views {keyed[0].name!r} and {view.name!r} have join keys of different "
                f"types ({schema} / {part.schema})",
                hint="cast the keys in one view's source (sql(...)) to the other's type",
                field="entity_df",
            ) from None
    seen = pa.concat_tables(parts).group_by(list(keys)).aggregate([("_first_min", "min")])
    order: list[tuple[str, str]] = [("_first_min_min", "ascending")]
    order += [(k, "ascending") for k in keys]
    seen = seen.sort_by(order)
    first = seen.column("_first_min_min").cast(pa.int64()).to_numpy()
    at = pc.cast(stamps, pa.int64()).to_numpy()
    counts = np.searchsorted(first, at, side="right")
    index = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
    columns: dict[str, Any] = {k: seen.column(k).take(pa.array(index, pa.int64())) for k in keys}
    columns[entity_timestamp] = stamps.take(
        pa.array(np.repeat(np.arange(len(times), dtype=np.int64), counts), pa.int64())
    )
    return pa.table(columns)
