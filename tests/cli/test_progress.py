"""Long work shows progress: the pillars report phases whose advances add up to their totals
(:mod:`plinth.progress`), and the CLI draws a Rich bar on stderr only on a terminal, never
with ``--json``. ``TTY_COMPATIBLE=1`` is Rich's switch that makes captured stderr a terminal."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
from plinth.context import Context
from plinth.monitoring import drift
from plinth.profiles import profile_table
from plinth.validation import validate

OLD_NS = 1_600_000_000 * 10**9  # old mtimes: the stat cache trusts them at once
SUITE = """\
suite: trips
checks:
  - {check: unique, column: id}
  - {check: between, column: distance, min: 0, max: 5000}
  - {check: allowed_values, column: carrier, values: [AA, DL]}
  - {check: mean_between, column: distance, min: 0, max: 5000, severity: warning}
"""
#: What Rich writes when it takes the terminal for a live display (hide the cursor).
LIVE = "\x1b[?25l"


def _missing(err: str, *texts: str) -> list[str]:
    """The ``texts`` that stderr lacks."""
    return [text for text in texts if text not in err]


class Recorder:
    """A Progress that keeps every call, and checks the calls come in phases."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str, int, int]] = []
        self.advances = 0
        self._open: list[Any] | None = None

    def start(self, total: int, unit: str, *, label: str = "") -> None:
        assert self._open is None, "a phase started before the last one finished"
        self._open = [label, unit, total, 0]

    def advance(self, n: int = 1) -> None:
        assert self._open is not None, "advance outside a phase"
        assert n >= 0
        self._open[3] += n
        self.advances += 1

    def finish(self) -> None:
        assert self._open is not None, "finish without start"
        label, unit, total, done = self._open
        self.phases.append((label, unit, total, done))
        self._open = None


def _table(rows: int = 300) -> pa.Table:
    return pa.table(
        {
            "id": list(range(rows)),
            "distance": [float(i % 400) for i in range(rows)],
            "carrier": ["AA" if i % 3 else "DL" for i in range(rows)],
        }
    )


