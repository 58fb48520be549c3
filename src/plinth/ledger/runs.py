"""Runs and what hangs off them: status, params (immutable), tags (mutable), metrics.

Metrics are keyed by ``(run_id, seq)``: a writer numbers its points, so replaying a batch
after a crash (from a journal) stores nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from plinth.entities import MetricPoint, Run
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import new_id, now_ms
from plinth.ledger._common import Db, check_text, chunks, from_db_float, upsert
from plinth.ledger.metrics import insert_metrics, metric_row, point_of, update_latest
from plinth.ledger.record_rows import check_run_status as _check_status
from plinth.ledger.record_rows import no_run as _no_run
from plinth.ledger.record_rows import run_of as _run
from plinth.ledger.tables import environments, experiments, latest_metrics, metrics, runs
from plinth.ledger.tables import params as params_table
from plinth.ledger.tables import tags as tags_table

__all__ = ["RunStore"]

#: Metric points per INSERT statement (PostgreSQL) or executemany (SQLite).
METRIC_CHUNK = 10_000


class RunStore:
    """``ledger.runs``: one run, its params, tags and metrics."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        source: Mapping[str, Any] | None = None,
        environment_id: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        tags: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """A new run in ``running`` state, started now, with its tags and params: one transaction.

        ``run_id`` (default: a new id) lets a caller name the run before it exists.
        """
        if name is not None:
            check_text(name, "run name")
        source_dict = _source_dict(source or {})
        tag_rows = _tag_values(tags or {})
        param_rows = _param_values(params or {})
        run_id = run_id or new_id()
        stamp = self._db.stamp()
        values: dict[str, Any] = {
            "id": run_id,
            "experiment_id": experiment_id,
            "name": name,
            "status": "running",
            "start_time": stamp["created_at"],
            "end_time": None,
            "parent_run_id": parent_run_id,
            "environment_id": environment_id,
            "source": source_dict,
            "error": None,
            "host": host,
            "pid": pid,
            "deleted_at": None,
            **stamp,
        }
        try:
            with self._db.write() as conn:
                # Foreign keys check the experiment, parent and environment exist.
                conn.execute(runs.insert(), values)
                for table, rows in ((tags_table, tag_rows), (params_table, param_rows)):
                    if rows:
                        conn.execute(
                            table.insert(),
                            [
                                {"run_id": run_id, "key": k, "value": v, **stamp}
                                for k, v in rows.items()
                            ],
                        )
        except sa_exc.IntegrityError:
            self._explain_missing(run_id, experiment_id, parent_run_id, environment_id)
            raise
        return _run(values)

    def _explain_missing(
        self,
        run_id: str,
        experiment_id: str,
        parent_run_id: str | None,
        environment_id: str | None,
    ) -> None:
        """Raise the error that explains why inserting a new run violated a constraint."""
        with self._db.read() as conn:
            if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first():
                raise ConflictError(f"a run with id {run_id!r} already exists", field="run_id")
            _require(conn, experiments, experiment_id, "experiment")
            if parent_run_id is not None:
                _require(conn, runs, parent_run_id, "parent run")
            if environment_id is not None:
                _require(conn, environments, environment_id, "environment")

    def get_run(self, run_id: str) -> Run:
        """The run with this id; NotFoundError if there is none."""
        with self._db.read() as conn:
            return _run(_select_run(conn, run_id))

    def list_runs(
        self,
        *,
        experiment_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        include_deleted: bool = False,
    ) -> list[Run]:
        """Runs, newest first, optionally of one experiment and/or in one status.

        Soft-deleted runs are left out unless ``include_deleted``.
        """
        if limit < 1:
            raise UsageError(f"limit must be at least 1, got {limit}")
        query = sa.select(runs).order_by(runs.c.start_time.desc(), runs.c.id.desc()).limit(limit)
        if not include_deleted:
            query = query.where(runs.c.deleted_at.is_(None))
        if experiment_id is not None:
            query = query.where(runs.c.experiment_id == experiment_id)
        if status is not None:
            query = query.where(runs.c.status == _check_status(status))
        with self._db.read() as conn:
            return [_run(row) for row in conn.execute(query).mappings()]

    def set_status(
        self, run_id: str, status: str, *, error: str | None = None, end_time: int | None = None
    ) -> Run:
        """Move a run to ``status``; a terminal status gets an end time (default: now)."""
        _check_status(status)
        end = None if status == "running" else (end_time if end_time is not None else now_ms())
        with self._db.write() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status=status, end_time=end, error=error)
            )
            if result.rowcount == 0:
                raise _no_run(run_id)
            return _run(_select_run(conn, run_id))

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        points: Sequence[MetricPoint] = (),
        error: str | None = None,
        end_time: int | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> int:
        """End a run in one transaction: its last metric points, its final status and (when
        given) its whole ``source``. Returns the number of points new to the ledger.

        Ending a run as ``running`` is an error.
        """
        if _check_status(status) == "running":
            raise UsageError("finish() needs a terminal status, not 'running'")
        rows = [metric_row(run_id, point) for point in points]
        end = end_time if end_time is not None else now_ms()
        values: dict[str, Any] = {"status": status, "end_time": end, "error": error}
        if source is not None:
            values["source"] = _source_dict(source)
        inserted = 0
        with self._db.write() as conn:
            result = conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
            if result.rowcount == 0:
                raise _no_run(run_id)
            for chunk in chunks(rows, METRIC_CHUNK):
                inserted += insert_metrics(conn, run_id, chunk)
            if rows:
                update_latest(conn, rows)
        return inserted

    def set_source(self, run_id: str, source: Mapping[str, Any]) -> None:
        """Replace a run's ``source`` (code and command capture) with a completed one."""
        value = _source_dict(source)
        with self._db.write() as conn:
            result = conn.execute(runs.update().where(runs.c.id == run_id).values(source=value))
            if result.rowcount == 0:
                raise _no_run(run_id)

    def delete_run(self, run_id: str) -> Run:
        """Soft-delete a run: lists and searches skip it, ``plinth gc`` may free its blobs.

        Deleting a deleted run keeps its first deletion time. :meth:`restore_run` undoes it.
        """
        with self._db.write() as conn:
            result = conn.execute(
                runs.update()
                .where((runs.c.id == run_id) & runs.c.deleted_at.is_(None))
                .values(deleted_at=now_ms())
            )
            if result.rowcount == 0:
                _require_run(conn, run_id)
            return _run(_select_run(conn, run_id))

    def restore_run(self, run_id: str) -> Run:
        """Undo :meth:`delete_run` (blobs that ``plinth gc`` freed meanwhile stay gone)."""
        with self._db.write() as conn:
            result = conn.execute(runs.update().where(runs.c.id == run_id).values(deleted_at=None))
            if result.rowcount == 0:
                raise _no_run(run_id)
            return _run(_select_run(conn, run_id))

    def set_environment(self, run_id: str, environment_id: str) -> None:
        """Record the environment a run executes in."""
        with self._db.write() as conn:
            _require(conn, environments, environment_id, "environment")
            result = conn.execute(
                runs.update().where(runs.c.id == run_id).values(environment_id=environment_id)
            )
            if result.rowcount == 0:
                raise _no_run(run_id)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params (stored as strings). All or nothing: a key logged before with a
        different value raises ConflictError and nothing of the batch is written."""
        new = _param_values(params)
        if not new:
            return
        stamp = self._db.stamp()
        rows = [{"run_id": run_id, "key": k, "value": v, **stamp} for k, v in new.items()]
        try:
            with self._db.write() as conn:
                inserted = 0
                for chunk in chunks(rows):
                    result = conn.execute(
                        upsert(conn, params_table).on_conflict_do_nothing(), chunk
                    )
                    inserted += result.rowcount
                # Keys logged before (or by a concurrent writer) kept their value: compare.
                # A difference raises inside the transaction, which rolls the batch back.
                # (Every row inserted: nothing to compare. A driver reporting -1 compares.)
                if inserted != len(rows):
                    _raise_on_changed(run_id, _params_of(conn, run_id, list(new)), new)
        except sa_exc.IntegrityError:  # the foreign key: no such run
            raise _no_run(run_id) from None

    def get_params(self, run_id: str) -> dict[str, str]:
        """Every param of a run."""
        with self._db.read() as conn:
            found = _params_of(conn, run_id, None)
            if not found:
                _require_run(conn, run_id)
            return found

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set tags (stored as strings); unlike params, a tag may be changed."""
        new = _tag_values(tags)
        if not new:
            return
        with self._db.write() as conn:
            _require_run(conn, run_id)
            stmt = upsert(conn, tags_table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[tags_table.c.run_id, tags_table.c.key],
                set_={
                    "value": stmt.excluded.value,
                    "created_at": stmt.excluded.created_at,
                    "created_by": stmt.excluded.created_by,
                },
            )
            stamp = self._db.stamp()
            rows = [{"run_id": run_id, "key": k, "value": v, **stamp} for k, v in new.items()]
            for chunk in chunks(rows):
                conn.execute(stmt, chunk)

    def get_tags(self, run_id: str) -> dict[str, str]:
        """Every tag of a run."""
        query = sa.select(tags_table.c.key, tags_table.c.value).where(tags_table.c.run_id == run_id)
        with self._db.read() as conn:
            found = {row.key: row.value for row in conn.execute(query)}
            if not found:
                _require_run(conn, run_id)
            return found

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> int:
        """Store metric points in one transaction; the number of points new to the ledger.

        A point whose ``seq`` the run already has is skipped, so replays are harmless.
        """
        rows = [metric_row(run_id, point) for point in points]
        if not rows:
            return 0
        inserted = 0
        with self._db.write() as conn:
            _require_run(conn, run_id)
            for chunk in chunks(rows, METRIC_CHUNK):
                inserted += insert_metrics(conn, run_id, chunk)
            update_latest(conn, rows)
        return inserted

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of one metric, by step, then timestamp, then seq."""
        query = (
            sa.select(metrics)
            .where((metrics.c.run_id == run_id) & (metrics.c.key == key))
            .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.seq)
        )
        with self._db.read() as conn:
            found = [point_of(row) for row in conn.execute(query).mappings()]
            if not found:
                _require_run(conn, run_id)
            return found

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """For each metric key, the value at its highest step (ties: latest timestamp, seq)."""
        query = sa.select(latest_metrics.c.key, latest_metrics.c.value).where(
            latest_metrics.c.run_id == run_id
        )
        with self._db.read() as conn:
            found = {row.key: from_db_float(row.value) for row in conn.execute(query)}
            if not found:
                _require_run(conn, run_id)
            return found

    def max_seq(self, run_id: str) -> int:
        """The highest metric ``seq`` stored for a run, or -1 when it has none."""
        query = sa.select(sa.func.max(metrics.c.seq)).where(metrics.c.run_id == run_id)
        with self._db.read() as conn:
            found = conn.execute(query).scalar()
        return -1 if found is None else int(found)


def _require(conn: sa.Connection, table: sa.Table, record_id: str, what: str) -> None:
    found = conn.execute(sa.select(table.c.id).where(table.c.id == record_id)).first()
    if found is None:
        raise NotFoundError(f"no {what} with id {record_id!r} in the ledger")


def _require_run(conn: sa.Connection, run_id: str) -> None:
    if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise _no_run(run_id)


def _select_run(conn: sa.Connection, run_id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise _no_run(run_id)
    return row


def _params_of(conn: sa.Connection, run_id: str, keys: list[str] | None) -> dict[str, str]:
    table = params_table
    query = sa.select(table.c.key, table.c.value).where(table.c.run_id == run_id)
    if keys is None:
        return {row.key: row.value for row in conn.execute(query)}
    found: dict[str, str] = {}
    for chunk in chunks(keys):
        found.update(
            (row.key, row.value) for row in conn.execute(query.where(table.c.key.in_(chunk)))
        )
    return found


def _raise_on_changed(run_id: str, stored: Mapping[str, str], new: Mapping[str, str]) -> None:
    changed = [(k, stored[k], v) for k, v in new.items() if k in stored and stored[k] != v]
    if not changed:
        return
    key, old, value = changed[0]
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    raise ConflictError(
        f"param {key!r} of run {run_id} is already {old!r}; cannot change it to {value!r}{more}; "
        "nothing of this batch was logged",
        hint="params are immutable: log the new value under another name, or start a new run",
        field=key,
    )


def _tag_values(values: Mapping[str, object]) -> dict[str, str]:
    return {check_text(key, "tag name"): str(value) for key, value in values.items()}


def _source_dict(source: Mapping[str, Any]) -> dict[str, Any]:
    """``source`` validated, as it reads back from the ledger (tuples become lists)."""
    try:
        value: dict[str, Any] = json.loads(json.dumps(dict(source)))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"run source must be JSON-serialisable: {exc}") from None
    return value


def _param_values(values: Mapping[str, object]) -> dict[str, str]:
    return {check_text(key, "param name"): str(value) for key, value in values.items()}
