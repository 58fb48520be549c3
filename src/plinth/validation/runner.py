"""Running a suite: every check compiled into ONE DuckDB aggregate query over the Arrow table.

The table is registered in an in-memory DuckDB connection (a zero-copy Arrow scan). One
``SELECT count(*), min(...), avg(...), ... FROM data`` computes what every check needs
in a single vectorised pass; a second query, only when some row check failed, fetches up
to :data:`SAMPLE_SIZE` distinct failing values per failed check. ``in_dataset`` checks join
another table and run one query each: a ``path`` is read here, a ``dataset`` through the
``references`` callable the caller passes (``plinth.datasets.validate`` passes one that
loads dataset versions). No Python loop ever touches rows.

What DuckDB does slowly is answered from the Arrow table instead, exactly: null counts from
the columns' metadata, allowed string values from each column's distinct values (pyarrow
hashing; DuckDB would convert every string it scans), uniqueness of integers with a numpy
bitmap or sort; these run in threads while the query runs. Range checks read only min and
max in the query and count failing rows in a follow-up query when those fall outside.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.validation.columns import type_matches
from plinth.validation.compiled import DATA, Compiled, Env, Outcome
from plinth.validation.expectations import compile_check
from plinth.validation.results import CheckResult, ValidationResult
from plinth.validation.sources import deprecated_datasets
from plinth.validation.suites import Suite, SuiteCheck, locate

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.progress import Progress

__all__ = ["SAMPLE_SIZE", "References", "check_table", "connect", "validate"]

#: Failing values kept per failed check.
SAMPLE_SIZE = 5
#: Loads the table a dataset reference names, for ``in_dataset`` checks with ``dataset:``.
References = Callable[[str], "pa.Table"]


def validate(
    data: Any,
    suite: Suite | str | Path,
    *,
    record: bool = False,
    report_path: str | Path | None = None,
    references: References | None = None,
    progress: Progress | None = None,
    ctx: Context | None = None,
) -> ValidationResult:
    """Run ``suite`` on ``data`` (a DataFrame, an Arrow table, or a Parquet/CSV path).

    Writes the HTML report to ``report_path`` when given; with ``record``, also saves the
    suite version and the result in the ledger (the report then defaults to
    ``.plinth/reports/``). ``references`` loads the tables of ``in_dataset`` checks that
    name a dataset (``plinth.datasets.validate`` passes one); ``progress`` as for
    :func:`check_table`. Example::

        result = plinth.validation.validate(df, "suite.yaml")
        result.success, [r.check for r in result.failures]
    """
    from plinth.validation.sources import is_path, resolve

    if isinstance(data, str) and not is_path(data):
        datasets = deprecated_datasets(
            "plinth.validation.validate(REF, suite) with a dataset reference",
            "plinth.datasets.validate(REF, suite)",
        )
        found: ValidationResult = datasets.validate(
            data, suite, record=record, report_path=report_path, ctx=ctx
        )
        return found
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    if record:
        from plinth.context import resolve_context

        ctx = resolve_context(ctx)
    source = resolve(data)
    result = check_table(
        source.table,
        suite,
        target=source.target,
        references=references,
        ctx=ctx,
        progress=progress,
    )
    if not record and report_path is None and source.version is None:
        return result
    from plinth.validation.records import publish_result

    return publish_result(
        ctx, suite, result, source.version, record=record, report_path=report_path
    )


def _declared(suite: Suite) -> frozenset[str]:
    return frozenset(
        c
        for check in suite.checks
        if check.check == "required_columns"
        for c in check.args["columns"]
    )


def _mistyped(suite: Suite, types: dict[str, pa.DataType]) -> frozenset[str]:
    return frozenset(
        check.column
        for check in suite.checks
        if check.check == "dtype"
        and check.column in types
        and not type_matches(types[check.column], check.args["type"])
    )


def _nan_columns(table: pa.Table, suite: Suite) -> frozenset[str]:
    """Float columns a check reads that hold NaN: one vectorised pass each (~1 ms per 1M)."""

    from plinth.validation.columns import families

    used = {c.column for c in suite.checks if c.column is not None}
    return frozenset(
        name
        for name in used
        if name in table.column_names
        and "float" in families(table.schema.field(name).type)
        and _has_nan(table[name])
    )


def _has_nan(column: pa.ChunkedArray) -> bool:
    """Whether a float column holds NaN (nulls aside).

    A plain float chunk's sum is NaN exactly when it holds NaN or both infinities, so the
    sum (no allocation) decides and a second pass only confirms a NaN sum.
    """
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.types as pt

    if not pt.is_floating(column.type):  # dictionary-encoded floats
        return bool(pc.any(pc.is_nan(column)).as_py())
    for chunk in column.chunks:
        values = pc.drop_null(chunk) if chunk.null_count else chunk
        x = values.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):  # inf + -inf
            if np.isnan(x.sum()) and np.isnan(x).any():
                return True
    return False


def _deprecated_references(ctx: Context | None) -> References:
    """Dataset versions loaded by ``plinth.datasets`` (deprecated: the caller passes them)."""
    datasets = deprecated_datasets(
        "an in_dataset check naming a dataset, run without references=",
        "plinth.datasets.validate(data, suite), which loads them",
    )
    loader: References = datasets.references(ctx=ctx)
    return loader


def _reference_loader(
    suite: Suite, references: References | None, ctx: Context | None
) -> Callable[[SuiteCheck], pa.Table]:
    cache: dict[tuple[str, str], pa.Table] = {}

    def load(check: SuiteCheck) -> pa.Table:
        nonlocal references
        dataset, path = check.args.get("dataset"), check.args.get("path")
        key = ("dataset", dataset) if dataset else ("path", str(path))
        if key not in cache:
            try:
                if dataset:
                    if references is None:
                        references = _deprecated_references(ctx)
                    cache[key] = references(dataset)
                else:
                    from plinth.guards.paths import safe_join
                    from plinth.validation.sources import read_path

                    # The suite may be someone else's: its path stays inside the suite's folder.
                    base = suite.base_dir or Path.cwd()
                    cache[key] = read_path(safe_join(base, str(path)))
            except UsageError as exc:
                raise UsageError(
                    f"{locate(suite.where, check)}: {exc.message}",
                    hint=exc.hint,
                    field=f"checks[{check.index}].{'dataset' if dataset else 'path'}",
                ) from None
        return cache[key]

    return load


def connect(table: pa.Table) -> Any:
    """A sandboxed DuckDB cursor with ``table`` registered as :data:`DATA` (a zero-copy
    Arrow scan); the caller closes it.

    Suite SQL is someone else's text: the cursor belongs to the process's one sandboxed
    database (:func:`plinth.guards.sql.cursor`: no file or network access, configuration
    locked, timestamps in UTC). Cursors are cheap and isolated; opening a database costs
    ~40 ms, more than many suites take to run.
    """
    from plinth.guards.sql import cursor

    con = cursor()
    con.register(DATA, table)
    return con


def _sql_error(check: SuiteCheck, where: str, exc: Exception) -> UsageError:
    from plinth.guards.sql import SANDBOX_HINT, error_detail

    text = error_detail(exc)
    what = {
        "regex": "the pattern does not compile (DuckDB uses RE2 syntax)",
        "sql": "the SQL condition is invalid",
    }.get(check.check, "the check cannot run on this data")
    return UsageError(
        f"{locate(where, check)}: {what}: {text}",
        hint=SANDBOX_HINT if check.check == "sql" else None,
        field=f"checks[{check.index}]",
    )


def _preflight(con: Any, compiled: Sequence[Compiled], where: str) -> None:
    import duckdb

    for c in compiled:
        for statement in c.preflight:
            try:
                con.execute(statement).fetchall()
            except duckdb.Error as exc:
                raise _sql_error(c.check, where, exc) from None


def _aggregate(con: Any, compiled: Sequence[Compiled], where: str) -> list[Any]:
    """``count(*)`` then every check's aggregates, from one query."""
    import duckdb

    expressions = ["count(*)"] + [a for c in compiled for a in c.aggregates]
    try:
        row = con.execute(f"SELECT {', '.join(expressions)} FROM {DATA}").fetchall()[0]  # noqa: S608
    except duckdb.Error as exc:
        # Find the check to blame: bind each alone, then run each alone.
        for bind_only in (True, False):
            for c in compiled:
                if not c.aggregates:
                    continue
                sql = f"SELECT {', '.join(c.aggregates)} FROM {DATA}"  # noqa: S608
                try:
                    con.execute(sql + (" WHERE false" if bind_only else "")).fetchall()
                except duckdb.Error as culprit:
                    raise _sql_error(c.check, where, culprit) from None
        raise UsageError(f"{where}: the checks cannot run on this data: {exc}") from None
    assert row is not None
    return list(row)