def _tree(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        path = root / f"part-{i}.bin"
        path.write_bytes(os.urandom(1000 + i))
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return root


def test_adding_files_reports_each_file_stored_and_none_when_cached(
    project: Context, tmp_path: Path
) -> None:
    folder = _tree(tmp_path / "files", 7)
    first = Recorder()
    plinth.datasets.add(folder, "files", progress=first, ctx=project)
    assert first.phases == [("storing", "files", 7, 7)]

    again = Recorder()
    result = plinth.datasets.add(folder, "files", progress=again, ctx=project)
    assert result.created is False
    assert again.phases == [("storing", "files", 0, 0)]  # the stat cache answered for all


def test_adding_a_table_reports_files_then_columns_then_checks(
    project: Context, tmp_path: Path
) -> None:
    folder = tmp_path / "trips"
    folder.mkdir()
    pq.write_table(_table(), folder / "a.parquet")
    pq.write_table(_table(), folder / "b.parquet")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    seen = Recorder()
    plinth.datasets.add(folder, "trips", kind="table", suite=suite, progress=seen, ctx=project)
    assert seen.phases == [
        ("storing", "files", 2, 2),
        ("profiling", "columns", 3, 3),
        ("validating", "checks", 4, 4),
    ]


def test_profiling_validating_and_drift_report_their_units(tmp_path: Path) -> None:
    table = _table()
    seen = Recorder()
    profile_table(table, progress=seen)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    validate(table, suite, progress=seen)
    drift(table, _table(500), progress=seen)
    assert seen.phases == [
        ("profiling", "columns", 3, 3),
        ("validating", "checks", 4, 4),
        ("comparing", "columns", 3, 3),
    ]
    # one report per column, never per row
    assert seen.advances <= 3 + 4 + 3


def test_batch_scoring_reports_the_rows_of_each_chunk(project: Context, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    from plinth.serving.batch import predict_file

    train = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    with plinth.start_run() as run:
        run.log_model(LogisticRegression().fit(train, [0, 0, 1, 1]), name="clf")
    source = tmp_path / "in.parquet"
    pd.DataFrame({"a": [float(i) for i in range(1000)], "b": [0.5] * 1000}).to_parquet(source)
    seen = Recorder()
    result = predict_file("clf@1", source, tmp_path / "out.parquet", chunk_rows=128, progress=seen)
    assert seen.phases == [("scoring with clf@1", "rows", 1000, 1000)]
    assert seen.advances == result.chunks == 8  # one report per chunk of 128 rows


@pytest.fixture
def files(project: Context, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A folder to add, two tables to compare and a suite; no terminal unless a test says so."""
    folder = _tree(tmp_path / "files", 3)
    pq.write_table(_table(), tmp_path / "ref.parquet")
    pq.write_table(_table(500), tmp_path / "cur.parquet")
    (tmp_path / "suite.yaml").write_text(SUITE)
    return folder, tmp_path / "ref.parquet", tmp_path / "suite.yaml"


@pytest.fixture(autouse=True)
def _no_forced_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


def test_no_bar_when_stderr_is_not_a_terminal(
    cli: Callable[..., Any], files: tuple[Path, Path, Path]
) -> None:
    folder, ref, suite = files
    added = cli("data", "add", str(folder), "--name", "files")
    assert added.code == 0, added.err
    assert added.out.startswith("Added files@1")
    assert added.err == ""
    checked = cli("validate", "run", str(suite), str(ref), "--no-record")
    assert checked.code == 0, checked.err
    assert checked.err == ""
    compared = cli("monitor", "drift", str(ref), str(ref.with_name("cur.parquet")))
    assert compared.code == 0, compared.err
    assert compared.err == ""


def test_no_bar_with_json_even_on_a_terminal(
    cli: Callable[..., Any], files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    folder, ref, suite = files
    added = cli("data", "add", str(folder), "--name", "files", "--json")
    assert added.code == 0, added.err
    assert json.loads(added.out)["files_read"] == 3
    assert added.err == ""
    checked = cli("validate", "run", str(suite), str(ref), "--no-record", "--json")
    assert (checked.code, checked.err) == (0, "")
    compared = cli("monitor", "drift", str(ref), str(ref.with_name("cur.parquet")), "--json")
    assert (compared.code, compared.err) == (0, "")


def test_a_terminal_gets_a_transient_bar_on_stderr(
    cli: Callable[..., Any], files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    folder, ref, suite = files
    added = cli("data", "add", str(folder), "--name", "files")
    assert added.code == 0, added.err
    assert not _missing(added.err, LIVE, "storing", "/3")
    assert added.out.startswith("Added files@1")  # stdout holds only the answer
    checked = cli("validate", "run", str(suite), str(ref), "--no-record")
    assert checked.code == 0, checked.err
    assert not _missing(checked.err, LIVE, "validating")
    compared = cli("monitor", "drift", str(ref), str(ref.with_name("cur.parquet")))
    assert compared.code == 0, compared.err
    assert not _missing(compared.err, LIVE, "comparing")


def test_models_predict_draws_rows_on_a_terminal_only(
    project: Context, tmp_path: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    train = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    with plinth.start_run() as run:
        run.log_model(LogisticRegression().fit(train, [0, 0, 1, 1]), name="clf")
    source = tmp_path / "in.parquet"
    pd.DataFrame({"a": [1.0] * 300, "b": [0.5] * 300}).to_parquet(source)
    args = ("models", "predict", "clf@1", "--input", str(source), "--output", "p.parquet")
    piped = cli(*args, "--chunk-rows", "100")
    assert (piped.code, piped.err) == (0, "")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    drawn = cli(*args, "--chunk-rows", "100")
    assert drawn.code == 0, drawn.err
    assert not _missing(drawn.err, LIVE, "scoring with clf@1", "/300")
    assert drawn.out.startswith("300 predictions of clf@1")
    quiet = cli(*args, "--json")
    assert (quiet.code, quiet.err) == (0, "")
