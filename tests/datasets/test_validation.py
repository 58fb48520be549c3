"""Suites on dataset versions: ``plinth.datasets.validate`` resolves references (the data's and
an ``in_dataset`` check's) and hands tables to ``plinth.validation``, which never imports the
datasets pillar; the old spellings that gave ``plinth.validation`` a reference still work,
with a DeprecationWarning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.errors import NotFoundError, QuarantinedError
from plinth.validation import Suite, infer_suite, validate

SUITE = """\
suite: trips
checks:
  - {check: in_dataset, column: carrier, dataset: carriers@1, dataset_column: code}
"""


@pytest.fixture
def suite(project: Context, tmp_path: Path) -> Suite:
    codes = tmp_path / "carriers.parquet"
    pq.write_table(pa.table({"code": ["AA", "DL", "UA"]}), codes)
    datasets.add(codes, "carriers")
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return Suite.load(path)


GOOD = pa.table({"carrier": ["AA", "DL", "AA"]})
BAD = pa.table({"carrier": ["AA", "QQ", None]})


def test_in_dataset_check_reads_the_named_dataset_version(project: Context, suite: Suite) -> None:
    assert datasets.validate(GOOD, suite, ctx=project).success
    failed = datasets.validate(BAD, suite, ctx=project).results[0]
    assert (failed.success, failed.failing_count, failed.sample) == (False, 1, ("QQ",))


def test_plinth_validation_takes_the_reference_tables_from_the_caller(suite: Suite) -> None:
    asked: list[str] = []

    def references(ref: str) -> pa.Table:
        asked.append(ref)
        return pa.table({"code": ["AA", "QQ"]})

    result = validate(BAD, suite, references=references)
    assert (result.success, asked) == (True, ["carriers@1"])


def test_data_add_with_a_suite_loads_its_references(project: Context, tmp_path: Path) -> None:
    codes = tmp_path / "carriers.parquet"
    pq.write_table(pa.table({"code": ["AA", "DL"]}), codes)
    datasets.add(codes, "carriers")
    (tmp_path / "suite.yaml").write_text(SUITE)
    pq.write_table(BAD, tmp_path / "trips.parquet")
    added = datasets.add(tmp_path / "trips.parquet", "trips", suite=tmp_path / "suite.yaml")
    assert added.validation is not None
    assert (added.version.status, added.validation.success) == ("quarantined", False)
    with pytest.raises(QuarantinedError):
        datasets.load("trips")


def test_validating_a_dataset_version_records_against_it(project: Context, suite: Suite) -> None:
    pq.write_table(BAD, project.settings.root / "trips.parquet")
    version = datasets.add(project.settings.root / "trips.parquet", "trips").version
    result = datasets.validate("trips", suite, record=True)
    assert (result.success, result.dataset_version, result.target) == (False, "trips@1", "trips@1")
    (record,) = project.ledger.validation.results(dataset_version_id=version.id)
    assert record.id == result.record_id
    quiet = datasets.validate("trips@1", suite)
    assert (quiet.record_id, quiet.report_path) == (None, None)


def test_infer_suite_of_a_dataset_version_uses_its_stored_profile(
    project: Context, tmp_path: Path
) -> None:
    pq.write_table(GOOD, tmp_path / "trips.parquet")
    datasets.add(tmp_path / "trips.parquet", "trips")
    inferred = datasets.infer_suite("trips@1")
    assert inferred.name == "trips"
    assert inferred.header[0].startswith("Inferred by plinth from trips@1 (3 rows)")
    assert datasets.infer_suite(tmp_path / "trips.parquet").name == "trips"


def test_a_dataset_reference_given_to_plinth_validation_still_works_with_a_warning(
    project: Context, suite: Suite, tmp_path: Path
) -> None:
    pq.write_table(BAD, tmp_path / "trips.parquet")
    datasets.add(tmp_path / "trips.parquet", "trips")
    with pytest.deprecated_call(match=r"use plinth\.datasets\.validate\(REF, suite\)"):
        assert validate("trips@1", suite).results[0].failing_count == 1
    with pytest.deprecated_call(match=r"use plinth\.datasets\.validate"):
        recorded = validate("trips@1", suite, record=True)
    assert (recorded.dataset_version, recorded.record_id is not None) == ("trips@1", True)
    with pytest.deprecated_call(match=r"use plinth\.datasets\.infer_suite"):
        assert infer_suite("trips").name == "trips"
    with pytest.deprecated_call(match="run without references="):
        assert not validate(BAD, suite).success


def test_a_missing_reference_dataset_is_named(project: Context, tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    with pytest.raises(NotFoundError, match="no dataset named 'carriers'"):
        datasets.validate(GOOD, Suite.load(tmp_path / "suite.yaml"))


def test_plinth_validation_and_profiles_never_import_the_datasets_pillar(tmp_path: Path) -> None:
    pq.write_table(GOOD, tmp_path / "t.parquet")
    code = (
        "import sys, pyarrow as pa\n"
        "from plinth import profiles, validation\n"
        f"path = {str(tmp_path / 't.parquet')!r}\n"
        "suite = validation.infer_suite(path)\n"
        "assert validation.validate(path, suite).success\n"
        "assert validation.validate(pa.table({'carrier': ['AA']}), suite).success\n"
        "profiles.profile_file(path)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('plinth.datasets', "
        "'plinth.versioning')))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert plinth.datasets.validate is datasets.validate
