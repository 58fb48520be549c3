"""The point-in-time join sharded by entity key over Ray tasks (``features_engine: ray``).

Each group of views keyed by the same join keys is split into ``features_shards`` shards
(0: the cluster's CPUs) by a hash of those keys, the entity rows and the views' rows alike,
so every key's rows meet in one shard. Each shard's slices are written as Parquet to the
artifact store (content-addressed: an identical slice is stored once); a Ray task gets
only their digests and the store's settings, reads them back (verified), runs
:func:`plinth.features.offline.point_in_time_join` on them (a DuckDB join in plinth's SQL
sandbox) and returns the features with each entity row's number. The driver puts the rows
back in entity order. Views with no join keys are broadcast: their rows go to every shard
of the first group (or, with no keyed view, the entity rows are split by row number).

The answer is the DuckDB engine's, row for row: the same function runs on each slice, and a
key's rows are never split. Inputs are checked on the driver first (the same checks, on
empty tables), so bad input fails with the same :class:`~plinth.errors.UsageError`.

The artifact store must be one the workers can read: a folder they see (one machine, or a
shared file system) or S3. Shard files are not recorded anywhere; ``plinth gc`` removes
them. Ray is imported only here (the ``ray`` extra); the DuckDB default never loads it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.features.offline import ViewData

__all__ = ["StoreSpec", "connect_ray", "ray_point_in_time_join"]

_ROW = "__plinth_row"


@dataclass(frozen=True)
class StoreSpec:
    """What a worker needs to open the project's artifact store (no secrets: S3
    credentials come from the workers' environment)."""

    artifacts: str
    root: str
    endpoint_url: str | None
    connect_timeout: float

    def open(self) -> Any:
        from pathlib import Path

        from plinth.storage import ContentStore, open_blob_store

        store = open_blob_store(
            self.artifacts,
            root=Path(self.root),
            endpoint_url=self.endpoint_url,
            connect_timeout=self.connect_timeout,
        )
        return ContentStore(store)


def connect_ray(ctx: Context) -> Any:
    """The ``ray`` module, connected to the cluster the ``ray_address`` setting names (a
    local one when unset); an already initialised Ray is used as it is."""
    from plinth._extras import require

    ray = require(
        "ray", feature="the ray features engine (features_engine: ray)", field="features_engine"
    )
    if not ray.is_initialized():
        address = ctx.settings.ray_address
        ray.init(
            address=address or None,
            include_dashboard=False,
            logging_level="warning",
            log_to_driver=False,
        )
    return ray


def _shards(ray: Any, ctx: Context) -> int:
    wanted = int(ctx.settings.features_shards)
    if wanted > 0:
        return wanted
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _check_store(ctx: Context) -> StoreSpec:
    uri = ctx.settings.artifacts
    if uri.lower().startswith("memory://"):
        raise UsageError(
            "the ray features engine reads shards from the artifact store, and memory:// "
            "is not visible to Ray workers",
            hint="use a folder or s3:// artifact store, or features_engine: duckdb",
            field="features_engine",
        )
    return StoreSpec(
        artifacts=uri,
        root=str(ctx.settings.root.resolve()),
        endpoint_url=ctx.settings.s3_endpoint_url,
        connect_timeout=float(ctx.settings.connect_timeout),
    )


def _normal_keys(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The key columns in one type per family (int64, string), so equal keys hash alike."""
    import pyarrow as pa

    columns = {}
    for i, key in enumerate(keys):
        column = table.column(key)
        if pa.types.is_integer(column.type):
            column = column.cast(pa.int64())
        elif pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
            column = column.cast(pa.string())
        columns[f"k{i}"] = column
    return pa.table(columns) if columns else pa.table({"k": pa.nulls(table.num_rows)})


def _shard_ids(table: pa.Table, keys: Sequence[str], shards: int) -> Any:
    """Each row's shard (a numpy array): a hash of its key values modulo ``shards``."""
    import numpy as np

    from plinth.guards.sql import cursor

    narrow = _normal_keys(table, keys)
    if narrow.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    names = ", ".join(narrow.column_names)  # plinth's own names (k0, k1, ...)
    con = cursor()
    try:
        con.register("plinth_keys", narrow)
        result = con.sql(f"SELECT (hash({names}) % {int(shards)})::BIGINT AS s FROM plinth_keys")  # noqa: S608
        ids = result.to_arrow_table().column("s").to_numpy()
    finally:
        con.close()
    return ids


def _split(table: pa.Table, ids: Any, shards: int) -> list[pa.Table]:
    import numpy as np
    import pyarrow as pa

    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(shards + 1))
    return [
        table.take(pa.array(order[bounds[s] : bounds[s + 1]], pa.int64())) for s in range(shards)
    ]


def _put(ctx: Context, table: pa.Table) -> str:
    from plinth.tables import write_parquet

    buffer = io.BytesIO()
    write_parquet(table, buffer)
    return str(ctx.blobs.put_bytes(buffer.getvalue()).digest)


