"""Pushing fresh feature values: to the online store and to the view's offline log.

``push("weather", rows)`` checks and types ``rows`` (the view's join keys, its timestamp
column, its created-timestamp column if it has one, and some or all of its features;
absent features are null), then, in this order:

1. writes the batch as one Parquet blob to the artifact store (``ctx.blobs``);
2. writes it to the online store (last-writer-wins by event time, as materialization);
3. records the push in the ledger (:meth:`FeatureStore.record_push`): from then on the
   view's rows (:func:`plinth.features.rows.view_rows`, read by training sets and
   materialization) include the batch, through :func:`pushed_table`.

If step 1 fails nothing changed. If step 2 fails the blob is unreferenced (``plinth gc``
frees it) and nothing else changed. If step 3 fails the online store already has the
values but the offline log does not: push the same rows again (every step is idempotent:
same blob, same online entries) so that the two agree.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import FeatureDefinition, FeaturePush
    from plinth.features.definitions import FeatureView

__all__ = ["join_keys_of", "push", "pushed_table", "view_record"]


def view_record(view: str | FeatureView, *, ctx: Context) -> tuple[FeatureView, FeatureDefinition]:
    """The view (a name, ``NAME@N`` or an applied object) and its ledger version."""
    from plinth.features.definitions import FeatureView, from_spec
    from plinth.refs import parse_ref

    pid = ctx.project.id
    if isinstance(view, FeatureView):
        for rec in reversed(ctx.ledger.features.versions(pid, "feature_view", view.name)):
            if rec.digest == view.digest:
                return view, rec
        raise NotFoundError(
            f"feature view {view.name!r} (this definition) was never applied",
            hint="apply it first: plinth.features.apply([...]) or plinth features apply FILE",
            field="view",
        )
    if not isinstance(view, str):
        raise UsageError(
            f"view must be a feature view or its name, not {type(view).__name__}", field="view"
        )
    ref = parse_ref(view, what="feature view", field="view")
    if ref.label is not None:
        raise UsageError(f"view: name NAME or NAME@N, not {view!r}", field="view")
    rec = ctx.ledger.features.get_definition(pid, "feature_view", ref.name, ref.version)
    found = from_spec("feature_view", rec.name, rec.spec)
    assert isinstance(found, FeatureView)
    return found, rec


def join_keys_of(view: FeatureView, *, ctx: Context) -> tuple[str, ...]:
    """The join keys of ``view``'s entities (named ones read from the ledger), in order."""
    from plinth.features.definitions import Entity, from_spec

    keys: list[str] = []
    for ent in view.entities:
        if not isinstance(ent, Entity):
            rec = ctx.ledger.features.find_definition(ctx.project.id, "entity", ent)
            if rec is None:
                raise NotFoundError(
                    f"view {view.name!r} is keyed by entity {ent!r}, which is not in this project",
                    hint="apply the entity's definition (plinth features apply FILE)",
                    field="entities",
                )
            found = from_spec("entity", rec.name, rec.spec)
            assert isinstance(found, Entity)
            ent = found
        keys.extend(k for k in ent.join_keys if k not in keys)
    return tuple(keys)


def _table(rows: Any) -> pa.Table:
    import pyarrow as pa

    from plinth.tables import to_arrow

    if isinstance(rows, list):
        if not all(isinstance(r, dict) for r in rows):
            raise UsageError("rows: a list of rows holds one dict per row", field="rows")
        names: dict[str, None] = {}
        for row in rows:  # every column any row has (from_pylist reads the first row's)
            names.update(dict.fromkeys(row))
        try:
            return pa.Table.from_pydict({n: [row.get(n) for row in rows] for n in names})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UsageError(
                f"rows: cannot read the rows as a table: {exc}", field="rows"
            ) from None
    return to_arrow(rows, field="rows")


def _key_column(column: pa.ChunkedArray, name: str, view: str) -> pa.ChunkedArray:
    import pyarrow as pa

    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_integer(kind):
        target = pa.int64()
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        target = pa.string()
    else:
        raise UsageError(
            f"view {view!r}: join key {name!r} is {column.type}; keys are integers or strings",
            field=name,
        )
    if column.null_count:
        raise UsageError(f"view {view!r}: join key {name!r} has nulls", field=name)
    return column.cast(target)


