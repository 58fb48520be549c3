"""`plinth validate infer|run`: output, --json, exit codes, the ledger record and lineage."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.entities import RecordRef
from plinth.validation import Suite, validate

from .conftest import make_table


@pytest.fixture
def files(project_dir: Path, cli: Callable[..., Any]) -> Path:
    assert cli("init").code == 0
    pq.write_table(make_table(1), project_dir / "train.parquet")
    pq.write_table(make_table(2), project_dir / "clean.parquet")
    bad = make_table(3)
    carriers = bad["carrier"].to_pylist()
    carriers[:3] = ["<b>ZZ</b>"] * 3
    pq.write_table(bad.set_column(4, "carrier", pa.array(carriers)), project_dir / "bad.parquet")
    return project_dir


def test_infer_writes_an_editable_suite(files: Path, cli: Callable[..., Any]) -> None:
    r = cli("validate", "infer", "train.parquet", "-o", "suite.yaml")
    assert r.code == 0, r.err
    assert r.out.startswith("Wrote suite.yaml: suite 'train' with ")
    text = (files / "suite.yaml").read_text()
    assert text.startswith("# Inferred by plinth from train.parquet (4,000 rows)")
    assert Suite.load(files / "suite.yaml").name == "train"
    again = cli("validate", "infer", "train.parquet", "-o", "suite.yaml")
    assert again.code == 2
    assert "suite.yaml already exists (pass --force to overwrite it)" in again.err
    assert cli("validate", "infer", "train.parquet").out.startswith("# Inferred by plinth")


def test_run_clean_and_faulty(files: Path, cli: Callable[..., Any]) -> None:
    assert cli("validate", "infer", "train.parquet", "-o", "suite.yaml").code == 0
    ok = cli("validate", "run", "suite.yaml", "clean.parquet")
    assert ok.code == 0, ok.out + ok.err
    assert "clean.parquet: passed" in ok.out
    assert "Report: " in ok.out
    failed = cli("validate", "run", "suite.yaml", "bad.parquet", "--report", "r.html")
    assert failed.code == 1
    assert "FAIL" in failed.out
    assert "<b>ZZ</b>" in failed.out
    assert "error: 1 of " in failed.err
    assert "&lt;b&gt;ZZ&lt;/b&gt;" in (files / "r.html").read_text()


def test_run_json(files: Path, cli: Callable[..., Any]) -> None:
    assert cli("validate", "infer", "train.parquet", "-o", "suite.yaml").code == 0
    r = cli("validate", "run", "suite.yaml", "bad.parquet", "--json")
    assert r.code == 1
    data = json.loads(r.out)
    assert data["success"] is False
    failed = [x for x in data["results"] if not x["success"]]
    assert [(x["check"], x["column"], x["observed"], x["sample"]) for x in failed] == [
        ("allowed_values", "carrier", 3, ["<b>ZZ</b>"])
    ]
    assert set(failed[0]) >= {"check", "column", "success", "observed", "expected", "severity"}
    assert Path(data["report_path"]).is_file()


def test_usage_errors_exit_2(files: Path, cli: Callable[..., Any]) -> None:
    (files / "typo.yaml").write_text(
        "suite: s\nchecks:\n  - {check: between, column: distnce, min: 0}\n"
    )
    r = cli("validate", "run", "typo.yaml", "clean.parquet")
    assert r.code == 2
    assert r.err.startswith(
        "error: typo.yaml, check 1 (between, line 3): unknown column 'distnce' — did you mean "
        "'distance'?"
    )
    r = cli("validate", "run", "typo.yaml", "clean.parquet", "--json")
    assert json.loads(r.out)["errors"][0]["field"] == "checks[0].column"
    (files / "data.xlsx").write_bytes(b"PK")
    r = cli("validate", "run", "typo.yaml", "data.xlsx")
    assert (r.code, r.err.splitlines()[0][:40]) == (2, "error: unsupported file format .xlsx: da")
    assert cli("validate", "run", "missing.yaml", "clean.parquet").code == 2


def test_dataset_version_result_is_recorded_with_lineage(
    files: Path, cli: Callable[..., Any]
) -> None:
    assert cli("data", "add", "bad.parquet", "--name", "flights").code == 0
    assert cli("validate", "infer", "train.parquet", "-o", "suite.yaml").code == 0
    r = cli("validate", "run", "suite.yaml", "flights@1", "--json")
    assert r.code == 1
    data = json.loads(r.out)
    assert (data["dataset_version"], data["suite_version"]) == ("flights@1", "train@1")
    with Context.open(files) as ctx:
        from plinth import datasets

        version = datasets.get("flights@1", ctx=ctx)
        (record,) = ctx.ledger.validation.results(dataset_version_id=version.id)
        assert record.id == data["record_id"]
        assert (record.success, record.error_count, record.target) == (False, 1, "flights@1")
        assert record.results == data["results"]
        suite = ctx.ledger.validation.get_suite_by_id(record.suite_id)
        assert ctx.blobs.read_bytes(suite.digest) == (files / "suite.yaml").read_bytes()
        assert record.report_digest is not None
        assert b"flights@1" in ctx.blobs.read_bytes(record.report_digest)
        edges = ctx.ledger.lineage.edges_to(RecordRef("dataset_version", version.id))
        assert [(e.src, e.relation) for e in edges if e.relation == "validated"] == [
            (RecordRef("validation_result", record.id), "validated")
        ]
        # The same suite text is the same suite version.
        again = datasets.validate("flights", files / "suite.yaml", record=True, ctx=ctx)
        assert again.suite_version == "train@1"
        assert len(ctx.ledger.validation.results(suite_id=suite.id)) == 2
        # The old spelling, a dataset reference given to plinth.validation, still records.
        with pytest.deprecated_call(match=r"use plinth\.datasets\.validate"):
            old = validate("flights", files / "suite.yaml", record=True, ctx=ctx)
        assert (old.suite_version, old.dataset_version) == ("train@1", "flights@1")
        assert len(ctx.ledger.validation.results(suite_id=suite.id)) == 3
