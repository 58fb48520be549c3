"""The checks ``plan`` makes on a batch of definitions before anything is recorded.

Each problem names the definition and its field: an unknown entity, a source that does not
exist or whose SQL is not one query, a timestamp, created-timestamp, join-key or feature
column missing from the source, a declared type the source column does not hold, a
service or on-demand view reading a view or feature that does not exist. All problems of
a batch are collected, not just the first. A source is read once per plan (datasets by
their recorded schema when there is one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import CheckFailedError, NotFoundError, UsageError
from plinth.features.definitions import (
    Definition,
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    Source,
    from_spec,
)

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["Problem", "check_batch", "type_class"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one definition: ``field`` is ``NAME.FIELD`` (``planes.timestamp``)."""

    kind: str
    name: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "field": self.field, "message": self.message}


_WHAT = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_view": "on-demand view",
    "feature_service": "feature service",
}
#: Feature type -> the classes of source column it accepts (see :func:`type_class`).
_ACCEPTS = {
    "float64": {"float", "int"},
    "int64": {"int"},
    "string": {"string"},
    "bool": {"bool"},
    "timestamp": {"timestamp", "date"},
}


def type_class(arrow_type: str) -> str:
    """The class of an Arrow type written as text (``str(pa_type)``, as dataset versions
    record it): ``int``, ``float``, ``string``, ``bool``, ``timestamp``, ``date``, ``null``
    or ``other``. ``uint64`` is ``other`` (it does not fit an int64)."""
    text = arrow_type.strip()
    if text.startswith("dictionary<values="):
        text = text[len("dictionary<values=") :].split(",", 1)[0]
    if text in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"):
        return "int"
    if text in ("halffloat", "float", "double", "float16", "float32", "float64"):
        return "float"
    if text in ("string", "large_string", "string_view", "utf8", "large_utf8"):
        return "string"
    if text in ("bool", "boolean"):
        return "bool"
    if text.startswith("timestamp"):
        return "timestamp"
    if text.startswith(("date32", "date64")):
        return "date"
    if text == "null":
        return "null"
    return "other"


class _Checker:
    def __init__(self, batch: list[Definition], ctx: Context) -> None:
        self.ctx = ctx
        self.pid = ctx.project.id
        self.batch = {(d.kind, d.name): d for d in batch}
        self.problems: list[Problem] = []
        self._schemas: dict[str, dict[str, str] | Problem] = {}
        self._ledger: dict[tuple[str, str], Definition | None] = {}

    def add(self, d: Definition, field: str, message: str) -> None:
        label = f"{_WHAT[d.kind]} {d.name!r}"
        self.problems.append(Problem(d.kind, d.name, f"{d.name}.{field}", f"{label}: {message}"))

    def known(self, kind: str, name: str) -> Definition | None:
        """A definition in the batch, else the newest recorded one, else None."""
        if (kind, name) in self.batch:
            return self.batch[(kind, name)]
        if (kind, name) not in self._ledger:
            rec = self.ctx.ledger.features.find_definition(self.pid, kind, name)
            found = None
            if rec is not None:
                try:
                    found = from_spec(kind, rec.name, rec.spec)
                except UsageError:  # recorded without a function file: it still exists
                    found = _Recorded(kind, rec.name, dict(rec.spec.get("features") or {}))  # type: ignore[assignment]
            self._ledger[(kind, name)] = found
        return self._ledger[(kind, name)]

    def schema(self, source: Source, field: str) -> dict[str, str] | Problem:
        key = json.dumps(source.spec(), sort_keys=True)
        if key not in self._schemas:
            self._schemas[key] = self._read_schema(source, field)
        return self._schemas[key]

    def _query_schema(self, source: Source, field: str) -> dict[str, str] | None:
        """The columns a query returns, found by running it on zero-row tables shaped like
        its datasets' recorded schemas (no data read); None when a table is not a dataset
        with a recorded schema of types read here (the caller then loads the data)."""
        import duckdb

        from plinth.features.sources import resolve_versions
        from plinth.guards.sql import cursor, error_detail

        empty = {}
        for name, inner in source.tables:
            if inner.kind != "dataset":
                return None
            (version,) = resolve_versions(inner, ctx=self.ctx, field=f"{field}.tables.{name}")
            table = _empty_table(version.schema) if version.kind == "table" else None
            if table is None:
                return None
            empty[name] = table
        con = cursor()
        try:
            for name, table in empty.items():
                con.register(name, table)
            try:
                result = con.sql(str(source.query)).to_arrow_table()
            except duckdb.Error as exc:
                raise UsageError(
                    f"{field}.sql: the query failed: {error_detail(exc)}",
                    hint=f"it reads only the tables the source names: {', '.join(empty)}",
                    field=f"{field}.sql",
                ) from None
        finally:
            con.close()
        return {f.name: str(f.type) for f in result.schema}

    def _read_schema(self, source: Source, field: str) -> dict[str, str] | Problem:
        from plinth.features.sources import load_source, resolve_versions

        try:
            if source.kind == "sql":
                from plinth.guards.sql import check_query

                check_query(source.query, field=f"{field}.sql", what="the source's SQL")
            if source.kind == "dataset":
                (version,) = resolve_versions(source, ctx=self.ctx, field=field)
                if version.kind == "table" and version.schema:
                    return {c["name"]: str(c["type"]) for c in version.schema}
            if source.kind == "sql":
                shape = self._query_schema(source, field)
                if shape is not None:
                    return shape
            table = load_source(source, ctx=self.ctx, field=field).table
        except (UsageError, NotFoundError, CheckFailedError) as exc:
            return Problem("", "", exc.field or field, exc.message)
        return {f.name: str(f.type) for f in table.schema}


