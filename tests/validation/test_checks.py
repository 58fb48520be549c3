"""Each check passes on clean data and fails on a targeted fault: count, fraction, sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from plinth.validation import CheckResult, Suite, validate


def run_one(table: pa.Table, check: dict[str, Any], **kw: Any) -> CheckResult:
    suite = Suite.from_dict({"suite": "t", "checks": [check]}, **kw)
    result = validate(table, suite)
    assert len(result.results) == 1
    return result.results[0]


def replace(table: pa.Table, name: str, values: list[Any]) -> pa.Table:
    """``table`` with the first len(values) rows of ``name`` replaced."""
    column = table[name].to_pylist()
    column[: len(values)] = values
    i = table.column_names.index(name)
    return table.set_column(i, name, pa.array(column, table.schema.field(name).type))


def test_row_count(table: pa.Table) -> None:
    assert run_one(table, {"check": "row_count", "min": 4000, "max": 4000}).success
    r = run_one(table, {"check": "row_count", "min": 5000})
    assert (r.success, r.observed) == (False, 4000)


def test_required_and_unexpected_columns(table: pa.Table) -> None:
    names = table.column_names
    assert run_one(table, {"check": "required_columns", "columns": names}).success
    assert run_one(table, {"check": "no_unexpected_columns", "columns": names}).success
    r = run_one(table.drop_columns(["carrier"]), {"check": "required_columns", "columns": names})
    assert (r.success, r.observed) == (False, ["carrier"])
    r = run_one(table, {"check": "no_unexpected_columns", "columns": names[:-1]})
    assert (r.success, r.observed) == (False, ["departed"])


def test_freshness(table: pa.Table) -> None:
    fresh = {"check": "freshness", "column": "departed", "max_age": "2d", "as_of": "2024-01-31"}
    assert run_one(table, fresh).success
    r = run_one(table, {**fresh, "as_of": "2024-03-01"})
    assert not r.success
    assert r.observed["newest"].startswith("2024-01-30")
    # Relative to now, January 2024 is old.
    assert not run_one(table, {"check": "freshness", "column": "departed", "max_age": "3d"}).success


def test_no_duplicates(table: pa.Table) -> None:
    check = {"check": "no_duplicates", "columns": ["id", "carrier"]}
    assert run_one(table, check).success
    ids = table["id"].to_pylist()
    faulty = replace(table, "id", [ids[10], ids[11]])
    faulty = replace(
        faulty, "carrier", [table["carrier"][10].as_py(), table["carrier"][11].as_py()]
    )
    r = run_one(faulty, check)
    assert (r.success, r.failing_count) == (False, 2)
    assert {tuple(s.values()) for s in r.sample} == {
        (ids[10], table["carrier"][10].as_py()),
        (ids[11], table["carrier"][11].as_py()),
    }


def test_dtype(table: pa.Table) -> None:
    for column, family in [
        ("id", "integer"),
        ("id", "int64"),
        ("id", "numeric"),
        ("distance", "float"),
        ("carrier", "string"),
        ("departed", "timestamp"),
    ]:
        assert run_one(table, {"check": "dtype", "column": column, "type": family}).success
    r = run_one(table, {"check": "dtype", "column": "carrier", "type": "integer"})
    assert (r.success, r.observed) == (False, "string")


def test_max_null_fraction(table: pa.Table) -> None:
    check = {"check": "max_null_fraction", "column": "delay", "value": 0.0}
    assert run_one(table, check).success
    r = run_one(replace(table, "delay", [None] * 40), check)
    assert (r.success, r.failing_count, r.failing_fraction) == (False, 40, 0.01)
    assert run_one(replace(table, "delay", [None] * 40), {**check, "value": 0.01}).success


def test_nan_counts_as_null(table: pa.Table) -> None:
    nan = replace(table, "delay", [float("nan")] * 8)
    assert (
        run_one(nan, {"check": "max_null_fraction", "column": "delay", "value": 0}).failing_count
        == 8
    )
    assert run_one(nan, {"check": "between", "column": "delay", "min": -100, "max": 100}).success


def test_unique(table: pa.Table) -> None:
    assert run_one(table, {"check": "unique", "column": "id"}).success
    ids = table["id"].to_pylist()
    r = run_one(replace(table, "id", [ids[100]] * 3), {"check": "unique", "column": "id"})
    # Four rows hold one value: three are extra copies.
    assert (r.success, r.failing_count, r.sample) == (False, 3, (ids[100],))


def test_between(table: pa.Table) -> None:
    check = {"check": "between", "column": "distance", "min": 100, "max": 2000}
    assert run_one(table, check).success
    r = run_one(replace(table, "distance", [-5.0, 99999.0, None]), check)
    assert (r.success, r.failing_count, set(r.sample)) == (False, 2, {-5.0, 99999.0})
    assert r.observed == {"min": -5.0, "max": 99999.0}
    assert run_one(table, {"check": "between", "column": "passengers", "min": 1}).success


def test_between_dates(table: pa.Table) -> None:
    check = {"check": "between", "column": "departed", "min": "2024-01-01", "max": "2024-02-01"}
    assert run_one(table, check).success
    late = replace(table, "departed", [dt.datetime(2025, 1, 1)])
    assert run_one(late, check).failing_count == 1


def test_allowed_values(table: pa.Table) -> None:
    check = {
        "check": "allowed_values",
        "column": "carrier",
        "values": ["AA", "B6", "DL", "UA", "WN"],
    }
    assert run_one(table, check).success
    r = run_one(replace(table, "carrier", ["ZZ", "ZZ", "XX", None]), check)
    assert (r.success, r.failing_count, set(r.sample)) == (False, 3, {"ZZ", "XX"})


def test_regex(table: pa.Table) -> None:
    check = {"check": "regex", "column": "tailnum", "pattern": "^N[0-9]{5}$"}
    assert run_one(table, check).success
    r = run_one(replace(table, "tailnum", ["X1", "n00001"]), check)
    assert (r.success, r.failing_count, set(r.sample)) == (False, 2, {"X1", "n00001"})


def test_string_length(table: pa.Table) -> None:
    check = {"check": "string_length", "column": "tailnum", "min": 6, "max": 6}
    assert run_one(table, check).success
    r = run_one(replace(table, "tailnum", ["N1", "N1234567"]), check)
    assert (r.success, r.failing_count, set(r.sample)) == (False, 2, {"N1", "N1234567"})
    assert r.observed == {"min": 2, "max": 8}


@pytest.mark.parametrize(
    ("check", "value"),
    [("mean_between", "mean"), ("std_between", "stddev"), ("quantile_between", "median")],
)
def test_statistics(table: pa.Table, check: str, value: str) -> None:
    delay = table["delay"]
    observed = {
        "mean": pc.mean(delay).as_py(),
        "stddev": pc.stddev(delay, ddof=1).as_py(),
        "median": pc.quantile(delay, q=0.5, interpolation="linear")[0].as_py(),
    }[value]
    args: dict[str, Any] = {"check": check, "column": "delay"}
    if check == "quantile_between":
        args["q"] = 0.5
    r = run_one(table, {**args, "min": observed - 0.01, "max": observed + 0.01})
    assert r.success
    assert r.observed == pytest.approx(observed)
    shifted = table.set_column(2, "delay", pc.add(delay, 3.0 if value != "stddev" else 0.0))
    if value == "stddev":
        shifted = table.set_column(2, "delay", pc.multiply(delay, 2.0))
    assert not run_one(shifted, {**args, "min": observed - 0.01, "max": observed + 0.01}).success


def test_in_dataset_path(table: pa.Table, tmp_path: Path) -> None:
    pq.write_table(pa.table({"code": ["AA", "B6", "DL", "UA", "WN", "F9"]}), tmp_path / "c.parquet")
    check = {
        "check": "in_dataset",
        "column": "carrier",
        "path": "c.parquet",
        "dataset_column": "code",
    }
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(f"suite: s\nchecks:\n  - {check}\n".replace("'", ""))
    suite = Suite.load(suite_file)
    assert validate(table, suite).success
    r = validate(replace(table, "carrier", ["QQ"]), suite).results[0]
    assert (r.success, r.failing_count, r.sample) == (False, 1, ("QQ",))


def test_sql(table: pa.Table) -> None:
    check = {
        "check": "sql",
        "name": "positive",
        "condition": "passengers > 0",
        "severity": "warning",
    }
    assert run_one(table, check).success
    faulty = replace(table, "passengers", [0, None])
    suite = Suite.from_dict({"suite": "t", "checks": [check]})
    result = validate(faulty, suite)
    r = result.results[0]
    # NULL is "not true": it fails too. A warning does not fail the suite.
    assert (r.success, r.failing_count, r.severity) == (False, 2, "warning")
    assert result.success
    assert {row["passengers"] for row in r.sample} == {0, None}


def test_all_checks_in_one_result(table: pa.Table) -> None:
    text = (Path(__file__).parent / "full_suite.yaml").read_text()
    result = validate(table, Suite.from_yaml(text, where="full_suite.yaml"))
    assert result.success, [(r.check, r.column, r.observed) for r in result.failures]
    assert len(result.results) == 16