def _time_column(column: pa.ChunkedArray, name: str, view: str, nulls: bool) -> pa.ChunkedArray:
    import pyarrow as pa

    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))
    if not pa.types.is_timestamp(column.type):
        raise UsageError(
            f"view {view!r}: column {name!r} is {column.type}, not a timestamp",
            hint="send datetimes (a naive one is taken as UTC)",
            field=name,
        )
    if not nulls and column.null_count:
        raise UsageError(f"view {view!r}: column {name!r} has nulls", field=name)
    if column.type.tz is None:  # naive: UTC, as everywhere in the feature store
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return column.cast(pa.timestamp("us", tz="UTC"), safe=False)


def _typed(table: pa.Table, view: FeatureView, keys: tuple[str, ...]) -> pa.Table:
    """``table`` as the view's push schema: keys, timestamps, every feature (typed)."""
    import pyarrow as pa

    from plinth.features.rows import _cast, arrow_type

    known = set(keys) | {view.timestamp} | set(view.features)
    if view.created_timestamp is not None:
        known.add(view.created_timestamp)
    for name in table.column_names:
        if name not in known:
            raise UsageError(
                f"view {view.name!r} has no column {name!r}",
                hint=f"send its join keys ({', '.join(keys)}), {view.timestamp!r} and some of "
                f"its features ({', '.join(view.features)})",
                field=name,
            )
    required = [*keys, view.timestamp]
    for name in required:
        if name not in table.column_names:
            what = "join key" if name in keys else "timestamp column"
            raise UsageError(f"rows have no {what} {name!r}", field=name)
    columns: dict[str, pa.ChunkedArray] = {}
    for name in keys:
        columns[name] = _key_column(table.column(name), name, view.name)
    columns[view.timestamp] = _time_column(
        table.column(view.timestamp), view.timestamp, view.name, nulls=False
    )
    if view.created_timestamp is not None:
        name = view.created_timestamp
        columns[name] = (
            _time_column(table.column(name), name, view.name, nulls=True)
            if name in table.column_names
            else pa.chunked_array([pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC"))])
        )
    for name, kind in view.features.items():
        if name in table.column_names:
            columns[name] = _cast(table.column(name), kind, view.name, name)
        else:
            columns[name] = pa.chunked_array([pa.nulls(table.num_rows, arrow_type(kind))])
    return pa.table(columns)


def push(view: str | FeatureView, rows: Any, *, ctx: Context | None = None) -> FeaturePush:
    """Write ``rows`` of ``view`` to the online store and append them to its offline log.

    ``rows`` is a pandas or polars DataFrame, an Arrow table or a list of dicts, holding
    the join keys, the view's timestamp column and some of its features. Returns the
    ledger record of the push. See the module docstring for the order of the writes.
    Example::

        push("weather", [{"origin": "JFK", "hour": now, "temp": 21.5}])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from plinth.context import resolve_context
    from plinth.tables import write_parquet

    ctx = resolve_context(ctx)
    definition, record = view_record(view, ctx=ctx)
    keys = join_keys_of(definition, ctx=ctx)
    table = _typed(_table(rows), definition, keys)
    if table.num_rows == 0:
        raise UsageError("rows: nothing to push (no rows)", field="rows")
    # In batch order, among equal event times the latest created timestamp (a missing one
    # counts as the earliest) is written last, so it wins online as it does offline.
    order = {"t": table.column(definition.timestamp).cast(pa.int64())}
    if definition.created_timestamp is not None:
        created = table.column(definition.created_timestamp).cast(pa.int64())
        order["c"] = pc.fill_null(created, -(2**63))
    keys_order = [(name, "ascending") for name in order]
    table = table.take(pc.sort_indices(pa.table(order), sort_keys=keys_order))  # stable
    buffer = io.BytesIO()
    write_parquet(table, buffer)
    blob = ctx.blobs.put_bytes(buffer.getvalue())
    # Features not sent are null: online as offline, the pushed row replaces the entry.
    ctx.online_store.write_columns(
        definition.name,
        [table.column(k) for k in keys],
        {f: table.column(f) for f in definition.features},
        table.column(definition.timestamp),
        definition.features,
    )
    return ctx.ledger.features.record_push(record, digest=blob.digest, rows=table.num_rows)


def pushed_table(view: FeatureView, *, ctx: Context) -> pa.Table | None:
    """Every batch pushed to ``view`` (any version), oldest first, as one table; None
    when nothing was pushed. Columns of batches pushed under other versions are kept as
    they were; :func:`plinth.features.rows.view_rows` conforms them to the view."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pushes = ctx.ledger.features.pushes(ctx.project.id, view.name)
    if not pushes:
        return None
    tables = [pq.read_table(io.BytesIO(ctx.blobs.read_bytes(p.digest))) for p in pushes]
    return pa.concat_tables(tables, promote_options="permissive")
