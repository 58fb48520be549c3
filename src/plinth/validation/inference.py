"""Inferring a suite from a table's profile, sized to pass clean samples of any size.

A suite inferred from a reference passes clean samples (1 row to a million) drawn from the
same distribution; only a person makes a check stricter. The checks (also written as
comments in the YAML):

- ``row_count`` at least 1 row (no maximum: a batch's size says nothing about its quality);
- ``required_columns`` and ``no_unexpected_columns``: exactly the observed columns;
- ``dtype``: the observed family (integer, float, string, boolean, timestamp, date);
- ``max_null_fraction``: 0 when there were no nulls, else ``reference_fraction`` (the
  observed share), judged with a tolerance sized to the rows met (5 standard errors);
- ``unique`` when every row has a distinct, non-null value and the column reads as a key
  (a name like ``*_id``, strings, or dense integers): no range or mean checks then;
- ``between``: min/max widened by the reach of the reference's tails (its 10 lowest and
  highest values; not below 0 for a column never negative; whole numbers for integers);
- ``mean_between`` (warning): within 4 standard errors (``reference_std / sqrt(n)``, n the
  values met) of the reference mean;
- ``allowed_values``: the values seen, as an error for strings with at most 50 values none
  of them rare; as a warning when some were seen only once (a long tail: more will come)
  or for 51 to 1,000 values; none past 1,000 (``string_length`` then);
- ``string_length``: observed lengths widened by 10 % of their range (at least 1);
  exact when every value has the same length.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.validation.calibration import looks_like_key, range_margins
from plinth.validation.suites import Suite, SuiteCheck

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.profiles import ColumnProfile, TableProfile

__all__ = ["MAX_ALLOWED_VALUES", "MAX_WARNED_VALUES", "infer_suite", "suite_from_profile"]

#: Strings with at most this many distinct values get an error-level ``allowed_values``.
MAX_ALLOWED_VALUES = 50
#: Up to this many, a warning-level one (every value kept by the profile: EXACT_MAX).
MAX_WARNED_VALUES = 1000
_FAMILY_PREFIXES = (
    ("int", "integer"), ("uint", "integer"), ("halffloat", "float"), ("float", "float"),
    ("double", "float"), ("decimal", "numeric"), ("string", "string"),
    ("large_string", "string"), ("string_view", "string"), ("utf8", "string"),
    ("large_utf8", "string"), ("bool", "boolean"), ("timestamp", "timestamp"),
    ("date", "date"),
)  # fmt: skip


def family_of(type_text: str) -> str:
    """The dtype family of an arrow type string, or the string itself when it has none."""
    text = type_text
    match = re.match(r"dictionary<values=([^,]+),", text)
    if match:
        text = match[1]
    for prefix, family in _FAMILY_PREFIXES:
        if text == prefix or re.fullmatch(rf"{prefix}\d*(\[.*\]|\(.*\))?", text):
            return family
    return type_text


def _profile_of(data: Any) -> tuple[TableProfile, str, pa.Table | None]:
    """The profile to infer from, what it is of, and the table itself when at hand."""
    from plinth.profiles import TableProfile, profile_table

    if isinstance(data, TableProfile):
        return data, "a profile", None
    if isinstance(data, (str, Path)):
        from plinth.validation.sources import resolve

        source = resolve(data)
        table = source.table
        return profile_table(table, top_k=MAX_ALLOWED_VALUES), source.target, table
    from plinth.validation.sources import to_table

    table = to_table(data)
    return profile_table(table, top_k=MAX_ALLOWED_VALUES), f"a {type(data).__name__}", table


def _unique_columns(profile: TableProfile, table: pa.Table | None) -> set[str]:
    """Columns whose every value is distinct and non-null.

    Past 1,000 values a profile's distinct count is an estimate: such columns are
    confirmed with one exact DuckDB query when the table is at hand.
    """
    rows = profile.row_count
    # Floats are left out: continuous values are all distinct without being ids.
    candidates = [
        c
        for c in profile.columns.values()
        if family_of(c.type) in ("integer", "string")
        and c.count == rows > 1
        and looks_like_key(c.name, family_of(c.type), c.min, c.max, rows)
    ]
    exact = {c.name for c in candidates if c.distinct_exact and c.distinct == rows}
    likely = [c.name for c in candidates if not c.distinct_exact and c.distinct >= 0.9 * rows]
    if not likely or table is None:
        return exact
    from plinth.validation.columns import quote
    from plinth.validation.compiled import DATA
    from plinth.validation.runner import connect

    con = connect(table)
    try:
        row = con.execute(
            "SELECT "  # noqa: S608
            + ", ".join(f"count(DISTINCT {quote(n)}) = count(*)" for n in likely)
            + f" FROM {DATA}"
        ).fetchall()[0]
    finally:
        con.close()
    assert row is not None
    return exact | {n for n, ok in zip(likely, row, strict=True) if ok}


def _name(source: str) -> str:
    stem = Path(source.split("@")[0]).stem if source and not source.startswith("a ") else ""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).lstrip("_.-")
    return cleaned[:200] or "suite"


def _num(value: float, integer: bool, up: bool) -> int | float:
    if integer:
        return int(math.ceil(value) if up else math.floor(value))
    return float(f"{value:.6g}")


def _column_checks(
    c: ColumnProfile, rows: int, is_id: bool, table: pa.Table | None
) -> list[tuple[dict[str, Any], str | None]]:
    family = family_of(c.type)
    out: list[tuple[dict[str, Any], str | None]] = [
        ({"check": "dtype", "column": c.name, "type": family}, None)
    ]
    if c.null_count == 0:
        out.append(({"check": "max_null_fraction", "column": c.name, "value": 0.0}, None))
    else:
        share = float(f"{c.null_fraction:.6g}")
        out.append(
            (
                {"check": "max_null_fraction", "column": c.name, "reference_fraction": share},
                f"observed {c.null_fraction:.2%} nulls; the limit is sized to the rows met",
            )
        )
    if rows == 0 or c.count == 0:
        return out
    if is_id:
        out.append(({"check": "unique", "column": c.name}, "every value distinct: an id?"))
    if c.kind == "numeric" and family in ("integer", "float", "numeric") and not is_id:
        column = table.column(c.name) if table is not None and family != "numeric" else None
        out.extend(_numeric_checks(c, family == "integer", column))
    if family == "string":
        out.extend(_string_checks(c))
    return out


def _numeric_checks(
    c: ColumnProfile, integer: bool, column: pa.ChunkedArray | None
) -> list[tuple[dict[str, Any], str | None]]:
    out: list[tuple[dict[str, Any], str | None]] = []
    low, high = c.min, c.max
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        below, above, why = range_margins(column, low, high, c.quantiles, c.count)
        floor = low - below
        if low >= 0 > floor:  # a column never seen negative is not widened below zero
            floor = 0
        out.append(
            (
                {
                    "check": "between",
                    "column": c.name,
                    "min": _num(floor, integer, up=False),
                    "max": _num(high + above, integer, up=True),
                },
                f"observed {low:.6g}..{high:.6g}, widened by {why}"
                + (" (not below 0)" if floor == 0 and low > 0 else ""),
            )
        )
    if c.mean is not None and c.std is not None and math.isfinite(c.mean):
        out.append(
            (
                {
                    "check": "mean_between",
                    "column": c.name,
                    "reference_mean": float(f"{c.mean:.6g}"),
                    "reference_std": float(f"{c.std:.6g}"),
                    "severity": "warning",
                },
                "within 4 standard errors (reference_std / sqrt(rows met)) of the reference mean",
            )
        )
    return out


def _seen_values(c: ColumnProfile) -> dict[str, int] | None:
    """Every value of a categorical column with its count, or None when not all are known."""
    if not c.distinct_exact:
        return None
    if c.state.exact and len(c.state.values) == c.distinct:
        return dict(c.state.values)
    if c.other_count == 0 and len(c.top_values) == c.distinct:
        return dict(c.top_values)
    return None


def _string_checks(c: ColumnProfile) -> list[tuple[dict[str, Any], str | None]]:
    out: list[tuple[dict[str, Any], str | None]] = []
    seen = _seen_values(c)
    if seen and len(seen) <= MAX_WARNED_VALUES:
        values = sorted(seen)
        once = sum(1 for n in seen.values() if n == 1)
        spec: dict[str, Any] = {"check": "allowed_values", "column": c.name, "values": values}
        note = f"the {len(values)} values seen"
        # Values seen once say the reference did not see every value there is
        # (Good-Turing): a new one in a clean sample is then expected, not a fault.
        if len(values) > MAX_ALLOWED_VALUES or once:
            spec["severity"] = "warning"
            note += (
                f"; {once} seen only once (a long tail)"
                if once
                else f"; over {MAX_ALLOWED_VALUES} values"
            )
            note += ": a warning, make it an error if the list is complete"
        out.append((spec, note))
        return out
    if c.str_len is not None:
        low, high = int(c.str_len["min"]), int(c.str_len["max"])
        pad = 0 if low == high else max(1, math.ceil(0.1 * (high - low)))
        out.append(
            (
                {
                    "check": "string_length",
                    "column": c.name,
                    "min": max(0, low - pad),
                    "max": high + pad,
                },
                f"observed lengths {low}..{high}" + (", widened by 10%" if pad else ""),
            )
        )
    return out


def infer_suite(data: Any, *, name: str | None = None, ctx: Context | None = None) -> Suite:
    """A suite from a table's profile: a DataFrame, an Arrow table, a path or a profile.

    The tolerances are guesses (see this module's docstring); review the YAML before use::

        suite = plinth.validation.infer_suite(reference_df, name="flights")
        Path("suite.yaml").write_text(suite.to_yaml())

    A dataset version's suite comes from ``plinth.datasets.infer_suite("flights@3")``.
    """
    from plinth.validation.sources import deprecated_datasets, is_path

    if isinstance(data, str) and not is_path(data):
        datasets = deprecated_datasets(
            "plinth.validation.infer_suite(REF) with a dataset reference",
            "plinth.datasets.infer_suite(REF)",
        )
        found: Suite = datasets.infer_suite(data, name=name, ctx=ctx)
        return found
    return suite_from_profile(*_profile_of(data), name=name)


def suite_from_profile(
    profile: TableProfile, source: str, table: pa.Table | None, *, name: str | None = None
) -> Suite:
    """The suite :func:`infer_suite` writes for ``profile`` (of ``source``); ``table``, when
    given, confirms estimated unique columns exactly."""
    rows = profile.row_count
    ids = _unique_columns(profile, table)
    specs: list[tuple[dict[str, Any], str | None]] = [
        (
            {"check": "row_count", "min": 1},
            f"observed {rows:,} rows; any non-empty table passes (add a max if you know one)",
        ),
        ({"check": "required_columns", "columns": list(profile.columns)}, None),
        ({"check": "no_unexpected_columns", "columns": list(profile.columns)}, None),
    ]
    temporal = []
    for column in profile.columns.values():
        specs.extend(_column_checks(column, rows, column.name in ids, table))
        if family_of(column.type) in ("timestamp", "date"):
            temporal.append(column.name)
    suite_name = name or _name(source)
    parsed = Suite.from_dict(
        {"suite": suite_name, "checks": [spec for spec, _ in specs]}, where=f"inferred {suite_name}"
    )
    checks = tuple(
        SuiteCheck(c.check, c.column, c.args, c.severity, c.index, None, note)
        for c, (_, note) in zip(parsed.checks, specs, strict=True)
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    header = [
        f"Inferred by plinth from {source} ({rows:,} rows) at {now}.",
        "The tolerances are guesses from one sample: edit them before relying on this suite.",
        "Severity is 'error' unless a check says 'severity: warning'. See docs/validation.md.",
    ]
    if temporal:
        header.append(
            f"Add e.g. {{check: freshness, column: {temporal[0]}, max_age: 1d}} "
            "for data that must be recent."
        )
    return Suite(suite_name, checks, header=tuple(header))
