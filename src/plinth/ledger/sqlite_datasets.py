"""The dataset store over the standard library's sqlite3, for commands that must start fast.

``plinth data status`` and friends should answer in well under 0.2 s, and importing
SQLAlchemy and Alembic alone costs ~0.4 s on a small machine. For an embedded (SQLite)
ledger whose schema is already current, :func:`open_sqlite_datasets` returns this store:
the same rows, the same numbering rule and the same errors as
:class:`plinth.ledger.datasets.DatasetStore` (both run one contract suite). Anything else —
PostgreSQL, a missing database, an older or newer schema — gets None, and the caller opens
the full :class:`~plinth.ledger.Ledger` (which migrates).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from plinth.entities import Dataset, DatasetVersion, Erasure
from plinth.errors import LedgerUnavailableError, NotFoundError
from plinth.ids import new_id, now_ms
from plinth.ledger.dataset_rows import (
    check_dataset_name,
    check_digest,
    check_erasure,
    check_new_version,
    check_status,
    check_tag,
    dataset_of,
    erased_is_final,
    erasure_of,
    missing_version,
    parse_spec,
    scrubbed,
    tag_conflict,
    unknown_dataset,
    version_of,
)

__all__ = [
    "SCHEMA_REVISION",
    "SqliteDatasetStore",
    "connect_current",
    "open_sqlite_datasets",
    "transaction",
]

#: The schema revision this module's SQL is written for; other revisions use the full ledger.
SCHEMA_REVISION = "0011_metric_series_index"
_BUSY_TIMEOUT_MS = 30_000
#: Bound parameters per IN (...) list, under SQLite's limit.
_CHUNK = 500
_VERSION_COLUMNS = (
    "id",
    "dataset_id",
    "number",
    "parent_number",
    "kind",
    "manifest_digest",
    "size",
    "file_count",
    "row_count",
    "schema",
    "message",
    "created_at",
    "created_by",
    "status",
    "profile_digest",
)
#: Column names are this module's constants, never input.
_INSERT_VERSION = (
    f"INSERT INTO dataset_versions ({', '.join(_VERSION_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _VERSION_COLUMNS)})"
)


def open_sqlite_datasets(url: str, *, user: str) -> SqliteDatasetStore | None:
    """The fast store for a ``sqlite:////ABSOLUTE/PATH`` ledger at :data:`SCHEMA_REVISION`."""
    conn = connect_current(url)
    return None if conn is None else SqliteDatasetStore(conn, url=url, user=user)


