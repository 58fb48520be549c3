"""plinth.tables: the one reader and writer of tables, with one set of rules and errors."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from plinth import tables
from plinth.errors import UsageError


def test_a_folder_is_read_with_schemas_promoted_and_hidden_files_skipped(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": pa.nulls(1)}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": [2], "b": ["x"], "c": [0.5]}), tmp_path / "2.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "_delta_log").mkdir()
    (tmp_path / "_delta_log" / "0.json").write_text("{}")
    table = tables.read_path(tmp_path)
    assert table.schema.field("b").type == pa.string()
    assert table.to_pydict() == {"a": [1, 2], "b": [None, "x"], "c": [None, 0.5]}


def test_read_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UsageError) as caught:
        tables.read_path(tmp_path / "broken.parquet", field="labels")
    assert caught.value.message.startswith(
        f"cannot read {tmp_path / 'broken.parquet'} as a parquet table"
    )
    assert caught.value.field == "labels"
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    with pytest.raises(UsageError, match=r"unsupported file format \.xlsx"):
        tables.read_path(tmp_path / "a.xlsx")
    with pytest.raises(UsageError, match="no such file or folder"):
        tables.read_path(tmp_path / "nope")
    with pytest.raises(UsageError, match=r"cannot read broken\.parquet as a parquet table"):
        tables.read_bytes(b"PAR1 not really", "broken.parquet")


def test_a_folder_mixing_formats_or_holding_none_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no table files"):
        tables.read_path(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"a": [1]}), mixed / "1.parquet")
    pcsv.write_csv(pa.table({"a": [2]}), mixed / "2.csv")
    with pytest.raises(UsageError, match="mixes Parquet and CSV files"):
        tables.read_path(mixed)
    clash = tmp_path / "clash"
    clash.mkdir()
    pq.write_table(pa.table({"a": [1]}), clash / "1.parquet")
    pq.write_table(pa.table({"a": ["x"]}), clash / "2.parquet")
    with pytest.raises(UsageError, match="do not share one schema"):
        tables.read_path(clash)


def test_every_in_memory_kind_becomes_arrow_and_back() -> None:
    table = pa.table({"a": [1, 2]})
    assert tables.to_arrow(table) is table
    assert tables.to_arrow(table.to_batches()[0]).equals(table)
    assert tables.to_arrow(pd.DataFrame({"a": [1, 2]}, index=[5, 6])).equals(table)
    assert tables.convert(table, "pandas").equals(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(UsageError, match="cannot save a dict as a dataset"):
        tables.to_arrow({"a": [1]}, refuse="cannot save a {type} as a dataset")
    with pytest.raises(UsageError, match=r"cannot load a dataset as 'numpy'") as caught:
        tables.convert(table, "numpy")
    assert caught.value.hint == "use one of pandas, arrow, polars"


def test_written_parquet_is_deterministic_and_reads_back(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2], "b": ["x", None]})
    first, second = io.BytesIO(), io.BytesIO()
    tables.write_parquet(table, first)
    tables.write_parquet(table, second)
    assert first.getvalue() == second.getvalue()
    tables.write_parquet(table, tmp_path / "t.parquet")
    assert tables.read_path(tmp_path / "t.parquet").equals(table)


def test_an_empty_csv_field_is_a_null_in_string_columns_as_in_parquet(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("brand,size\nacme,1\n,2\nzeta,\n", encoding="utf-8")
    pq.write_table(
        pa.table({"brand": ["acme", None, "zeta"], "size": [1, 2, None]}), tmp_path / "t.parquet"
    )
    from_csv = tables.read_path(tmp_path / "t.csv")
    from_parquet = tables.read_path(tmp_path / "t.parquet")
    assert from_csv.column("brand").null_count == 1  # was 0: read as ""
    assert from_csv.column("brand").to_pylist() == from_parquet.column("brand").to_pylist()
    assert from_csv.column("size").null_count == from_parquet.column("size").null_count == 1
