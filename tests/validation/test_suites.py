"""Suite files: the format, round trips, digests, and every mistake named with its location."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from plinth.errors import UsageError
from plinth.validation import Suite, validate

SUITE = """\
suite: flights
checks:
  - {check: row_count, min: 1}
  - {check: unique, column: id}
  - {check: between, column: distance, min: 17, max: 4983}
  - {check: sql, name: positive, condition: "distance > 0", severity: warning}
"""


def bad(text: str, table: pa.Table | None = None) -> UsageError:
    """The error parsing ``text`` (or, with a table, validating it) raises."""

    def attempt() -> None:
        suite = Suite.from_yaml(text, where="suite.yaml")
        if table is not None:
            validate(table, suite)

    with pytest.raises(UsageError) as caught:
        attempt()
    return caught.value


def test_parse_and_round_trip() -> None:
    suite = Suite.from_yaml(SUITE, where="suite.yaml")
    assert suite.name == "flights"
    assert [c.check for c in suite.checks] == ["row_count", "unique", "between", "sql"]
    assert [c.line for c in suite.checks] == [3, 4, 5, 6]
    assert suite.checks[3].severity == "warning"
    again = Suite.from_yaml(suite.to_yaml())
    assert again.checks == suite.checks
    assert suite.digest == Suite.from_yaml(SUITE).digest
    assert suite.digest != Suite.from_yaml(SUITE.replace("4983", "5000")).digest


def test_load_from_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SUITE)
    assert Suite.load(tmp_path / "s.yaml").where == str(tmp_path / "s.yaml")
    with pytest.raises(UsageError, match="no suite file"):
        Suite.load(tmp_path / "missing.yaml")


def test_unknown_expectation_suggests() -> None:
    error = bad(SUITE.replace("check: unique", "check: uniqe"))
    assert (
        error.message
        == "suite.yaml, check 2 (line 4): unknown check 'uniqe' — did you mean 'unique'?"
    )
    assert error.field == "checks[1].check"


def test_unknown_argument() -> None:
    error = bad(SUITE.replace("min: 17", "minimum: 17"))
    assert error.message.startswith(
        "suite.yaml, check 3 (between, line 5): unknown argument 'minimum'"
    )
    assert error.field == "checks[2].minimum"


def test_missing_and_mistyped_arguments() -> None:
    assert (
        "missing argument 'condition'"
        in bad(SUITE.replace(', condition: "distance > 0"', "")).message
    )
    error = bad(SUITE.replace("max: 4983", "max: far"))
    assert error.message == (
        "suite.yaml, check 3 (between, line 5): 'max' must be a number, or an ISO "
        "date/timestamp for a temporal column, not 'far'"
    )
    assert "severity must be 'error' or 'warning'" in bad(SUITE.replace("warning", "fatal")).message
    assert "min 17 is greater than max 1" in bad(SUITE.replace("max: 4983", "max: 1")).message
    assert "unique needs a 'column'" in bad(SUITE.replace(", column: id", "")).message
    assert "unknown argument 'columns' — did you mean 'column'?" in (
        bad(SUITE.replace("column: id", "columns: [id]")).message
    )


def test_malformed_yaml_names_line_and_column() -> None:
    error = bad("suite: s\nchecks:\n  - {check: unique, column: id\n  - {check: row_count}\n")
    assert error.message == (
        "suite.yaml, line 4, column 5: malformed YAML: expected ',' or '}', but got '{'"
    )
    assert "a suite is a mapping" in bad("- just\n- a list\n").message
    assert "unknown key 'check'" in bad("suite: s\ncheck: []\n").message


def test_typo_column_suggests_closest() -> None:
    table = pa.table({"id": [1], "distance": [20.0]})
    error = bad(SUITE.replace("column: distance", "column: distnce"), table)
    assert error.message == (
        "suite.yaml, check 3 (between, line 5): unknown column 'distnce' — did you mean 'distance'?"
    )
    assert error.field == "checks[2].column"


def test_wrong_column_type() -> None:
    table = pa.table({"carrier": ["AA", "DL"]})
    text = "suite: s\nchecks:\n  - {check: mean_between, column: carrier, min: 0, max: 1}\n"
    assert bad(text, table).message == (
        "suite.yaml, check 1 (mean_between, line 3): column 'carrier' is string (string); "
        "mean_between needs a numeric column"
    )


def test_missing_declared_column_fails_the_check_instead() -> None:
    # A column the suite requires is a data problem when it disappears, not a typo.
    table = pa.table({"id": [1, 2]})
    suite = Suite.from_yaml(
        "suite: s\nchecks:\n  - {check: required_columns, columns: [id, distance]}\n"
        "  - {check: between, column: distance, min: 0}\n"
    )
    result = validate(table, suite)
    assert [r.success for r in result.results] == [False, False]
    assert result.results[1].message == "column 'distance' is missing"


def test_regex_that_does_not_compile() -> None:
    table = pa.table({"s": ["a"]})
    error = bad('suite: s\nchecks:\n  - {check: regex, column: s, pattern: "([a-z"}\n', table)
    assert error.message.startswith(
        "suite.yaml, check 1 (regex, line 3): the pattern does not compile (DuckDB uses RE2 syntax)"
    )


def test_bad_sql_names_the_check() -> None:
    table = pa.table({"air_time": [1, 2]})
    text = (
        "suite: s\nchecks:\n  - {check: row_count, min: 1}\n"
        "  - {check: sql, name: pos, condition: 'air_tme > 0'}\n"
    )
    error = bad(text, table)
    assert error.message.startswith(
        "suite.yaml, check 2 (sql, line 4): the SQL condition is invalid"
    )
    assert "air_tme" in error.message


def test_bad_dtype_name() -> None:
    error = bad("suite: s\nchecks:\n  - {check: dtype, column: x, type: flaot}\n")
    assert "unknown type 'flaot' — did you mean 'float'?" in error.message


def test_from_dict_validates_like_yaml() -> None:
    with pytest.raises(UsageError, match=r"<suite>, check 1 \(between\): give at least one of min"):
        Suite.from_dict({"suite": "s", "checks": [{"check": "between", "column": "x"}]})


def test_mixed_time_zone_bounds_are_named() -> None:
    text = (
        "suite: s\nchecks:\n"
        '  - {check: between, column: t, min: "2024-01-01", max: "2024-02-01T00:00:00+00:00"}\n'
    )
    with pytest.raises(UsageError, match="must both carry a time zone or both not"):
        Suite.from_yaml(text, where="s.yaml")


def test_suite_checks_are_suite_check_and_the_old_name_check_warns() -> None:
    import plinth.validation
    from plinth.validation import SuiteCheck

    suite = Suite.from_yaml(SUITE, where="suite.yaml")
    assert all(isinstance(check, SuiteCheck) for check in suite.checks)
    assert "Check" not in plinth.validation.__all__
    with pytest.deprecated_call(match="plinth.validation.SuiteCheck"):
        old = plinth.validation.Check
    assert old is SuiteCheck


def test_validated_table_keeps_its_old_name_source_with_a_warning() -> None:
    from plinth.validation import sources

    resolved = sources.resolve(pa.table({"id": [1, 2]}))
    assert isinstance(resolved, sources.ValidatedTable)
    assert resolved.table.num_rows == 2
    with pytest.deprecated_call(match="ValidatedTable"):
        old = sources.Source
    assert old is sources.ValidatedTable
