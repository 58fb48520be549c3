"""Expectations: each check compiled to DuckDB aggregate expressions over one table.

:func:`compile_check` turns a :class:`~plinth.validation.suites.SuiteCheck` into a
:class:`Compiled`: SQL aggregates (``count_if(...)``, ``avg(...)``) that the runner puts
into ONE query with every other check's, a function that judges their values, and, for
row checks, a query for a few failing values that runs only when the check failed.
Nulls never fail a row check (``max_null_fraction`` is about them); they do fail ``sql``
(a row fails when its condition is not true).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.validation.arrays import (
    allowed_array,
    distinct_integers,
    epoch_us,
    from_epoch_us,
    is_dictionary,
    mean,
    min_max,
    naive_timestamp,
    not_in,
    numbers,
    plain_number,
)
from plinth.validation.calibration import Z_MEAN, Z_NULLS, mean_tolerance, null_limit
from plinth.validation.columns import (
    families,
    family_name,
    in_range,
    literal,
    quote,
    range_text,
    type_matches,
    values_text,
)
from plinth.validation.compiled import DATA, NEEDS, Compiled, Env, Outcome
from plinth.validation.suites import SuiteCheck, locate, parse_duration, parse_timestamp, suggest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["compile_check"]


def _failed(check: SuiteCheck, expected: str, message: str) -> Compiled:
    outcome = Outcome(False, None, expected, message=message)
    return Compiled(check, judge=lambda values, rows: outcome)


def compile_check(check: SuiteCheck, env: Env) -> Compiled:
    """``check`` as SQL over :data:`DATA`; :class:`UsageError` when it cannot apply."""
    loc = locate(env.where, check)
    table_level = _TABLE.get(check.check)
    if table_level is not None:
        return table_level(check, env, loc)
    column = check.column
    assert column is not None
    if column not in env.types:
        if column in env.declared:
            return _failed(check, _expected(check), f"column {column!r} is missing")
        raise UsageError(
            f"{loc}: unknown column {column!r}{suggest(column, list(env.types))}",
            hint=f"the data has: {', '.join(env.types)}",
            field=f"checks[{check.index}].column",
        )
    arrow_type = env.types[column]
    needs = NEEDS.get(check.check)
    if needs and not families(arrow_type) & set(needs):
        message = (
            f"column {column!r} is {family_name(arrow_type)} ({arrow_type}); "
            f"{check.check} needs a {' or '.join(needs)} column"
        )
        if column in env.mistyped:
            return _failed(check, _expected(check), message)
        raise UsageError(f"{loc}: {message}", field=f"checks[{check.index}].column")
    col = quote(column)
    if column in env.nan_columns:
        # NaN counts as null, as in profiles: it is never "out of range" and never averaged.
        col = f"nullif({col}, 'NaN'::DOUBLE)"
    return _COLUMN[check.check](check, env, loc, col, arrow_type)


def _expected(check: SuiteCheck) -> str:
    a = check.args
    texts: dict[str, Callable[[], str]] = {
        "row_count": lambda: range_text(a.get("min"), a.get("max"), "rows"),
        "required_columns": lambda: "columns present: " + ", ".join(a["columns"]),
        "no_unexpected_columns": lambda: f"only the {len(a['columns'])} listed columns",
        "freshness": lambda: f"newest value at most {a['max_age']} old",
        "no_duplicates": lambda: "no duplicate " + ", ".join(a["columns"]),
        "dtype": lambda: str(a["type"]),
        "max_null_fraction": lambda: (
            f"null fraction <= {a['value']}"
            if "value" in a
            else f"null fraction near {a['reference_fraction']} (+ {a.get('z', Z_NULLS)} s.e.)"
        ),
        "unique": lambda: "no duplicate values",
        "between": lambda: range_text(a.get("min"), a.get("max")),
        "allowed_values": lambda: values_text(a["values"]),
        "regex": lambda: f"matches {a['pattern']}",
        "string_length": lambda: range_text(a.get("min"), a.get("max"), "length"),
        "mean_between": lambda: (
            range_text(a.get("min"), a.get("max"), "mean")
            if "reference_mean" not in a
            else f"mean within {a.get('z', Z_MEAN)} s.e. of {a['reference_mean']}"
        ),
        "std_between": lambda: range_text(a.get("min"), a.get("max"), "std"),
        "quantile_between": lambda: range_text(a.get("min"), a.get("max"), f"q{a['q']}"),
        "in_dataset": lambda: (
            "in "
            + (a.get("dataset") or a.get("path") or "")
            + f".{a.get('dataset_column') or check.column}"
        ),
        "sql": lambda: str(a["condition"]),
    }
    return texts[check.check]()


def _rows_judge(expected: str) -> Callable[[Sequence[Any], int], Outcome]:
    """A judge for checks whose first aggregate counts failing rows.

    The observed value is the failing count, or ``{"min", "max"}`` when two more
    aggregates give the observed range.
    """

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        failing = int(values[0] or 0)
        observed = {"min": values[1], "max": values[2]} if len(values) == 3 else failing
        return Outcome(failing == 0, observed, expected, failing, failing / rows if rows else 0.0)

    return judge


# ---- table checks -------------------------------------------------------------------------


def _row_count(check: SuiteCheck, env: Env, loc: str) -> Compiled:
    low, high = check.args.get("min"), check.args.get("max")
    expected = _expected(check)

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        return Outcome(in_range(rows, low, high), rows, expected)

    return Compiled(check, judge=judge)


def _required_columns(check: SuiteCheck, env: Env, loc: str) -> Compiled:
    missing = [c for c in check.args["columns"] if c not in env.types]
    message = None
    if missing:
        message = "missing: " + "; ".join(c + suggest(c, list(env.types)) for c in missing)
    outcome = Outcome(not missing, missing, _expected(check), message=message)
    return Compiled(check, judge=lambda values, rows: outcome)


def _no_unexpected(check: SuiteCheck, env: Env, loc: str) -> Compiled:
    listed = set(check.args["columns"])
    extra = [c for c in env.types if c not in listed]
    outcome = Outcome(not extra, extra, _expected(check), message=None)
    return Compiled(check, judge=lambda values, rows: outcome)


def _no_duplicates(check: SuiteCheck, env: Env, loc: str) -> Compiled:
    columns = check.args["columns"]
    missing = [c for c in columns if c not in env.types]
    if missing:
        if all(c in env.declared for c in missing):
            return _failed(check, _expected(check), f"column {missing[0]!r} is missing")
        raise UsageError(
            f"{loc}: unknown column {missing[0]!r}{suggest(missing[0], list(env.types))}",
            hint=f"the data has: {', '.join(env.types)}",
            field=f"checks[{check.index}].columns",
        )
    key = ", ".join(quote(c) for c in columns)
    struct = "{" + ", ".join(f"{literal(c)}: {quote(c)}" for c in columns) + "}"
    expected = _expected(check)

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        extra = rows - int(values[0] or 0)
        return Outcome(extra == 0, extra, expected, extra, extra / rows if rows else 0.0)

    return Compiled(
        check,
        [f"count(DISTINCT row({key}))"],
        judge,
        sample_sql=f"SELECT {struct} AS v FROM {DATA} GROUP BY {key} HAVING count(*) > 1",  # noqa: S608
    )


def _sql(check: SuiteCheck, env: Env, loc: str) -> Compiled:
    from plinth.guards.sql import check_expression

    # Someone else's text: refused unless DuckDB's parser reads it as one expression.
    condition = check_expression(
        check.args["condition"], field=f"checks[{check.index}].condition", what=f"{loc}: condition"
    )
    fails = f"NOT coalesce({condition}, false)"
    return Compiled(
        check,
        [f"count_if({fails})"],
        _rows_judge(_expected(check)),
        sample_sql=f"SELECT {DATA} AS v FROM {DATA} WHERE {fails}",  # noqa: S608
        preflight=[f"SELECT count_if({fails}) FROM {DATA} WHERE false"],  # noqa: S608
    )


_TABLE: dict[str, Callable[[SuiteCheck, Env, str], Compiled]] = {
    "row_count": _row_count,
    "required_columns": _required_columns,
    "no_unexpected_columns": _no_unexpected,
    "no_duplicates": _no_duplicates,
    "sql": _sql,
}

# ---- column checks ------------------------------------------------------------------------

ColumnCompiler = Callable[[SuiteCheck, Env, str, str, "pa.DataType"], Compiled]


def _dtype(check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType) -> Compiled:
    outcome = Outcome(
        type_matches(arrow_type, check.args["type"]), str(arrow_type), _expected(check)
    )
    return Compiled(check, judge=lambda values, rows: outcome)


def _max_null_fraction(
    check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
) -> Compiled:
    fixed: float = check.args.get("value", 0.0)
    expected = _expected(check)
    reference, z = check.args.get("reference_fraction"), check.args.get("z", Z_NULLS)

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        nulls = int(values[0] or 0)
        fraction = nulls / rows if rows else 0.0
        # A reference share: the limit is sized to the rows at hand (more slack for few rows).
        limit = fixed if reference is None else null_limit(reference, rows, z)
        return Outcome(fraction <= limit, round(fraction, 6), expected, nulls, fraction)

    if env.table is not None and check.column not in env.nan_columns:
        # Arrow keeps each column's null count: no scan (DuckDB would convert the column).
        nulls = env.table.column(check.column).null_count
        return Compiled(check, judge=lambda values, rows: judge([nulls], rows))
    return Compiled(check, [f"count(*) - count({col})"], judge)


def _unique(check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType) -> Compiled:
    expected = _expected(check)

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        extra = int(values[0] or 0) - int(values[1] or 0)
        return Outcome(extra == 0, extra, expected, extra, extra / rows if rows else 0.0)

    sample_sql = (
        f"SELECT {col} AS v FROM {DATA} WHERE {col} IS NOT NULL "  # noqa: S608
        f"GROUP BY {col} HAVING count(*) > 1"
    )
    table = env.table
    if table is not None and "integer" in families(arrow_type) and not is_dictionary(arrow_type):
        column = table.column(check.column)

        def local() -> Outcome:
            count, distinct, sample = distinct_integers(column)
            outcome = judge([count, distinct], table.num_rows)
            return dataclasses.replace(outcome, sample=sample)

        return Compiled(check, local=local)
    return Compiled(
        check, [f"count({col})", f"count(DISTINCT {col})"], judge, sample_sql=sample_sql
    )


def _bound_literal(check: SuiteCheck, key: str, arrow_type: pa.DataType, loc: str) -> str | None:
    value = check.args.get(key)
    if value is None:
        return None
    temporal = "temporal" in families(arrow_type)
    if temporal:
        if isinstance(value, (int, float)):
            raise UsageError(
                f"{loc}: {key} {value!r} is a number but column {check.column!r} is "
                f"{arrow_type}; write an ISO date or timestamp",
                field=f"checks[{check.index}].{key}",
            )
        return literal(parse_timestamp(value))
    if not isinstance(value, (int, float)):
        raise UsageError(
            f"{loc}: {key} {value!r} is not a number but column {check.column!r} is {arrow_type}",
            field=f"checks[{check.index}].{key}",
        )
    return literal(value)


def _outside(col: str, low: str | None, high: str | None, value: str | None = None) -> str:
    v = value or col
    parts = ([f"{v} < {low}"] if low else []) + ([f"{v} > {high}"] if high else [])
    return f"{col} IS NOT NULL AND ({' OR '.join(parts)})"


def _between(check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType) -> Compiled:
    low = _bound_literal(check, "min", arrow_type, loc)
    high = _bound_literal(check, "max", arrow_type, loc)
    fails = _outside(col, low, high)
    expected = _expected(check)
    # No value is outside exactly when the min and max are not: the shared query computes
    # those (cheap); failing rows are counted, in a second query, only when they exist.
    aggregates = [f"min({col})", f"max({col})"]
    if "temporal" in families(arrow_type):
        # Compared by DuckDB, which knows how a bound's zone relates to the column's.
        outside = " OR ".join(
            ([f"min({col}) < {low}"] if low else []) + ([f"max({col}) > {high}"] if high else [])
        )
        aggregates.append(f"coalesce({outside}, false)")
    min_, max_ = check.args.get("min"), check.args.get("max")

    def judge(values: Sequence[Any], rows: int) -> Outcome | None:
        if len(values) == 3:
            out = bool(values[2])
        else:  # numbers: compared here, no per-row work in the query
            out = (min_ is not None and values[0] is not None and values[0] < min_) or (
                max_ is not None and values[1] is not None and values[1] > max_
            )
        if out:
            return None
        return Outcome(True, {"min": values[0], "max": values[1]}, expected, 0, 0.0)

    def rejudge(values: Sequence[Any], rows: int) -> Outcome:
        return _rows_judge(expected)(values, rows)

    recount = [f"count_if({fails})", f"min({col})", f"max({col})"]
    sample_sql = f"SELECT DISTINCT {col} AS v FROM {DATA} WHERE {fails}"  # noqa: S608
    table = env.table
    if table is not None and naive_timestamp(arrow_type):
        column = table.column(check.column)
        factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[arrow_type.unit]
        bounds = [
            None if check.args.get(k) is None else epoch_us(parse_timestamp(check.args[k]))
            for k in ("min", "max")
        ]

        def local_time() -> Outcome | None:
            import numpy as np

            first, last = min_max([x.view(np.int64) for x in numbers(column, False)])
            if first is None or last is None:
                return Outcome(True, {"min": None, "max": None}, expected, 0, 0.0)
            first, last = first * factor, last * factor
            if (bounds[0] is not None and first < bounds[0]) or (
                bounds[1] is not None and last > bounds[1]
            ):
                return None  # DuckDB counts (and reports min and max)
            try:
                seen = {"min": from_epoch_us(first), "max": from_epoch_us(last)}
            except OverflowError:  # beyond datetime's years: let DuckDB report
                return None
            return Outcome(True, seen, expected, 0, 0.0)

        return Compiled(
            check, local=local_time, sample_sql=sample_sql, recount=recount, rejudge=rejudge
        )
    if table is not None and plain_number(arrow_type):
        # min and max straight from the Arrow buffers (numpy): no query at all when in range.
        column, nan = table.column(check.column), check.column in env.nan_columns

        def local() -> Outcome | None:
            return judge(min_max(numbers(column, nan)), table.num_rows)

        return Compiled(check, local=local, sample_sql=sample_sql, recount=recount, rejudge=rejudge)
    return Compiled(
        check, aggregates, judge, sample_sql=sample_sql, recount=recount, rejudge=rejudge
    )


def _allowed_values(
    check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
) -> Compiled:
    kinds = families(arrow_type)
    values = check.args["values"]
    if "string" in kinds:
        values = [str(v) for v in values]
    elif "numeric" in kinds or "boolean" in kinds:
        boolean = "boolean" in kinds
        bad = [v for v in values if isinstance(v, bool) != boolean or isinstance(v, str)]
        if bad:
            raise UsageError(
                f"{loc}: value {bad[0]!r} cannot be in column {check.column!r} ({arrow_type})",
                field=f"checks[{check.index}].values",
            )
    fails = f"{col} IS NOT NULL AND {col} NOT IN ({', '.join(literal(v) for v in values)})"
    sample_sql = f"SELECT DISTINCT {col} AS v FROM {DATA} WHERE {fails}"  # noqa: S608
    table = env.table
    allowed = allowed_array(values, arrow_type) if table is not None else None
    if table is not None and allowed is not None:
        # DuckDB converts every string of an Arrow column it scans (~15 ms per 1M) and tests
        # NOT IN value by value; Arrow hashes the column once and tests its few distinct values.
        column, judge = table.column(check.column), _rows_judge(_expected(check))

        def local() -> Outcome:
            failing, sample = not_in(column, allowed)
            return dataclasses.replace(judge([failing], table.num_rows), sample=sample)

        return Compiled(check, local=local)
    return Compiled(
        check, [f"count_if({fails})"], _rows_judge(_expected(check)), sample_sql=sample_sql
    )


def _regex(check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType) -> Compiled:
    pattern = literal(check.args["pattern"])
    fails = f"{col} IS NOT NULL AND NOT regexp_matches({col}, {pattern})"
    return Compiled(
        check,
        [f"count_if({fails})"],
        _rows_judge(_expected(check)),
        sample_sql=f"SELECT DISTINCT {col} AS v FROM {DATA} WHERE {fails}",  # noqa: S608
        preflight=[f"SELECT regexp_matches('', {pattern})"],
    )


def _string_length(
    check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
) -> Compiled:
    low, high = check.args.get("min"), check.args.get("max")
    length = f"length({col})"
    fails = _outside(
        col, None if low is None else str(low), None if high is None else str(high), length
    )
    return Compiled(
        check,
        [f"count_if({fails})", f"min({length})", f"max({length})"],
        _rows_judge(_expected(check)),
        sample_sql=f"SELECT DISTINCT {col} AS v FROM {DATA} WHERE {fails}",  # noqa: S608
    )


def _statistic(sql: Callable[[str], str]) -> ColumnCompiler:
    def compile_(
        check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
    ) -> Compiled:
        low, high, expected = check.args.get("min"), check.args.get("max"), _expected(check)
        center = check.args.get("reference_mean")

        def judge(values: Sequence[Any], rows: int) -> Outcome:
            value = None if values[0] is None else float(values[0])
            if center is None or value is None:
                return Outcome(in_range(value, low, high), value, expected)
            # Sized to the values met: the mean of n values wanders ~std/sqrt(n).
            std, z = check.args["reference_std"], check.args.get("z", Z_MEAN)
            margin = mean_tolerance(std, int(values[1]), z) + 1e-9 * max(1.0, abs(center))
            return Outcome(abs(value - center) <= margin, value, expected)

        table = env.table
        if check.check == "mean_between" and table is not None and plain_number(arrow_type):
            column, nan = table.column(check.column), check.column in env.nan_columns

            def local() -> Outcome:
                parts = numbers(column, nan)
                return judge([mean(parts), sum(len(x) for x in parts)], table.num_rows)

            return Compiled(check, local=local)
        return Compiled(check, [sql(col), f"count({col})"], judge)

    return compile_


def _quantile(check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType) -> Compiled:
    q = float(check.args["q"])
    return _statistic(lambda c: f"quantile_cont({c}, {q!r})")(check, env, loc, col, arrow_type)


def _freshness(
    check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
) -> Compiled:
    max_age = parse_duration(check.args["max_age"])
    as_of = check.args.get("as_of")
    if as_of is None:
        now = env.now
    else:
        stamp = parse_timestamp(as_of)
        now = (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()
    newest = (
        f"max({col})" if "timestamp" in families(arrow_type) else f"CAST(max({col}) AS TIMESTAMP)"
    )
    expected = _expected(check)

    def judge(values: Sequence[Any], rows: int) -> Outcome:
        if values[0] is None:
            return Outcome(False, None, expected, message="the column has no values")
        age = now - float(values[0])
        stamp = dt.datetime.fromtimestamp(float(values[0]), dt.UTC).isoformat()
        return Outcome(age <= max_age, {"newest": stamp, "age_s": round(age, 3)}, expected)

    # Naive timestamps are taken as UTC (epoch() reads them so).
    return Compiled(check, [f"epoch({newest})"], judge)


def _in_dataset(
    check: SuiteCheck, env: Env, loc: str, col: str, arrow_type: pa.DataType
) -> Compiled:
    ref_column = check.args.get("dataset_column") or check.column
    assert ref_column is not None
    expected = _expected(check)

    def run(con: Any, rows: int) -> Outcome:
        reference = env.load_reference(check)
        if ref_column not in reference.column_names:
            raise UsageError(
                f"{loc}: the reference table has no column {ref_column!r}"
                f"{suggest(ref_column, reference.column_names)}",
                hint=f"it has: {', '.join(reference.column_names)}",
                field=f"checks[{check.index}].dataset_column",
            )
        name = f"_plinth_ref_{check.index}"
        con.register(name, reference.select([ref_column]))
        rc = quote(ref_column)
        fails = (
            f"{col} IS NOT NULL AND {col} NOT IN (SELECT {rc} FROM {name} WHERE {rc} IS NOT NULL)"  # noqa: S608
        )
        failing = int(con.execute(f"SELECT count_if({fails}) FROM {DATA}").fetchall()[0][0] or 0)  # noqa: S608
        sample: list[Any] = []
        if failing:
            sample = [
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT {col} FROM {DATA} WHERE {fails} LIMIT 5"  # noqa: S608
                ).fetchall()
            ]
        return Outcome(
            failing == 0,
            failing,
            expected,
            failing,
            failing / rows if rows else 0.0,
            sample=tuple(sample),
        )

    return Compiled(check, run=run)


_COLUMN: dict[str, ColumnCompiler] = {
    "dtype": _dtype,
    "max_null_fraction": _max_null_fraction,
    "unique": _unique,
    "between": _between,
    "allowed_values": _allowed_values,
    "regex": _regex,
    "string_length": _string_length,
    "mean_between": _statistic(lambda c: f"avg({c})"),
    "std_between": _statistic(lambda c: f"stddev_samp({c})"),
    "quantile_between": _quantile,
    "freshness": _freshness,
    "in_dataset": _in_dataset,
}
