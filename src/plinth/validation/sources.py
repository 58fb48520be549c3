"""What a suite runs on: a DataFrame or Arrow table, a Parquet/CSV file or folder, or a
dataset reference ``NAME[@VERSION|@TAG]``, always read as one pyarrow Table."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion

__all__ = ["Source", "read_path", "resolve", "to_table"]

_HINT = (
    "validate reads Parquet (.parquet, .pq) and CSV (.csv) files, folders of them, "
    "or a dataset reference NAME[@VERSION|@TAG]"
)
#: Suffixes that say "this is a file", so a missing one is not looked up as a dataset.
_FILE_SUFFIXES = {
    ".parquet", ".pq", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".xlsx", ".xls",
    ".feather", ".arrow", ".orc", ".avro",
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """A table and what it is: a path, or a dataset version."""

    table: pa.Table
    target: str
    version: DatasetVersion | None = None


def to_table(data: Any) -> pa.Table:
    """A pyarrow Table from a pandas or polars DataFrame or a Table."""
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
        f"cannot validate a {type(data).__name__}",
        hint="pass a pandas or polars DataFrame or a pyarrow Table, or use run_suite() with "
        "a path or dataset reference",
        field="data",
    )


def _format(path: Path) -> str:
    from plinth.versioning.tables import table_format

    fmt = table_format(path.name)
    if fmt is None:
        suffix = path.suffix or "(no suffix)"
        raise UsageError(f"unsupported file format {suffix}: {path}", hint=_HINT, field="data")
    return fmt


def _read_file(path: Path, fmt: str) -> pa.Table:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"cannot read {path} as a {fmt} table: {exc}",
            hint="check that the file is complete and really is " + fmt.capitalize(),
            field="data",
        ) from None


def read_path(path: str | Path) -> pa.Table:
    """The rows of a Parquet/CSV file, or of a folder of such files (one schema)."""
    import pyarrow as pa

    path = Path(path)
    if not path.exists():
        raise UsageError(f"no such file or folder: {path}", hint=_HINT, field="data")
    if not path.is_dir():
        return _read_file(path, _format(path))
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise UsageError(f"{path} holds no table files", hint=_HINT, field="data")
    fmt = _format(files[0])
    if any(_format(p) != fmt for p in files):
        raise UsageError(f"{path} mixes Parquet and CSV files", hint=_HINT, field="data")
    tables = [_read_file(p, fmt) for p in files]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as exc:
        raise UsageError(
            f"the files of {path} do not share one schema: {exc}", hint=_HINT, field="data"
        ) from None


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or Path(text).suffix.lower() in _FILE_SUFFIXES


def resolve(data: Any, ctx: Context | None = None) -> Source:
    """The table ``data`` names: an in-memory table, an existing path, or a dataset ref."""
    if isinstance(data, Path) or (isinstance(data, str) and Path(data).exists()):
        return Source(read_path(data), str(data))
    if not isinstance(data, str):
        return Source(to_table(data), f"<{type(data).__name__}>")
    if _looks_like_path(data):
        raise UsageError(f"no such file or folder: {data}", hint=_HINT, field="data")
    from plinth.versioning import datasets

    version = datasets.get(data, ctx=ctx)
    # Checking is inspecting: a quarantined version can be validated again (a fixed suite).
    table = datasets.load(version.ref, as_="arrow", allow_quarantined=True, ctx=ctx)
    return Source(table, version.ref, version)
