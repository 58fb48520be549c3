"""Deployments: specs versioned by the digest of their YAML, and prediction-log batches.

A deployment spec is saved under its name: the same text again is the same version, a
changed text the next number. The prediction log records one row per Parquet batch it
writes, with the request-id range it holds, so a request id finds its batch by one
indexed read (request ids are UUIDv7: they sort by time).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import DeploymentVersion, PredictionBatch
from plinth.errors import NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, get_numbered, save_numbered
from plinth.ledger.dataset_rows import check_digest
from plinth.ledger.record_rows import check_batch
from plinth.ledger.tables import deployments as deployments_t
from plinth.ledger.tables import prediction_batches as batches_t

__all__ = ["DeploymentStore"]


class DeploymentStore:
    """``ledger.deployments``: save and find deployment versions; record and find batches."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- deployments -------------------------------------------------------------------
    def save(
        self, project_id: str, name: str, digest: str, spec: Mapping[str, Any]
    ) -> DeploymentVersion:
        """The version of deployment ``name`` whose YAML has ``digest``, numbered if new."""
        check_text(name, "deployment name")
        check_digest(digest, "deployment digest")
        if not isinstance(spec, Mapping):
            raise UsageError(f"a deployment spec is a mapping, not {type(spec).__name__}")
        row = save_numbered(
            self._db,
            deployments_t,
            {"project_id": project_id, "name": name},
            digest,
            f"deployment {name!r}",
            {"spec": dict(spec)},
        )
        return _deployment(row)

    def get(self, project_id: str, name: str, number: int | None = None) -> DeploymentVersion:
        """Deployment ``name`` at ``number`` (None: its newest version)."""
        scope = {"project_id": project_id, "name": name}
        hint = "deployments are saved when plinth serve starts one"
        row = get_numbered(self._db, deployments_t, scope, number, f"deployment {name!r}", hint)
        return _deployment(row)

    def get_by_id(self, deployment_id: str) -> DeploymentVersion:
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(deployments_t).where(deployments_t.c.id == deployment_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no deployment with id {deployment_id!r} in the ledger")
        return _deployment(row)

    # -- prediction batches --------------------------------------------------------------
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
        row: dict[str, Any] = {
            "id": new_id(),
            "deployment_id": deployment.id,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "rows": rows,
            "digest": digest,
            "model_versions": sorted(set(model_versions)),
            "first_request_id": first_request_id,
            "last_request_id": last_request_id,
            "dropped": dropped,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(batches_t.insert().values(**row))
        return _batch(row)

    def batches(
        self, deployment_id: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> builtins.list[PredictionBatch]:
        """Batches of a deployment version overlapping [since_ms, until_ms], oldest first."""
        return self._batches(batches_t.c.deployment_id == deployment_id, since_ms, until_ms)

    def batches_of(
        self,
        project_id: str,
        name: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> builtins.list[PredictionBatch]:
        """Batches of every version of deployment ``name`` overlapping [since_ms, until_ms],
        oldest first."""
        versions = sa.select(deployments_t.c.id).where(
            (deployments_t.c.project_id == project_id) & (deployments_t.c.name == name)
        )
        return self._batches(batches_t.c.deployment_id.in_(versions), since_ms, until_ms)

    def _batches(
        self, which: sa.ColumnElement[bool], since_ms: int | None, until_ms: int | None
    ) -> builtins.list[PredictionBatch]:
        query = sa.select(batches_t).where(which)
        if since_ms is not None:
            query = query.where(batches_t.c.end_ms >= since_ms)
        if until_ms is not None:
            query = query.where(batches_t.c.start_ms <= until_ms)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(batches_t.c.start_ms, batches_t.c.id)).mappings()
            return [_batch(r) for r in rows]

    def set_batch_profile(self, batch_id: str, digest: str) -> bool:
        """Record the profile of a batch, once: False when the batch already had one (the
        first writer wins; profiles of one batch are equal) or does not exist."""
        check_digest(digest, "profile digest")
        with self._db.write() as conn:
            done = conn.execute(
                batches_t.update()
                .where((batches_t.c.id == batch_id) & batches_t.c.profile_digest.is_(None))
                .values(profile_digest=digest)
            )
        return bool(done.rowcount)

    def find_batch(self, request_id: str) -> PredictionBatch | None:
        """The batch whose request-id range holds ``request_id``, if any was recorded."""
        check_text(request_id, "request id", max_length=36)
        query = (
            sa.select(batches_t)
            .where(
                (batches_t.c.first_request_id <= request_id)
                & (batches_t.c.last_request_id >= request_id)
            )
            .order_by(batches_t.c.first_request_id.desc())
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _batch(row)


def _deployment(m: Mapping[Any, Any]) -> DeploymentVersion:
    return DeploymentVersion(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        number=m["number"],
        digest=m["digest"],
        spec=dict(m["spec"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def _batch(m: Mapping[Any, Any]) -> PredictionBatch:
    return PredictionBatch(
        id=m["id"],
        deployment_id=m["deployment_id"],
        start_ms=m["start_ms"],
        end_ms=m["end_ms"],
        rows=m["rows"],
        digest=m["digest"],
        model_versions=tuple(m["model_versions"]),
        first_request_id=m["first_request_id"],
        last_request_id=m["last_request_id"],
        dropped=m["dropped"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        profile_digest=m.get("profile_digest"),
    )