def _read(store: Any, digest: str) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(store.read_bytes(digest)))


def _join_shard(
    spec: StoreSpec,
    entity_digest: str,
    views: list[tuple[ViewData, str]],
    entity_timestamp: str,
) -> pa.Table:
    """One task: read the slices, join them, return the row numbers and the features."""
    from plinth.features.offline import point_in_time_join

    store = spec.open()
    try:
        entities = _read(store, entity_digest)
        data = [replace(view, table=_read(store, digest)) for view, digest in views]
    finally:
        store.close()
    joined = point_in_time_join(entities, data, entity_timestamp=entity_timestamp, full_names=True)
    keep = [_ROW, *joined.column_names[entities.num_columns :]]
    return joined.select(keep)


def ray_point_in_time_join(
    entities: Any,
    views: Sequence[ViewData],
    *,
    entity_timestamp: str = "event_timestamp",
    full_names: bool = False,
    ctx: Context,
) -> pa.Table:
    """:func:`plinth.features.offline.point_in_time_join`, sharded over Ray tasks (see the
    module docstring); the same result, the same errors."""
    import numpy as np
    import pyarrow as pa

    from plinth.features.offline import point_in_time_join
    from plinth.tables import to_arrow

    table = to_arrow(entities, field="entities")
    views = list(views)
    # The driver checks what the shards would: names, columns, types (on empty tables).
    empty = point_in_time_join(
        table.slice(0, 0),
        [
            replace(v, table=to_arrow(v.table, field=f"views[{v.name!r}].table").slice(0, 0))
            for v in views
        ],
        entity_timestamp=entity_timestamp,
        full_names=full_names,
    )
    names = empty.column_names[table.num_columns :]
    if _ROW in table.column_names:
        raise UsageError(f"the entity rows have a column named {_ROW!r}", field="entities")
    spec = _check_store(ctx)
    ray = connect_ray(ctx)
    shards = _shards(ray, ctx)

    keys_needed: list[str] = []
    for view in views:
        keys_needed.extend(k for k in view.join_keys if k not in keys_needed)
    narrow = table.select([entity_timestamp, *keys_needed])
    narrow = narrow.append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))

    groups: dict[tuple[str, ...], list[ViewData]] = {}
    for view in views:
        groups.setdefault(tuple(sorted(view.join_keys)), []).append(view)
    broadcast = groups.pop((), [])
    if not groups and broadcast:
        groups[()] = []
    task = ray.remote(_join_shard)
    pending: list[tuple[list[ViewData], list[Any]]] = []
    for index, (keys, members) in enumerate(groups.items()):
        group_views = members + (broadcast if index == 0 else [])
        if keys:
            ids = _shard_ids(narrow, keys, shards)
        else:
            ids = np.arange(narrow.num_rows, dtype=np.int64) % shards
        entity_parts = _split(narrow.select([_ROW, entity_timestamp, *keys]), ids, shards)
        view_parts: list[list[pa.Table]] = []
        for view in group_views:
            rows = to_arrow(view.table, field=f"views[{view.name!r}].table")
            if view.join_keys:
                view_parts.append(_split(rows, _shard_ids(rows, keys, shards), shards))
            else:
                view_parts.append([rows] * shards)
        refs = []
        for s in range(shards):
            if entity_parts[s].num_rows == 0:
                continue
            slim = [replace(v, table=pa.table({})) for v in group_views]
            digests = [_put(ctx, parts[s]) for parts in view_parts]
            refs.append(
                task.remote(
                    spec,
                    _put(ctx, entity_parts[s]),
                    list(zip(slim, digests, strict=True)),
                    entity_timestamp,
                )
            )
        pending.append((group_views, refs))

    by_view: dict[str, list[pa.ChunkedArray]] = {}
    from plinth.features.offline import SEPARATOR

    for group_views, refs in pending:
        results = ray.get(refs)
        merged = pa.concat_tables(results) if results else empty_result(group_views)
        order = np.argsort(merged.column(_ROW).to_numpy(), kind="stable")
        merged = merged.take(pa.array(order, pa.int64()))
        for view in group_views:
            by_view[view.name] = [
                merged.column(f"{view.name}{SEPARATOR}{f}") for f in view.features
            ]
    out = table
    position = 0
    for view in views:
        for column in by_view[view.name]:
            out = out.append_column(
                names[position], column.cast(empty.column(names[position]).type)
            )
            position += 1
    return out


def empty_result(views: Sequence[ViewData]) -> pa.Table:
    """No entity rows in any shard: an empty result with the row column."""
    import pyarrow as pa

    columns: dict[str, Any] = {_ROW: pa.array([], pa.int64())}
    for view in views:
        table = view.table if isinstance(view.table, pa.Table) else pa.table({})
        for feature in view.features:
            dtype = table.schema.field(feature).type if feature in table.column_names else pa.null()
            columns[f"{view.name}__{feature}"] = pa.array([], dtype)
    return pa.table(columns)
