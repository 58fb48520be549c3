"""What a suite runs on (files, folders, bad files) and the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from plinth.errors import UsageError
from plinth.validation import Suite, validate

SUITE = Suite.from_yaml(
    "suite: s\nchecks:\n  - {check: allowed_values, column: name, values: [ok]}\n"
)


def test_parquet_csv_and_folder(tmp_path: Path) -> None:
    table = pa.table({"name": ["ok", "ok"]})
    pq.write_table(table, tmp_path / "a.parquet")
    pcsv.write_csv(table, tmp_path / "b.csv")
    (tmp_path / "folder").mkdir()
    pq.write_table(table, tmp_path / "folder" / "1.parquet")
    pq.write_table(table, tmp_path / "folder" / "2.parquet")
    assert validate(str(tmp_path / "a.parquet"), SUITE).success
    assert validate(tmp_path / "b.csv", SUITE).success
    result = validate(tmp_path / "folder", SUITE)
    assert (result.success, result.row_count) == (True, 4)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UsageError) as caught:
        validate(tmp_path / "broken.parquet", SUITE)
    assert caught.value.message.startswith(
        f"cannot read {tmp_path / 'broken.parquet'} as a parquet table"
    )


def test_unsupported_format(tmp_path: Path) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(UsageError) as caught:
        validate(str(tmp_path / "data.xlsx"), SUITE)
    assert caught.value.message == f"unsupported file format .xlsx: {tmp_path / 'data.xlsx'}"
    assert "Parquet" in caught.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no such file or folder: .*nope\.parquet"):
        validate(str(tmp_path / "nope.parquet"), SUITE)


def test_unsupported_object() -> None:
    with pytest.raises(UsageError, match="cannot validate a dict"):
        validate({"name": ["ok"]}, SUITE)


def test_pandas_input() -> None:
    pd = pytest.importorskip("pandas")
    assert not validate(pd.DataFrame({"name": ["ok", "bad"]}), SUITE).success


def test_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    table = pa.table({"name": ["ok", "<script>alert(1)</script>"]})
    result = validate(table, SUITE, report_path=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert html == result.to_html()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<style>" in html
    for external in ("http://", "https://", "src="):
        assert external not in html
    assert result.report_path == str(tmp_path / "r.html")


def test_json_shape() -> None:
    result = validate(pa.table({"name": ["ok", "no"]}), SUITE)
    data = result.to_dict()
    assert data["success"] is False
    (item,) = data["results"]
    assert {k: item[k] for k in ("check", "column", "success", "severity", "sample")} == {
        "check": "allowed_values",
        "column": "name",
        "success": False,
        "severity": "error",
        "sample": ["no"],
    }
    assert item["observed"] == 1
    assert item["expected"] == "one of ok"
    assert item["failing_fraction"] == 0.5
