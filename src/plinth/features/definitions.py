"""Feature-store definitions: one model, two faces (Python objects here, YAML in
:mod:`plinth.features.files`).

::

    Entity(name, join_keys)                         what features are keyed by
    FeatureView(name, entities, source, timestamp,  features of one source, valid from their
                created_timestamp=None, ttl=None,   event time until the TTL runs out
                features={name: type})
    OnDemandFeatureView(name, sources, request,     computed at read time from request fields
                        features, function)         and other views' features (pandas)
    FeatureService(name, features)                  what a model reads: views or selections
                                                    ``view[["f1", "f2"]]``

A source is a dataset reference (``"weather"``, ``"weather@3"``), :func:`parquet` (a file
in the project) or :func:`sql` (one DuckDB query over named datasets and Parquet files, run
in plinth's SQL sandbox). Types are strings (:data:`FEATURE_TYPES`); a TTL a ``timedelta``
or ``"7d"``.

Every definition has a canonical :meth:`spec` (plain JSON) and a :attr:`digest` of it: the
ledger records each version by digest (:func:`plinth.features.apply`). :func:`from_spec`
rebuilds a definition from a recorded spec. Nothing here touches a disk or the ledger.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from plinth.errors import UsageError
from plinth.refs import check_name, parse_ref

__all__ = [
    "FEATURE_TYPES",
    "Definition",
    "Entity",
    "FeatureSelection",
    "FeatureService",
    "FeatureView",
    "OnDemandFeatureView",
    "Source",
    "from_spec",
    "parquet",
    "parse_ttl",
    "sql",
]

#: The feature types, as strings (the online store and the training sets use the same).
FEATURE_TYPES: tuple[str, ...] = ("float64", "int64", "string", "bool", "timestamp")
_TYPE_ALIASES = {
    "float": "float64",
    "double": "float64",
    "int": "int64",
    "integer": "int64",
    "str": "string",
    "boolean": "bool",
    "datetime": "timestamp",
}
_TTL_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_TTL_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCTION_REF = re.compile(r"[A-Za-z0-9_./\-]+\.py:[A-Za-z_][A-Za-z0-9_.]*")
_SELECTION = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(?:\[(.*)\])?\s*")


def _type(value: object, field: str) -> str:
    text = _TYPE_ALIASES.get(value, value) if isinstance(value, str) else value
    if text not in FEATURE_TYPES:
        raise UsageError(
            f"{field}: unknown feature type {value!r}",
            hint=f"use one of {', '.join(FEATURE_TYPES)}",
            field=field,
        )
    return str(text)


def _column(value: object, field: str) -> str:
    if not isinstance(value, str) or not _COLUMN.fullmatch(value) or len(value) > 255:
        raise UsageError(
            f"{field}: {value!r} is not a column name",
            hint="a column name starts with a letter or '_' and holds letters, digits and '_'",
            field=field,
        )
    return value


def _name(value: object, what: str, field: str) -> str:
    return check_name(value, what=what, field=field)


def parse_ttl(value: object, field: str = "ttl") -> timedelta | None:
    """``None``, a ``timedelta`` or text such as ``"7d"``, ``"36h"``, ``"1d12h"``,
    ``"90s"`` or ``"2w"`` as a non-negative timedelta; a bare number is seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        ttl = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ttl = timedelta(seconds=float(value))
    elif isinstance(value, str) and value.strip():
        text = value.replace(" ", "").lower()
        parts = _TTL_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise UsageError(
                f"{field}: cannot read the TTL {value!r}",
                hint="write a duration such as 7d, 36h, 1d12h, 90s or 2w (or a timedelta)",
                field=field,
            )
        ttl = timedelta(seconds=sum(float(n) * _TTL_UNITS[u] for n, u in parts))
    else:
        raise UsageError(
            f"{field}: a TTL is a timedelta or text such as '7d', not {type(value).__name__}",
            field=field,
        )
    if ttl < timedelta(0):
        raise UsageError(f"{field}: the TTL {value!r} is negative", field=field)
    return ttl


