"""Artifacts: a record's logical paths, each pointing at a content-addressed blob.

A path is written once: recording it again with the same digest is a no-op, with another
digest a ConflictError (artifacts are immutable; log a new path or a new record instead).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import Artifact, RecordRef
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.guards.paths import normalize_artifact_path
from plinth.ledger._common import Db, check_text, chunks, upsert
from plinth.ledger.record_rows import artifact_of as _artifact
from plinth.ledger.tables import artifacts

__all__ = ["ArtifactStore", "artifact_rows", "write_artifacts"]

_DIGEST = re.compile(r"[0-9a-f]{64}")


class ArtifactStore:
    """``ledger.artifacts``: (owner record, path) -> blob digest, size, media type."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def record(
        self,
        owner: RecordRef,
        path: str,
        digest: str,
        size: int,
        media_type: str | None = None,
    ) -> Artifact:
        """Point ``owner``'s ``path`` at a blob; the stored artifact is returned."""
        (stored,) = self.record_many(owner, [(path, digest, size, media_type)])
        return stored

    def record_many(
        self,
        owner: RecordRef,
        items: Iterable[tuple[str, str, int, str | None]],
    ) -> builtins.list[Artifact]:
        """Record many ``(path, digest, size, media_type)`` in one transaction.

        Every item is checked first; a bad path or a conflicting digest writes nothing.
        """
        rows = artifact_rows(owner, items, self._db.stamp())
        if not rows:
            return []
        with self._db.write() as conn:
            stored = write_artifacts(conn, owner, rows)
        return [_artifact(stored[path]) for path in rows]

    def get(self, owner: RecordRef, path: str) -> Artifact:
        """The artifact at ``path`` of ``owner``; NotFoundError if there is none."""
        path = normalize_artifact_path(path)
        with self._db.read() as conn:
            row = conn.execute(_select(owner, path)).mappings().first()
        if row is None:
            raise NotFoundError(f"{owner} has no artifact {path!r}")
        return _artifact(row)

    def list(self, owner: RecordRef) -> builtins.list[Artifact]:
        """Every artifact of ``owner``, by path."""
        query = (
            sa.select(artifacts)
            .where((artifacts.c.owner_type == owner.type) & (artifacts.c.owner_id == owner.id))
            .order_by(artifacts.c.path)
        )
        with self._db.read() as conn:
            return [_artifact(row) for row in conn.execute(query).mappings()]


def artifact_rows(
    owner: RecordRef,
    items: Iterable[tuple[str, str, int, str | None]],
    stamp: dict[str, Any],
) -> dict[str, dict[str, object]]:
    """The checked rows of ``(path, digest, size, media_type)`` items of ``owner``, by
    normalised path; UsageError / ConflictError (a path given twice) before anything is
    written. Shared by every writer of artifacts (:meth:`ArtifactStore.record_many`, a
    pipeline step's end)."""
    _check_owner(owner)
    rows: dict[str, dict[str, object]] = {}
    for raw_path, digest, size, media_type in items:
        path = normalize_artifact_path(raw_path)
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise UsageError(
                f"artifact digest must be 64 lowercase hex characters (BLAKE3), got {digest!r}"
            )
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise UsageError(f"artifact size must be an integer >= 0, got {size!r}")
        if media_type is not None:
            check_text(media_type, "media type")
        if path in rows and rows[path]["digest"] != digest:
            raise ConflictError(
                f"artifact {path!r} of {owner} is given twice with different digests",
                field="path",
            )
        rows[path] = {
            "owner_type": owner.type,
            "owner_id": owner.id,
            "path": path,
            "digest": digest,
            "size": size,
            "media_type": media_type,
            **stamp,
        }
    return rows


def write_artifacts(
    conn: sa.Connection, owner: RecordRef, rows: dict[str, dict[str, object]]
) -> Mapping[str, Mapping[Any, Any]]:
    """Write :func:`artifact_rows` in the caller's transaction; the stored rows by path.

    A path that already points at another digest raises ConflictError (the caller's
    transaction is rolled back with it)."""
    # One statement executed for many parameter sets: compiled once (and cached),
    # where a multi-row VALUES is built and compiled anew for every batch.
    result = conn.execute(
        upsert(conn, artifacts).on_conflict_do_nothing(), builtins.list(rows.values())
    )
    # ON CONFLICT DO NOTHING counts only the rows it inserted: when that is every row,
    # the stored rows are the given ones and reading them back (a third of the time of
    # recording 1,000 files) is skipped. Any row already there is read and compared.
    if conn.dialect.supports_sane_multi_rowcount and result.rowcount == len(rows):
        return rows
    stored = {
        row["path"]: row
        for chunk in chunks(builtins.list(rows), 500)
        for row in conn.execute(
            sa.select(artifacts).where(
                (artifacts.c.owner_type == owner.type)
                & (artifacts.c.owner_id == owner.id)
                & artifacts.c.path.in_(chunk)
            )
        ).mappings()
    }
    for path, wanted in rows.items():
        if stored[path]["digest"] != wanted["digest"]:
            raise ConflictError(
                f"artifact {path!r} of {owner} already points at blob "
                f"{stored[path]['digest']}; cannot point it at {wanted['digest']}",
                hint="artifacts are immutable: log the new content under another path",
                field="path",
            )
    return stored


def _check_owner(owner: RecordRef) -> None:
    if not isinstance(owner, RecordRef):
        raise UsageError(f"artifact owner must be a RecordRef, got {owner!r}")
    check_text(owner.type, "owner type", max_length=64)
    check_text(owner.id, "owner id", max_length=64)


def _select(owner: RecordRef, path: str) -> sa.Select[tuple[object, ...]]:
    return sa.select(artifacts).where(
        (artifacts.c.owner_type == owner.type)
        & (artifacts.c.owner_id == owner.id)
        & (artifacts.c.path == path)
    )
