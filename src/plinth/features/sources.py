"""Reading a feature view's source: a dataset version, a Parquet file of the project, or
one DuckDB query over them in plinth's SQL sandbox.

``load_source(view.source, ctx=ctx)`` returns the rows as a pyarrow Table and the dataset
versions read (for lineage). A dataset named without a version reads the newest one; the
exact version read is what lineage records. A Parquet path is joined under the project
root by :func:`plinth.guards.paths.safe_join` (a path from a recorded definition cannot
leave it). A query is checked to be one read-only statement and runs on a sandboxed
connection that sees only the tables the source names, registered as Arrow tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import Source

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion

__all__ = ["LoadedSource", "load_source", "resolve_versions"]


@dataclass(frozen=True)
class LoadedSource:
    """A source's rows and the dataset versions they came from."""

    table: pa.Table
    versions: tuple[DatasetVersion, ...]

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(v.ref for v in self.versions)


def resolve_versions(
    source: Source, *, ctx: Context, field: str = "source"
) -> list[DatasetVersion]:
    """The dataset versions ``source`` reads, resolved now (NotFoundError naming ``field``
    for a dataset or version that does not exist)."""
    import plinth.datasets as datasets

    out = []
    for ref in source.datasets():
        try:
            out.append(datasets.get(ref, ctx=ctx))
        except NotFoundError as exc:
            raise NotFoundError(
                f"{field}: {exc.message}", hint=exc.hint or "plinth data list", field=field
            ) from None
    return out


def _dataset(ref: str, *, ctx: Context, field: str) -> tuple[pa.Table, DatasetVersion]:
    import plinth.datasets as datasets

    (version,) = resolve_versions(Source("dataset", ref=ref), ctx=ctx, field=field)
    if version.kind != "table":
        raise UsageError(
            f"{field}: {version.ref} is a {version.kind}, not a table",
            hint="a feature view reads a table dataset (Parquet or CSV)",
            field=field,
        )
    table = datasets.load(version.ref, to="arrow", ctx=ctx)
    return table, version


def _parquet(path: str, *, ctx: Context, field: str) -> pa.Table:
    import pyarrow.parquet as pq

    from plinth.guards.paths import safe_join

    full = safe_join(ctx.settings.root, path)
    if not full.exists():
        raise NotFoundError(
            f"{field}: no Parquet file {path!r} in the project ({full})",
            hint="paths are relative to the project root (the folder of plinth.yaml)",
            field=field,
        )
    try:
        return pq.read_table(full)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{field}: cannot read {path!r} as Parquet: {exc}", field=field) from None


def load_source(source: Source, *, ctx: Context, field: str = "source") -> LoadedSource:
    """The rows of ``source`` (see the module docstring)."""
    if source.kind == "dataset":
        table, version = _dataset(str(source.ref), ctx=ctx, field=field)
        return LoadedSource(table, (version,))
    if source.kind == "parquet":
        return LoadedSource(_parquet(str(source.path), ctx=ctx, field=field), ())
    return _query(source, ctx=ctx, field=field)


def _query(source: Source, *, ctx: Context, field: str) -> LoadedSource:
    import duckdb

    from plinth.guards.sql import check_query, cursor, error_detail

    query = check_query(source.query, field=f"{field}.sql", what="the source's SQL")
    tables: dict[str, pa.Table] = {}
    versions: list[DatasetVersion] = []
    for name, inner in source.tables:
        loaded = load_source(inner, ctx=ctx, field=f"{field}.tables.{name}")
        tables[name] = loaded.table
        versions.extend(loaded.versions)
    con = cursor()
    try:
        for name, table in tables.items():
            con.register(name, table)
        try:
            result = con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise UsageError(
                f"{field}.sql: the query failed: {error_detail(exc)}",
                hint=f"it reads only the tables the source names: {', '.join(tables)}",
                field=f"{field}.sql",
            ) from None
    finally:
        con.close()
    return LoadedSource(result, tuple(versions))
