"""Materialization: the latest row per entity key of each feature view, written to the
online store, incrementally and recorded in the ledger.

``materialize(end=...)`` takes, for each feature view's newest applied version, the window
``(start, end]``: ``start`` is where the last materialization of that version ended (none:
from the beginning), ``end`` the given time (default: now), in whole milliseconds. One
DuckDB query over the view's rows (:func:`plinth.features.rows.view_rows`: its source and
the rows pushed to it) picks, per key, the row with the latest event time in the window;
ties go to the latest created timestamp (a missing one counts as the earliest), then to the
later row, exactly as the offline join breaks them. The chosen rows are written in one bulk
write (the store keeps the newer event: an older event never replaces a newer one), then
the materialization is recorded (``start_ms``, ``end_ms``, ``rows``, the store). If the
write fails nothing is recorded, so the next run covers the same window again.

A window is incremental only over the same sources: each materialization records what its
rows were read from (the dataset versions, and each Parquet file's size and modification
time). When a source has changed since — a new dataset version, a rewritten file — the view
is materialized from the beginning again (``start`` None), so rows that arrived late with an
event time inside a window already done (a new plane in a static table, a corrected day)
reach the online store too; the store's event-time rule keeps newer entries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import Materialization
    from plinth.features.definitions import FeatureView

__all__ = ["materialize"]

_PER_MS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}

# Positional names only: no user-supplied column name is ever spliced into SQL.
_LATEST = """
SELECT r FROM (
  SELECT r, row_number() OVER (
    PARTITION BY {keys} ORDER BY ts DESC, c DESC NULLS LAST, r DESC
  ) AS n
  FROM plinth_rows
  WHERE {not_null} AND ts * $scale > $start AND ts * $scale <= $end
) WHERE n = 1
ORDER BY r
"""


def _end_ms(end: datetime | str | None) -> int:
    if end is None:
        when = datetime.now(UTC)
    elif isinstance(end, str):
        try:
            when = datetime.fromisoformat(end)
        except ValueError:
            raise UsageError(
                f"end: cannot read the time {end!r}",
                hint="give an ISO 8601 time, e.g. 2026-03-01T12:00:00+00:00",
                field="end",
            ) from None
    elif isinstance(end, datetime):
        when = end
    else:
        raise UsageError(f"end must be a datetime, not {type(end).__name__}", field="end")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _instants(column: pa.ChunkedArray, name: str, view: str) -> tuple[pa.ChunkedArray, str]:
    """``column`` as integers in its own unit (naive read as UTC) and that unit."""
    import pyarrow as pa

    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))
    if not pa.types.is_timestamp(column.type):
        raise UsageError(
            f"view {view!r}: column {name!r} is {column.type}, not a timestamp",
            hint="convert it in the view's source (sql(...)), e.g. CAST(col AS TIMESTAMP)",
            field="timestamp",
        )
    unit = column.type.unit
    return column.cast(pa.timestamp(unit)).cast(pa.int64()), unit


def _latest(
    table: pa.Table, view: FeatureView, keys: tuple[str, ...], start: int | None, end: int
) -> pa.Table:
    """The latest row per key of ``table`` with ``start < event <= end`` (milliseconds)."""
    import pyarrow as pa

    from plinth.guards.sql import cursor

    ts, unit = _instants(table.column(view.timestamp), view.timestamp, view.name)
    if view.created_timestamp is not None:
        created, _ = _instants(
            table.column(view.created_timestamp), view.created_timestamp, view.name
        )
    else:
        created = pa.chunked_array([pa.nulls(table.num_rows, pa.int64())])
    narrow = {f"k{i}": table.column(k) for i, k in enumerate(keys)}
    narrow.update(ts=ts, c=created, r=pa.array(range(table.num_rows), pa.int64()))
    # Compare in the finer of the column's unit and milliseconds, as whole numbers.
    per_ms = _PER_MS[unit]
    if per_ms is None:  # seconds: times 1000 is milliseconds
        scale, lo, hi = 1000, start, end
    else:
        scale, lo, hi = 1, None if start is None else start * per_ms, end * per_ms
    query = _LATEST.format(
        keys=", ".join(f"k{i}" for i in range(len(keys))),
        not_null=" AND ".join(f"k{i} IS NOT NULL" for i in range(len(keys))),
    )
    con = cursor()
    try:
        con.register("plinth_rows", pa.table(narrow))
        low = -(2**63) if lo is None else lo
        params = {"scale": scale, "start": low, "end": hi}
        rows: pa.Table = con.sql(query, params=params).to_arrow_table()
    finally:
        con.close()
    return table.take(rows.column("r"))


def _one(record: Any, view: FeatureView, end_ms: int, *, ctx: Context) -> Materialization | None:
    from plinth.features.push import join_keys_of
    from plinth.features.rows import view_rows

    pid = ctx.project.id
    last = ctx.ledger.features.last_materialization(pid, view.name, record.id)
    keys = join_keys_of(view, ctx=ctx)
    rows = view_rows(view, keys, ctx=ctx)
    sources = _fingerprint(view, rows.versions, ctx=ctx)
    start_ms = None if last is None or last.sources != sources else last.end_ms
    if start_ms is not None and end_ms <= start_ms:
        return None  # this window was materialized already, from the same sources
    latest = _latest(rows.table, view, keys, start_ms, end_ms)
    store = ctx.online_store
    store.write_columns(
        view.name,
        [latest.column(k) for k in keys],
        {f: latest.column(f) for f in view.features},
        _utc_events(latest.column(view.timestamp)),
        view.features,
    )
    return ctx.ledger.features.record_materialization(
        record,
        start_ms=start_ms,
        end_ms=end_ms,
        rows=latest.num_rows,
        store=store.describe(),
        sources=sources,
    )


def _fingerprint(view: FeatureView, versions: Any, *, ctx: Context) -> list[str]:
    """What ``view``'s rows were read from: dataset version ids, and for each Parquet file
    its path, size and modification time (sorted)."""
    from plinth.features.definitions import Source
    from plinth.guards.paths import safe_join

    out = [f"dataset_version:{v.id}" for v in versions]
    assert isinstance(view.source, Source)
    parts = [view.source, *(inner for _, inner in view.source.tables)]
    for part in parts:
        if part.kind == "parquet" and part.path is not None:
            path = safe_join(ctx.settings.root, part.path)
            try:
                st = path.stat()
                out.append(f"parquet:{part.path}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                out.append(f"parquet:{part.path}:missing")
    return sorted(out)


def _utc_events(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The event times as UTC microseconds (naive read as UTC, finer units truncated)."""
    import pyarrow as pa

    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))
    if column.type.tz is None:
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return column.cast(pa.timestamp("us", tz="UTC"), safe=False)


