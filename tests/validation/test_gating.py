"""``data add --suite``: a table is validated before its version is published; a failing
version is stored but quarantined, with its report, and ``datasets.load`` refuses it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from plinth import datasets
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import QuarantinedError, UsageError
from plinth.validation import Suite

from .conftest import make_table

SUITE = """\
suite: trips
checks:
  - {check: unique, column: id}
  - {check: max_null_fraction, column: distance, value: 0.0}
  - {check: between, column: distance, min: 100, max: 2000}
  - {check: allowed_values, column: carrier, values: [AA, B6, DL, UA, WN]}
  - {check: mean_between, column: delay, min: 9, max: 11, severity: warning}
"""


@pytest.fixture(autouse=True)
def suite_file(project_dir: Path) -> Path:
    path = project_dir / "suite.yaml"
    path.write_text(SUITE)
    return path


def write(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def faulty(seed: int) -> pa.Table:
    """Out-of-range distances in the first 10 rows."""
    table = make_table(seed)
    distance = pc.if_else(
        pa.array([i < 10 for i in range(table.num_rows)]),
        pa.scalar(9_999.0),
        table["distance"],
    )
    return table.set_column(table.schema.get_field_index("distance"), "distance", distance)


def test_a_clean_table_is_published_with_its_recorded_validation(project: Context) -> None:
    path = write(make_table(1), project.settings.root / "data" / "trips.parquet")
    added = datasets.add(path, "trips", "clean", suite="suite.yaml", ctx=project)
    v = added.version
    assert (v.status, added.created) == ("published", True)
    assert added.validation is not None
    assert added.validation.success
    assert added.validation.dataset_version == v.ref
    assert v.profile_digest is not None, "profiled before it was recorded"
    (record,) = project.ledger.validation.results(dataset_version_id=v.id)
    assert (record.success, record.suite, record.error_count) == (True, "trips", 0)
    assert record.report_digest is not None
    assert Path(str(added.validation.report_path)).is_file()
    edges = project.ledger.lineage.edges_to(RecordRef("dataset_version", v.id))
    assert [(e.src.type, e.relation) for e in edges] == [("validation_result", "validated")]
    assert datasets.load("trips", to="arrow", ctx=project).num_rows == 4000


def test_a_failing_table_is_stored_but_quarantined(project: Context) -> None:
    root = project.settings.root
    datasets.add(write(make_table(1), root / "a.parquet"), "trips", suite="suite.yaml")
    path = write(faulty(2), root / "b.parquet")
    added = datasets.add(path, "trips", "bad distances", suite="suite.yaml")
    v = added.version
    assert (v.ref, v.status, v.row_count) == ("trips@2", "quarantined", 4000)
    assert added.validation is not None
    (failure,) = added.validation.errors
    assert (failure.check, failure.column, failure.failing_count) == ("between", "distance", 10)
    assert list(failure.sample) == [9999.0]
    (record,) = project.ledger.validation.results(dataset_version_id=v.id)
    assert (record.success, record.error_count) == (False, 1)

    for ref in ("trips", "trips@2", "trips@latest"):
        with pytest.raises(QuarantinedError, match="trips@2 is quarantined") as caught:
            datasets.load(ref, to="arrow")
        assert caught.value.exit_code == 1
    assert datasets.load("trips@2", to="arrow", allow_quarantined=True).num_rows == 4000
    assert datasets.load("trips@1", to="arrow").num_rows == 4000
    # The files are stored: the same content again is the same (quarantined) version.
    again = datasets.add(path, "trips", suite="suite.yaml")
    assert (again.created, again.version.ref, again.validation) == (False, "trips@2", None)


def test_warnings_do_not_quarantine(project: Context) -> None:
    table = make_table(1)
    shifted = pc.add(table["delay"], 5.0)
    table = table.set_column(table.schema.get_field_index("delay"), "delay", shifted)
    added = datasets.add(
        write(table, project.settings.root / "t.parquet"), "trips", suite="suite.yaml"
    )
    assert added.version.status == "published"
    assert added.validation is not None
    assert [(r.check, r.severity) for r in added.validation.failures] == [
        ("mean_between", "warning")
    ]


@pytest.mark.parametrize(
    ("suite_text", "message"),
    [
        (SUITE.replace("column: carrier", "column: carier"), "unknown column 'carier'"),
        (SUITE.replace("check: unique", "check: unik"), "unknown check 'unik'"),
        ("suite: trips\nchecks: [\n", "malformed YAML"),
    ],
)
def test_a_bad_suite_stores_no_version(project: Context, suite_text: str, message: str) -> None:
    (project.settings.root / "bad.yaml").write_text(suite_text)
    path = write(make_table(1), project.settings.root / "t.parquet")
    with pytest.raises(UsageError, match=message):
        datasets.add(path, "trips", suite="bad.yaml")
    assert [d.name for d, _ in datasets.list_datasets()] == []
    assert project.ledger.validation.results() == []


def test_a_suite_needs_a_table(project: Context) -> None:
    folder = project.settings.root / "blobs"
    folder.mkdir()
    (folder / "x.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(UsageError, match="--suite validates tables"):
        datasets.add(folder, "blobs", suite=Suite.load("suite.yaml"))
    assert [d.name for d, _ in datasets.list_datasets()] == []


def _cli_story(cli: Callable[..., Any], root: Path) -> None:
    write(make_table(1), root / "good.parquet")
    write(faulty(2), root / "bad.parquet")
    r = cli("data", "add", "good.parquet", "--name", "trips", "--suite", "suite.yaml")
    assert r.code == 0, r.err
    assert "5 of 5 checks passed" in r.out
    r = cli("data", "add", "bad.parquet", "--name", "trips", "--suite", "suite.yaml", "--json")
    assert r.code == 1
    out = json.loads(r.out)
    assert out["version"]["status"] == "quarantined"
    assert out["validation"]["success"] is False
    assert [x["check"] for x in out["validation"]["results"] if not x["success"]] == ["between"]
    r = cli("data", "show", "trips@2", "--json")
    (shown,) = json.loads(r.out)["validations"]
    assert (shown["success"], shown["failed"]) == (False, ["between distance"])
    r = cli("data", "log", "trips")
    assert "trips@2 [QUARANTINED]" in r.out
    # A quarantined version can still be inspected: validated again, scanned, profiled.
    r = cli("validate", "run", "suite.yaml", "trips@2", "--json")
    assert (r.code, json.loads(r.out)["success"]) == (1, False)
    r = cli("data", "scan", "trips@2", "--json")
    assert r.code == 0, r.err
    assert cli("data", "profile", "trips@2").code == 0
    r = cli("data", "profile", "trips@1", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["version"]["row_count"] == 4000
    r = cli("validate", "run", "suite.yaml", "trips@1", "--json")
    assert (r.code, json.loads(r.out)["success"]) == (0, True)
    r = cli(
        "data",
        "forget",
        "trips",
        "--where",
        "id IN (1000003, 2000003)",
        "-m",
        "erasure request",
        "--json",
    )
    assert r.code == 0, r.err
    r = cli("data", "log", "trips", "--json")
    # The rows left of a quarantined version are still quarantined.
    assert [v["status"] for v in json.loads(r.out)["versions"]] == [
        "quarantined",
        "erased",
        "erased",
    ]
    r = cli("data", "add", "good.parquet", "--name", "trips", "--suite", "missing.yaml")
    assert r.code == 2
    assert "no suite file missing.yaml" in r.err


def test_data_add_suite_on_the_cli(project: Context, cli: Callable[..., Any]) -> None:
    _cli_story(cli, project.settings.root)


@pytest.mark.postgres
@pytest.mark.s3
def test_data_add_suite_on_postgres_and_s3(
    project_dir: Path,
    cli: Callable[..., Any],
    pg_schema: str,
    moto_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata = f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    monkeypatch.setenv("PLINTH_S3_ENDPOINT_URL", moto_endpoint)
    r = cli("init", "--metadata", metadata, "--artifacts", f"s3://{s3_bucket}/team")
    assert r.code == 0, r.err
    (project_dir / "suite.yaml").write_text(SUITE)
    _cli_story(cli, project_dir)
    assert not (project_dir / ".plinth" / "plinth.db").exists()
