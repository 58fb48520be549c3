"""Checks answered from the Arrow table (no DuckDB scan) agree with their SQL definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from plinth.validation import CheckResult, Suite, validate


def run_one(table: pa.Table, check: dict[str, Any]) -> CheckResult:
    result = validate(table, Suite.from_dict({"suite": "t", "checks": [check]}))
    return result.results[0]


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([5, 3, None, 3, 9, 9, 9, 1], pa.int64()),  # small span: bitmap
        ([10**15, -(10**15), 7, 7, None], pa.int64()),  # wide span: sort
        ([-128, 127, 0, 0, -128], pa.int8()),  # the subtraction must not overflow int8
        ([2**64 - 1, 2**64 - 1, 2**63, 0], pa.uint64()),  # above int64
        ([2**64 - 1, 2**64 - 2, 2**64 - 1], pa.uint64()),  # uint64, small span
    ],
)
def test_unique_integers(values: list[Any], arrow_type: pa.DataType) -> None:
    table = pa.table({"x": pa.array(values, arrow_type)})
    present = [v for v in values if v is not None]
    extra = len(present) - len(set(present))
    dupes = sorted({v for v in present if present.count(v) > 1})
    r = run_one(table, {"check": "unique", "column": "x"})
    assert (r.success, r.observed, r.failing_count) == (extra == 0, extra, extra)
    assert sorted(r.sample) == dupes
    unique = pa.table({"x": pa.array(sorted(set(present)), arrow_type)})
    assert run_one(unique, {"check": "unique", "column": "x"}).success


def test_unique_integers_chunked_and_empty() -> None:
    chunks = pa.chunked_array([pa.array([1, 2, None]), pa.array([], pa.int64()), pa.array([2])])
    r = run_one(pa.table({"x": chunks}), {"check": "unique", "column": "x"})
    assert (r.success, r.failing_count, r.sample) == (False, 1, (2,))
    empty = pa.table({"x": pa.array([None, None], pa.int64())})
    assert run_one(empty, {"check": "unique", "column": "x"}).success


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()])
def test_allowed_strings(arrow_type: pa.DataType) -> None:
    values = ["a", "b", None, "c", "a", "zz", "c", None]
    table = pa.table({"x": pa.chunked_array([pa.array(values[:4], arrow_type),
                                             pa.array(values[4:], arrow_type)])})  # fmt: skip
    ok = run_one(table, {"check": "allowed_values", "column": "x", "values": list("abcz")})
    assert not ok.success  # "zz" is not "z"
    assert (ok.failing_count, ok.sample) == (1, ("zz",))
    r = run_one(table, {"check": "allowed_values", "column": "x", "values": ["a"]})
    assert (r.failing_count, r.failing_fraction, set(r.sample)) == (4, 0.5, {"b", "c", "zz"})
    good = run_one(
        table, {"check": "allowed_values", "column": "x", "values": ["a", "b", "c", "zz"]}
    )
    assert (good.success, good.failing_count) == (True, 0)


def test_null_fraction_from_metadata_and_nan() -> None:
    table = pa.table(
        {
            "s": pa.array(["a", None, None, "b"]),
            "f": pa.array([1.0, np.nan, None, 2.0]),  # NaN counts as null
        }
    )
    r = run_one(table, {"check": "max_null_fraction", "column": "s", "value": 0.25})
    assert (r.success, r.failing_count, r.observed) == (False, 2, 0.5)
    r = run_one(table, {"check": "max_null_fraction", "column": "f", "value": 0.5})
    assert (r.success, r.failing_count) == (True, 2)


def test_between_counts_only_when_outside() -> None:
    table = pa.table({"x": pa.array([1.0, 5.0, None, np.nan, 9.0])})
    r = run_one(table, {"check": "between", "column": "x", "min": 0, "max": 10})
    assert (r.success, r.observed, r.failing_count) == (True, {"min": 1.0, "max": 9.0}, 0)
    r = run_one(table, {"check": "between", "column": "x", "min": 2, "max": 8})
    assert (r.success, r.failing_count, sorted(r.sample)) == (False, 2, [1.0, 9.0])
    assert r.observed == {"min": 1.0, "max": 9.0}
    r = run_one(table, {"check": "between", "column": "x", "max": 5})
    assert (r.success, r.failing_count, r.sample) == (False, 1, (9.0,))


@pytest.mark.parametrize(
    ("values", "arrow_type", "mean"),
    [
        ([1, 2, None, 4], pa.int64(), 7 / 3),
        ([2**63 - 1, 2**63 - 1, 1], pa.int64(), (2 * (2**63 - 1) + 1) / 3),  # overflows int64
        ([2**64 - 1, 2**64 - 1], pa.uint64(), float(2**64 - 1)),
        ([-128, -128, 127], pa.int8(), -43.0),
        ([1.5, np.nan, None, 2.5], pa.float64(), 2.0),  # NaN counts as null
        ([0.25, 0.75], pa.float32(), 0.5),
        ([None, None], pa.float64(), None),
    ],
)
def test_mean_from_numpy(values: list[Any], arrow_type: pa.DataType, mean: float | None) -> None:
    table = pa.table({"x": pa.array(values, arrow_type)})
    r = run_one(table, {"check": "mean_between", "column": "x", "min": -(2.0**70), "max": 2.0**70})
    assert r.observed == (None if mean is None else pytest.approx(mean, rel=1e-15))
    assert r.success is (mean is not None)


def test_between_integers_and_chunks() -> None:
    x = pa.chunked_array([pa.array([3, None], pa.int32()), pa.array([], pa.int32()),
                          pa.array([7, 11], pa.int32())])  # fmt: skip
    table = pa.table({"x": x})
    r = run_one(table, {"check": "between", "column": "x", "min": 3, "max": 11})
    assert (r.success, r.observed) == (True, {"min": 3, "max": 11})
    r = run_one(table, {"check": "between", "column": "x", "min": 3.5})
    assert (r.success, r.failing_count, r.sample, r.observed) == (
        False, 1, (3,), {"min": 3, "max": 11}
    )  # fmt: skip
    empty = pa.table({"x": pa.array([None], pa.int64())})
    assert run_one(empty, {"check": "between", "column": "x", "min": 0}).success


def test_nan_detection_ignores_nulls_and_infinities() -> None:
    from plinth.validation.runner import _has_nan

    assert not _has_nan(pa.chunked_array([pa.array([1.0, None, np.inf, -np.inf])]))
    assert _has_nan(pa.chunked_array([pa.array([1.0]), pa.array([None, np.nan])]))
    assert _has_nan(pa.chunked_array([pa.array([np.inf, -np.inf, np.nan], pa.float32())]))
    assert not _has_nan(pa.chunked_array([], pa.float64()))


def test_mean_of_infinities_is_nan_without_warning() -> None:
    table = pa.table({"x": pa.array([np.inf, -np.inf, 1.0])})
    r = run_one(table, {"check": "mean_between", "column": "x", "min": 0, "max": 2})
    assert not r.success


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_between_naive_timestamps(unit: str) -> None:
    import datetime as dt

    stamps = [dt.datetime(2024, 1, 1), None, dt.datetime(2024, 6, 30, 12), dt.datetime(2024, 3, 1)]
    table = pa.table({"t": pa.array(stamps, pa.timestamp(unit))})
    check = {"check": "between", "column": "t", "min": "2024-01-01", "max": "2024-06-30T12:00:00"}
    r = run_one(table, check)
    observed = {"min": dt.datetime(2024, 1, 1), "max": dt.datetime(2024, 6, 30, 12)}
    assert (r.success, r.observed, r.failing_count) == (True, observed, 0)
    r = run_one(table, {**check, "min": "2024-03-01"})
    assert (r.success, r.failing_count, r.sample) == (False, 1, (dt.datetime(2024, 1, 1),))
    if unit == "ns":
        return  # DuckDB cannot compare TIMESTAMP_NS with a zoned bound (the SQL path)
    aware = {"check": "between", "column": "t", "max": "2024-06-30T11:59:59+00:00"}
    r = run_one(table, aware)
    assert (r.success, r.failing_count, r.observed) == (False, 1, observed)
    aware = {"check": "between", "column": "t", "min": "2024-01-01T01:00:00+02:00"}
    assert run_one(table, aware).success  # 2023-12-31 23:00 UTC
    aware = {"check": "between", "column": "t", "min": "2024-01-01T00:00:01-00:00"}
    assert not run_one(table, aware).success


@pytest.mark.parametrize("arrow_type", [pa.int64(), pa.int8(), pa.uint64()])
def test_allowed_integers(arrow_type: pa.DataType) -> None:
    table = pa.table({"x": pa.array([1, 2, None, 3, 3, 100], arrow_type)})
    r = run_one(table, {"check": "allowed_values", "column": "x", "values": [1, 2, 3]})
    assert (r.success, r.failing_count, r.sample) == (False, 1, (100,))
    ok = run_one(table, {"check": "allowed_values", "column": "x", "values": [1, 2, 3, 100]})
    assert ok.success
    # A value the type cannot hold takes the SQL path, with the same answer.
    wide = run_one(
        table, {"check": "allowed_values", "column": "x", "values": [1, 2, 3, 100, -1000]}
    )
    assert wide.success
