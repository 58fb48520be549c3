"""A model server's ledger writes over the standard library's sqlite3: its deployment
version and its prediction-log batches.

A model server records its deployment version before it answers, and importing SQLAlchemy
for that one write cost ~0.2 s of a start-up budget of 1.5 s. For an embedded (SQLite)
ledger whose schema is current, :func:`open_sqlite_deployments` returns a store whose
:meth:`~SqliteDeploymentStore.save` writes the same row, with the same numbering rule and
the same errors, as :meth:`plinth.ledger.deployments.DeploymentStore.save`, and
:meth:`~SqliteDeploymentStore.record_batch` as ``record_batch`` does (a test runs both over
one database), so a server never loads SQLAlchemy (~26 MB resident). Anything else gets
None: the caller uses the full ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from plinth.entities import DeploymentVersion, PredictionBatch
from plinth.errors import UsageError
from plinth.ids import new_id, now_ms
from plinth.ledger.dataset_rows import check_digest
from plinth.ledger.record_rows import check_batch
from plinth.ledger.sqlite_datasets import connect_current, transaction

__all__ = ["SqliteDeploymentStore", "open_sqlite_deployments"]

#: ``check_text``'s limit in :mod:`plinth.ledger._common` (which imports SQLAlchemy).
_MAX_NAME = 255


def open_sqlite_deployments(url: str, *, user: str) -> SqliteDeploymentStore | None:
    """The store for the ``sqlite:////ABSOLUTE/PATH`` ledger ``url`` at the current schema;
    None for any other ledger (use ``ledger.deployments`` then)."""
    conn = connect_current(url)
    return None if conn is None else SqliteDeploymentStore(conn, url=url, user=user)


class SqliteDeploymentStore:
    """``DeploymentStore.save`` and ``record_batch`` on one sqlite3 connection (one thread
    at a time)."""

    def __init__(self, conn: sqlite3.Connection, *, url: str, user: str) -> None:
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self.url = url
        self.user = user

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # IMMEDIATE: this connection is the only writer until COMMIT, so reading the
        # highest number and inserting the next cannot race another saver.
        return transaction(self._conn, self.url, "IMMEDIATE")

    def save(
        self, project_id: str, name: str, digest: str, spec: Mapping[str, Any]
    ) -> DeploymentVersion:
        """The version of deployment ``name`` whose YAML has ``digest``, numbered if new."""
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"deployment name must be a non-empty string, got {name!r}")
        if len(name) > _MAX_NAME:
            raise UsageError(
                f"deployment name is {len(name)} characters long; the limit is {_MAX_NAME}"
            )
        check_digest(digest, "deployment digest")
        if not isinstance(spec, Mapping):
            raise UsageError(f"a deployment spec is a mapping, not {type(spec).__name__}")
        same = "SELECT * FROM deployments WHERE project_id = ? AND name = ? AND digest = ?"
        with self._write() as conn:
            row = conn.execute(same, (project_id, name, digest)).fetchone()
            if row is None:
                latest = conn.execute(
                    "SELECT max(number) FROM deployments WHERE project_id = ? AND name = ?",
                    (project_id, name),
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO deployments (id, project_id, name, number, digest, spec, "
                    "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new_id(),
                        project_id,
                        name,
                        (latest or 0) + 1,
                        digest,
                        json.dumps(dict(spec)),  # as SQLAlchemy's JSON type writes it
                        now_ms(),
                        self.user,
                    ),
                )
                row = conn.execute(same, (project_id, name, digest)).fetchone()
        return DeploymentVersion(
            id=row["id"],
            project_id=row["project_id"],
            name=row["name"],
            number=row["number"],
            digest=row["digest"],
            spec=json.loads(row["spec"]),
            created_at=row["created_at"],
            created_by=row["created_by"],
        )

    def record_batch(
        self,
        deployment: DeploymentVersion,
        *,
        start_ms: int,
        end_ms: int,
        rows: int,
        digest: str,
        model_versions: Iterable[str],
        first_request_id: str,
        last_request_id: str,
        dropped: int = 0,
    ) -> PredictionBatch:
        """Record one written batch of logged predictions (its blob is already stored)."""
        check_batch(
            digest=digest,
            rows=rows,
            dropped=dropped,
            start_ms=start_ms,
            end_ms=end_ms,
            first_request_id=first_request_id,
            last_request_id=last_request_id,
        )
        batch = PredictionBatch(
            id=new_id(),
            deployment_id=deployment.id,
            start_ms=start_ms,
            end_ms=end_ms,
            rows=rows,
            digest=digest,
            model_versions=tuple(sorted(set(model_versions))),
            first_request_id=first_request_id,
            last_request_id=last_request_id,
            dropped=dropped,
            created_at=now_ms(),
            created_by=self.user,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO prediction_batches (id, deployment_id, start_ms, end_ms, rows, "
                "digest, model_versions, first_request_id, last_request_id, dropped, "
                "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.id,
                    batch.deployment_id,
                    batch.start_ms,
                    batch.end_ms,
                    batch.rows,
                    batch.digest,
                    json.dumps(list(batch.model_versions)),
                    batch.first_request_id,
                    batch.last_request_id,
                    batch.dropped,
                    batch.created_at,
                    batch.created_by,
                ),
            )
        return batch

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteDeploymentStore({self.url!r}, user={self.user!r})"
