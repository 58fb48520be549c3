"""``plinth monitor drift``: files and dataset versions, the ranked table, --json, the HTML
report, --fail-on-drift, and exit 2 with a precise message on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import plinth
from plinth.context import Context

from .conftest import make_table

COLUMN_KEYS = [
    "column", "kind", "method", "statistic", "threshold", "p_value", "score", "drifted",
    "null_share", "new_categories",
]  # fmt: skip


@pytest.fixture
def files(project_dir: Path) -> Path:
    pq.write_table(make_table(800, 1), project_dir / "ref.parquet")
    pq.write_table(make_table(800, 2), project_dir / "clean.parquet")
    drifted = make_table(800, 3, "mean").drop_columns(["seen"])
    pcsv.write_csv(drifted, project_dir / "drifted.csv")
    return project_dir


def test_prints_a_ranked_table_and_writes_the_report(files: Path, cli: Callable[..., Any]) -> None:
    r = cli("monitor", "drift", "ref.parquet", "drifted.csv")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == [
        "#", "column", "kind", "method", "statistic", "threshold", "p-value", "score", "drift",
        "missing", "nulls",
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["1", "x", "numeric", "ks"]
    assert lines[1].split()[-3] == "DRIFT"
    assert all(line.split()[-3] == "ok" for line in lines[2:8])
    assert "drifted.csv vs ref.parquet: no dataset drift — 1 of 7 columns drifted (14%" in r.out
    assert (
        "Not tested: id (id-like: 800 distinct values in 800 reference rows); seen (only" in r.out
    )
    assert "Report: drift-report.html" in r.out
    html = (files / "drift-report.html").read_text(encoding="utf-8")
    assert 'id="col-1">x <span' in html


def test_json_shape_is_exact(files: Path, cli: Callable[..., Any]) -> None:
    r = cli("monitor", "drift", "ref.parquet", "drifted.csv", "--json", "--html", "out/r.html")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert list(data) == ["drifted", "share", "columns", "new_categories", "null_shares", "skipped"]
    assert data["drifted"] is False
    assert data["share"] == pytest.approx(1 / 7)
    assert all(list(c) == COLUMN_KEYS for c in data["columns"])
    assert data["columns"][0]["column"] == "x"
    assert data["columns"][0]["drifted"] is True
    assert data["skipped"] == {
        "id": "id-like: 800 distinct values in 800 reference rows",
        "seen": "only in the reference",
    }
    assert (files / "out" / "r.html").is_file()
    assert not (files / "drift-report.html").exists()


def test_fail_on_drift_exits_1_only_on_drift(files: Path, cli: Callable[..., Any]) -> None:
    clean = cli("monitor", "drift", "ref.parquet", "clean.parquet", "--fail-on-drift")
    assert clean.code == 0, clean.err
    assert "no dataset drift — 0 of 7 columns drifted" in clean.out
    args = ("monitor", "drift", "ref.parquet", "drifted.csv", "--share-threshold", "0.1")
    assert cli(*args).code == 0  # drift found, but not asked to fail
    failed = cli(*args, "--fail-on-drift")
    assert failed.code == 1
    assert failed.err.startswith("error: drift detected: 1 of 7 columns drifted (14%, at or")
    as_json = cli(*args, "--fail-on-drift", "--json")
    assert as_json.code == 1
    assert json.loads(as_json.out)["drifted"] is True


def test_columns_methods_and_thresholds(files: Path, cli: Callable[..., Any]) -> None:
    r = cli(
        "monitor", "drift", "ref.parquet", "drifted.csv", "--json",
        "--columns", "x, carrier", "--method", "x=psi", "--method", "carrier=jensenshannon",
        "--threshold", "psi=0.3", "--threshold", "jensenshannon=0.5",
    )  # fmt: skip
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [(c["column"], c["method"], c["threshold"]) for c in data["columns"]] == [
        ("x", "psi", 0.3),
        ("carrier", "jensenshannon", 0.5),
    ]
    assert data["skipped"] == {}


def test_dataset_versions(project: Context, cli: Callable[..., Any]) -> None:
    plinth.datasets.save(make_table(600, 1), "flights", ctx=project)
    plinth.datasets.save(make_table(600, 3, "unseen"), "flights", ctx=project)
    r = cli("monitor", "drift", "flights@1", "flights@2", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [c["column"] for c in data["columns"] if c["drifted"]] == ["route"]
    assert data["columns"][0]["method"] == "chisquare"  # exact rows, not the stored profile
    # recorded: the current side as the monitor, the reference resolved, the HTML as a blob
    (report,) = project.ledger.monitoring.reports(project.project.id, kind="drift")
    assert (report.monitor, report.reference, report.status) == ("flights@2", "flights@1", "ok")
    assert report.rows == 600
    assert report.report_digest is not None
    assert b"<svg" in project.blobs.read_bytes(report.report_digest)
    assert cli("monitor", "drift", "flights@1", "flights", "--no-record").code == 0
    assert len(project.ledger.monitoring.reports(project.project.id, kind="drift")) == 1
    assert cli("monitor", "drift", "flights@1", "flights").code == 0
    latest = project.ledger.monitoring.reports(project.project.id, kind="drift")[0]
    assert latest.monitor == "flights@2"  # "flights" resolved to the latest version
    missing = cli("monitor", "drift", "flights@1", "trains@1")
    assert missing.code == 2
    assert "error: no dataset named 'trains' in this project (datasets: flights)" in missing.err
    no_version = cli("monitor", "drift", "flights@1", "flights@9")
    assert no_version.code == 2
    assert "dataset 'flights' has no version 9 (versions 1 to 2)" in no_version.err


def test_a_saved_profile_is_a_reference(files: Path, cli: Callable[..., Any]) -> None:
    from plinth.profiles import profile_table

    (files / "ref.json").write_bytes(profile_table(make_table(800, 1)).to_bytes())
    r = cli("monitor", "drift", "ref.json", "drifted.csv", "--json")
    assert r.code == 0, r.err
    assert [c["column"] for c in json.loads(r.out)["columns"] if c["drifted"]] == ["x"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.parquet", "clean.parquet"], "no such file: nope.parquet (the reference data)"),
        (["ref.parquet", "data/cur.csv"], "no such file: data/cur.csv (the current data)"),
        (["ref.parquet", "notes.txt"], "unsupported file format .txt: notes.txt"),
        (["ref.parquet", "broken.parquet"], "cannot read broken.parquet as a parquet table"),
        (["ref.parquet", "other.csv"], "the reference and current data have no column in common"),
        (
            ["ref.parquet", "clean.parquet", "--method", "x=ttest"],
            "unknown drift method 'ttest' for column 'x' (use one of ks, wasserstein, psi, ",
        ),
        (
            ["ref.parquet", "clean.parquet", "--method", "ks"],
            "--method 'ks' is not COL=METHOD (write it as COL=METHOD, e.g. --method delay=psi)",
        ),
        (
            ["ref.parquet", "clean.parquet", "--threshold", "psi=high"],
            "--threshold psi=high: 'high' is not a number",
        ),
        (
            ["ref.parquet", "clean.parquet", "--html", "ref.parquet/r.html"],
            "cannot write the HTML report to ref.parquet/r.html: ",
        ),
        (
            ["ref.parquet", "clean.parquet", "--columns", "x,nope"],
            "column 'nope' is not in the reference data",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    files: Path, cli: Callable[..., Any], args: list[str], message: str
) -> None:
    (files / "notes.txt").write_text("hello")
    (files / "broken.parquet").write_bytes(b"PAR1 not really")
    (files / "other.csv").write_text("a,b\n1,2\n")
    r = cli("monitor", "drift", *args)
    assert r.code == 2, r.out
    assert r.err.startswith("error: ")
    assert message in r.err
    as_json = cli("monitor", "drift", *args, "--json")
    assert as_json.code == 2
    assert json.loads(as_json.out)["errors"][0]["message"].rstrip(".") in r.err


def test_help_has_an_example(cli: Callable[..., Any]) -> None:
    r = cli("monitor", "drift", "--help")
    assert r.code == 0
    assert "plinth monitor drift flights@9 flights@12" in r.out
    assert "--fail-on-drift" in r.out
    assert "Watch models and data for drift" in cli("monitor", "--help").out


def test_missing_share_and_new_categories_are_in_the_table_and_json(
    project_dir: Path, cli: Callable[..., Any]
) -> None:
    """Issue 13, problem 7: null shares only in the HTML; a few new-category rows unflagged."""
    import numpy as np
    import pyarrow as pa

    ref, cur = make_table(3000, 1), make_table(3000, 2)
    x = cur["x"].to_numpy().copy()
    x[:300] = np.nan
    route = cur["route"].to_numpy(zero_copy_only=False).copy()
    route[:4] = "brand-new"
    cur = cur.set_column(0, "x", pa.array(x)).set_column(4, "route", pa.array(route))
    pq.write_table(ref, project_dir / "ref.parquet")
    pq.write_table(cur, project_dir / "cur.parquet")
    r = cli("monitor", "drift", "ref.parquet", "cur.parquet")
    assert r.code == 0, r.err
    x_line = next(line for line in r.out.splitlines() if line.split()[1:2] == ["x"])
    assert x_line.split()[-2:] == ["0.0%→10.0%", "CHANGED"]
    assert "New categories in route: brand-new (4 rows)" in r.out
    assert "Missing share changed: x" in r.out
    data = json.loads(cli("monitor", "drift", "ref.parquet", "cur.parquet", "--json").out)
    assert data["null_shares"]["columns"] == {"x": {"reference": 0.0, "current": 0.1}}
    assert data["new_categories"]["columns"] == {"route": {"brand-new": 4}}
    fewer = cli("monitor", "drift", "ref.parquet", "cur.parquet", "--unseen-min-count", "5")
    assert "New categories" not in fewer.out


def test_a_typo_in_columns_names_the_column_and_suggests(
    files: Path, cli: Callable[..., Any]
) -> None:
    """Issue 13, problem 7: did-you-mean for --columns."""
    r = cli("monitor", "drift", "ref.parquet", "clean.parquet", "--columns", "x,carier")
    assert r.code == 2
    assert "column 'carier' is not in the reference data (did you mean 'carrier'?)" in r.err
    assert not (files / "drift-report.html").exists()


def test_model_and_exclude_leave_the_target_out(files: Path, cli: Callable[..., Any]) -> None:
    r = cli(
        "monitor", "drift", "ref.parquet", "drifted.csv", "--json", "--exclude", "x,y"
    )  # fmt: skip
    data = json.loads(r.out)
    assert data["skipped"]["x"] == data["skipped"]["y"] == "excluded (--exclude)"
    assert "x" not in [c["column"] for c in data["columns"]]


def test_the_summary_gives_rows_in_the_order_it_names_the_sides(
    project_dir: Path, cli: Callable[..., Any]
) -> None:
    pq.write_table(make_table(800, 1), project_dir / "big.parquet")
    pq.write_table(make_table(300, 2), project_dir / "small.parquet")
    r = cli("monitor", "drift", "big.parquet", "small.parquet")
    assert r.code == 0, r.err
    # "CURRENT vs REFERENCE: ... CURRENT_ROWS vs REFERENCE_ROWS rows"
    assert "small.parquet vs big.parquet" in r.out
    assert "300 vs 800 rows" in r.out
