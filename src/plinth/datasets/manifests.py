"""Dataset manifests: every file of a version (relative path -> digest, size), as one blob.

The blob is deterministic JSON, so the same files always give the same manifest digest
(which is how an unchanged re-add is recognised)::

    {"format": "plinth.manifest/1", "kind": "directory",
     "files": [["data/a.csv", "<blake3 hex>", 1024], ...]}      # sorted by path

Paths use '/' separators and are relative to the added folder (a single file is listed
under its own name).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plinth.entities import DATASET_KINDS
from plinth.errors import IntegrityError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.entities import DatasetVersion
    from plinth.storage import ContentStore

__all__ = [
    "FORMAT",
    "FileChange",
    "FileChanges",
    "Manifest",
    "compare",
    "read_manifest",
    "read_table",
]

FORMAT = "plinth.manifest/1"


@dataclass(frozen=True)
class Manifest:
    """The files of one dataset version: ``files[path] == (digest, size)``."""

    kind: str
    files: Mapping[str, tuple[str, int]]

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files.values())

    @property
    def digests(self) -> set[str]:
        return {digest for digest, _ in self.files.values()}

    def to_bytes(self) -> bytes:
        """The canonical JSON encoding (sorted paths, no whitespace, UTF-8)."""
        files = [[path, *self.files[path]] for path in sorted(self.files)]
        doc = {"format": FORMAT, "kind": self.kind, "files": files}
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            bad = next(p for p in self.files if not _is_utf8(p))
            raise UsageError(
                f"file name {bad!r} is not valid UTF-8",
                hint="rename the file: manifests name files in UTF-8",
                field="path",
            ) from None

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "manifest") -> Manifest:
        """Parse a manifest blob; :class:`IntegrityError` when it is not one."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT or doc.get("kind") not in DATASET_KINDS:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            files = {str(p): (str(d), int(s)) for p, d, s in doc["files"]}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IntegrityError(f"{where} is not a plinth manifest: {exc}") from None
        return cls(doc["kind"], files)


@dataclass(frozen=True)
class FileChange:
    """One path that differs: sizes before and after (None where it did not exist)."""

    path: str
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "old_size": self.old_size, "new_size": self.new_size}


@dataclass(frozen=True)
class FileChanges:
    """Paths added, removed and changed (content differs) from ``old`` to ``new``."""

    added: list[FileChange] = field(default_factory=list)
    removed: list[FileChange] = field(default_factory=list)
    changed: list[FileChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, object]:
        return {
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "changed": [c.to_dict() for c in self.changed],
            "unchanged": self.unchanged,
        }


def compare(old: Mapping[str, tuple[str, int]], new: Mapping[str, tuple[str, int]]) -> FileChanges:
    """What changed from the files ``old`` to ``new`` (each path -> (digest, size))."""
    if old == new:  # the common answer of a status, found without sorting every path
        return FileChanges(unchanged=len(old))
    added = [FileChange(p, None, new[p][1]) for p in sorted(new.keys() - old.keys())]
    removed = [FileChange(p, old[p][1], None) for p in sorted(old.keys() - new.keys())]
    changed = []
    unchanged = 0
    for path in sorted(old.keys() & new.keys()):
        if old[path][0] != new[path][0]:
            changed.append(FileChange(path, old[path][1], new[path][1]))
        else:
            unchanged += 1
    return FileChanges(added, removed, changed, unchanged)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def digests_of(manifests: Iterable[Manifest]) -> set[str]:
    return {d for m in manifests for d in m.digests}


def read_manifest(content: ContentStore, version: DatasetVersion) -> Manifest:
    """The manifest of ``version``, read (and verified) from ``content``."""
    data = content.read_bytes(version.manifest_digest)
    return Manifest.from_bytes(data, where=f"the manifest of {version.ref}")


def read_table(content: ContentStore, manifest: Manifest, where: str) -> pa.Table:
    """The rows of a table version, every file verified against its digest."""
    from plinth.tables import concat, read_bytes

    tables = [
        read_bytes(content.read_bytes(digest, size=size), path, where=f"{where} ({path})")
        for path, (digest, size) in sorted(manifest.files.items())
    ]
    return concat(tables, where=where)
