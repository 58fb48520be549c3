"""The one place that reads and writes tables: Parquet and CSV files, Arrow, pandas, polars.

One set of rules for every pillar::

    read_path("data/flights")      a Parquet/CSV file, or a folder of them (files and folders
                                   whose name starts with "." or "_" are skipped, e.g. _SUCCESS)
    read_files([...])              files of one format, concatenated with schema promotion
    to_arrow(df)                   a pyarrow Table from a Table, RecordBatch, pandas or polars
    convert(table, "pandas")       a Table as pandas, polars or itself ("arrow")
    check_as("pandas")             an unknown kind refused, or its missing library's extra named
    write_parquet(table, path)     zstd Parquet; the same table gives the same bytes

Every read error is a :class:`~plinth.errors.UsageError` naming the file. Imports only
``plinth.errors`` and ``plinth._extras``; pyarrow, pandas and polars load inside the
functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from plinth._extras import require
from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "AS",
    "CSV_COUNT_MAX",
    "FORMATS",
    "check_as",
    "check_table_files",
    "concat",
    "convert",
    "read_bytes",
    "read_file",
    "read_files",
    "read_path",
    "table_files",
    "table_format",
    "table_info",
    "to_arrow",
    "write_parquet",
]

#: File suffix -> table format.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
#: What :func:`convert` turns a table into.
AS = ("pandas", "arrow", "polars")
#: CSV files up to this size have their rows counted by :func:`table_info` (a streamed
#: read); larger ones give their schema only, since counting means reading the whole file.
CSV_COUNT_MAX = 64 * 1024 * 1024
HINT = "a table is a Parquet (.parquet, .pq) or CSV (.csv) file, or a folder of them"


def table_format(path: str | os.PathLike[str]) -> str | None:
    """``parquet``, ``csv`` or None, from a file name's suffix."""
    return FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())


def _require_format(path: Path, field: str, hint: str | None) -> str:
    fmt = table_format(path.name)
    if fmt is None:
        suffix = path.suffix or "(no suffix)"
        raise UsageError(
            f"unsupported file format {suffix}: {path}", hint=hint or HINT, field=field
        )
    return fmt


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
    """Row count (None when not cheaply known) and schema of ``(relative, absolute)`` files,
    read from their metadata; :class:`UsageError` unless they share one schema."""
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

        with pcsv.open_csv(abs_path, convert_options=csv_options()) as reader:
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


def _unreadable(where: object, fmt: str, exc: Exception, field: str) -> UsageError:
    return UsageError(
        f"cannot read {where} as a {fmt} table: {exc}",
        hint=f"check that the file is complete and really is {fmt.capitalize()}",
        field=field,
    )


def read_file(
    path: str | Path, *, fmt: str | None = None, field: str = "path", hint: str | None = None
) -> pa.Table:
    """The rows of one Parquet or CSV file (``fmt`` from its suffix unless given)."""
    import pyarrow as pa

    path = Path(path)
    fmt = fmt or _require_format(path, field, hint)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path, convert_options=csv_options())
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, fmt, exc, field) from None


def csv_options() -> Any:
    """How every CSV is read: an empty field is a null in every column, strings included
    (pyarrow's default reads it as ``""`` in a string column, so a missing value in a CSV
    would never count as missing, while the same table as Parquet has its nulls)."""
    import pyarrow.csv as pcsv

    return pcsv.ConvertOptions(strings_can_be_null=True)


def read_bytes(
    data: bytes, name: str, *, where: str | None = None, field: str = "path"
) -> pa.Table:
    """The rows of a Parquet or CSV file held in memory (``name`` gives its format)."""
    import pyarrow as pa

    fmt = _require_format(Path(name), field, None)
    reader = pa.BufferReader(pa.py_buffer(data))
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(reader)
        import pyarrow.csv as pcsv

        return pcsv.read_csv(reader, convert_options=csv_options())
    except pa.ArrowException as exc:
        raise _unreadable(where or name, fmt, exc, field) from None


def concat(
    tables: Sequence[pa.Table], *, where: object, field: str = "path", hint: str | None = None
) -> pa.Table:
    """One table from several, their schemas promoted (a column missing from one file, or
    all null there, takes the other files' type); :class:`UsageError` when types differ."""
    import pyarrow as pa

    if not tables:
        raise UsageError(f"{where} holds no table files", hint=hint or HINT, field=field)
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as exc:
        raise UsageError(
            f"the files of {where} do not share one schema: {exc}", hint=hint or HINT, field=field
        ) from None


def read_files(
    files: Sequence[str | Path],
    *,
    where: object = None,
    field: str = "path",
    hint: str | None = None,
) -> pa.Table:
    """The rows of Parquet or CSV files of one format, in the order given, as one table."""
    paths = [Path(f) for f in files]
    where = where if where is not None else (paths[0].parent if paths else "the input")
    formats = {_require_format(p, field, hint) for p in paths}
    if len(formats) > 1:
        raise UsageError(f"{where} mixes Parquet and CSV files", hint=hint or HINT, field=field)
    fmt = formats.pop() if formats else None
    tables = [read_file(p, fmt=fmt, field=field, hint=hint) for p in paths]
    return concat(tables, where=where, field=field, hint=hint)


def table_files(folder: str | Path) -> list[Path]:
    """The files under ``folder``, sorted, leaving out every file or folder whose name starts
    with "." or "_" (``.DS_Store``, ``_SUCCESS``, ``_delta_log/``)."""
    root = Path(folder)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part[0] in "._" for part in p.relative_to(root).parts)
    )


def read_path(path: str | Path, *, field: str = "path", hint: str | None = None) -> pa.Table:
    """The rows of a Parquet/CSV file, or of a folder of them (see :func:`table_files`)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"no such file or folder: {path}", hint=hint or HINT, field=field)
    if not path.is_dir():
        return read_file(path, field=field, hint=hint)
    return read_files(table_files(path), where=path, field=field, hint=hint)


def to_arrow(
    data: Any,
    *,
    refuse: str = "cannot read a {type} as a table",
    field: str = "data",
    hint: str | None = None,
) -> pa.Table:
    """A pyarrow Table from a Table, a RecordBatch, or a pandas or polars DataFrame.

    Anything else is a :class:`UsageError` whose message is ``refuse`` with ``{type}``
    standing for the type's name.
    """
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        table: pa.Table = data.to_arrow()
        return table
    raise UsageError(
        refuse.format(type=type(data).__name__),
        hint=hint or "pass a pandas or polars DataFrame or a pyarrow Table",
        field=field,
    )


def check_as(to: str) -> Any:
    """The library that tables ``to`` need (None for arrow): a UsageError for an unknown
    ``to``, a MissingExtraError naming the extra when the library is not installed."""
    if to == "arrow":
        return None
    if to in ("pandas", "polars"):
        return require(to, feature=f"loading a table as {to} (to={to!r})", field="to")
    raise UsageError(
        f"cannot load a dataset as {to!r}", hint=f"use one of {', '.join(AS)}", field="to"
    )


def convert(table: pa.Table, to: str) -> Any:
    """``table`` as a pandas DataFrame, itself (arrow) or a polars DataFrame."""
    library = check_as(to)
    if library is None:
        return table
    if to == "pandas":
        return table.to_pandas()
    return library.from_arrow(table)


def write_parquet(table: pa.Table, where: str | Path | IO[bytes]) -> None:
    """Write ``table`` as zstd Parquet to a path or a binary file object; the same table
    gives the same bytes (so saves deduplicate)."""
    import pyarrow.parquet as pq

    pq.write_table(table, where, compression="zstd")
