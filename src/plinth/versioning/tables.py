"""Tables inside dataset versions: Parquet and CSV metadata, loading, saving (pyarrow).

Imported only by the functions that need it: ``import plinth`` and the file commands never
load pyarrow, pandas or polars.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import MissingExtraError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.storage import ContentStore
    from plinth.versioning.manifest import Manifest

__all__ = [
    "FORMATS",
    "LOAD_AS",
    "check_table_files",
    "convert",
    "read_table",
    "table_format",
    "table_info",
    "to_arrow",
    "write_parquet",
]

#: File suffix -> table format.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
#: What ``load(as_=...)`` accepts.
LOAD_AS = ("pandas", "arrow", "polars")
#: CSV files up to this size have their rows counted on add (a streamed read); larger
#: ones record their schema only, since counting means reading the whole file again.
CSV_COUNT_MAX = 64 * 1024 * 1024


def table_format(path: str) -> str | None:
    """``parquet``, ``csv`` or None, from a file name's suffix."""
    return FORMATS.get(os.path.splitext(path)[1].lower())


def check_table_files(paths: Sequence[str], where: Path) -> None:
    """:class:`UsageError` unless every file is Parquet or CSV (one format)."""
    formats = {table_format(p) for p in paths}
    if None in formats:
        bad = next(p for p in paths if table_format(p) is None)
        suffix = os.path.splitext(bad)[1] or "(no suffix)"
        raise UsageError(
            f"unsupported file format for a table: {bad} ({suffix}) in {where}",
            hint="a table is Parquet (.parquet, .pq) or CSV (.csv); add other files with "
            "--kind file or --kind directory",
            field="kind",
        )
    if len(formats) > 1:
        raise UsageError(
            f"a table's files must share one format; {where} mixes Parquet and CSV",
            field="kind",
        )


def table_info(files: Sequence[tuple[str, str]]) -> tuple[int | None, list[dict[str, Any]]]:
    """Row count (None when not cheaply known) and schema of ``(relative, absolute)`` files."""
    rows: int | None = 0
    schema: list[dict[str, Any]] | None = None
    for rel, abs_path in sorted(files):
        n, columns = _file_info(rel, abs_path)
        rows = None if rows is None or n is None else rows + n
        if schema is None:
            schema = columns
        elif columns != schema:
            raise UsageError(
                f"the files of a table must share one schema; {rel} differs from "
                f"{sorted(files)[0][0]}",
                hint="add them as a folder of files (--kind directory)",
                field="kind",
            )
    return rows, schema or []


def _file_info(rel: str, abs_path: str) -> tuple[int | None, list[dict[str, Any]]]:
    import pyarrow as pa

    try:
        if table_format(rel) == "parquet":
            import pyarrow.parquet as pq

            meta = pq.read_metadata(abs_path)
            return meta.num_rows, _columns(meta.schema.to_arrow_schema())
        import pyarrow.csv as pcsv

        with pcsv.open_csv(abs_path) as reader:
            columns = _columns(reader.schema)
            if os.path.getsize(abs_path) > CSV_COUNT_MAX:
                return None, columns
            return sum(batch.num_rows for batch in reader), columns
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"cannot read {rel} as a {table_format(rel)} table: {exc}",
            hint="check the file, or add it as a plain file with --kind file",
            field="path",
        ) from None


def _columns(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def read_table(content: ContentStore, manifest: Manifest, where: str) -> pa.Table:
    """The rows of a table version, every file verified against its digest."""
    import pyarrow as pa

    tables = []
    for path in sorted(manifest.files):
        digest, size = manifest.files[path]
        buffer = pa.py_buffer(content.read_bytes(digest, size=size))
        if table_format(path) == "parquet":
            import pyarrow.parquet as pq

            tables.append(pq.read_table(pa.BufferReader(buffer)))
        else:
            import pyarrow.csv as pcsv

            tables.append(pcsv.read_csv(pa.BufferReader(buffer)))
    if not tables:
        raise UsageError(f"{where} holds no table files")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def convert(table: pa.Table, as_: str) -> Any:
    """``table`` as a pandas DataFrame, itself (arrow) or a polars DataFrame."""
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise MissingExtraError("datasets.load(as_='pandas')", "demo") from None
        return table.to_pandas()
    if as_ == "polars":
        try:
            import polars as pl
        except ImportError:
            raise UsageError(
                "datasets.load(as_='polars') needs polars, which is not installed",
                hint="pip install polars, or load as_='pandas' or as_='arrow'",
                field="as_",
            ) from None
        return pl.from_arrow(table)
    raise UsageError(
        f"cannot load a dataset as {as_!r}", hint=f"use one of {', '.join(LOAD_AS)}", field="as_"
    )


def to_arrow(data: Any) -> pa.Table:
    """A pyarrow Table from a pandas or polars DataFrame (or a Table)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    raise UsageError(
        f"cannot save a {type(data).__name__} as a dataset",
        hint="pass a pandas or polars DataFrame or a pyarrow Table",
        field="data",
    )


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet; the same table gives the same bytes (so saves dedupe)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")
