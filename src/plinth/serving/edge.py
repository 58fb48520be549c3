"""A validation suite at the serving edge: per-row checks on each request, no I/O.

A deployment's ``validate: {suite: FILE, mode: reject|warn}`` names a suite; it is read once
at start and its row-level checks (``between``, ``allowed_values``, ``regex``,
``string_length``, ``max_null_fraction`` with ``value: 0``, ``sql``) are compiled into
vectorised predicates over a request's columns. Table-level checks (``row_count``,
``freshness``, ``unique``, ``no_duplicates``, ``mean_between`` ...) mean nothing for one
request: they are skipped and listed at start. Checks on a column the request does not
carry (the target, an id) are skipped too::

    edge = EdgeSuite(Suite.load("serving.yaml"), ["size", "color", "order_id"])
    edge.failures({"size": [-1.0], "color": ["red"], "order_id": ["a"]}, 1)
    # [Failure(row=0, column="size", check="between", message="-1.0 is outside ...")]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.validation import Suite
    from plinth.validation.suites import SuiteCheck

__all__ = ["EdgeSuite", "Failure"]

#: Checks that judge a whole table, not a row: skipped at the serving edge.
TABLE_LEVEL = frozenset(
    {
        "row_count",
        "freshness",
        "no_duplicates",
        "unique",
        "mean_between",
        "std_between",
        "quantile_between",
        "required_columns",
        "no_unexpected_columns",
        "in_dataset",
    }
)


class Failure(NamedTuple):
    """One row failing one check: ``row`` (0-based in the request), the column, the check."""

    row: int
    column: str | None
    check: str
    message: str
    severity: str


#: A compiled row check: the request's Arrow arrays by name -> a boolean mask of failures.
_Mask = Callable[[Mapping[str, "pa.Array"]], Any]


class _RowCheck(NamedTuple):
    check: SuiteCheck
    mask: _Mask
    describe: Callable[[Any], str]


class EdgeSuite:
    """The row-level checks of ``suite`` over the fields a request carries (``fields``)."""

    def __init__(self, suite: Suite, fields: Sequence[str]) -> None:
        self.suite = suite
        self.fields = list(fields)
        self.row_checks: list[_RowCheck] = []
        #: ``(check label, column, why)`` of every check this edge does not run.
        self.skipped: list[tuple[str, str | None, str]] = []
        known = set(fields)
        for check in suite.checks:
            why = _skip_reason(check, known)
            if why is not None:
                self.skipped.append((check.label, check.column, why))
                continue
            self.row_checks.append(_compile(check, suite.where))

    def failures(self, columns: Mapping[str, Any], rows: int) -> list[Failure]:
        """Every (row, check) failure of one request (lists or Arrow arrays), in row order."""
        if not self.row_checks:
            return []
        import numpy as np
        import pyarrow as pa

        arrays: dict[str, pa.Array] = {}
        for name in self.fields:
            if name not in columns:
                continue
            values = columns[name]
            if isinstance(values, pa.ChunkedArray):
                arrays[name] = values.combine_chunks()
            elif isinstance(values, pa.Array):
                arrays[name] = values
            else:
                try:
                    arrays[name] = pa.array(values)
                except (pa.ArrowException, TypeError, ValueError):
                    arrays[name] = pa.array([None if v is None else str(v) for v in values])
        found: list[Failure] = []
        for row_check in self.row_checks:
            mask = np.asarray(row_check.mask(arrays), dtype=bool)
            check = row_check.check
            column = check.column
            for i in np.flatnonzero(mask).tolist():
                value = arrays[column][i].as_py() if column is not None else None
                found.append(
                    Failure(i, column, check.label, row_check.describe(value), check.severity)
                )
        found.sort(key=lambda f: f.row)
        return found

    def check(
        self, columns: Mapping[str, Any], rows: int, form: str, *, reject: bool
    ) -> list[Failure]:
        """:meth:`failures`; with ``reject``, a RequestError naming each failing row and
        check (``records[3].size`` or ``columns.size[3]``, by the request's ``form``) when
        an error-level check fails."""
        failures = self.failures(columns, rows)
        errors = [f for f in failures if f.severity == "error"] if reject else []
        if errors:
            from plinth.errors import RequestError
            from plinth.serving.decode import Problem

            raise RequestError.naming(
                [
                    Problem(
                        f"records[{f.row}].{f.column}"
                        if form == "records"
                        else f"columns.{f.column}[{f.row}]",
                        f"fails {f.check}: {f.message}",
                    )
                    if f.column is not None
                    else Problem(f"{form}[{f.row}]", f"fails {f.check}: {f.message}")
                    for f in errors[:50]
                ]
            )
        return failures

    @staticmethod
    def per_row(failures: Sequence[Failure], rows: int) -> list[str | None]:
        """``check(column); ...`` for each row (None: passed), as logs and outputs store it."""
        out: list[str | None] = [None] * rows
        for f in failures:
            text = f.check if f.column is None else f"{f.check}({f.column})"
            previous = out[f.row]
            out[f.row] = text if previous is None else f"{previous}; {text}"
        return out

    def summary(self) -> str:
        """The start-up line: which checks run per request and which are skipped, why."""
        skipped = "; ".join(
            f"{label}{'' if col is None else f'({col})'}: {why}" for label, col, why in self.skipped
        )
        text = (
            f"suite {self.suite.name} at the serving edge: {len(self.row_checks)} row checks "
            f"per request"
        )
        return text + (f", {len(self.skipped)} skipped ({skipped})" if self.skipped else "")


def _skip_reason(check: SuiteCheck, known: set[str]) -> str | None:
    if check.check in TABLE_LEVEL:
        return "a table-level check, meaningless for one request"
    if check.check == "dtype":
        return "types are checked against the model's signature"
    if check.check == "max_null_fraction" and (
        "reference_fraction" in check.args or float(check.args.get("value", 0)) > 0
    ):
        return "a share of nulls above 0 (or sized to the rows met) is a table-level check"
    if check.column is not None and check.column not in known:
        return "not a field of the request (a target or id column)"
    return None


def _null_mask(array: pa.Array) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(array.type):
        mask |= np.asarray(pc.fill_null(pc.is_nan(array), False).to_numpy(zero_copy_only=False))
    return mask


def _fill(result: Any) -> Any:
    """A boolean Arrow result with nulls (null values pass every check) as False."""
    import pyarrow.compute as pc

    return pc.fill_null(result, False).to_numpy(zero_copy_only=False)


def _compile(check: SuiteCheck, where: str) -> _RowCheck:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = check.column
    args = check.args
    kind = check.check
    if kind == "max_null_fraction":
        assert col is not None
        return _RowCheck(check, lambda a: _null_mask(a[col]), lambda v: "null in a required column")
    if kind == "between":
        assert col is not None
        low, high = args.get("min"), args.get("max")

        def between(a: Mapping[str, pa.Array]) -> Any:
            array = a[col]
            if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
                array = pc.cast(array, pa.float64(), safe=False)
            out = pc.less(array, low) if low is not None else None
            if high is not None:
                above = pc.greater(array, high)
                out = above if out is None else pc.or_(out, above)
            return _fill(out)

        return _RowCheck(check, between, lambda v: f"{v!r:.40} is outside [{low}, {high}]")
    if kind == "allowed_values":
        assert col is not None
        values = list(args["values"])
        allowed = pa.array(values)

        def not_allowed(a: Mapping[str, pa.Array]) -> Any:
            array = a[col]
            if array.type != allowed.type:
                array = pc.cast(array, allowed.type, safe=False)
            return _fill(pc.invert(pc.is_in(array, value_set=allowed)))

        shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        return _RowCheck(check, not_allowed, lambda v: f"{v!r:.40} is not one of {shown}")
    if kind == "regex":
        assert col is not None
        pattern = str(args["pattern"])
        try:  # at start, not on every request: RE2 refuses backreferences, lookarounds ...
            pc.match_substring_regex(pa.array([""], pa.string()), pattern)
        except pa.ArrowInvalid as exc:
            from plinth.errors import UsageError

            raise UsageError(
                f"{where}, check {check.index + 1}: the regex {pattern!r:.80} does not "
                f"compile: {str(exc)[:200]}",
                hint="patterns use RE2 syntax: no backreferences or lookarounds",
                field=f"checks[{check.index}].pattern",
            ) from None
        return _RowCheck(
            check,
            lambda a: _fill(pc.invert(pc.match_substring_regex(a[col].cast(pa.string()), pattern))),
            lambda v: f"{v!r:.40} does not match {pattern!r}",
        )
    if kind == "string_length":
        assert col is not None
        low, high = args.get("min"), args.get("max")

        def length(a: Mapping[str, pa.Array]) -> Any:
            n = pc.utf8_length(a[col].cast(pa.string()))
            out = pc.less(n, low) if low is not None else None
            if high is not None:
                above = pc.greater(n, high)
                out = above if out is None else pc.or_(out, above)
            return _fill(out)

        return _RowCheck(check, length, lambda v: f"{v!r:.40} has a length outside [{low}, {high}]")
    if kind == "sql":
        return _sql(check, where)
    raise AssertionError(f"no row check for {kind}")  # every kind is skipped or compiled


def _sql(check: SuiteCheck, where: str) -> _RowCheck:
    """A SQL condition over the request (the guarded DuckDB cursor, no file or network)."""
    from plinth.guards.sql import check_expression
    from plinth.validation.compiled import DATA
    from plinth.validation.runner import connect

    condition = check_expression(
        check.args["condition"],
        field=f"checks[{check.index}].condition",
        what=f"{where}, check {check.index + 1}: condition",
    )
    sql = f"SELECT __plinth_row FROM {DATA} WHERE NOT coalesce({condition}, false)"  # noqa: S608

    def failing(a: Mapping[str, pa.Array]) -> Any:
        import numpy as np
        import pyarrow as pa

        rows = len(next(iter(a.values()))) if a else 0
        table = pa.table({**a, "__plinth_row": pa.array(np.arange(rows))})
        con = connect(table)
        try:
            hits = [r[0] for r in con.execute(sql).fetchall()]
        finally:
            con.close()
        mask = np.zeros(rows, dtype=bool)
        mask[hits] = True
        return mask

    return _RowCheck(check, failing, lambda v: f"the condition {condition!r:.60} is not true")
