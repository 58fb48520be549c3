"""Tables as datasets: Parquet and CSV metadata, diffs of rows and columns, load and save,
and the lineage a run records when it loads or saves one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
from plinth import datasets
from plinth.cli.main import main
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import MissingExtraError, UsageError


def test_parquet_rows_and_schema_come_from_its_metadata(project: Context, tmp_path: Path) -> None:
    path = tmp_path / "flights.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "dest": ["BOS", "LAX", "SFO"]}), path)
    v1 = datasets.add(path, "flights").version
    assert (v1.kind, v1.row_count) == ("table", 3)
    assert v1.schema == [{"name": "id", "type": "int64"}, {"name": "dest", "type": "string"}]
    pq.write_table(pa.table({"id": [1.0, 2.0, 3.0, 4.0], "delay": [1, 2, 3, 4]}), path)
    datasets.add(path, "flights", "ids became floats")
    d = datasets.diff("flights@1", "flights@2")
    assert d.rows == (3, 4)
    assert d.columns_added == [{"name": "delay", "type": "int64"}]
    assert d.columns_removed == [{"name": "dest", "type": "string"}]
    assert d.columns_changed == [{"name": "id", "old_type": "int64", "new_type": "double"}]
    assert [c.path for c in d.changes.changed] == ["flights.parquet"]


def test_csv_tables_and_a_folder_of_parquet_parts(project: Context, tmp_path: Path) -> None:
    csv = tmp_path / "small.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    v = datasets.add(csv, "small").version
    assert (v.kind, v.row_count) == ("table", 2)
    assert [c["name"] for c in v.schema or []] == ["a", "b"]
    assert datasets.load("small", to="arrow").num_rows == 2

    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"x": list(range(i + 1))}), parts / f"part-{i}.parquet")
    v = datasets.add(parts, "parted", kind="table").version
    assert (v.kind, v.row_count, v.file_count) == ("table", 6, 3)
    assert sorted(datasets.load("parted", to="pandas")["x"].tolist()) == [0, 0, 0, 1, 1, 2]


def test_a_broken_table_file_is_a_clear_error(project: Context, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(UsageError, match=r"cannot read broken\.parquet as a parquet table"):
        datasets.add(path, "broken")


def test_save_and_load_round_trip_and_dedupe(project: Context) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [0.5, 1.5, None]})
    first = datasets.save(df, "scores", message="initial")
    assert (first.created, first.version.row_count) == (True, 3)
    assert list(datasets.manifest("scores").files) == ["scores.parquet"]
    again = datasets.save(df, "scores")
    assert (again.created, again.version.number) == (False, 1)
    loaded = datasets.load("scores")
    pd.testing.assert_frame_equal(loaded, df)
    table = datasets.load("scores@1", to="arrow")
    assert isinstance(table, pa.Table)
    assert plinth.datasets.load("scores", version=1, to="arrow").equals(table)


def test_polars_is_optional(project: Context) -> None:
    datasets.save(pa.table({"x": [1]}), "t")
    if importlib.util.find_spec("polars") is None:
        with pytest.raises(MissingExtraError, match="needs the optional 'polars' extra"):
            datasets.load("t", to="polars")
    else:  # pragma: no cover - polars is not a dev dependency
        assert datasets.load("t", to="polars").shape == (1, 1)
    with pytest.raises(UsageError, match="cannot load a dataset as 'numpy'"):
        datasets.load("t", to="numpy")
    with pytest.raises(UsageError, match="cannot save a list"):
        datasets.save([1, 2], "t")


def test_runs_record_the_versions_they_load_and_save(
    project: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    datasets.save(pd.DataFrame({"x": [1, 2]}), "raw")
    with plinth.start_run(experiment="e", system_metrics=False) as run:
        df = plinth.datasets.load("raw")
        out = plinth.datasets.save(df.assign(y=df.x * 2), "features")
    raw = datasets.get("raw@1")
    features = out.version
    edges = {
        (e.relation, e.dst) for e in project.ledger.lineage.edges_from(RecordRef("run", run.id))
    }
    assert ("used", RecordRef("dataset_version", raw.id)) in edges
    assert ("produced", RecordRef("dataset_version", features.id)) in edges
    # The model's upstream reaches the raw data through the run.
    upstream = project.ledger.lineage.upstream(RecordRef("dataset_version", features.id))
    assert RecordRef("dataset_version", raw.id) in {e.dst for e in upstream}

    capsys.readouterr()
    assert main(["runs", "show", run.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {(d["relation"], d["ref"]) for d in shown["datasets"]} == {
        ("used", "raw@1"),
        ("produced", "features@1"),
    }
    assert main(["runs", "show", run.id]) == 0
    text = capsys.readouterr().out
    assert "raw@1" in text
    assert "features@1" in text
    assert main(["data", "show", "raw@1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["used_by"]] == [run.id]
    assert data["produced_by"] == []
    assert main(["data", "show", "features"]) == 0
    assert run.id in capsys.readouterr().out


def test_outside_a_run_nothing_is_linked(project: Context) -> None:
    datasets.save(pd.DataFrame({"x": [1]}), "raw")
    datasets.load("raw")
    version = datasets.get("raw")
    assert project.ledger.lineage.edges_to(RecordRef("dataset_version", version.id)) == []


def test_runs_show_survives_an_edge_to_an_unknown_version(
    project: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    with plinth.start_run(experiment="e", system_metrics=False) as run:
        pass
    project.ledger.lineage.add(
        RecordRef("run", run.id), RecordRef("dataset_version", "elsewhere"), "used"
    )
    capsys.readouterr()
    assert main(["runs", "show", run.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["datasets"] == [{"relation": "used", "ref": None, "id": "elsewhere"}]
    assert main(["runs", "show", run.id]) == 0
    assert "dataset_version:elsewhere" in capsys.readouterr().out
