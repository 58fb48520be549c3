"""How a validation run reads (issue 13, point 9): suite versions read as suites, the report is
kept with ``--no-record``, the JSON and the table number checks alike, one format for a share."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.validation.report import format_fraction

ROWS = 12_000
SUITE = """suite: items
checks:
  - check: max_null_fraction
    column: x
    value: 0
  - check: between
    column: x
    min: 0
    max: 11990
"""


@pytest.fixture
def files(project_dir: Path, cli: Callable[..., Any]) -> Path:
    assert cli("init").code == 0
    x: list[float | None] = [float(i) for i in range(ROWS)]
    x[5] = None  # one null in 12,000 rows: a share of 8.3e-05
    pq.write_table(pa.table({"x": x}), project_dir / "items.parquet")
    (project_dir / "suite.yaml").write_text(SUITE)
    return project_dir


def test_suite_versions_print_as_suites_not_as_dataset_versions(
    files: Path, cli: Callable[..., Any]
) -> None:
    assert cli("data", "add", "items.parquet", "--name", "items").code == 0
    run = cli("validate", "run", "suite.yaml", "items@1")
    assert run.code == 1
    assert "suite items v1," in run.out
    assert "items@1)" not in run.out  # was "suite items (items@1)"
    shown = cli("data", "show", "items@1")
    assert "suite items v1" in shown.out, shown.out
    # the JSON keeps the machine reference
    doc = json.loads(cli("validate", "run", "suite.yaml", "items@1", "--json").out)
    assert doc["suite_version"] == "items@1"


def test_validate_run_no_record_still_writes_the_html_report(
    files: Path, cli: Callable[..., Any]
) -> None:
    run = cli("validate", "run", "suite.yaml", "items.parquet", "--no-record", "--json")
    doc = json.loads(run.out)
    assert doc["record_id"] is None
    assert doc["report_path"] is not None
    report = Path(doc["report_path"])
    assert report.is_file()
    assert report.parent == files / ".plinth" / "reports"
    assert "Validation of items.parquet" in report.read_text()


def test_json_number_and_table_hash_count_checks_alike(
    files: Path, cli: Callable[..., Any]
) -> None:
    doc = json.loads(cli("validate", "run", "suite.yaml", "items.parquet", "--json").out)
    numbers = [(r["number"], r["index"], r["check"]) for r in doc["results"]]
    assert numbers == [(1, 0, "max_null_fraction"), (2, 1, "between")]
    table = cli("validate", "run", "suite.yaml", "items.parquet").out
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert [(int(r[0]), r[1]) for r in rows[:2]] == [(1, "max_null_fraction"), (2, "between")]


def test_one_failing_share_prints_in_one_format(files: Path, cli: Callable[..., Any]) -> None:
    out = cli("validate", "run", "suite.yaml", "items.parquet", "--report", "r.html").out
    assert "8.3e-05" not in out
    assert out.count("0.0083%") == 2  # observed null share and failing share alike
    assert "0.07%" in out  # 9 of 12,000 above the maximum
    html = (files / "r.html").read_text()
    assert "8.3e-05" not in html
    assert "0.0083%" in html


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (0.0, "0%"),
        (0.5, "50.00%"),
        (0.0003, "0.03%"),
        (1 / 12_000, "0.0083%"),
        (1e-8, "0.0000010%"),
    ],
)
def test_shares_are_percentages_at_every_size(share: float, text: str) -> None:
    assert format_fraction(share) == text
