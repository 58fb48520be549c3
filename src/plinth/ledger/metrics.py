"""Writing metric points: the ``metrics`` rows and the ``latest_metrics`` summary they update.

``latest_metrics`` holds, per (run, key), the point with the highest ``(step, timestamp,
seq)``. It is updated in the transaction that inserts the points: the best point of each key
in the batch replaces the stored one only if it is higher, so replays, out-of-order batches
and concurrent writers all leave the same row behind (a writer never reuses a ``seq`` for
another point, so a replayed point is the stored one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from plinth.entities import MetricPoint
from plinth.errors import UsageError
from plinth.ledger._common import check_text, from_db_float, to_db_float, upsert
from plinth.ledger.tables import latest_metrics, metrics

__all__ = ["insert_metrics", "metric_row", "point_of", "update_latest"]


def metric_row(run_id: str, point: MetricPoint) -> dict[str, Any]:
    """The ``metrics`` row of ``point``; UsageError when it is malformed."""
    try:
        value = float(point.value)
        step, timestamp, seq = int(point.step), int(point.timestamp), int(point.seq)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"bad metric point {point!r}: {exc}") from None
    check_text(point.key, "metric key")
    if seq < 0:
        raise UsageError(f"metric seq must be >= 0, got {seq}")
    return {
        "run_id": run_id,
        "seq": seq,
        "key": point.key,
        "step": step,
        "timestamp": timestamp,
        "value": to_db_float(value),
    }


def point_of(m: sa.RowMapping) -> MetricPoint:
    return MetricPoint(
        key=m["key"],
        value=from_db_float(m["value"]),
        step=m["step"],
        timestamp=m["timestamp"],
        seq=m["seq"],
    )


def insert_metrics(conn: sa.Connection, run_id: str, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose seq is new; the number inserted."""
    if conn.dialect.name == "postgresql":
        # One statement over arrays: far faster than psycopg's executemany, and its
        # rowcount is exact (executemany reports -1).
        columns = {name: [row[name] for row in rows] for name in _PG_ARRAYS}
        return conn.execute(_PG_INSERT_METRICS, {"run_id": run_id, **columns}).rowcount
    return conn.execute(_statements(conn)[0], rows).rowcount


_PG_ARRAYS = ("seq", "key", "step", "timestamp", "value")
_PG_INSERT_METRICS = sa.text(
    "INSERT INTO metrics (run_id, seq, key, step, timestamp, value) "
    "SELECT :run_id, u.* FROM unnest(CAST(:seq AS bigint[]), CAST(:key AS text[]), "
    "CAST(:step AS bigint[]), CAST(:timestamp AS bigint[]), "
    "CAST(:value AS double precision[])) AS u "
    "ON CONFLICT (run_id, seq) DO NOTHING"
)


def update_latest(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Raise each key's ``latest_metrics`` row to the highest point of ``rows`` if it is higher.

    Rows are ``metrics`` rows of one run. Keys are written in sorted order, so two
    transactions on the same run lock their rows in the same order (no deadlock).
    """
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row["key"]
        held = best.get(key)
        if held is None or (row["step"], row["timestamp"], row["seq"]) > (
            held["step"],
            held["timestamp"],
            held["seq"],
        ):
            best[key] = row
    if best:
        conn.execute(_statements(conn)[1], [best[key] for key in sorted(best)])


#: dialect name -> (insert metrics, upsert latest_metrics); built once, since building and
#: cache-keying a statement costs as much as running it on a small batch.
_STATEMENTS: dict[str, tuple[sa.Executable, sa.Executable]] = {}


def _statements(conn: sa.Connection) -> tuple[sa.Executable, sa.Executable]:
    found = _STATEMENTS.get(conn.dialect.name)
    if found is None:
        insert = upsert(conn, metrics).on_conflict_do_nothing(
            index_elements=[metrics.c.run_id, metrics.c.seq]
        )
        latest = upsert(conn, latest_metrics)
        new, old = latest.excluded, latest_metrics.c
        found = _STATEMENTS[conn.dialect.name] = (
            insert,
            latest.on_conflict_do_update(
                index_elements=[old.run_id, old.key],
                set_={
                    "value": new.value,
                    "step": new.step,
                    "timestamp": new.timestamp,
                    "seq": new.seq,
                },
                # Row-value comparison: PostgreSQL, and SQLite since 3.15.
                where=sa.tuple_(new.step, new.timestamp, new.seq)
                > sa.tuple_(old.step, old.timestamp, old.seq),
            ),
        )
    return found
