"""What a suite runs on: a DataFrame or Arrow table, or a Parquet/CSV file or folder, read
as one pyarrow Table by :mod:`plinth.tables`.

Validation takes tables, never dataset references: ``plinth.datasets.validate`` resolves
those and passes the table. A reference given here still works for one release, with a
DeprecationWarning (:func:`deprecated_datasets`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.entities import DatasetVersion

__all__ = [
    "HINT",
    "ValidatedTable",
    "deprecated_datasets",
    "is_path",
    "read_path",
    "resolve",
    "to_table",
]

HINT = (
    "validate reads Parquet (.parquet, .pq) and CSV (.csv) files, folders of them, "
    "or a dataset reference NAME[@VERSION|@TAG]"
)
#: Suffixes that say "this is a file", so a missing one is not looked up as a dataset.
_FILE_SUFFIXES = {
    ".parquet", ".pq", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".xlsx", ".xls",
    ".feather", ".arrow", ".orc", ".avro",
}  # fmt: skip


@dataclass(frozen=True)
class ValidatedTable:
    """A table and what it is: a path, or a dataset version."""

    table: pa.Table
    target: str
    version: DatasetVersion | None = None


def to_table(data: Any) -> pa.Table:
    """A pyarrow Table from a pandas or polars DataFrame, a Table or a RecordBatch."""
    from plinth.tables import to_arrow

    return to_arrow(
        data,
        refuse="cannot validate a {type}",
        hint="pass a pandas or polars DataFrame or a pyarrow Table, or a Parquet/CSV path",
    )


def read_path(path: str | Path) -> pa.Table:
    """The rows of a Parquet/CSV file, or of a folder of such files."""
    from plinth.tables import read_path as read

    return read(path, field="data", hint=HINT)


def is_path(data: Any) -> bool:
    """Whether ``data`` names a file or folder (existing, or written like a path), rather
    than a dataset reference or an in-memory table."""
    if isinstance(data, Path):
        return True
    if not isinstance(data, str):
        return False
    return (
        Path(data).exists()
        or os.sep in data
        or "/" in data
        or Path(data).suffix.lower() in _FILE_SUFFIXES
    )


def resolve(data: Any) -> ValidatedTable:
    """The table ``data`` names: an in-memory table or a path (a dataset reference is
    :func:`deprecated_datasets`'s to resolve)."""
    if is_path(data):
        return ValidatedTable(read_path(data), str(data))
    if isinstance(data, str):
        raise UsageError(
            f"{data!r} is a dataset reference: plinth.validation takes tables and paths",
            hint="validate a dataset version with plinth.datasets.validate(ref, suite)",
            field="data",
        )
    return ValidatedTable(to_table(data), f"<{type(data).__name__}>")


def deprecated_datasets(what: str, instead: str) -> Any:
    """``plinth.datasets.validation``, for a dataset reference given to ``plinth.validation``
    (deprecated: it keeps working until the next release, with a DeprecationWarning)."""
    import importlib

    warnings.warn(
        f"{what} is deprecated and will stop working in the next release: plinth.validation "
        f"takes tables and paths; use {instead}",
        DeprecationWarning,
        stacklevel=3,
    )
    # Imported by name: the datasets pillar imports validation, never the reverse.
    return importlib.import_module("plinth.datasets.validation")


def __getattr__(name: str) -> Any:
    if name == "Source":  # renamed: monitoring had a Source too
        from plinth._deprecation import warn

        warn("plinth.validation.sources.Source", "plinth.validation.sources.ValidatedTable")
        return ValidatedTable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
