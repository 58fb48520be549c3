"""Profiles: exact statistics on small tables, merges equal to profiling the union, the
JSON round trip and every input kind (the profile ``data add`` stores: tests/datasets)."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from plinth.errors import IntegrityError, UsageError
from plinth.profiles import TableProfile, merge_profiles, profile_table


def _table(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.1] = np.nan
    return pa.table(
        {
            "x": pa.array(x, from_pandas=True),
            "k": rng.integers(0, 30, n),
            "wide": rng.integers(0, 10**9, n),
            "s": pa.array([f"c{i}" for i in rng.integers(0, 40, n)]),
            "ids": pa.array([f"id-{seed}-{i}" for i in range(n)]),
            "b": pa.array(rng.random(n) < 0.3),
            "t": pa.array(rng.integers(1.6e15, 1.7e15, n), pa.timestamp("us")),
        }
    )


def test_small_table_statistics_are_exact() -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    t = pa.table(
        {
            "x": pa.array([*x, None]),
            "s": pa.array(["a", "bb", "a", None, "ccc", "a", "bb", "a", "d"]),
        }
    )
    p = profile_table(t, top_k=2)
    c = p.columns["x"]
    assert (p.row_count, c.kind, c.count, c.null_count) == (9, "numeric", 8, 1)
    assert (c.min, c.max, c.distinct, c.distinct_exact) == (1.0, 9.0, 7, True)
    assert c.mean == pytest.approx(x.mean())
    assert c.std == pytest.approx(x.std())
    assert c.null_fraction == pytest.approx(1 / 9)
    assert c.quantiles[0.5] == pytest.approx(np.quantile(x, 0.5), abs=1.0)
    assert c.histogram is not None
    assert sum(c.histogram[1]) == 8
    assert c.histogram[0][0] == 1.0
    assert c.histogram[0][-1] == 9.0
    s = p.columns["s"]
    assert (s.kind, s.count, s.null_count, s.distinct) == ("categorical", 8, 1, 4)
    assert s.top_values == {"a": 4, "bb": 2}
    assert s.other_count == 2
    assert (s.min, s.max) == ("a", "d")
    assert s.str_len == {"min": 1.0, "max": 3.0, "mean": 1.5}
    assert list(p.columns) == ["x", "s"]
    assert p.schema == [{"name": "x", "type": "double"}, {"name": "s", "type": "string"}]


def test_large_column_quantiles_within_kll_error_and_distinct_estimated() -> None:
    t = _table(1, 50_000)
    p = profile_table(t)
    x = t.column("x").drop_null().to_numpy()
    for q, v in p.columns["x"].quantiles.items():
        rank = (x <= v).mean()
        assert abs(rank - q) < 0.02
    wide = p.columns["wide"]
    assert not wide.distinct_exact
    exact = len(np.unique(t.column("wide").to_numpy()))
    assert abs(wide.distinct - exact) / exact < 0.05
    assert p.columns["ids"].distinct == 50_000
    assert p.columns["ids"].distinct_exact


def test_merge_equals_profile_of_the_union() -> None:
    a, b = _table(1, 30_000), _table(2, 20_000)
    merged = merge_profiles(profile_table(a), profile_table(b))
    both = pa.concat_tables([a, b])
    whole = profile_table(both)
    assert merged.row_count == whole.row_count == 50_000
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.count, m.null_count, m.min, m.max) == (w.count, w.null_count, w.min, w.max)
        if w.mean is not None:
            assert m.mean == pytest.approx(w.mean)
            assert m.std == pytest.approx(w.std)
        if w.quantiles:  # within KLL's rank error (~1.3% at k=200), checked as ranks
            column = both.column(name).drop_null()
            if pa.types.is_timestamp(column.type):  # profiled as epoch microseconds
                column = column.cast(pa.int64())
            values = np.sort(column.to_numpy(zero_copy_only=False).astype(np.float64))
            values = values[~np.isnan(values)]
            for q in w.quantiles:
                low = np.searchsorted(values, m.quantiles[q], side="left") / len(values)
                high = np.searchsorted(values, m.quantiles[q], side="right") / len(values)
                assert low - 0.03 <= q <= high + 0.03, (name, q)
        if w.histogram is not None:
            assert m.histogram is not None
            assert sum(m.histogram[1]) == w.count
        assert m.str_len == (None if w.str_len is None else pytest.approx(w.str_len))
    for name in ("k", "s", "b"):  # few distinct values: merged exactly
        m, w = merged.columns[name], whole.columns[name]
        assert (m.top_values, m.other_count, m.distinct, m.distinct_exact) == (
            w.top_values,
            w.other_count,
            w.distinct,
            True,
        )
    ids = merged.columns["ids"]
    assert abs(ids.distinct - 50_000) / 50_000 < 0.05
    assert not ids.distinct_exact
    assert merged.columns["wide"].distinct == pytest.approx(
        whole.columns["wide"].distinct, rel=0.05
    )


def test_merge_with_the_same_range_sums_histograms_exactly() -> None:
    t = pa.table({"v": [0.0, 1.0, 2.0, 10.0]})
    p = profile_table(t, bins=5)
    m = p.merge(p)
    assert m.columns["v"].histogram == (p.columns["v"].histogram[0], [4, 2, 0, 0, 2])  # type: ignore[index]


def test_merge_refuses_different_schemas() -> None:
    a = profile_table(pa.table({"v": [1, 2]}))
    b = profile_table(pa.table({"v": ["x", "y"]}))
    with pytest.raises(UsageError, match="v \\(int64 vs string\\)"):
        merge_profiles(a, b)


def test_json_round_trip_and_merge_after_it() -> None:
    p = profile_table(_table(3, 5_000))
    data = p.to_bytes()
    back = TableProfile.from_bytes(data)
    assert back == p
    assert back.to_bytes() == data
    assert json.loads(data)["columns"][0]["name"] == "x"
    assert back.merge(back).columns["x"].count == 2 * p.columns["x"].count


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"format": "other"}', "'format' is 'other'"),
    ],
)
def test_bad_json_gives_a_precise_error(data: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        TableProfile.from_bytes(data, where="the profile of flights@1")


def test_a_damaged_field_is_named() -> None:
    doc = json.loads(profile_table(pa.table({"v": [1, 2]})).to_bytes())
    doc["columns"][0]["count"] = "two"
    with pytest.raises(IntegrityError, match=r"columns\[0\]\.'count' is str, not integer"):
        TableProfile.from_bytes(json.dumps(doc).encode())
    doc["version"] = 99
    with pytest.raises(UsageError, match="format version 99"):
        TableProfile.from_bytes(json.dumps(doc).encode())


def test_pandas_polars_and_arrow_inputs_agree() -> None:
    t = pa.table({"a": [1.0, 2.0, None], "s": ["x", None, "y"]})
    from_arrow = profile_table(t)
    from_pandas = profile_table(t.to_pandas())
    assert from_pandas.columns["a"] == from_arrow.columns["a"]
    assert from_pandas.columns["s"].top_values == {"x": 1, "y": 1}
    polars = pytest.importorskip("polars")
    assert profile_table(polars.from_arrow(t)).columns["a"].mean == 1.5
    with pytest.raises(UsageError):
        profile_table([1, 2, 3])


def test_all_null_and_empty_tables() -> None:
    p = profile_table(pa.table({"v": pa.array([None, None], pa.float64()), "n": pa.nulls(2)}))
    v = p.columns["v"]
    assert (v.count, v.null_count, v.min, v.mean, v.quantiles, v.histogram) == (
        0,
        2,
        None,
        None,
        {},
        None,
    )
    assert v.null_fraction == 1.0
    empty = profile_table(pa.table({"v": pa.array([], pa.int64()), "s": pa.array([], pa.string())}))
    assert empty.row_count == 0
    assert empty.columns["v"].count == 0
    assert empty.columns["s"].top_values == {}
    assert empty.columns["v"].null_fraction == 0.0
    assert (
        merge_profiles(empty, profile_table(pa.table({"v": [1], "s": ["a"]}))).columns["v"].mean
        == 1.0
    )


def test_temporal_and_boolean_columns() -> None:
    t = pa.table(
        {
            "d": pa.array([dt.date(2024, 3, 1), None, dt.date(2023, 1, 2)]),
            "ts": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 1)], pa.timestamp("us")
            ).take([0, 1, 1]),
            "b": [True, False, True],
        }
    )
    p = profile_table(t)
    d = p.columns["d"]
    assert (d.kind, d.min, d.max, d.count) == ("temporal", "2023-01-02", "2024-03-01", 2)
    assert d.mean == pytest.approx((19783 + 19359) / 2)
    ts = p.columns["ts"]
    assert ts.min == "2024-01-01T00:00:00.000000"
    assert ts.max == "2024-01-02T03:04:05.000000"
    b = p.columns["b"]
    assert (b.kind, b.mean, b.top_values, b.min, b.max) == (
        "boolean",
        pytest.approx(2 / 3),
        {"true": 2, "false": 1},
        0.0,
        1.0,
    )
    assert b.std == pytest.approx(np.std([1, 0, 1]))
    m = p.merge(p)
    assert (m.columns["d"].min, m.columns["b"].top_values) == (
        "2023-01-02",
        {"true": 4, "false": 2},
    )


def test_importing_profiles_loads_no_heavy_module() -> None:
    code = (
        "import sys, plinth, plinth.profiles\n"
        "bad = [m for m in ('pyarrow', 'numpy', 'pandas', 'datasketches') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_profile_file_reads_a_parquet_file(tmp_path: Path) -> None:
    from plinth.profiles import profile_file

    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,x\n3,y\n")
    p = profile_file(path)
    assert p.columns["a"].mean == 2.0
    assert p.columns["b"].top_values == {"x": 1, "y": 1}
    assert math.isclose(p.columns["a"].std or 0, 1.0)