def materialize(
    *,
    end: datetime | str | None = None,
    views: list[str] | str | None = None,
    ctx: Context | None = None,
) -> list[Materialization]:
    """Write each feature view's latest values since its last materialization to the
    online store; returns the materializations recorded (views with nothing new to cover
    are skipped). ``views`` limits it to some views (names, or ``"a,b"``). Example::

        materialize(end=datetime(2026, 3, 1, tzinfo=UTC), views=["weather"])
    """
    from plinth.context import resolve_context
    from plinth.features.definitions import FeatureView, from_spec

    ctx = resolve_context(ctx)
    end_ms = _end_ms(end)
    records = ctx.ledger.features.latest_definitions(ctx.project.id, "feature_view")
    if views is not None:
        wanted = [v.strip() for v in views.split(",")] if isinstance(views, str) else list(views)
        wanted = [v for v in wanted if v]
        names = {r.name for r in records}
        for name in wanted:
            if name not in names:
                raise NotFoundError(
                    f"no feature view {name!r} in this project",
                    hint="plinth features list shows the views; apply a view first",
                    field="views",
                )
        records = [r for r in records if r.name in set(wanted)]
    done: list[Materialization] = []
    for record in records:
        view = from_spec("feature_view", record.name, record.spec)
        assert isinstance(view, FeatureView)
        result = _one(record, view, end_ms, ctx=ctx)
        if result is not None:
            done.append(result)
    return done