class _Locals:
    """The checks answered from the Arrow table, run in threads while the shared query runs.

    DuckDB and Arrow compute both release the GIL, so on two cores or more the query and
    these overlap; the threads are joined (and their errors raised) by :meth:`outcomes`.
    """

    def __init__(self, compiled: Sequence[Compiled]) -> None:
        self._checks = [c for c in compiled if c.local is not None]
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[tuple[Compiled, Future[Outcome | None]]] = []

    def __enter__(self) -> _Locals:
        if self._checks:
            workers = max(1, min(len(self._checks), os.cpu_count() or 1, 4))
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="plinth-validate")
            for c in self._checks:
                assert c.local is not None
                self._futures.append((c, self._pool.submit(c.local)))
        return self

    def outcomes(self) -> list[tuple[Compiled, Outcome | None]]:
        return [(c, future.result()) for c, future in self._futures]

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _LazyConnection:
    """A DuckDB cursor on the table, opened on first call (a suite may need none)."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self._con: Any = None

    def __call__(self) -> Any:
        if self._con is None:
            self._con = connect(self._table)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


def _recount(con: Any, pending: Sequence[Compiled], rows: int) -> dict[int, Outcome]:
    """Second-query aggregates of the checks whose judge needed them (failing range checks)."""
    if not pending:
        return {}
    expressions = [a for c in pending for a in c.recount]
    row = con.execute(f"SELECT {', '.join(expressions)} FROM {DATA}").fetchall()[0]  # noqa: S608
    out: dict[int, Outcome] = {}
    position = 0
    for c in pending:
        assert c.rejudge is not None
        n = len(c.recount)
        out[c.check.index] = c.rejudge(row[position : position + n], rows)
        position += n
    return out


def _samples(con: Any, failed: Sequence[Compiled]) -> dict[int, list[Any]]:
    """Up to SAMPLE_SIZE failing values of each failed row check, from one query."""
    import duckdb

    if not failed:
        return {}
    parts = [f"(SELECT list(v) FROM ({c.sample_sql} LIMIT {SAMPLE_SIZE}))" for c in failed]  # noqa: S608
    try:
        row = con.execute("SELECT " + ", ".join(parts)).fetchall()[0]
    except duckdb.Error:  # pragma: no cover - a sample is a nicety: never fail for it
        return {}
    assert row is not None
    return {c.check.index: list(values or []) for c, values in zip(failed, row, strict=True)}


def check_table(
    table: pa.Table,
    suite: Suite,
    *,
    target: str = "<table>",
    references: References | None = None,
    progress: Progress | None = None,
    ctx: Context | None = None,
) -> ValidationResult:
    """Run every check of ``suite`` on ``table``; :class:`UsageError` when one cannot apply.

    ``references`` loads the table of an ``in_dataset`` check that names a dataset; ``ctx``
    is read only by the deprecated fallback when it is not given. ``progress``
    (:mod:`plinth.progress`) hears of the checks as their outcomes are known: most at once,
    from the one vectorised pass."""
    from plinth.progress import reporter

    started = time.perf_counter()
    checked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    types = {f.name: f.type for f in table.schema}
    env = Env(
        where=suite.where,
        types=types,
        declared=_declared(suite),
        mistyped=_mistyped(suite, types),
        nan_columns=_nan_columns(table, suite),
        load_reference=_reference_loader(suite, references, ctx),
        table=table,
    )
    compiled = [compile_check(check, env) for check in suite.checks]
    outcomes: dict[int, Outcome] = {}
    recount: list[Compiled] = []
    done, reported = reporter(progress), 0

    def report() -> None:
        """Advance by the outcomes found since the last report."""
        nonlocal reported
        done.advance(len(outcomes) - reported)
        reported = len(outcomes)

    done.start(len(compiled), "checks", label="validating")
    with contextlib.ExitStack() as stack:
        stack.callback(done.finish)
        # The Arrow-side checks start first: they overlap opening DuckDB and the query.
        local = stack.enter_context(_Locals(compiled))
        con = _LazyConnection(table)
        stack.callback(con.close)
        if any(c.aggregates or c.preflight or c.run for c in compiled):
            _preflight(con(), compiled, suite.where)
            values = _aggregate(con(), compiled, suite.where)
        else:  # every check answered from the Arrow table: DuckDB is not even opened
            values = [table.num_rows]
        rows = int(values[0])
        for c, found in local.outcomes():
            if found is None:
                recount.append(c)
            else:
                outcomes[c.check.index] = found
        position = 1
        for c in compiled:
            n = len(c.aggregates)
            if c.run is not None:  # its own query: reported as it ends
                outcomes[c.check.index] = c.run(con(), rows)
                report()
            elif c.judge is not None and c.local is None:
                outcome = c.judge(values[position : position + n], rows)
                if outcome is None:
                    recount.append(c)
                else:
                    outcomes[c.check.index] = outcome
            position += n
        report()
        if recount:
            outcomes.update(_recount(con(), recount, rows))
            report()
        failed = [
            c
            for c in compiled
            if c.sample_sql is not None and outcomes[c.check.index].failing_count
        ]
        samples = _samples(con(), failed) if failed else {}
    results = tuple(
        _result(c.check, outcomes[c.check.index], samples.get(c.check.index)) for c in compiled
    )
    return ValidationResult(
        suite=suite.name,
        suite_digest=suite.digest,
        target=target,
        row_count=rows,
        column_count=table.num_columns,
        results=results,
        checked_at=checked_at,
        elapsed_s=round(time.perf_counter() - started, 6),
    )


def _result(check: SuiteCheck, outcome: Outcome, sample: list[Any] | None) -> CheckResult:
    return CheckResult(
        index=check.index,
        check=check.check,
        column=check.column,
        severity=check.severity,
        success=outcome.success,
        observed=outcome.observed,
        expected=outcome.expected,
        failing_count=outcome.failing_count,
        failing_fraction=outcome.failing_fraction,
        sample=tuple(sample if sample is not None else outcome.sample),
        args=dict(check.args),
        message=outcome.message,
    )
