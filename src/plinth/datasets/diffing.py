"""What changed between two dataset versions, given the blob store that holds their manifests.

:func:`plinth.datasets.diff` resolves two references through a context; the web UI's diff
page has a server project's blob store and two version records instead. Both call
:func:`diff_versions`, so the two always agree::

    found = diff_versions(blobs, old, new)
    found.changes.added, found.rows, found.columns_changed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.datasets.manifests import FileChanges, compare, read_manifest

if TYPE_CHECKING:
    from plinth.entities import DatasetVersion
    from plinth.storage import ContentStore

__all__ = ["DatasetDiff", "diff_versions"]


@dataclass(frozen=True)
class DatasetDiff:
    """Files added/removed/changed between two versions; rows and schema for tables."""

    old: DatasetVersion
    new: DatasetVersion
    changes: FileChanges
    rows: tuple[int | None, int | None] | None = None
    columns_added: list[dict[str, Any]] = field(default_factory=list)
    columns_removed: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"name", "old_type", "new_type"}`` for columns whose type changed.
    columns_changed: list[dict[str, Any]] = field(default_factory=list)


def diff_versions(blobs: ContentStore, old: DatasetVersion, new: DatasetVersion) -> DatasetDiff:
    """Files from ``old`` to ``new``, and when both are tables their rows and columns."""
    changes = compare(read_manifest(blobs, old).files, read_manifest(blobs, new).files)
    if old.kind != "table" or new.kind != "table":
        return DatasetDiff(old, new, changes)
    before = {c["name"]: c["type"] for c in old.schema or []}
    after = {c["name"]: c["type"] for c in new.schema or []}
    return DatasetDiff(
        old,
        new,
        changes,
        rows=(old.row_count, new.row_count),
        columns_added=[c for c in new.schema or [] if c["name"] not in before],
        columns_removed=[c for c in old.schema or [] if c["name"] not in after],
        columns_changed=[
            {"name": n, "old_type": before[n], "new_type": after[n]}
            for n in after
            if n in before and before[n] != after[n]
        ],
    )
