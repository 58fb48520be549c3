"""Numeric columns are profiled from one sorted copy, columns in threads: every statistic
must equal what a plain pass over the unsorted column gives (the oracles below are that
plain pass: Arrow's value counts, HLL registers of every value, the bin formula applied to
every value); quantile sketches are randomised, so they are checked by rank."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from plinth.profiles import _compute, _hll, profile_table
from plinth.profiles._model import EXACT_MAX, QUANTILES

ROWS = 60_000


def _columns(seed: int) -> dict[str, pa.Array]:
    rng = np.random.default_rng(seed)
    n = ROWS
    on_edges = np.round(rng.uniform(0, 10, n), 1)  # many values exactly on bin edges
    zeros = np.where(rng.random(n) < 0.5, 0.0, -0.0)
    return {
        "normal": pa.array(rng.normal(5, 2, n)),
        "with_nan": pa.array(np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))),
        "on_edges": pa.array(on_edges),
        "signed_zeros": pa.array(np.concatenate([zeros[:-3], [1.5, -2.0, 0.0]])),
        "few_ints": pa.array(rng.integers(-5, 5, n)),
        "ints_nulls": pa.array(rng.integers(0, 2000, n), mask=rng.random(n) < 0.2),
        # with -0.0, Arrow counts EXACT_MAX values (kept exactly), then one more (not)
        "at_exact": pa.array(np.resize(np.append(np.arange(EXACT_MAX - 1.0), -0.0), n)),
        "just_over_exact": pa.array(np.resize(np.append(np.arange(EXACT_MAX * 1.0), -0.0), n)),
        "constant": pa.array(np.full(n, 3.25)),
        "huge_ints": pa.array(rng.integers(-(2**62), 2**62, n)),
        "with_inf": pa.array(np.where(rng.random(n) < 0.01, np.inf, rng.normal(size=n))),
        "all_null": pa.array([None] * n, pa.float64()),
        "when": pa.array(rng.integers(1.6e15, 1.7e15, n), pa.timestamp("us")),
        "word": pa.array([f"w{i}" for i in rng.integers(0, 50, n)]),
    }


def _plain(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The column's non-missing values as float64, in their own order."""
    arr = pa.chunked_array([col]) if isinstance(col, pa.Array) else col
    if pa.types.is_timestamp(arr.type):
        return np.asarray(arr.drop_null().cast(pa.int64()).to_numpy(), dtype=np.float64)
    x = np.asarray(arr.drop_null().to_numpy(), dtype=np.float64)
    return x[~np.isnan(x)]


def test_every_statistic_equals_a_plain_pass_over_the_column() -> None:
    table = pa.table(_columns(1))
    found = profile_table(table)
    checked = 0
    for name in table.column_names:
        column = found.columns[name]
        if column.kind not in ("numeric", "temporal"):
            continue
        x = _plain(table.column(name))
        assert column.count == len(x), name
        if not len(x):
            continue
        lo, hi = float(x.min()), float(x.max())
        if column.kind == "numeric":
            assert (column.min, column.max) == (lo, hi), name
        assert column.mean == float(x.mean()), name  # bitwise: summed in the column's order
        if math.isfinite(hi - lo):
            assert column.histogram == _compute.histogram(x, lo, hi, 20), name
        counts = pc.value_counts(pa.array(x))  # Arrow tells 0.0 and -0.0 apart
        exact = {
            repr(float(v)): int(n)
            for v, n in zip(counts.field("values"), counts.field("counts"), strict=True)
        }
        if len(exact) <= EXACT_MAX:
            assert column.distinct_exact, name
            assert column.state.values == exact, name
            assert column.distinct == len(exact), name
        else:
            assert not column.distinct_exact, name
            assert column.state.values == {}, name
            every = _hll.registers(_hll.hash_floats(x)).tobytes()
            assert column.state.hll == every, name  # the registers of every value, not a sample
        checked += 1
    assert checked == 12
    assert found.columns["at_exact"].distinct_exact
    assert not found.columns["just_over_exact"].distinct_exact


def test_quantiles_are_within_the_sketch_rank_error() -> None:
    table = pa.table(_columns(2))
    found = profile_table(table)
    for name in ("normal", "on_edges", "huge_ints", "when", "ints_nulls"):
        x = np.sort(_plain(table.column(name)))
        for q, value in found.columns[name].quantiles.items():
            below = np.searchsorted(x, value, side="left") / len(x)
            upto = np.searchsorted(x, value, side="right") / len(x)
            # KLL k=200: ~1.3 % normalised rank error (99 %); 3 % leaves room for chance
            assert below - 0.03 <= q <= upto + 0.03, (name, q, value, below, upto)
    assert set(found.columns["normal"].quantiles) == set(QUANTILES)


def test_threads_change_nothing_but_the_sketch_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    table = pa.table(_columns(3))
    monkeypatch.setattr(_compute, "_PARALLEL_ROWS", 0)
    threaded = profile_table(table)
    monkeypatch.setattr(_compute, "_PARALLEL_ROWS", 10**12)
    serial = profile_table(table)
    assert list(threaded.columns) == list(serial.columns) == table.column_names
    for name in table.column_names:
        a, b = dataclasses.asdict(threaded.columns[name]), dataclasses.asdict(serial.columns[name])
        for d in (a, b):
            d.pop("quantiles")
            d["state"].pop("kll")
        assert _same(a, b), name


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("seed", range(5))
def test_sorted_histogram_equals_the_bin_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = sorted(rng.uniform(-1e3, 1e3, 2))
    edges = np.linspace(lo, hi, 21)
    x = np.concatenate([rng.uniform(lo, hi, 5000), edges, np.nextafter(edges, -np.inf)])
    x = x[(x >= lo) & (x <= hi)]
    lo, hi = float(x.min()), float(x.max())
    for bins in (1, 7, 20, 64):
        assert _compute.sorted_histogram(np.sort(x), lo, hi, bins) == _compute.histogram(
            x, lo, hi, bins
        )
    same = np.full(10, 2.5)
    assert _compute.sorted_histogram(same, 2.5, 2.5, 4) == _compute.histogram(same, 2.5, 2.5, 4)


def _reference_registers(hashes: np.ndarray) -> np.ndarray:
    """HLL registers the plain way: frexp for the bit length, np.maximum.at per register."""
    reg = np.zeros(_hll.M, np.uint8)
    q = 64 - _hll.LG_K
    idx = (hashes >> np.uint64(q)).astype(np.intp)
    _, exponent = np.frexp((hashes & np.uint64((1 << q) - 1)).astype(np.float64))
    np.maximum.at(reg, idx, (q + 1 - exponent).astype(np.uint8))
    return reg


@pytest.mark.parametrize("n", [1, 7, 5000, 300_000])
def test_hll_registers_equal_the_plain_computation(n: int) -> None:
    rng = np.random.default_rng(n)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) << np.uint64(1)
    hashes |= rng.integers(0, 2, n, dtype=np.uint64)
    hashes[: n // 4] &= np.uint64(0xFFF) << np.uint64(52)  # nothing below the index: rho max
    hashes[n // 4 : n // 2] &= ~np.uint64((1 << 45) - 1)  # long runs of zeros
    assert (_hll.registers(hashes) == _reference_registers(hashes)).all()
    merged = _hll.registers(hashes[: n // 2])
    _hll.registers(hashes[n // 2 :], into=merged)
    assert (merged == _reference_registers(hashes)).all()