def _ttl_text(ttl: timedelta | None) -> str | None:
    if ttl is None:
        return None
    micros = ttl // timedelta(microseconds=1)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)):
        if micros and micros % size == 0:
            return f"{micros // size}{unit}"
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    return f"{micros / 1_000_000!r}s"


# -- sources ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a view's rows come from. Build with a dataset reference (a string),
    :func:`parquet` or :func:`sql`.

    ``kind`` is ``dataset`` (``ref``: ``NAME`` or ``NAME@N``; the version used is recorded
    in lineage), ``parquet`` (``path``: relative to the project root, never leaving it) or
    ``sql`` (``query``: one SELECT over ``tables``, each a dataset or Parquet source).
    """

    kind: str
    ref: str | None = None
    path: str | None = None
    query: str | None = None
    tables: tuple[tuple[str, Source], ...] = ()

    def spec(self) -> Any:
        if self.kind == "dataset":
            return self.ref
        if self.kind == "parquet":
            return {"parquet": self.path}
        return {"sql": self.query, "tables": {n: s.spec() for n, s in self.tables}}

    def datasets(self) -> list[str]:
        """The dataset references this source reads (for lineage and plan checks)."""
        if self.kind == "dataset":
            return [str(self.ref)]
        return [r for _, s in self.tables for r in s.datasets()]


def parquet(path: str) -> Source:
    """A Parquet file (or a folder of them), relative to the project root."""
    if not isinstance(path, str) or not path.strip():
        raise UsageError("source.parquet: give the path of a Parquet file", field="source.parquet")
    return Source("parquet", path=path)


def sql(query: str, tables: Mapping[str, Any] | None = None, **more: Any) -> Source:
    """One DuckDB query over named tables: ``sql("SELECT ... FROM w", tables={"w":
    "weather@2"})``. Each table is a dataset reference or :func:`parquet`. The query runs in
    plinth's SQL sandbox (no files, no network): it sees only the tables named here."""
    if not isinstance(query, str) or not query.strip():
        raise UsageError("source.sql: the query is empty", field="source.sql")
    named = {**dict(tables or {}), **more}
    if not named:
        raise UsageError(
            "source.sql: name the tables the query reads",
            hint='sql("SELECT ... FROM w", tables={"w": "weather"})',
            field="source.tables",
        )
    parsed: list[tuple[str, Source]] = []
    for key in sorted(named):
        _column(key, f"source.tables.{key}")
        inner = _source(named[key], f"source.tables.{key}")
        if inner.kind == "sql":
            raise UsageError(
                f"source.tables.{key}: a table of a query is a dataset or a Parquet file",
                field=f"source.tables.{key}",
            )
        parsed.append((key, inner))
    return Source("sql", query=query, tables=tuple(parsed))


def _source(value: object, field: str) -> Source:
    if isinstance(value, Source):
        return value
    if isinstance(value, str):
        parse_ref(value, what="dataset", field=field)
        return Source("dataset", ref=value)
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"dataset"}:
            return _source(value["dataset"], f"{field}.dataset")
        if keys == {"parquet"}:
            return parquet(value["parquet"])
        if keys <= {"sql", "tables"} and "sql" in keys:
            tables = value.get("tables") or {}
            if not isinstance(tables, Mapping):
                raise UsageError(f"{field}.tables must be a mapping", field=f"{field}.tables")
            return sql(value["sql"], tables)
    raise UsageError(
        f"{field}: a source is a dataset reference (NAME or NAME@N), {{parquet: PATH}} or "
        f"{{sql: QUERY, tables: {{NAME: SOURCE}}}}; got {value!r:.80}",
        field=field,
    )


