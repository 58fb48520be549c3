"""The acceptance scene: infer from one clean sample; a second clean sample passes, and each
injected fault is caught by its own check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from plinth.validation import Suite, infer_suite, validate

from .conftest import make_table


@pytest.fixture(scope="module")
def suite() -> Suite:
    # Through YAML, as a person would keep it.
    return Suite.from_yaml(infer_suite(make_table(1), name="flights").to_yaml(), where="s.yaml")


def test_inferred_suite_shape(suite: Suite) -> None:
    kinds = {(c.check, c.column) for c in suite.checks}
    assert ("unique", "id") in kinds
    assert ("allowed_values", "carrier") in kinds
    assert ("between", "distance") in kinds
    assert ("mean_between", "delay") in kinds
    assert ("string_length", "tailnum") in kinds
    assert ("between", "id") not in kinds  # an id's range is no distribution


def test_inferred_yaml_says_where_from_and_to_edit() -> None:
    text = infer_suite(make_table(1)).to_yaml()
    assert text.startswith("# Inferred by plinth from a Table (4,000 rows) at ")
    assert "edit them" in text
    # Issue 13: no maximum (a clean sample of any size passes), only an empty table fails.
    assert (
        "# observed 4,000 rows; any non-empty table passes (add a max if you know one)\n"
        "  - {check: row_count, min: 1}" in text
    )


@pytest.mark.parametrize("seed", [2, 3, 4, 5, 6])
def test_clean_sample_of_the_same_distribution_passes(suite: Suite, seed: int) -> None:
    result = validate(make_table(seed), suite)
    assert result.failures == [], [(r.check, r.column, r.observed) for r in result.failures]


def _set(table: pa.Table, name: str, rows: np.ndarray, values: list[object]) -> pa.Table:
    column = table[name].to_pylist()
    for row, value in zip(rows, values, strict=True):
        column[row] = value
    i = table.column_names.index(name)
    return table.set_column(i, name, pa.array(column, table.schema.field(name).type))


def test_injected_faults_are_caught_check_by_check(suite: Suite) -> None:
    table = make_table(7)
    rng = np.random.default_rng(99)
    rows = rng.choice(table.num_rows, 40, replace=False)
    ids = table["id"].to_pylist()
    faulty = _set(table, "carrier", rows[:10], [None] * 10)  # nulls in a non-null column
    faulty = _set(
        faulty, "distance", rows[10:15], [-500.0, -200.0, 2500.0, 2600.0, 3000.0]
    )  # out of range
    faulty = _set(faulty, "id", rows[15:20], [ids[0]] * 5)  # duplicate ids
    faulty = _set(faulty, "carrier", rows[20:28], ["ZZ"] * 4 + ["QX"] * 4)  # unseen categories

    result = validate(faulty, suite)
    failed = {(r.check, r.column): r for r in result.failures}
    assert set(failed) == {
        ("max_null_fraction", "carrier"),
        ("between", "distance"),
        ("unique", "id"),
        ("allowed_values", "carrier"),
    }, [(r.check, r.column, r.observed) for r in result.failures]
    assert not result.success
    assert failed["max_null_fraction", "carrier"].failing_count == 10
    assert failed["between", "distance"].failing_count == 5
    assert set(failed["between", "distance"].sample) == {-500.0, -200.0, 2500.0, 2600.0, 3000.0}
    assert failed["unique", "id"].failing_count == 5
    assert failed["unique", "id"].sample == (ids[0],)
    assert failed["allowed_values", "carrier"].failing_count == 8
    assert set(failed["allowed_values", "carrier"].sample) == {"ZZ", "QX"}