def connect_current(url: str) -> sqlite3.Connection | None:
    """A sqlite3 connection to the ``sqlite:////ABSOLUTE/PATH`` ledger ``url`` when its
    schema is at :data:`SCHEMA_REVISION`; None for any other URL or revision (the caller
    then opens the full ledger, which migrates)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix + "/"):
        return None
    path, _, query = url[len(prefix) :].partition("?")
    if query or not Path(path).is_file():
        return None
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if row is None or row[0] != SCHEMA_REVISION:
        conn.close()
        return None
    return conn


@contextmanager
def transaction(
    conn: sqlite3.Connection, url: str, mode: str = "DEFERRED"
) -> Iterator[sqlite3.Connection]:
    """``BEGIN mode`` ... ``COMMIT`` on ``conn`` (``ROLLBACK`` when the body raises), for every
    sqlite3 store of the ledger; sqlite3's own errors become a :class:`LedgerUnavailableError`
    that names the setting."""
    try:
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise LedgerUnavailableError(
            f"cannot use the ledger database {url} (setting 'metadata'): {exc}",
            field="metadata",
        ) from None


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SqliteDatasetStore:
    """``DatasetStore``'s methods on one sqlite3 connection (one thread at a time)."""

    def __init__(self, conn: sqlite3.Connection, *, url: str, user: str) -> None:
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self.url = url
        self.user = user

    def _tx(self, mode: str = "DEFERRED") -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self.url, mode)

    def close(self) -> None:
        self._conn.close()

    # -- projects (what the dataset commands need of them) -----------------------------
    def ensure_project(self, name: str) -> str:
        """The id of the project ``name``, created if missing."""
        with self._tx() as conn:
            row = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return str(row[0])
        with self._tx("IMMEDIATE") as conn:
            conn.execute(
                "INSERT INTO projects (id, name, created_at, created_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (new_id(), name, now_ms(), self.user),
            )
            return str(
                conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()[0]
            )

    # -- datasets ----------------------------------------------------------------------
    def ensure(self, project_id: str, name: str) -> Dataset:
        check_dataset_name(name)
        found = self._find(project_id, name)
        if found is not None:
            return found
        with self._tx("IMMEDIATE") as conn:
            conn.execute(
                "INSERT INTO datasets (id, project_id, name, versions, created_at, created_by) "
                "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                (new_id(), project_id, name, now_ms(), self.user),
            )
        found = self._find(project_id, name)
        assert found is not None
        return found

    def _find(self, project_id: str, name: str) -> Dataset | None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM datasets WHERE project_id = ? AND name = ?", (project_id, name)
            ).fetchone()
        return None if row is None else dataset_of(row)

    def get(self, project_id: str, name: str) -> Dataset:
        check_dataset_name(name)
        found = self._find(project_id, name)
        if found is None:
            with self._tx() as conn:
                names = [
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM datasets WHERE project_id = ? ORDER BY name",
                        (project_id,),
                    )
                ]
            raise unknown_dataset(name, names)
        return found

    def list(self, project_id: str) -> builtins.list[Dataset]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM datasets WHERE project_id = ? ORDER BY name", (project_id,)
            ).fetchall()
        return [dataset_of(r) for r in rows]

    # -- versions ----------------------------------------------------------------------
    def add_version(
        self,
        dataset: Dataset,
        *,
        kind: str,
        manifest_digest: str,
        size: int,
        file_count: int,
        message: str | None = None,
        row_count: int | None = None,
        schema: Sequence[dict[str, Any]] | None = None,
        new_digests: Iterable[str] = (),
        status: str = "published",
        profile_digest: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        check_new_version(
            kind, manifest_digest, size, file_count, row_count, status, profile_digest
        )
        digests = sorted(set(new_digests))
        with self._tx("IMMEDIATE") as conn:
            created_at = now_ms()
            conn.executemany(
                "INSERT INTO dataset_blobs (dataset_id, digest, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(dataset.id, d, created_at) for d in digests],
            )
            found = conn.execute(
                "SELECT versions FROM datasets WHERE id = ?", (dataset.id,)
            ).fetchone()
            if found is None:
                raise NotFoundError(f"no dataset with id {dataset.id!r} in the ledger")
            latest_number = int(found[0])
            parent = latest_number or None
            if parent is not None:
                latest = conn.execute(
                    "SELECT * FROM dataset_versions WHERE dataset_id = ? AND number = ?",
                    (dataset.id, parent),
                ).fetchone()
                if latest["manifest_digest"] == manifest_digest and latest["kind"] == kind:
                    unchanged = dict(latest)
                    row = None
                else:
                    unchanged = None
            else:
                unchanged = None
            if unchanged is None:
                number = latest_number + 1
                conn.execute("UPDATE datasets SET versions = ? WHERE id = ?", (number, dataset.id))
                row = {
                    "id": new_id(),
                    "dataset_id": dataset.id,
                    "number": number,
                    "parent_number": parent,
                    "kind": kind,
                    "manifest_digest": manifest_digest,
                    "size": size,
                    "file_count": file_count,
                    "row_count": row_count,
                    "schema": None if schema is None else [dict(c) for c in schema],
                    "message": message,
                    "created_at": now_ms(),
                    "created_by": self.user,
                    "status": status,
                    "profile_digest": profile_digest,
                }
                values = dict(row)
                values["schema"] = None if schema is None else json.dumps(row["schema"])
                conn.execute(_INSERT_VERSION, [values[c] for c in _VERSION_COLUMNS])
        if unchanged is not None:
            return self._with_tags(dataset.name, unchanged), False
        assert row is not None
        return version_of(row, dataset.name), True

    def _with_tags(self, name: str, row: Any) -> DatasetVersion:
        with self._tx() as conn:
            tags = [
                r[0]
                for r in conn.execute(
                    "SELECT tag FROM dataset_tags WHERE dataset_id = ? AND number = ? ORDER BY tag",
                    (row["dataset_id"], row["number"]),
                )
            ]
        return version_of(row, name, tuple(tags))

    def resolve(self, dataset: Dataset, spec: str | int | None = None) -> DatasetVersion:
        parsed = parse_spec(spec)
        with self._tx() as conn:
            number: int | None
            if parsed is None:
                found = conn.execute(
                    "SELECT versions FROM datasets WHERE id = ?", (dataset.id,)
                ).fetchone()
                number = int(found[0]) if found is not None and found[0] else None
            elif isinstance(parsed, str):
                found = conn.execute(
                    "SELECT number FROM dataset_tags WHERE dataset_id = ? AND tag = ?",
                    (dataset.id, parsed),
                ).fetchone()
                number = None if found is None else int(found[0])
            else:
                number = parsed
            row = None
            if number is not None:
                row = conn.execute(
                    "SELECT * FROM dataset_versions WHERE dataset_id = ? AND number = ?",
                    (dataset.id, number),
                ).fetchone()
        if row is None:
            raise missing_version(dataset, parsed)
        return self._with_tags(dataset.name, row)

    def get_version_by_id(self, version_id: str) -> DatasetVersion:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT v.*, d.name AS dataset_name FROM dataset_versions v "
                "JOIN datasets d ON d.id = v.dataset_id WHERE v.id = ?",
                (version_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no dataset version with id {version_id!r} in the ledger")
        return self._with_tags(row["dataset_name"], row)

    def list_versions(
        self, dataset: Dataset, limit: int | None = None
    ) -> builtins.list[DatasetVersion]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM dataset_versions WHERE dataset_id = ? ORDER BY number DESC LIMIT ?",
                (dataset.id, -1 if limit is None else limit),
            ).fetchall()
            tags: dict[int, builtins.list[str]] = {}
            for r in conn.execute(
                "SELECT tag, number FROM dataset_tags WHERE dataset_id = ? ORDER BY tag",
                (dataset.id,),
            ):
                tags.setdefault(r["number"], []).append(r["tag"])
        return [version_of(r, dataset.name, tuple(tags.get(r["number"], []))) for r in rows]

    def latest_versions(self, project_id: str) -> dict[str, DatasetVersion]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT v.*, d.name AS dataset_name FROM dataset_versions v JOIN datasets d "
                "ON d.id = v.dataset_id AND d.versions = v.number WHERE d.project_id = ?",
                (project_id,),
            ).fetchall()
        return {r["dataset_name"]: version_of(r, r["dataset_name"]) for r in rows}

    def set_status(self, version_ids: Sequence[str], status: str) -> None:
        check_status(status)
        ids = sorted(set(version_ids))
        with self._tx("IMMEDIATE") as conn:
            for chunk in chunks(ids):
                marks = ", ".join("?" for _ in chunk)
                found = conn.execute(
                    f"SELECT id, status FROM dataset_versions WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                missing = set(chunk) - {r["id"] for r in found}
                if missing:
                    raise NotFoundError(
                        f"no dataset version with id {sorted(missing)[0]!r} in the ledger"
                    )
                if status != "erased" and any(r["status"] == "erased" for r in found):
                    raise erased_is_final()
                conn.execute(
                    f"UPDATE dataset_versions SET status = ? WHERE id IN ({marks})",  # noqa: S608
                    [status, *chunk],
                )

    def set_profile(self, version_id: str, digest: str) -> None:
        check_digest(digest, "profile digest")
        with self._tx("IMMEDIATE") as conn:
            done = conn.execute(
                "UPDATE dataset_versions SET profile_digest = ? WHERE id = ?",
                (digest, version_id),
            ).rowcount
        if not done:
            raise NotFoundError(f"no dataset version with id {version_id!r} in the ledger")

    # -- erasures ----------------------------------------------------------------------
    def record_erasure(
        self,
        dataset: Dataset,
        *,
        predicate: str,
        message: str,
        rows_removed: int,
        new_number: int | None,
        erased_numbers: Sequence[int],
        released_digests: Iterable[str] = (),
    ) -> Erasure:
        check_erasure(predicate, message, rows_removed)
        numbers = sorted({int(n) for n in erased_numbers})
        released = sorted(set(released_digests))
        for digest in released:
            check_digest(digest, "a released blob digest")
        row: dict[str, Any] = {
            "id": new_id(),
            "dataset_id": dataset.id,
            "predicate": predicate,
            "message": message,
            "rows_removed": rows_removed,
            "new_number": new_number,
            "erased_numbers": numbers,
            "released_blobs": released,
            "created_at": now_ms(),
            "created_by": self.user,
        }
        with self._tx("IMMEDIATE") as conn:
            for chunk in chunks(numbers):
                marks = ", ".join("?" for _ in chunk)
                where = f"dataset_id = ? AND number IN ({marks})"
                found = conn.execute(
                    f"SELECT id, profile_digest FROM dataset_versions WHERE {where}",  # noqa: S608
                    [dataset.id, *chunk],
                ).fetchall()
                if len(found) != len(chunk):
                    raise missing_version(dataset, max(chunk))
                # Profiles and validation reports of erased versions may quote erased rows.
                released = sorted({*released, *(r[1] for r in found if r[1])})
                conn.execute(
                    "UPDATE dataset_versions SET status = 'erased', profile_digest = NULL "  # noqa: S608
                    f"WHERE {where}",
                    [dataset.id, *chunk],
                )
                for result in conn.execute(
                    "SELECT id, results, report_digest FROM validation_results "  # noqa: S608
                    f"WHERE dataset_version_id IN ({', '.join('?' for _ in found)})",
                    [r[0] for r in found],
                ).fetchall():
                    if result["report_digest"]:
                        released = sorted({*released, result["report_digest"]})
                    conn.execute(
                        "UPDATE validation_results SET report_digest = NULL, results = ? "
                        "WHERE id = ?",
                        (json.dumps(scrubbed(result["results"])), result["id"]),
                    )
            # Monitor reports against an erased version (and ad-hoc drift reports of one)
            # chart its top categories.
            refs = [f"{dataset.name}@{n}" for n in numbers]
            for chunk in chunks(refs):
                marks = ", ".join("?" for _ in chunk)
                where = (
                    f"project_id = ? AND (reference IN ({marks}) "
                    f"OR (kind = 'drift' AND monitor IN ({marks})))"
                )
                args = [dataset.project_id, *chunk, *chunk]
                found = conn.execute(
                    f"SELECT report_digest FROM monitor_reports WHERE {where}",  # noqa: S608
                    args,
                ).fetchall()
                released = sorted({*released, *(r[0] for r in found if r[0])})
                conn.execute(
                    f"UPDATE monitor_reports SET report_digest = NULL WHERE {where}",  # noqa: S608
                    args,
                )
            row["released_blobs"] = released
            conn.executemany(
                "DELETE FROM dataset_blobs WHERE dataset_id = ? AND digest = ?",
                [(dataset.id, d) for d in released],
            )
            conn.execute(
                "INSERT INTO dataset_erasures (id, dataset_id, predicate, message, "
                "rows_removed, new_number, erased_numbers, released_blobs, created_at, "
                "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *(row[k] for k in ("id", "dataset_id", "predicate", "message")),
                    rows_removed,
                    new_number,
                    json.dumps(numbers),
                    json.dumps(released),
                    row["created_at"],
                    row["created_by"],
                ),
            )
        return erasure_of(row)

    def erasures(self, dataset: Dataset) -> builtins.list[Erasure]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM dataset_erasures WHERE dataset_id = ? ORDER BY created_at, id",
                (dataset.id,),
            ).fetchall()
        return [erasure_of(r) for r in rows]

    # -- tags --------------------------------------------------------------------------
    def set_tag(
        self, dataset: Dataset, tag: str, spec: str | int | None, *, move: bool = False
    ) -> DatasetVersion:
        check_tag(tag)
        version = self.resolve(dataset, spec)
        with self._tx("IMMEDIATE") as conn:
            found = conn.execute(
                "SELECT number FROM dataset_tags WHERE dataset_id = ? AND tag = ?",
                (dataset.id, tag),
            ).fetchone()
            if found is None:
                conn.execute(
                    "INSERT INTO dataset_tags (dataset_id, tag, number, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (dataset.id, tag, version.number, now_ms(), self.user),
                )
            elif found[0] != version.number:
                if not move:
                    raise tag_conflict(dataset, tag, int(found[0]), version.number)
                conn.execute(
                    "UPDATE dataset_tags SET number = ?, created_at = ?, created_by = ? "
                    "WHERE dataset_id = ? AND tag = ?",
                    (version.number, now_ms(), self.user, dataset.id, tag),
                )
        return self.resolve(dataset, version.number)

    def tags(self, dataset: Dataset) -> dict[str, int]:
        with self._tx() as conn:
            return {
                r["tag"]: r["number"]
                for r in conn.execute(
                    "SELECT tag, number FROM dataset_tags WHERE dataset_id = ? ORDER BY tag",
                    (dataset.id,),
                )
            }

    def referenced_blobs(self, dataset: Dataset) -> set[str]:
        with self._tx() as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT digest FROM dataset_blobs WHERE dataset_id = ?", (dataset.id,)
                )
            }