# -- definitions -----------------------------------------------------------------------
class _Base:
    kind: ClassVar[str]
    name: str

    def spec(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def digest(self) -> str:
        """BLAKE3 of the canonical JSON of :meth:`spec`: the version key in the ledger."""
        from blake3 import blake3

        text = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return blake3(text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Entity(_Base):
    """What features are keyed by: ``Entity("plane", join_keys=["tailnum"])``."""

    kind: ClassVar[str] = "entity"
    name: str
    join_keys: Sequence[str]
    description: str = ""

    def __post_init__(self) -> None:
        _name(self.name, "entity", "name")
        keys = [self.join_keys] if isinstance(self.join_keys, str) else list(self.join_keys)
        if not keys:
            raise UsageError(f"entity {self.name!r}: give at least one join key", field="join_keys")
        for i, key in enumerate(keys):
            _column(key, f"join_keys[{i}]")
        if len(set(keys)) != len(keys):
            raise UsageError(f"entity {self.name!r}: a join key is repeated", field="join_keys")
        object.__setattr__(self, "join_keys", tuple(keys))

    def spec(self) -> dict[str, Any]:
        return {"join_keys": list(self.join_keys), "description": self.description}


@dataclass(frozen=True)
class FeatureSelection:
    """Some features of one view, as ``view[["f1", "f2"]]`` makes it."""

    view: FeatureView | OnDemandFeatureView | str
    features: tuple[str, ...] | None = None

    @property
    def view_name(self) -> str:
        return self.view if isinstance(self.view, str) else self.view.name

    def spec(self) -> dict[str, Any]:
        return {
            "view": self.view_name,
            "features": None if self.features is None else list(self.features),
        }


def _features(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise UsageError(
            f"{field}: give the features as a mapping of name to type",
            hint='features={"temp": "float64", "visib": "float64"}',
            field=field,
        )
    return {_column(k, f"{field}.{k}"): _type(t, f"{field}.{k}") for k, t in value.items()}


def _select(view: FeatureView | OnDemandFeatureView, names: object) -> FeatureSelection:
    wanted = [names] if isinstance(names, str) else list(names)  # type: ignore[call-overload]
    unknown = [n for n in wanted if n not in view.features]
    if unknown or not wanted:
        raise UsageError(
            f"view {view.name!r} has no feature {unknown[0] if unknown else ''!r}",
            hint=f"its features: {', '.join(view.features)}",
            field="features",
        )
    return FeatureSelection(view, tuple(wanted))


@dataclass(frozen=True, eq=False)
class FeatureView(_Base):
    """Features of one source, keyed by entities and timed by ``timestamp``.

    A value holds from its event time until ``ttl`` later (inclusive); ``None``: forever.
    ``created_timestamp`` breaks ties of equal event time (the latest wins).
    """

    kind: ClassVar[str] = "feature_view"
    name: str
    entities: Sequence[Entity | str]
    source: Source | str | Mapping[str, Any]
    timestamp: str
    created_timestamp: str | None = None
    ttl: timedelta | str | float | None = None
    features: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        _name(self.name, "feature view", "name")
        ents = [self.entities] if isinstance(self.entities, str | Entity) else list(self.entities)
        for i, e in enumerate(ents):
            if not isinstance(e, Entity):
                _name(e, "entity", f"entities[{i}]")
        object.__setattr__(self, "entities", tuple(ents))
        object.__setattr__(self, "source", _source(self.source, "source"))
        _column(self.timestamp, "timestamp")
        if self.created_timestamp is not None:
            _column(self.created_timestamp, "created_timestamp")
        object.__setattr__(self, "ttl", parse_ttl(self.ttl))
        feats = _features(self.features, "features")
        for col, what in (
            (self.timestamp, "timestamp"),
            (self.created_timestamp, "created_timestamp"),
        ):
            if col in feats:
                raise UsageError(
                    f"view {self.name!r}: the {what} column {col!r} is also a feature",
                    field=f"features.{col}",
                )
        object.__setattr__(self, "features", feats)

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(e.name if isinstance(e, Entity) else e for e in self.entities)

    @property
    def ttl_delta(self) -> timedelta | None:
        return (
            self.ttl if isinstance(self.ttl, timedelta) or self.ttl is None else parse_ttl(self.ttl)
        )

    def __getitem__(self, names: str | Sequence[str]) -> FeatureSelection:
        return _select(self, names)

    def spec(self) -> dict[str, Any]:
        assert isinstance(self.source, Source)
        return {
            "entities": list(self.entity_names),
            "source": self.source.spec(),
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
            "ttl": _ttl_text(self.ttl_delta),
            "features": dict(self.features),
            "description": self.description,
        }


@dataclass(frozen=True, eq=False)
class OnDemandFeatureView(_Base):
    """Features computed when they are read, from request fields and other views'
    features, by a vectorised function: ``function(df) -> DataFrame`` (pandas) whose
    columns include every feature named in ``features``.

    ``function`` is a callable or ``"path/to/file.py:name"`` (relative to the project
    root). The ledger records the file, the name and a digest of the function's source; a
    recorded function runs only when the caller opts in (``trust_code=True``,
    ``--trust-code``) or passes the callable itself.
    """

    kind: ClassVar[str] = "on_demand_view"
    name: str
    sources: Sequence[FeatureView | FeatureSelection | str]
    request: Mapping[str, str]
    features: Mapping[str, str]
    function: Callable[[Any], Any] | str
    description: str = ""
    #: Recorded with the spec: where the function lives and the digest of its source.
    function_ref: str | None = None
    code_digest: str | None = None

    def __post_init__(self) -> None:
        _name(self.name, "on-demand feature view", "name")
        srcs = (
            [self.sources]
            if isinstance(self.sources, str | FeatureView | FeatureSelection)
            else list(self.sources)
        )
        # VIEW, "VIEW[f1, f2]", {view: VIEW, features: [..]}, a view or a selection: as a
        # service lists them, checked the same way from Python and YAML.
        object.__setattr__(
            self, "sources", tuple(_item(s, f"sources[{i}]") for i, s in enumerate(srcs))
        )
        req = dict(self.request or {})
        object.__setattr__(
            self,
            "request",
            {_column(k, f"request.{k}"): _type(t, f"request.{k}") for k, t in req.items()},
        )
        object.__setattr__(self, "features", _features(self.features, "features"))
        if isinstance(self.function, str):
            if not _FUNCTION_REF.fullmatch(self.function):
                raise UsageError(
                    f"function: {self.function!r} is not PATH.py:NAME",
                    hint="name a function in a file of the project, e.g. features/extra.py:ratios",
                    field="function",
                )
            if self.function_ref is None:
                object.__setattr__(self, "function_ref", self.function)
        elif not callable(self.function):
            raise UsageError("function: give a callable or 'PATH.py:NAME'", field="function")

    @property
    def source_names(self) -> tuple[str, ...]:
        out = []
        for s in self.sources:
            out.append(
                s
                if isinstance(s, str)
                else s.view_name
                if isinstance(s, FeatureSelection)
                else s.name
            )
        return tuple(out)

    def __getitem__(self, names: str | Sequence[str]) -> FeatureSelection:
        return _select(self, names)

    def spec(self) -> dict[str, Any]:
        sources = []
        for s in self.sources:
            if isinstance(s, FeatureSelection):
                sources.append(s.spec())
            else:
                sources.append({"view": s if isinstance(s, str) else s.name, "features": None})
        return {
            "sources": sources,
            "request": dict(self.request),
            "features": dict(self.features),
            "function": self.function_ref,
            "code_digest": self.code_digest,
            "description": self.description,
        }


ServiceItem = FeatureView | OnDemandFeatureView | FeatureSelection | str | Mapping[str, Any]


def _item(value: object, field: str) -> FeatureSelection:
    if isinstance(value, FeatureSelection):
        return value
    if isinstance(value, FeatureView | OnDemandFeatureView):
        return FeatureSelection(value, None)
    if isinstance(value, str):
        match = _SELECTION.fullmatch(value)
        if match is None:
            raise UsageError(f"{field}: {value!r} is not VIEW or VIEW[f1, f2]", field=field)
        _name(match[1], "feature view", field)
        if match[2] is None:
            return FeatureSelection(match[1], None)
        names = tuple(n.strip().strip("'\"") for n in match[2].split(",") if n.strip())
        for n in names:
            _column(n, field)
        return FeatureSelection(match[1], names or None)
    if isinstance(value, Mapping) and "view" in value and set(value) <= {"view", "features"}:
        view = _name(value["view"], "feature view", f"{field}.view")
        feats = value.get("features")
        if feats is None:
            return FeatureSelection(view, None)
        if isinstance(feats, str) or not isinstance(feats, Sequence) or not feats:
            raise UsageError(f"{field}.features must be a list of names", field=f"{field}.features")
        return FeatureSelection(view, tuple(_column(f, f"{field}.features") for f in feats))
    raise UsageError(
        f"{field}: a service lists views, VIEW[f1, f2] or {{view: NAME, features: [..]}}; "
        f"got {value!r:.80}",
        field=field,
    )


@dataclass(frozen=True, eq=False)
class FeatureService(_Base):
    """What a model reads: views (all their features) or selections ``view[["f1"]]``."""

    kind: ClassVar[str] = "feature_service"
    name: str
    features: Sequence[ServiceItem]
    description: str = ""

    def __post_init__(self) -> None:
        _name(self.name, "feature service", "name")
        items = (
            [self.features]
            if isinstance(self.features, str | FeatureView | OnDemandFeatureView | FeatureSelection)
            else list(self.features)
        )
        if not items:
            raise UsageError(f"service {self.name!r} lists no features", field="features")
        parsed = tuple(_item(v, f"features[{i}]") for i, v in enumerate(items))
        seen: set[str] = set()
        for sel in parsed:
            if sel.view_name in seen:
                raise UsageError(
                    f"service {self.name!r} names view {sel.view_name!r} twice",
                    hint="list each view once, with every feature wanted from it",
                    field="features",
                )
            seen.add(sel.view_name)
        object.__setattr__(self, "features", parsed)

    @property
    def selections(self) -> tuple[FeatureSelection, ...]:
        return tuple(self.features)  # type: ignore[arg-type]

    def spec(self) -> dict[str, Any]:
        return {"features": [s.spec() for s in self.selections], "description": self.description}


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
_KINDS: dict[str, type[Any]] = {
    "entity": Entity,
    "feature_view": FeatureView,
    "on_demand_view": OnDemandFeatureView,
    "feature_service": FeatureService,
}


def from_spec(kind: str, name: str, spec: Mapping[str, Any]) -> Definition:
    """The definition a recorded ``spec`` describes (a spec from the ledger is checked
    like one from a file: a bad one is a UsageError naming the field)."""
    if kind not in _KINDS:
        raise UsageError(f"unknown feature definition kind {kind!r}", field="kind")
    if not isinstance(spec, Mapping):
        raise UsageError(f"{kind} {name!r}: the recorded spec is not a mapping", field="spec")
    data = dict(spec)
    if kind == "on_demand_view":
        ref = data.get("function")
        if not isinstance(ref, str):
            raise UsageError(
                f"on-demand view {name!r} was recorded without a function file",
                hint="define its function in a file of the project and apply it again",
                field="function",
            )
        return OnDemandFeatureView(
            name=name,
            sources=[_item(s, f"sources[{i}]") for i, s in enumerate(data.get("sources") or [])],
            request=data.get("request") or {},
            features=data.get("features") or {},
            function=ref,
            description=str(data.get("description") or ""),
            function_ref=ref,
            code_digest=data.get("code_digest"),
        )
    try:
        return _KINDS[kind](name=name, **data)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise UsageError(f"{kind} {name!r}: {exc}", field="spec") from None


def definitions_in(values: Iterable[object]) -> list[Definition]:
    """The definitions among ``values`` (e.g. a module's globals), in order, each once."""
    out: list[Definition] = []
    seen: set[int] = set()
    for v in values:
        if (
            isinstance(v, Entity | FeatureView | OnDemandFeatureView | FeatureService)
            and id(v) not in seen
        ):
            seen.add(id(v))
            out.append(v)
    return out
