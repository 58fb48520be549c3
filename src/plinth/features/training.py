"""Training sets: a feature service's values as of each entity row's time, exactly.

::

    get_training_set(labels_df, "delays")                      # entity rows you give
    get_training_set("delays", start="2024-01-01", end="2024-01-31", every="1d")
    ts = get_training_set(labels_df, "delays", save_as="delays-train")   # -> TrainingSet

The service is resolved (:func:`plinth.features.resolve.resolve_service`), each view's rows
are read (:func:`plinth.features.rows.view_rows`: the source, typed, plus pushed rows) and
joined by :func:`plinth.features.offline.point_in_time_join` — or, with the setting
``features_engine: ray``, by the same join sharded over Ray tasks
(:mod:`plinth.features.ray_engine`). On-demand features are computed from the joined
features and the entity table's request fields. The result holds the entity columns, then
the selected features in service order (features read only as on-demand inputs are
dropped).

Lineage: with ``save_as`` the result is saved as a dataset version and linked
``derived_from`` to every feature-definition version read (service, views, on-demand views,
entities) and every source dataset version; inside a run, the run is linked ``used`` to the
definitions (and ``produced`` to the saved version, by :func:`plinth.datasets.save`).
Definitions given as objects and not yet applied are applied first, so lineage names exact
versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    OnDemandFeatureView,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion, FeatureDefinition
    from plinth.features.offline import ViewData
    from plinth.features.resolve import ResolvedService

__all__ = [
    "DEFINITION_RECORD",
    "DERIVED_FROM",
    "TrainingSet",
    "get_training_set",
    "join_views",
]

#: The lineage record type of a feature-definition version.
DEFINITION_RECORD = "feature_definition"
#: The relation from what a training set was built from (definitions, source versions) to
#: the dataset version it was saved as.
DERIVED_FROM = "derived_from"


@dataclass(frozen=True)
class TrainingSet:
    """What ``get_training_set(..., save_as=NAME)`` returns: the result as asked (``data``,
    in ``to=`` form), the same as Arrow (``table``), the dataset version it was saved as,
    and what lineage links it to."""

    data: Any
    table: pa.Table
    version: DatasetVersion
    definitions: tuple[FeatureDefinition, ...]
    sources: tuple[DatasetVersion, ...]

    def to_pandas(self) -> Any:
        from plinth.tables import convert

        return convert(self.table, "pandas")


def _is_service(value: object) -> bool:
    return isinstance(value, str | FeatureService)


def get_training_set(
    entity_df: Any = None,
    service: str | FeatureService | None = None,
    *,
    start: Any = None,
    end: Any = None,
    every: Any = None,
    entity_timestamp: str = "event_timestamp",
    full_names: bool = False,
    save_as: str | None = None,
    message: str | None = None,
    to: str = "arrow",
    trust_code: bool = False,
    ctx: Context | None = None,
) -> Any:
    """The point-in-time correct training set of ``service`` (a name, ``NAME@N`` or a
    :class:`FeatureService`).

    Give entity rows (``entity_df``: Arrow, pandas or polars, with the join keys,
    ``entity_timestamp`` and any request fields of on-demand views), or none and
    ``start``/``end``/``every`` for every entity as of each time from ``start`` to
    ``end`` inclusive (:mod:`plinth.features.entity_free`; naive times are UTC).
    Returns a pyarrow Table (``to="arrow"``), or a pandas or polars DataFrame; with
    ``save_as=NAME``, a :class:`TrainingSet`. ``trust_code=True`` runs on-demand
    functions recorded as ``path.py:name`` (their digest is still checked).
    """
    from plinth.context import resolve_context
    from plinth.tables import check_as, convert, to_arrow

    if service is None and _is_service(entity_df):
        entity_df, service = None, entity_df
    if service is None:
        raise UsageError(
            "no feature service given",
            hint="get_training_set(entity_df, 'SERVICE') or get_training_set('SERVICE', "
            "start=..., end=..., every=...)",
            field="service",
        )
    if not _is_service(service):
        raise UsageError(
            f"service must be a name or a FeatureService, not a {type(service).__name__}",
            field="service",
        )
    check_as(to)
    ctx = resolve_context(ctx)
    entity_free = entity_df is None
    if entity_free and start is None:
        raise UsageError(
            "give entity rows or start=/end=/every=",
            hint="get_training_set(entity_df, service) or get_training_set(service, "
            "start='2024-01-01', end='2024-01-31', every='1d')",
            field="entity_df",
        )
    if not entity_free and (start, end, every) != (None, None, None):
        raise UsageError(
            "start=, end= and every= are for retrieval without entity rows",
            hint="drop them, or drop entity_df",
            field="start",
        )
    if save_as is not None:
        from plinth.ledger.dataset_rows import check_dataset_name

        check_dataset_name(save_as)

    resolved = _resolve(service, ctx)
    records = _record_definitions(service, resolved, ctx) if _wants_lineage(save_as, ctx) else []
    if records:
        resolved = _resolve(service, ctx)
    views, sources = _read_views(resolved, ctx)

    if entity_free:
        from plinth.features.entity_free import entity_grid, time_grid

        if resolved.request_fields:
            raise UsageError(
                f"service {resolved.name!r} has on-demand features that need request fields "
                f"({', '.join(resolved.request_fields)})",
                hint="pass an entity table with those columns: get_training_set(entity_df, ...)",
                field="entity_df",
            )
        times = time_grid(start, end if end is not None else start, every)
        entities = entity_grid(views, times, entity_timestamp=entity_timestamp)
    else:
        entities = to_arrow(entity_df, field="entity_df")

    names = _output_names(entities, resolved, full_names)
    joined = join_views(entities, views, entity_timestamp=entity_timestamp, ctx=ctx)
    table = _assemble(entities, joined, resolved, names, trust_code=trust_code, ctx=ctx)

    if save_as is None:
        _record_run_use(records, ctx)
        return convert(table, to)
    from plinth.datasets import save

    version = save(table, save_as, message, ctx=ctx).version
    _record_lineage(records, sources, version, ctx)
    return TrainingSet(convert(table, to), table, version, tuple(records), sources)


def join_views(
    entities: pa.Table, views: Sequence[ViewData], *, entity_timestamp: str, ctx: Context
) -> pa.Table:
    """``entities`` with every view's features named ``view__feature``, by the engine the
    ``features_engine`` setting names."""
    if ctx.settings.features_engine == "ray":
        from plinth.features.ray_engine import ray_point_in_time_join

        return ray_point_in_time_join(
            entities, views, entity_timestamp=entity_timestamp, full_names=True, ctx=ctx
        )
    from plinth.features.offline import point_in_time_join

    # Spills to disk past DuckDB's memory limit, in a private folder of the project's data.
    return point_in_time_join(
        entities,
        views,
        entity_timestamp=entity_timestamp,
        full_names=True,
        spill_root=ctx.settings.data_dir / "tmp",
    )


def _resolve(service: str | FeatureService, ctx: Context) -> ResolvedService:
    from plinth.features.definitions import FeatureSelection, FeatureView
    from plinth.features.resolve import resolve_service

    # Objects the service holds (an on-demand view's source views, entities) are used as
    # given rather than looked up in the ledger by name.
    extra: dict[str, FeatureView | OnDemandFeatureView | Entity] = {}
    if isinstance(service, FeatureService):
        pending: list[object] = [sel.view for sel in service.selections]
        while pending:
            item = pending.pop()
            if isinstance(item, FeatureSelection):
                item = item.view
            if isinstance(item, FeatureView | OnDemandFeatureView | Entity):
                if item.name in extra:
                    continue
                extra[item.name] = item
                if isinstance(item, OnDemandFeatureView):
                    pending.extend(item.sources)
                elif isinstance(item, FeatureView):
                    pending.extend(item.entities)
    return resolve_service(service, ctx=ctx, extra=extra)


def _read_views(
    resolved: ResolvedService, ctx: Context
) -> tuple[list[ViewData], tuple[DatasetVersion, ...]]:
    from plinth.features.offline import ViewData
    from plinth.features.rows import view_rows

    views: list[ViewData] = []
    sources: dict[str, DatasetVersion] = {}
    for rv in resolved.views:
        rows = view_rows(rv.view, rv.join_keys, ctx=ctx, features=rv.read)
        sources.update((v.id, v) for v in rows.versions)
        views.append(
            ViewData(
                name=rv.name,
                join_keys=rv.join_keys,
                timestamp=rv.view.timestamp,
                created_timestamp=rv.view.created_timestamp,
                ttl=rv.view.ttl_delta,
                features=rv.read,
                table=rows.table,
            )
        )
    return views, tuple(sources.values())


def _output_names(
    entities: pa.Table, resolved: ResolvedService, full_names: bool
) -> dict[tuple[str, str], str]:
    """(view, feature) -> output column name; a clash with an entity column is refused."""
    from plinth.features.offline import SEPARATOR

    out: dict[tuple[str, str], str] = {}
    owners = [(v.name, v.features) for v in resolved.views]
    owners += [(o.name, o.features) for o in resolved.on_demand]
    for owner, features in owners:
        for feature in features:
            name = f"{owner}{SEPARATOR}{feature}" if full_names else feature
            if name in entities.column_names:
                raise UsageError(
                    f"feature {feature!r} of {owner!r} would be named {name!r}, which is "
                    "already a column of the entity rows",
                    hint="pass full_names=True to name features view__feature"
                    if not full_names
                    else "rename the entity column",
                    field="entity_df",
                )
            out[(owner, feature)] = name
    return out


def _assemble(
    entities: pa.Table,
    joined: pa.Table,
    resolved: ResolvedService,
    names: dict[tuple[str, str], str],
    *,
    trust_code: bool,
    ctx: Context,
) -> pa.Table:
    """Entity columns, the selected view features, then the on-demand features."""
    import pyarrow as pa

    from plinth.features.offline import SEPARATOR

    columns = {name: entities.column(name) for name in entities.column_names}
    for rv in resolved.views:
        for feature in rv.features:
            columns[names[(rv.name, feature)]] = joined.column(f"{rv.name}{SEPARATOR}{feature}")
    if resolved.on_demand:
        from plinth.features.on_demand import compute, load_function

        views = {rv.name: rv.view for rv in resolved.views}
        for od in resolved.on_demand:
            inputs: dict[str, Any] = {}
            for src in od.view.source_names:
                rv = next(v for v in resolved.views if v.name == src)
                for feature in rv.read:
                    inputs.setdefault(feature, joined.column(f"{src}{SEPARATOR}{feature}"))
            for field in od.view.request:
                if field not in entities.column_names:
                    raise UsageError(
                        f"on-demand view {od.name!r} needs the request field {field!r}, which "
                        "the entity rows lack",
                        hint=f"add a column {field!r} to entity_df",
                        field=f"entity_df.{field}",
                    )
                inputs.setdefault(field, entities.column(field))
            fn = load_function(od.view, ctx=ctx, trust_code=trust_code)
            computed = compute(od.view, pa.table(inputs), fn, views=views)
            for feature in od.features:
                columns[names[(od.name, feature)]] = computed.column(feature)
    return pa.table(columns)


# -- lineage -----------------------------------------------------------------------------


def _wants_lineage(save_as: str | None, ctx: Context) -> bool:
    from plinth.context import run_scope

    scope = run_scope()
    return save_as is not None or (scope is not None and scope.ctx is ctx)


def _definitions(service: str | FeatureService, resolved: ResolvedService) -> list[Definition]:
    """The definition objects a lineage names: service, entities, views, on-demand views."""
    out: list[Definition] = []
    if isinstance(service, FeatureService):
        out.append(service)
    for rv in resolved.views:
        out.extend(e for e in rv.view.entities if isinstance(e, Entity))
        out.append(rv.view)
    out.extend(od.view for od in resolved.on_demand)
    return out


def _record_definitions(
    service: str | FeatureService, resolved: ResolvedService, ctx: Context
) -> list[FeatureDefinition]:
    """The ledger versions of every definition read, applying the ones not yet recorded."""
    records = {r.id: r for r in resolved.lineage_records()}
    missing = [d for d in _definitions(service, resolved) if _find(d, ctx, exact=True) is None]
    if missing:
        _apply(missing, ctx)
    for d in _definitions(service, resolved):
        rec = _find(d, ctx, exact=False)
        if rec is not None:
            records.setdefault(rec.id, rec)
    return list(records.values())


def _find(d: Definition, ctx: Context, *, exact: bool) -> FeatureDefinition | None:
    """The recorded version of ``d``: the one with its digest, else (``exact=False``) the
    newest, which an apply that completed the spec (an on-demand function's digest) made."""
    versions = ctx.ledger.features.versions(ctx.project.id, d.kind, d.name)
    for rec in reversed(versions):
        if rec.digest == d.digest:
            return rec
    return None if exact or not versions else versions[-1]


def _apply(definitions: list[Definition], ctx: Context) -> None:
    """Record ``definitions`` with the registry's apply when there is one, else directly."""
    import importlib

    try:
        registry: Any = importlib.import_module("plinth.features.registry")
    except ModuleNotFoundError as exc:
        if exc.name != "plinth.features.registry":
            raise
        registry = None
    apply = getattr(registry, "apply", None)
    if apply is not None:
        apply(definitions, ctx=ctx)
        return
    for d in definitions:
        if isinstance(d, OnDemandFeatureView) and callable(d.function) and d.code_digest is None:
            from plinth.features.on_demand import describe_function

            ref, digest = describe_function(d.function, root=ctx.settings.root)
            d = dataclasses.replace(d, function_ref=ref, code_digest=digest)
        ctx.ledger.features.save_definition(ctx.project.id, d.kind, d.name, d.digest, d.spec())


def _record_run_use(records: list[FeatureDefinition], ctx: Context) -> None:
    from plinth.context import run_scope
    from plinth.entities import RecordRef

    scope = run_scope()
    if scope is None or scope.ctx is not ctx:
        return
    for rec in records:
        ctx.ledger.lineage.add(
            RecordRef("run", scope.run_id), RecordRef(DEFINITION_RECORD, rec.id), "used"
        )


def _record_lineage(
    records: list[FeatureDefinition],
    sources: tuple[DatasetVersion, ...],
    version: DatasetVersion,
    ctx: Context,
) -> None:
    from plinth.datasets.api import RECORD_TYPE
    from plinth.entities import RecordRef

    saved = RecordRef(RECORD_TYPE, version.id)
    for rec in records:
        ctx.ledger.lineage.add(RecordRef(DEFINITION_RECORD, rec.id), saved, DERIVED_FROM)
    for source in sources:
        ctx.ledger.lineage.add(RecordRef(RECORD_TYPE, source.id), saved, DERIVED_FROM)
    _record_run_use(records, ctx)