@dataclass(frozen=True)
class _Recorded:
    """A recorded definition that cannot be rebuilt (an on-demand view without a function
    file): only its features are known."""

    kind: str
    name: str
    features: dict[str, str]


def check_batch(batch: list[Definition], *, ctx: Context) -> list[Problem]:
    """Every problem of ``batch`` (see the module docstring), in definition order."""
    checker = _Checker(batch, ctx)
    checks: dict[str, Callable[[_Checker, Any], None]] = {
        "feature_view": _check_view,
        "on_demand_view": _check_on_demand,
        "feature_service": _check_service,
    }
    for d in batch:
        if d.kind in checks:
            checks[d.kind](checker, d)
    return checker.problems


def _join_keys(c: _Checker, view: FeatureView) -> list[str] | None:
    keys: list[str] = []
    complete = True
    for i, ent in enumerate(view.entities):
        found = ent if isinstance(ent, Entity) else c.known("entity", ent)
        if not isinstance(found, Entity):
            c.add(
                view,
                f"entities[{i}]",
                f"unknown entity {ent!r} (not in this file and not applied before)",
            )
            complete = False
            continue
        keys.extend(k for k in found.join_keys if k not in keys)
    return keys if complete else None


def _check_view(c: _Checker, view: FeatureView) -> None:
    keys = _join_keys(c, view)
    assert isinstance(view.source, Source)
    schema = c.schema(view.source, "source")
    if isinstance(schema, Problem):
        c.add(view, schema.field, schema.message)
        return
    columns = ", ".join(schema) or "none"

    def column(name: str, field: str, what: str) -> str | None:
        if name not in schema:
            c.add(view, field, f"no {what} column {name!r} in the source (its columns: {columns})")
            return None
        return type_class(schema[name])

    for field in ("timestamp", "created_timestamp"):
        name = getattr(view, field)
        if name is None:
            continue
        klass = column(name, field, field.replace("_", " "))
        if klass is not None and klass not in ("timestamp", "date", "null"):
            c.add(
                view,
                field,
                f"the {field.replace('_', ' ')} column {name!r} is {schema[name]}, not a "
                "timestamp or date",
            )
    for key in keys or []:
        klass = column(key, f"join_keys.{key}", "join-key")
        if klass is not None and klass not in ("int", "string", "null"):
            c.add(view, f"join_keys.{key}", f"join key {key!r} is {schema[key]}, not int or text")
    for name, kind in view.features.items():
        klass = column(name, f"features.{name}", "feature")
        if klass is not None and klass != "null" and klass not in _ACCEPTS[kind]:
            c.add(
                view,
                f"features.{name}",
                f"feature {name!r} is declared {kind} but the source column is {schema[name]}",
            )


def _view_features(
    c: _Checker, d: Definition, sel: FeatureSelection | FeatureView | str, field: str
) -> tuple[Any, tuple[str, ...] | None] | None:
    if isinstance(sel, FeatureView):
        return sel, None
    if isinstance(sel, FeatureSelection) and not isinstance(sel.view, str):
        return sel.view, sel.features
    name = sel if isinstance(sel, str) else sel.view_name
    wanted = None if isinstance(sel, str) else sel.features
    for kind in ("feature_view", "on_demand_view"):
        found = c.known(kind, name)
        if found is not None:
            return found, wanted
    c.add(d, field, f"reads view {name!r}, which is not in this file and was not applied")
    return None


def _check_selected(
    c: _Checker, d: Definition, view: Any, wanted: tuple[str, ...] | None, field: str
) -> None:
    features: Mapping[str, str] = view.features
    for f in wanted or ():
        if f not in features:
            c.add(
                d,
                field,
                f"view {view.name!r} has no feature {f!r} (its features: {', '.join(features)})",
            )


def _check_on_demand(c: _Checker, od: OnDemandFeatureView) -> None:
    for i, src in enumerate(od.sources):
        got = _view_features(c, od, src, f"sources[{i}]")
        if got is None:
            continue
        view, wanted = got
        if view.kind != "feature_view":
            c.add(od, f"sources[{i}]", f"reads {view.name!r}, another on-demand view")
            continue
        _check_selected(c, od, view, wanted, f"sources[{i}]")


def _check_service(c: _Checker, svc: FeatureService) -> None:
    for i, sel in enumerate(svc.selections):
        got = _view_features(c, svc, sel, f"features[{i}]")
        if got is not None:
            _check_selected(c, svc, got[0], got[1], f"features[{i}]")


_ARROW_TYPES = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float", "double", "halffloat", "string", "large_string", "bool", "date32[day]",
    "date64[ms]", "binary", "large_binary",
}  # fmt: skip
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=([A-Za-z0-9_+\-/:]+))?\]")


def _empty_table(schema: list[dict[str, Any]] | None) -> Any:
    """A zero-row Arrow table of ``schema`` (a dataset version's recorded ``{name, type}``
    list); None when a type is not one read here."""
    import pyarrow as pa

    if not schema:
        return None
    fields = []
    for column in schema:
        text = str(column.get("type"))
        if text in _ARROW_TYPES:
            kind = pa.type_for_alias(text.split("[")[0] if text.startswith("date") else text)
        else:
            match = _TIMESTAMP.fullmatch(text)
            if match is None:
                return None
            kind = pa.timestamp(match[1], tz=match[2])
        fields.append(pa.field(str(column.get("name")), kind))
    # Not Schema.empty_table(): it imports pandas (~0.25 s).
    return pa.Table.from_batches([], schema=pa.schema(fields))
