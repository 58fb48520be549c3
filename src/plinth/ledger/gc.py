"""What ``plinth gc`` asks the ledger: which blobs are referenced, and the log of deletions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from plinth.entities import GcEvent
from plinth.errors import UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db
from plinth.ledger.tables import BLOB_REFERENCES, artifacts, gc_events, metadata, runs

__all__ = ["GcStore"]

_deleted_runs = sa.select(runs.c.id).where(runs.c.deleted_at.is_not(None))
_not_of_deleted_run = sa.not_(
    (artifacts.c.owner_type == "run") & artifacts.c.owner_id.in_(_deleted_runs)
)


class GcStore:
    """``ledger.gc``: referenced digests (over :data:`BLOB_REFERENCES`) and gc events."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def referenced_digests(self) -> set[str]:
        """Every blob digest some record points at, read in one UNION query.

        Artifacts of soft-deleted runs do not count: deleting a run lets gc free its blobs
        (unless another record points at the same blob).
        """
        selects = []
        for table_name, column_name in BLOB_REFERENCES:
            column = metadata.tables[table_name].c[column_name]
            select = sa.select(column.label("digest")).where(column.is_not(None))
            if table_name == artifacts.name:
                select = select.where(_not_of_deleted_run)
            selects.append(select)
        with self._db.read() as conn:
            return {row.digest for row in conn.execute(sa.union(*selects))}

    def record(self, blobs_deleted: int, bytes_deleted: int, digests: Iterable[str]) -> GcEvent:
        """Log one garbage collection: how many blobs and bytes, and which digests."""
        for name, value in (("blobs_deleted", blobs_deleted), ("bytes_deleted", bytes_deleted)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name} must be an integer >= 0, got {value!r}")
        row: dict[str, Any] = {
            "id": new_id(),
            "blobs_deleted": blobs_deleted,
            "bytes_deleted": bytes_deleted,
            "digests": sorted(str(d) for d in digests),
            **self._db.stamp(),
        }
        with self._db.write() as conn:
            conn.execute(gc_events.insert().values(**row))
        return _event(row)

    def list_events(self) -> list[GcEvent]:
        """Every gc event, newest first."""
        query = sa.select(gc_events).order_by(gc_events.c.created_at.desc(), gc_events.c.id.desc())
        with self._db.read() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]


def _event(m: Mapping[Any, Any]) -> GcEvent:
    return GcEvent(
        id=m["id"],
        blobs_deleted=m["blobs_deleted"],
        bytes_deleted=m["bytes_deleted"],
        digests=list(m["digests"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )
