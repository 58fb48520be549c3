"""Feature-store records: definition versions (by digest), materializations, pushes.

A definition is saved under ``(kind, name)``: the same canonical spec again is the same
version, a changed one the next number (as validation suites are). Materializations and
pushes are appended, never updated; "when was this view last materialized?" is one indexed
read.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import DEFINITION_KINDS, FeatureDefinition, FeaturePush, Materialization
from plinth.errors import NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, get_numbered, save_numbered
from plinth.ledger.dataset_rows import check_digest
from plinth.ledger.tables import feature_definitions as defs_t
from plinth.ledger.tables import feature_materializations as mats_t
from plinth.ledger.tables import feature_pushes as pushes_t

__all__ = ["FeatureStore"]

_WHAT = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_view": "on-demand feature view",
    "feature_service": "feature service",
}


def _kind(kind: object) -> str:
    if kind not in DEFINITION_KINDS:
        raise UsageError(
            f"feature definition kind must be one of {', '.join(DEFINITION_KINDS)}; got {kind!r}"
        )
    return str(kind)


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{what} must be an integer >= 0, got {value!r}")
    return value


class FeatureStore:
    """``ledger.features``: save and find definition versions; record materializations and
    pushes."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- definitions -------------------------------------------------------------------
    def save_definition(
        self, project_id: str, kind: str, name: str, digest: str, spec: Mapping[str, Any]
    ) -> FeatureDefinition:
        """The version of ``kind`` ``name`` whose canonical spec has ``digest``, numbered if
        new, and made the current one (applying an earlier spec again makes that earlier
        version current). ``spec`` must be JSON-serialisable; it is stored with the first
        version only."""
        _kind(kind)
        check_text(name, f"{_WHAT[kind]} name")
        check_digest(digest, "definition digest")
        scope = {"project_id": project_id, "kind": kind, "name": name}
        row = save_numbered(
            self._db,
            defs_t,
            scope,
            digest,
            f"{_WHAT[kind]} {name!r}",
            {"spec": dict(spec), "applied_seq": 0},
        )
        key = sa.and_(*(defs_t.c[k] == v for k, v in scope.items()))
        with self._db.write() as conn:
            # In one write transaction (the write lock on SQLite; on PostgreSQL the max is
            # re-read under the row update's lock): the applied version gets max + 1.
            top = conn.execute(sa.select(sa.func.max(defs_t.c.applied_seq)).where(key)).scalar()
            if row["applied_seq"] != top or top == 0:
                conn.execute(
                    defs_t.update()
                    .where(defs_t.c.id == row["id"])
                    .values(applied_seq=(top or 0) + 1)
                )
            row = conn.execute(sa.select(defs_t).where(defs_t.c.id == row["id"])).mappings().one()
        return _definition(row)

    def get_definition(
        self, project_id: str, kind: str, name: str, number: int | None = None
    ) -> FeatureDefinition:
        """``kind`` ``name`` at ``number`` (None: the current version, applied last)."""
        _kind(kind)
        scope = {"project_id": project_id, "kind": kind, "name": name}
        what = f"{_WHAT[kind]} {name!r}"
        hint = "plinth features apply FILE records definitions; plinth features list shows them"
        if number is not None:
            return _definition(get_numbered(self._db, defs_t, scope, number, what, hint))
        query = (
            sa.select(defs_t)
            .where(sa.and_(*(defs_t.c[k] == v for k, v in scope.items())))
            .order_by(defs_t.c.applied_seq.desc(), defs_t.c.number.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            found = conn.execute(query).mappings().first()
        if found is None:
            raise NotFoundError(f"no {what} in this project", hint=hint, field=kind)
        return _definition(found)

    def find_definition(
        self, project_id: str, kind: str, name: str, number: int | None = None
    ) -> FeatureDefinition | None:
        """Like :meth:`get_definition`, None where there is none."""
        try:
            return self.get_definition(project_id, kind, name, number)
        except NotFoundError:
            return None

    def get_definition_by_id(self, definition_id: str) -> FeatureDefinition:
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(defs_t).where(defs_t.c.id == definition_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no feature definition with id {definition_id!r} in the ledger")
        return _definition(row)

    def latest_definitions(
        self, project_id: str, kind: str | None = None
    ) -> builtins.list[FeatureDefinition]:
        """The current version (applied last) of every definition (of ``kind``), by kind
        then name."""
        if kind is not None:
            _kind(kind)
        current = (
            sa.select(defs_t.c.kind, defs_t.c.name, sa.func.max(defs_t.c.applied_seq).label("seq"))
            .where(defs_t.c.project_id == project_id)
            .group_by(defs_t.c.kind, defs_t.c.name)
        )
        if kind is not None:
            current = current.where(defs_t.c.kind == kind)
        sub = current.subquery()
        query = (
            sa.select(defs_t)
            .join(
                sub,
                (defs_t.c.kind == sub.c.kind)
                & (defs_t.c.name == sub.c.name)
                & (defs_t.c.applied_seq == sub.c.seq),
            )
            .where(defs_t.c.project_id == project_id)
            .order_by(defs_t.c.kind, defs_t.c.name)
        )
        with self._db.read() as conn:
            return [_definition(r) for r in conn.execute(query).mappings()]

    def versions(self, project_id: str, kind: str, name: str) -> builtins.list[FeatureDefinition]:
        """Every version of ``kind`` ``name``, oldest first."""
        _kind(kind)
        query = (
            sa.select(defs_t)
            .where(
                (defs_t.c.project_id == project_id)
                & (defs_t.c.kind == kind)
                & (defs_t.c.name == name)
            )
            .order_by(defs_t.c.number)
        )
        with self._db.read() as conn:
            return [_definition(r) for r in conn.execute(query).mappings()]

    # -- materializations --------------------------------------------------------------
    def record_materialization(
        self,
        definition: FeatureDefinition,
        *,
        start_ms: int | None,
        end_ms: int,
        rows: int,
        store: str,
        sources: list[str] | None = None,
    ) -> Materialization:
        """Append one materialization of ``definition`` (a feature view version);
        ``sources`` names what its rows were read from."""
        if definition.kind != "feature_view":
            raise UsageError(f"only feature views are materialized, not a {definition.kind}")
        _count(rows, "materialized rows")
        if start_ms is not None and end_ms < start_ms:
            raise UsageError(f"materialization ends ({end_ms}) before it starts ({start_ms})")
        check_text(store, "online store", max_length=4096)
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": definition.project_id,
            "view": definition.name,
            "definition_id": definition.id,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "rows": rows,
            "store": store,
            "sources": None if sources is None else sorted(str(x) for x in sources),
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(mats_t.insert().values(**row))
        return Materialization(**row)

    def materializations(
        self, project_id: str, view: str | None = None, *, limit: int = 100
    ) -> builtins.list[Materialization]:
        """Newest first."""
        query = sa.select(mats_t).where(mats_t.c.project_id == project_id)
        if view is not None:
            query = query.where(mats_t.c.view == view)
        query = query.order_by(mats_t.c.created_at.desc(), mats_t.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            return [Materialization(**dict(r)) for r in conn.execute(query).mappings()]

    def last_materialization(
        self, project_id: str, view: str, definition_id: str
    ) -> Materialization | None:
        """The latest materialization of this view version (by end of window), or None."""
        query = (
            sa.select(mats_t)
            .where(
                (mats_t.c.project_id == project_id)
                & (mats_t.c.view == view)
                & (mats_t.c.definition_id == definition_id)
            )
            .order_by(mats_t.c.end_ms.desc(), mats_t.c.created_at.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else Materialization(**dict(row))

    # -- pushes ------------------------------------------------------------------------
    def record_push(self, definition: FeatureDefinition, *, digest: str, rows: int) -> FeaturePush:
        """Append one pushed batch (a Parquet blob) to the offline log of a view."""
        if definition.kind != "feature_view":
            raise UsageError(f"rows are pushed to feature views, not to a {definition.kind}")
        check_digest(digest, "pushed rows digest")
        _count(rows, "pushed rows")
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": definition.project_id,
            "view": definition.name,
            "definition_id": definition.id,
            "digest": digest,
            "rows": rows,
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(pushes_t.insert().values(**row))
        return FeaturePush(**row)

    def pushes(self, project_id: str, view: str) -> builtins.list[FeaturePush]:
        """Every batch pushed to ``view`` (any version), oldest first."""
        query = (
            sa.select(pushes_t)
            .where((pushes_t.c.project_id == project_id) & (pushes_t.c.view == view))
            .order_by(pushes_t.c.created_at, pushes_t.c.id)
        )
        with self._db.read() as conn:
            return [FeaturePush(**dict(r)) for r in conn.execute(query).mappings()]


def _definition(row: Mapping[Any, Any]) -> FeatureDefinition:
    return FeatureDefinition(
        id=row["id"],
        project_id=row["project_id"],
        kind=row["kind"],
        name=row["name"],
        number=row["number"],
        digest=row["digest"],
        spec=dict(row["spec"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        applied_seq=row["applied_seq"],
    )
