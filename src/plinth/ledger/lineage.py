"""Lineage: edges ``src —relation→ dst`` between any two records, and walks over them.

Edges read as sentences: ``run —used→ dataset_version``, ``run —produced→ model_version``.
Most relations point along the flow of data (the src came first); the ones in
:data:`INPUT_RELATIONS` point from a consumer back to its input. :meth:`LineageStore.upstream`
and :meth:`LineageStore.downstream` know the difference, so the upstream of a model version
holds the run that produced it *and* the dataset versions that run used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from plinth.entities import LineageEdge, RecordRef
from plinth.errors import UsageError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, chunks, upsert
from plinth.ledger.record_rows import edge_of as _edge
from plinth.ledger.tables import lineage_edges as edges

__all__ = ["INPUT_RELATIONS", "LineageStore", "edge_rows", "refs_of", "write_edges"]

#: Relations whose edge points from a consumer to what it consumed (``run —used→
#: dataset_version``). A change that introduces such a relation appends it here.
INPUT_RELATIONS: frozenset[str] = frozenset({"used"})

_SRC = sa.tuple_(edges.c.src_type, edges.c.src_id)
_DST = sa.tuple_(edges.c.dst_type, edges.c.dst_id)
#: Refs per query of a walk; each level of a walk costs one query per this many refs.
_WALK_CHUNK = 200


class LineageStore:
    """``ledger.lineage``: add edges, list a record's edges, walk up- or downstream."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def add(self, src: RecordRef, dst: RecordRef, relation: str) -> LineageEdge:
        """Record ``src —relation→ dst``; adding an existing edge returns it unchanged."""
        _check_ref(src, "src")
        _check_ref(dst, "dst")
        check_text(relation, "lineage relation", max_length=64)
        key = {
            "src_type": src.type,
            "src_id": src.id,
            "dst_type": dst.type,
            "dst_id": dst.id,
            "relation": relation,
        }
        query = sa.select(edges).where(*(edges.c[name] == value for name, value in key.items()))
        with self._db.write() as conn:
            conn.execute(
                upsert(conn, edges)
                .values(id=new_id(), **key, **self._db.stamp())
                .on_conflict_do_nothing()
            )
            row = conn.execute(query).mappings().one()
        return _edge(row)

    def add_many(self, edges_: Iterable[tuple[RecordRef, RecordRef, str]]) -> None:
        """Record many ``(src, dst, relation)`` edges in one transaction (existing edges are
        left as they are); nothing is read back, for writers on a hot path (pipelines)."""
        rows = edge_rows(edges_, self._db.stamp())
        if not rows:
            return
        with self._db.write() as conn:
            write_edges(conn, rows)

    def edges_from(self, ref: RecordRef) -> list[LineageEdge]:
        """Edges whose src is ``ref``, oldest first."""
        return self._edges((edges.c.src_type == ref.type) & (edges.c.src_id == ref.id))

    def edges_to(self, ref: RecordRef) -> list[LineageEdge]:
        """Edges whose dst is ``ref``, oldest first."""
        return self._edges((edges.c.dst_type == ref.type) & (edges.c.dst_id == ref.id))

    def upstream(self, ref: RecordRef, max_depth: int = 10) -> list[LineageEdge]:
        """Edges on every path into ``ref`` (what it was made from), nearest first.

        Breadth-first, one query per level; each record is visited once, so cycles end.
        """
        return self._walk(ref, max_depth, upstream=True)

    def downstream(self, ref: RecordRef, max_depth: int = 10) -> list[LineageEdge]:
        """Edges on every path out of ``ref`` (what was made from it), nearest first."""
        return self._walk(ref, max_depth, upstream=False)

    def _edges(self, where: sa.ColumnElement[bool]) -> list[LineageEdge]:
        query = sa.select(edges).where(where).order_by(edges.c.created_at, edges.c.id)
        with self._db.read() as conn:
            return [_edge(row) for row in conn.execute(query).mappings()]

    def _walk(self, start: RecordRef, max_depth: int, *, upstream: bool) -> list[LineageEdge]:
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
            raise UsageError(f"max_depth must be an integer >= 0, got {max_depth!r}")
        _check_ref(start, "ref")
        # Upstream follows flow edges backwards (dst -> src) and input edges forwards.
        flow_from, flow_to = (_DST, "src") if upstream else (_SRC, "dst")
        input_from, input_to = (_SRC, "dst") if upstream else (_DST, "src")
        is_input = edges.c.relation.in_(sorted(INPUT_RELATIONS))
        visited = {start}
        seen_edges: set[str] = set()
        walked: list[LineageEdge] = []
        frontier = [start]
        with self._db.read() as conn:
            for _depth in range(max_depth):
                if not frontier:
                    break
                found: list[RecordRef] = []
                for chunk in chunks(frontier, _WALK_CHUNK):
                    refs = [(ref.type, ref.id) for ref in chunk]
                    query = (
                        sa.select(edges)
                        .where(
                            (flow_from.in_(refs) & ~is_input) | (input_from.in_(refs) & is_input)
                        )
                        .order_by(edges.c.created_at, edges.c.id)
                    )
                    for row in conn.execute(query).mappings():
                        if row["id"] in seen_edges:
                            continue
                        seen_edges.add(row["id"])
                        edge = _edge(row)
                        walked.append(edge)
                        side = input_to if row["relation"] in INPUT_RELATIONS else flow_to
                        found.append(edge.src if side == "src" else edge.dst)
                frontier = []
                for ref in found:
                    if ref not in visited:
                        visited.add(ref)
                        frontier.append(ref)
        return walked


def edge_rows(
    edges_: Iterable[tuple[RecordRef, RecordRef, str]], stamp: dict[str, Any]
) -> list[dict[str, Any]]:
    """The checked rows of ``(src, dst, relation)`` edges (UsageError before anything is
    written); shared by every writer of edges (:meth:`LineageStore.add_many`, a pipeline
    step's end)."""
    rows = []
    for src, dst, relation in edges_:
        _check_ref(src, "src")
        _check_ref(dst, "dst")
        check_text(relation, "lineage relation", max_length=64)
        rows.append(
            {
                "id": new_id(),
                "src_type": src.type,
                "src_id": src.id,
                "dst_type": dst.type,
                "dst_id": dst.id,
                "relation": relation,
                **stamp,
            }
        )
    return rows


def write_edges(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Write :func:`edge_rows` in the caller's transaction (existing edges stay as they are)."""
    if rows:
        conn.execute(upsert(conn, edges).on_conflict_do_nothing(), rows)


def _check_ref(ref: RecordRef, what: str) -> None:
    if not isinstance(ref, RecordRef):
        raise UsageError(f"lineage {what} must be a RecordRef, got {ref!r}")
    check_text(ref.type, f"lineage {what} type", max_length=64)
    check_text(ref.id, f"lineage {what} id", max_length=64)


def refs_of(walked: Iterable[LineageEdge]) -> set[RecordRef]:
    """Every record an edge list touches (both ends)."""
    return {ref for edge in walked for ref in (edge.src, edge.dst)}
