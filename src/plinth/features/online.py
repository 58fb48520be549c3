"""Online lookup: the latest feature values of a service for some entity keys, as columns.

::

    reader = OnlineReader(resolve_service("delays", ctx=ctx), ctx.online_store, ctx=ctx)
    reader.read([{"tailnum": "N123", "carrier": "AA"}])      # compiled once, read many times
    # {'tailnum': ['N123'], 'carrier': ['AA'], 'plane_age': [12.0], 'carrier_delay_7d': [None]}
    get_online_features("delays", {"tailnum": ["N1", "N2"]})  # resolves, caches the reader

An :class:`OnlineReader` is compiled once per resolved service version: per view the join
keys, the feature types, the TTL and the output order, and the on-demand functions. A read
is one multi-get per view (:meth:`OnlineStore.read`), which applies the view's TTL exactly
as the offline join does (a value exactly ``ttl`` old is present, older is missing). Missing
entities and expired entries are ``None``. Nothing is parsed per call and pandas is used
only for on-demand views (their functions take a DataFrame).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.features.definitions import FeatureService
    from plinth.features.resolve import ResolvedOnDemand, ResolvedService
    from plinth.storage.online import OnlineStore

__all__ = ["OnlineReader", "get_online_features"]

Columns = dict[str, list[Any]]


class _ViewPlan:
    """What reading one view needs, computed once."""

    __slots__ = ("features", "keys", "name", "ttl", "types")

    def __init__(self, name: str, keys: tuple[str, ...], types: dict[str, str], ttl: Any) -> None:
        self.name = name
        self.keys = keys
        self.types = types
        self.ttl: timedelta | None = ttl
        self.features = tuple(types)


class _OnDemandPlan:
    __slots__ = ("features", "function", "resolved")

    def __init__(self, resolved: ResolvedOnDemand, function: Callable[[Any], Any]) -> None:
        self.resolved = resolved
        self.features = resolved.features
        self.function = function


class OnlineReader:
    """A service's online read plan: build once (per service version), read many times.

    ``ctx`` and ``trust_code`` are used only to load the functions of on-demand views
    recorded as ``PATH.py:NAME`` (see :mod:`plinth.features.on_demand`).
    """

    def __init__(
        self,
        service: ResolvedService,
        store: OnlineStore,
        *,
        ctx: Context | None = None,
        trust_code: bool = False,
    ) -> None:
        self.service = service
        self.store = store
        self.join_keys: tuple[str, ...] = service.join_keys
        self.request_fields: dict[str, str] = dict(service.request_fields)
        self.feature_names: tuple[str, ...] = service.feature_names
        self.feature_types: dict[str, str] = dict(service.feature_types)
        #: Output columns: the join keys, then the features in service order.
        self.columns: tuple[str, ...] = self.join_keys + self.feature_names
        self._views = [
            _ViewPlan(v.name, v.join_keys, v.types, v.view.ttl_delta) for v in service.views
        ]
        self._selected = [f for v in service.views for f in v.features]
        self._any_ttl = any(p.ttl is not None for p in self._views)
        self._on_demand: list[_OnDemandPlan] = []
        if service.on_demand:
            from plinth.context import resolve_context
            from plinth.features.on_demand import load_function

            for od in service.on_demand:
                fn = od.view.function
                if not callable(fn):  # recorded as PATH.py:NAME, loaded from the project
                    fn = load_function(od.view, ctx=resolve_context(ctx), trust_code=trust_code)
                self._on_demand.append(_OnDemandPlan(od, fn))

    def read(
        self,
        entity_rows: Any,
        request: Any = None,
        *,
        now: datetime | None = None,
    ) -> Columns:
        """The join keys and the service's features for ``entity_rows``, as columns.

        ``entity_rows`` is a list of dicts, a dict of columns (or of single values, for one
        entity), or a pandas/polars/Arrow table, holding every join key; ``request`` holds
        the request fields of on-demand views in the same shapes (they may also be columns
        of ``entity_rows``). ``now`` (default: the current time) is what TTLs count from.
        """
        return self.read_with_stats(entity_rows, request, now=now)[0]

    def read_with_stats(
        self,
        entity_rows: Any,
        request: Any = None,
        *,
        now: datetime | None = None,
    ) -> tuple[Columns, dict[str, int]]:
        """Like :meth:`read`, with the number of missing (``None``) values per feature."""
        given, count = _columns(entity_rows, "entity_rows")
        out: Columns = {}
        for key in self.join_keys:
            column = given.get(key)
            if column is None:
                raise UsageError(
                    f"entity_rows has no join key {key!r}",
                    hint=f"send every join key of the service: {', '.join(self.join_keys)}",
                    field=f"entity_rows.{key}",
                )
            out[key] = column
        if now is None and self._any_ttl:
            now = datetime.now(UTC)
        read: Columns = {}
        for plan in self._views:
            keys: Sequence[Any]
            if len(plan.keys) == 1:
                keys = out[plan.keys[0]]
            else:
                keys = list(zip(*(out[k] for k in plan.keys), strict=True))
            read.update(_read_view(self.store, plan, keys, now))
        for name in self._selected:
            out[name] = read[name]
        if self._on_demand:
            out.update(self._compute(given, count, read, request))
        missing = {name: out[name].count(None) for name in self.feature_names}
        return out, missing

    def _compute(self, given: Columns, count: int, read: Columns, request: Any) -> Columns:
        import pyarrow as pa

        from plinth.features.on_demand import arrow_type, compute

        fields = dict(given)
        if request is not None:
            extra, n = _columns(request, "request")
            if n != count:
                raise UsageError(
                    f"request has {n} rows but entity_rows has {count}",
                    hint="send one request row per entity row",
                    field="request",
                )
            fields.update(extra)
        arrays: dict[str, Any] = {}
        for name, kind in self.request_fields.items():
            if name not in fields:
                raise UsageError(
                    f"the request has no field {name!r}",
                    hint=f"on-demand features need: {', '.join(self.request_fields)}",
                    field=f"request.{name}",
                )
            try:
                arrays[name] = pa.array(fields[name], type=arrow_type(kind))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(
                    f"request field {name!r} is not {kind}: {exc}", field=f"request.{name}"
                ) from None
        for plan in self._views:
            for name, kind in plan.types.items():
                arrays[name] = pa.array(read[name], type=arrow_type(kind))
        frame = pa.table(arrays) if arrays else pa.table({"_": pa.nulls(count)})
        out: Columns = {}
        for od in self._on_demand:
            result = compute(od.resolved.view, frame, od.function)
            for name in od.features:
                out[name] = result.column(name).to_pylist()
        return out

    def __repr__(self) -> str:
        return f"<OnlineReader {self.service.name!r} {len(self._views)} views on {self.store!r}>"


def _read_view(
    store: OnlineStore, plan: _ViewPlan, keys: Sequence[Any], now: datetime | None
) -> Columns:
    # A null key matches nothing (as offline): those rows read as missing without a lookup.
    nulls = [i for i, k in enumerate(keys) if k is None or (type(k) is tuple and None in k)]
    if not nulls:
        return store.read(plan.name, keys, plan.types, ttl=plan.ttl, now=now)
    skip = set(nulls)
    kept = [k for i, k in enumerate(keys) if i not in skip]
    found = store.read(plan.name, kept, plan.types, ttl=plan.ttl, now=now) if kept else {}
    out: Columns = {}
    for name in plan.features:
        values = iter(found.get(name, ()))
        out[name] = [None if i in skip else next(values) for i in range(len(keys))]
    return out


def _as_list(value: Any) -> list[Any]:
    tolist = getattr(value, "tolist", None)
    if tolist is not None and type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return list(tolist())
    if type(value).__module__.split(".")[0] == "pyarrow" or (
        type(value).__module__.split(".")[0] == "polars"
    ):
        return list(value.to_list() if hasattr(value, "to_list") else value.to_pylist())
    return list(value)


def _columns(rows: Any, field: str) -> tuple[Columns, int]:
    """``rows`` (dicts, a dict of columns or of single values, a table) as equal-length
    columns, and their length."""
    if isinstance(rows, Mapping):
        if not rows:
            raise UsageError(f"{field} is empty", field=field)
        values = list(rows.values())
        if all(isinstance(v, str | int | float | bool | datetime) or v is None for v in values):
            return {str(k): [v] for k, v in rows.items()}, 1
        cols = {str(k): (v if type(v) is list else _as_list(v)) for k, v in rows.items()}
    elif isinstance(rows, list | tuple):
        names: dict[str, None] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise UsageError(
                    f"{field}[{i}] is a {type(row).__name__}, not a mapping of column to value",
                    hint='send [{"tailnum": "N123"}, ...] or {"tailnum": ["N123", ...]}',
                    field=f"{field}[{i}]",
                )
            names.update(dict.fromkeys(row))
        return {str(n): [row.get(n) for row in rows] for n in names}, len(rows)
    else:
        module = type(rows).__module__.split(".")[0]
        if module == "pandas":
            cols = {str(k): v for k, v in rows.to_dict("list").items()}
        elif module == "polars":
            cols = {str(k): v for k, v in rows.to_dict(as_series=False).items()}
        elif module == "pyarrow" and hasattr(rows, "to_pydict"):
            cols = {str(k): v for k, v in rows.to_pydict().items()}
        else:
            raise UsageError(
                f"{field} must be a list of dicts, a dict of columns or a table, "
                f"not {type(rows).__name__}",
                field=field,
            )
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise UsageError(
            f"the columns of {field} have different lengths ({sorted(lengths)})",
            field=field,
        )
    return cols, lengths.pop() if lengths else 0


# -- the convenience function, with its cache of compiled readers -------------------------
_CACHE_SIZE = 32
_cache: OrderedDict[tuple[Any, ...], tuple[Any, OnlineReader]] = OrderedDict()
_cache_lock = threading.Lock()


def get_online_features(
    service: str | FeatureService,
    entity_rows: Any,
    *,
    request: Any = None,
    now: datetime | None = None,
    trust_code: bool = False,
    ctx: Context | None = None,
) -> Columns:
    """The latest values of ``service``'s features for ``entity_rows``, as columns.

    ``service`` is a name, ``NAME@N`` or a :class:`FeatureService`. The compiled
    :class:`OnlineReader` is cached (per project, online store and definition versions),
    so repeated calls cost one ledger query and the store reads. Example::

        get_online_features("delays", [{"tailnum": "N123"}])
        # {'tailnum': ['N123'], 'plane_age': [12.0]}
    """
    from plinth.context import resolve_context

    ctx = resolve_context(ctx)
    return _reader(service, ctx, trust_code).read(entity_rows, request, now=now)


def _reader(service: str | FeatureService, ctx: Context, trust_code: bool) -> OnlineReader:
    from plinth.features.resolve import resolve_service

    store = ctx.online_store
    project = ctx.project.id
    # Any new definition version changes this; one indexed query.
    versions = tuple(d.id for d in ctx.ledger.features.latest_definitions(project))
    ident: Any = service if isinstance(service, str) else ("object", id(service))
    key = (id(store), project, ident, trust_code)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0][0] == versions and hit[1].store is store:
            _cache.move_to_end(key)
            return hit[1]
    reader = OnlineReader(resolve_service(service, ctx=ctx), store, ctx=ctx, trust_code=trust_code)
    with _cache_lock:
        # The service object is kept so that its id is not reused while cached.
        _cache[key] = ((versions, service), reader)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return reader
