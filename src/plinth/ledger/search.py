"""Finding runs: the search language compiled to one SQL query, and per-run metric summaries.

A search joins ``latest_metrics``, ``params`` and ``tags`` once per key it names (an indexed
primary-key lookup each) and never reads metric histories. Every user value is a bound
parameter. Params and tags are text: a number in the expression compares numerically with
the values that look like decimal numbers (``0.1``, ``-3``, ``1e-5``) and never matches the
others; a quoted string compares as text. A comparison on a key a run lacks is false.

Example::

    ledger.search.search_runs(where="metrics.auc > 0.8 and params.lr = 0.1",
                              order_by=["metrics.auc DESC"], limit=10)
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from plinth.entities import MetricBucket, MetricPoint, MetricSummary, RunRow
from plinth.errors import UsageError
from plinth.ledger._common import Db, chunks, from_db_float
from plinth.ledger.metrics import point_of
from plinth.ledger.query import (
    ATTRIBUTES,
    And,
    Column,
    Comparison,
    Node,
    Or,
    OrderKey,
    parse_columns,
    parse_order_by,
    parse_where,
)
from plinth.ledger.record_rows import MIN_RUN_PREFIX
from plinth.ledger.record_rows import check_run_status as _check_status
from plinth.ledger.record_rows import run_of as _run
from plinth.ledger.record_rows import run_prefix_not_found as _not_found
from plinth.ledger.tables import experiments, latest_metrics, metrics, params, runs, tags

__all__ = ["NUMBER_PATTERN", "SearchStore"]

#: What "looks like a number" for params and tags; the same in PostgreSQL and Python ``re``.
#: The exponent has at most 4 digits so that PostgreSQL's NUMERIC can always hold it.
NUMBER_PATTERN = r"^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]{1,4})?$"

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ATTRIBUTE_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "experiment": experiments.c.name,
    "experiment_id": runs.c.experiment_id,
    "user": runs.c.created_by,
    "parent_run_id": runs.c.parent_run_id,
}
assert set(_ATTRIBUTE_COLUMNS) == set(ATTRIBUTES)
_TABLES = {"metric": latest_metrics, "param": params, "tag": tags}
_MIN_PREFIX = MIN_RUN_PREFIX
#: Bounds of :meth:`SearchStore.metric_series`: buckets per series, runs per call.
MAX_SERIES_POINTS = 5000
MAX_SERIES_RUNS = 100


class _Compiler:
    """Builds one SELECT: runs, their experiment, and one LEFT JOIN per named key."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.source: sa.FromClause = runs.join(
            experiments, experiments.c.id == runs.c.experiment_id
        )
        self.aliases: dict[Column, sa.FromClause] = {}

    def alias(self, column: Column) -> sa.FromClause:
        found = self.aliases.get(column)
        if found is None:
            table = _TABLES[column.kind]
            found = table.alias(f"k{len(self.aliases)}")
            on = (found.c.run_id == runs.c.id) & (found.c.key == sa.literal(column.key))
            self.source = self.source.outerjoin(found, on)
            self.aliases[column] = found
        return found

    def number(self, text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """``text`` as a number when it looks like one, else NULL (never a failing CAST)."""
        target: Any = sa.Numeric() if self.dialect == "postgresql" else sa.Float()
        looks: sa.ColumnElement[bool] = text.regexp_match(NUMBER_PATTERN)
        if self.dialect != "sqlite":
            return sa.case((looks, sa.cast(text, target)), else_=sa.null())
        # SQLite's REGEXP is a Python call per row; GLOB runs in C. Plain decimals ("12",
        # "0.01": a digit first, digits and at most one dot) are numbers without it, and a
        # text holding a character no number has ("adam", "vision") is not one.
        plain = sa.and_(
            text.op("GLOB")(sa.literal("[0-9]*")),
            text.op("NOT GLOB")(sa.literal("*[^0-9.]*")),
            text.op("NOT GLOB")(sa.literal("*.*.*")),
        )
        looks = sa.and_(text.op("NOT GLOB")(sa.literal("*[^0-9eE.+-]*")), looks)
        return sa.case(
            (plain, sa.cast(text, target)), (looks, sa.cast(text, target)), else_=sa.null()
        )

    def literal(self, comparison: Comparison) -> sa.ColumnElement[Any]:
        value = comparison.value
        if self.dialect == "postgresql" and comparison.column.kind in ("param", "tag"):
            return sa.literal(Decimal(comparison.text), sa.Numeric())
        return sa.literal(value)

    def condition(self, node: Node) -> sa.ColumnElement[bool]:
        if isinstance(node, And):
            return sa.and_(*(self.condition(item) for item in node.items))
        if isinstance(node, Or):
            return sa.or_(*(self.condition(item) for item in node.items))
        column, compare = node.column, _OPS[node.op]
        if column.kind == "attribute":
            return compare(_ATTRIBUTE_COLUMNS[column.key], sa.literal(node.value))  # type: ignore[no-any-return]
        value = self.alias(column).c.value
        if column.kind == "metric" and self.dialect == "sqlite":
            # Same truth, but SQLite no longer sees the LEFT JOIN as an inner one, so it
            # keeps walking runs in page order (stopping after a page of matches) instead
            # of driving from the (key, value) index and sorting every match.
            found = compare(value, sa.literal(node.value))
            return sa.func.coalesce(found, sa.false(), type_=sa.Boolean)
        if column.kind == "metric" or isinstance(node.value, str):
            return compare(value, sa.literal(node.value))  # type: ignore[no-any-return]
        return compare(self.number(value), self.literal(node))  # type: ignore[no-any-return]

    def order(self, key: OrderKey) -> list[sa.ColumnElement[Any]]:
        column = key.column
        if column.kind == "attribute":
            exprs = [_ATTRIBUTE_COLUMNS[column.key]]
        else:
            value = self.alias(column).c.value
            exprs = [value] if column.kind == "metric" else [self.number(value), value]
        return [sa.nulls_last(e.desc() if key.descending else e.asc()) for e in exprs]


class SearchStore:
    """``ledger.search``: find runs with the search language; summarise a run's metrics."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def search_runs(
        self,
        *,
        project_id: str | None = None,
        experiment_ids: Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        where: str | None = None,
        order_by: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[RunRow]:
        """Runs matching every filter, in ``order_by`` order (default: newest first).

        ``where``, ``order_by`` and ``columns`` use the search language (docs/ledger.md);
        each row carries the values of the metrics, params and tags they name. NULLs (a
        missing key, a NaN metric) sort last either way. Bad syntax is a UsageError.
        ``offset`` skips that many matches first: pages of a long list.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UsageError(f"limit must be an integer >= 1, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise UsageError(f"offset must be an integer >= 0, got {offset!r}")
        tree = parse_where(where)
        order = parse_order_by(order_by or [])
        extra = parse_columns(columns or [])
        compiler = _Compiler(self._db.engine.dialect.name)
        filters: list[sa.ColumnElement[bool]] = []
        if tree is not None:
            filters.append(compiler.condition(tree))
        if project_id is not None:
            filters.append(experiments.c.project_id == project_id)
        if experiment_ids is not None:
            filters.append(runs.c.experiment_id.in_(list(experiment_ids)))
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            filters.append(runs.c.status.in_([_check_status(s) for s in wanted]))
        if not include_deleted:
            filters.append(runs.c.deleted_at.is_(None))
        ordering = [e for key in order for e in compiler.order(key)]
        ordering += [runs.c.start_time.desc(), runs.c.id.desc()]
        for column in extra:
            if column.kind != "attribute":
                compiler.alias(column)
        named = list(compiler.aliases.items())
        values = [alias.c.value.label(f"v{i}") for i, (_, alias) in enumerate(named)]
        seqs = [
            alias.c.seq.label(f"s{i}")
            for i, (column, alias) in enumerate(named)
            if column.kind == "metric"
        ]
        # The page's ids first, sorting only what the filter and the order need (the
        # shown columns' joins go unused there, and both databases drop such LEFT JOINs on
        # a unique key); then the page's rows with their values, ``limit`` rows at most.
        page = (
            sa.select(runs.c.id)
            .select_from(compiler.source)
            .where(*filters)
            .order_by(*ordering)
            .limit(limit)
            .offset(offset)
            .correlate(None)
        )
        query = (
            sa.select(runs, experiments.c.name.label("experiment_name"), *values, *seqs)
            .select_from(compiler.source)
            .where(runs.c.id.in_(page))
            .order_by(*ordering)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [_row(row, named) for row in rows]

    def latest_metrics_of(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Run id -> its latest metric values, for many runs in a few indexed queries."""
        found: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
        table = latest_metrics
        with self._db.read() as conn:
            for chunk in chunks(list(found)):
                query = sa.select(table.c.run_id, table.c.key, table.c.value).where(
                    table.c.run_id.in_(chunk)
                )
                for row in conn.execute(query):
                    found[row.run_id][row.key] = from_db_float(row.value)
        return found

    def params_of(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Run id -> its params, for many runs in a few indexed queries (a page of a table)."""
        found: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        with self._db.read() as conn:
            for chunk in chunks(list(found)):
                query = sa.select(params.c.run_id, params.c.key, params.c.value).where(
                    params.c.run_id.in_(chunk)
                )
                for row in conn.execute(query):
                    found[row.run_id][row.key] = row.value
        return found

    def metric_summaries(self, run_id: str) -> list[MetricSummary]:
        """Each metric of a run, by key: latest value, min, max and count, computed in SQL."""
        m, lm = metrics, latest_metrics
        query = (
            sa.select(
                m.c.key,
                sa.func.min(m.c.value).label("min"),
                sa.func.max(m.c.value).label("max"),
                sa.func.count().label("points"),
                lm.c.value.label("last"),
                lm.c.step.label("last_step"),
            )
            .select_from(m.join(lm, (lm.c.run_id == m.c.run_id) & (lm.c.key == m.c.key)))
            .where(m.c.run_id == run_id)
            .group_by(m.c.key, lm.c.value, lm.c.step)
            .order_by(m.c.key)
        )
        with self._db.read() as conn:
            return [
                MetricSummary(
                    key=row.key,
                    last=from_db_float(row.last),
                    last_step=row.last_step,
                    min=from_db_float(row.min),
                    max=from_db_float(row.max),
                    count=row.points,
                )
                for row in conn.execute(query)
            ]

    def metric_samples(self, run_id: str, points: int = 50) -> dict[str, list[float]]:
        """Each metric of a run downsampled in SQL to at most ``points`` bucket means, in
        step order: enough for a sparkline without reading the history."""
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise UsageError(f"points must be an integer >= 1, got {points!r}")
        bucket = (
            sa.func.ntile(points)
            .over(
                partition_by=metrics.c.key,
                order_by=(metrics.c.step, metrics.c.timestamp, metrics.c.seq),
            )
            .label("bucket")
        )
        inner = sa.select(metrics.c.key, metrics.c.value, bucket).where(metrics.c.run_id == run_id)
        sub = inner.subquery()
        query = (
            sa.select(sub.c.key, sa.func.avg(sub.c.value).label("value"))
            .group_by(sub.c.key, sub.c.bucket)
            .order_by(sub.c.key, sub.c.bucket)
        )
        found: dict[str, list[float]] = {}
        with self._db.read() as conn:
            for row in conn.execute(query):
                found.setdefault(row.key, []).append(from_db_float(row.value))
        return found

    def metric_series(
        self, run_ids: Sequence[str], key: str, points: int = 500
    ) -> dict[str, list[MetricBucket]]:
        """Metric ``key`` of each run, downsampled in SQL to at most ``points`` buckets.

        A run's steps are cut into ``points`` equal ranges; each non-empty range gives one
        :class:`MetricBucket` (its latest point, min, max and count), in step order, so a
        chart of a million points reads ``points`` rows. Each range is one aggregate over
        the covering ``(run_id, key, step, value)`` index: no sort of the whole history. A
        run without the metric maps to an empty list.
        """
        if isinstance(points, bool) or not isinstance(points, int):
            raise UsageError(f"points must be an integer, got {points!r}")
        if not 1 <= points <= MAX_SERIES_POINTS:
            raise UsageError(f"points must be between 1 and {MAX_SERIES_POINTS}, got {points}")
        ids = list(dict.fromkeys(run_ids))
        if len(ids) > MAX_SERIES_RUNS or not all(isinstance(i, str) for i in ids):
            raise UsageError(f"run_ids must be at most {MAX_SERIES_RUNS} run id strings")
        if not isinstance(key, str) or not key:
            raise UsageError(f"key must be a non-empty string, got {key!r}")
        with self._db.read() as conn:
            return {run_id: _series(conn, run_id, key, points) for run_id in ids}

    def metric_points(self, run_id: str) -> list[MetricPoint]:
        """Every point of every metric of a run, by key, then step, timestamp and seq."""
        query = (
            sa.select(metrics)
            .where(metrics.c.run_id == run_id)
            .order_by(metrics.c.key, metrics.c.step, metrics.c.timestamp, metrics.c.seq)
        )
        with self._db.read() as conn:
            return [point_of(row) for row in conn.execute(query).mappings()]

    def resolve_run_id(self, text: str) -> str:
        """The full id of the run whose id is ``text`` or starts with it (8+ characters).

        NotFoundError when no run matches; UsageError when the prefix is too short or
        matches several runs (they are named).
        """
        wanted = text.strip().lower()
        if len(wanted) < _MIN_PREFIX:
            raise UsageError(
                f"run id {text!r} is too short: give the full id or its first "
                f"{_MIN_PREFIX} characters or more",
                hint="list runs with 'plinth runs list'",
                field="run_id",
            )
        if not re.fullmatch(r"[0-9a-f-]+", wanted):
            raise _not_found(text)
        query = (
            sa.select(runs.c.id)
            .where(runs.c.id.startswith(wanted, autoescape=True))
            .order_by(runs.c.id)
            .limit(6)
        )
        with self._db.read() as conn:
            found = list(conn.execute(query).scalars())
        if not found:
            raise _not_found(text)
        if len(found) > 1 and wanted not in found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise UsageError(
                f"run id prefix {text!r} is ambiguous: it matches {shown}",
                hint="give more characters of the id",
                field="run_id",
            )
        return wanted if wanted in found else found[0]


_BUCKET = "FROM metrics WHERE run_id = :run_id AND key = :key AND step >= :low + {i} * :width "
#: One arm per bucket: its values' range and size; its last step (a lone max, which SQLite
#: answers with one index seek instead of a second pass over the range).
_ARMS = {
    "range": "SELECT min(value) AS min, max(value) AS max, count(*) AS points "
    + _BUCKET
    + "AND step < :low + {j} * :width",
    "last": "SELECT max(step) AS step " + _BUCKET + "AND step < :low + {j} * :width",
}


@functools.cache
def _bucket_sql(count: int, kind: str) -> sa.TextClause:
    """The ``kind`` arm over each of ``count`` buckets of ``:width`` steps from ``:low``, as
    one UNION ALL: each is a range read of the covering index, and none needs a sort. Built
    as text once per count (SQLAlchemy would spend longer building 500 selects than the
    database spends running them); only bucket numbers are written into it."""
    arm = _ARMS[kind]
    return sa.text(" UNION ALL ".join(arm.format(i=i, j=i + 1) for i in range(count)))


def _series(conn: sa.Connection, run_id: str, key: str, points: int) -> list[MetricBucket]:
    """One run's buckets: the step range, one aggregate per bucket, then each latest value."""
    m = metrics
    mine = (m.c.run_id == run_id) & (m.c.key == key)
    low = conn.execute(sa.select(sa.func.min(m.c.step)).where(mine)).scalar()
    if low is None:
        return []
    high = conn.execute(sa.select(sa.func.max(m.c.step)).where(mine)).scalar()
    width = -(-(high - low + 1) // points)
    count = -(-(high - low + 1) // width)
    bound = {"run_id": run_id, "key": key, "low": low, "width": width}
    ranges = conn.execute(_bucket_sql(count, "range"), bound).all()
    last_steps = conn.execute(_bucket_sql(count, "last"), bound).scalars().all()
    found = [(r, step) for r, step in zip(ranges, last_steps, strict=True) if r.points]
    # The latest point of a bucket is at its highest step; several points may share a
    # step, and the one logged last (timestamp, then seq) wins, as in latest_metrics.
    last: dict[int, float | None] = {}
    steps = [step for _, step in found]
    for chunk in chunks(steps):
        query = (
            sa.select(m.c.step, m.c.value)
            .where(mine, m.c.step.in_(chunk))
            .order_by(m.c.step, m.c.timestamp, m.c.seq)
        )
        last.update((row.step, row.value) for row in conn.execute(query))
    return [
        MetricBucket(
            step=step,
            last=from_db_float(last.get(step)),
            min=from_db_float(row.min),
            max=from_db_float(row.max),
            count=row.points,
        )
        for row, step in found
    ]


def _row(row: sa.RowMapping, named: list[tuple[Column, sa.FromClause]]) -> RunRow:
    found: dict[str, dict[str, Any]] = {"metric": {}, "param": {}, "tag": {}}
    for i, (column, _) in enumerate(named):
        value = row[f"v{i}"]
        if column.kind == "metric":
            if row[f"s{i}"] is not None:
                found["metric"][column.key] = from_db_float(value)
        elif value is not None:
            found[column.kind][column.key] = value
    return RunRow(
        run=_run(row),
        experiment=row["experiment_name"],
        metrics=found["metric"],
        params=found["param"],
        tags=found["tag"],
    )
