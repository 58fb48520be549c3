"""Dataset records: a named dataset and its immutable versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DatasetKind = Literal["file", "directory", "table"]
DATASET_KINDS: tuple[str, ...] = ("file", "directory", "table")
#: ``published``: usable; ``quarantined``: stored but failed validation when added (loading
#: it needs ``allow_quarantined=True``); ``erased``: held rows removed by ``data forget``.
VERSION_STATUSES: tuple[str, ...] = ("published", "quarantined", "erased")


@dataclass(frozen=True)
class Dataset:
    """A named dataset of a project; ``versions`` is how many versions it has (the latest)."""

    id: str
    project_id: str
    name: str
    versions: int
    created_at: int
    created_by: str


@dataclass(frozen=True)
class DatasetVersion:
    """One snapshot of a dataset: ``NAME@number``. Its manifest blob lists every file.

    ``parent`` is the number of the version that was latest when this one was added (None
    for the first). ``row_count`` and ``schema`` are set for tables (Parquet, CSV) when
    they are cheaply known; ``schema`` is a list of ``{"name", "type"}``.
    """

    id: str
    dataset_id: str
    dataset: str
    number: int
    parent: int | None
    kind: str
    manifest_digest: str
    size: int
    file_count: int
    message: str | None
    created_at: int
    created_by: str
    row_count: int | None = None
    schema: list[dict[str, Any]] | None = None
    tags: tuple[str, ...] = field(default=())
    status: str = "published"
    #: The blob holding this version's profile (tables), once computed.
    profile_digest: str | None = None

    @property
    def ref(self) -> str:
        """``NAME@NUMBER``, the reference that names this version."""
        return f"{self.dataset}@{self.number}"

    def __repr__(self) -> str:
        rows = "" if self.row_count is None else f", rows={self.row_count}"
        return (
            f"DatasetVersion({self.ref!r}, kind={self.kind!r}, status={self.status!r}, "
            f"files={self.file_count}, size={self.size}{rows})"
        )

    def _repr_html_(self) -> str:
        """The version as a table in Jupyter: its facts and its schema, every value escaped."""
        from plinth import _notebook as nb

        facts = [
            ("status", self.status),
            ("kind", self.kind),
            ("rows", self.row_count),
            ("files", self.file_count),
            ("size (bytes)", self.size),
            ("parent", None if self.parent is None else f"{self.dataset}@{self.parent}"),
            ("tags", ", ".join(self.tags) or None),
            ("message", self.message),
            ("created", f"{nb.timestamp(self.created_at)} by {self.created_by}"),
            ("manifest", self.manifest_digest),
        ]
        columns = [
            (c.get("name"), c.get("type")) if isinstance(c, dict) else (c, None)
            for c in self.schema or ()
        ]
        schema = nb.section("schema", nb.table(("column", "type"), columns), len(columns))
        return nb.card(f"dataset version {self.ref}", facts, schema if self.schema else nb.Html(""))


@dataclass(frozen=True)
class Erasure:
    """The audit record of one ``plinth data forget``: who removed which rows, and why.

    ``new_number`` is the version written without the rows; ``erased_numbers`` the older
    versions that held them (now ``erased``); ``released_blobs`` the file blobs no other
    version keeps, which ``plinth gc`` deletes.
    """

    id: str
    dataset_id: str
    predicate: str
    message: str
    rows_removed: int
    new_number: int | None
    erased_numbers: tuple[int, ...]
    released_blobs: tuple[str, ...]
    created_at: int
    created_by: str
