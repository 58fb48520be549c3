"""``plinth nb diff``: a cell-level diff of two notebooks, or of the notebooks runs recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbdime")

from nbformat.v4 import (  # noqa: E402
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from plinth.versioning.jupyter import NotebookCapture, save_notebook_source  # noqa: E402


def _stream(text: str) -> Any:
    return new_output("stream", name="stdout", text=text)


def _before() -> Any:
    return new_notebook(
        cells=[
            new_markdown_cell("# Delays"),
            new_code_cell("rows = load()\nrate = 0.1\nprint(rate)", outputs=[_stream("0.1\n")]),
            new_code_cell("plot(rows)"),
            new_code_cell("old_cell = 1"),
        ]
    )


def _after() -> Any:
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Delays"),
            new_code_cell("rows = load()\nrate = 0.2\nprint(rate)", outputs=[_stream("0.2\n")]),
            new_code_cell("plot(rows)"),
            new_code_cell("summary = rows.describe()\nprint(summary)", outputs=[_stream("n=3\n")]),
        ]
    )
    nb.cells[1].execution_count = 7  # a rerun changes counts and ids: not a difference
    return nb


def _write(path: Path, nb: Any) -> Path:
    nbformat.write(nb, path)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "a.ipynb", _before()), _write(tmp_path / "b.ipynb", _after())


def test_diff_shows_modified_source_and_outputs_and_added_and_removed_cells(
    pair: tuple[Path, Path], cli: Callable[..., Any]
) -> None:
    a, b = pair
    result = cli("nb", "diff", str(a), str(b))
    assert result.code == 0, result.err
    out = result.out
    assert f"--- {a}" in out
    assert f"+++ {b}" in out
    assert "## cell 1 (code) modified" in out
    assert "    -rate = 0.1" in out
    assert "    +rate = 0.2" in out
    assert "  outputs:" in out
    assert "    -0.1" in out
    assert "    +0.2" in out
    assert "## cell 3 (code) added" in out
    assert "    +summary = rows.describe()" in out
    assert "## cell 3 (code) removed" in out
    assert "    -old_cell = 1" in out
    assert "cell 0" not in out
    assert "cell 2" not in out
    assert "1 modified, 1 added, 1 removed" in out


def test_diff_json_is_the_structured_diff(pair: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    a, b = pair
    result = cli("nb", "diff", str(a), str(b), "--json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["identical"] is False
    assert found["counts"] == {"modified": 1, "added": 1, "removed": 1}
    modified = next(c for c in found["cells"] if c["change"] == "modified")
    assert (modified["a"], modified["b"], modified["cell_type"]) == (1, 1, "code")
    assert "-rate = 0.1" in modified["source_diff"]
    assert "+rate = 0.2" in modified["source_diff"]
    assert "-0.1" in modified["output_diff"]
    assert "+0.2" in modified["output_diff"]
    assert isinstance(found["nbdime"], list)
    assert found["nbdime"][0]["key"] == "cells"


def test_exit_code_says_whether_they_differ(
    pair: tuple[Path, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    a, b = pair
    assert cli("nb", "diff", str(a), str(b), "--exit-code").code == 1
    rerun = _before()
    rerun.cells[1].execution_count = 3  # only counts and cell ids differ
    same = _write(tmp_path / "same.ipynb", rerun)
    result = cli("nb", "diff", str(a), str(same), "--exit-code")
    assert result.code == 0, result.out
    assert "no differences" in result.out


def test_diff_of_two_runs_notebooks(project: Context, cli: Callable[..., Any]) -> None:
    ids = []
    for nb in (_before(), _after()):
        with plinth.start_run() as run:
            pass
        capture = NotebookCapture({"path": None}, nbformat.writes(nb).encode(), None)
        save_notebook_source(project, run.id, capture)
        ids.append(run.id)
    result = cli("nb", "diff", ids[0][:13], ids[1], "--json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["a"] == f"run {ids[0]}:source/notebook.ipynb"
    assert found["counts"] == {"modified": 1, "added": 1, "removed": 1}


def test_a_run_without_a_notebook_is_named(project: Context, cli: Callable[..., Any]) -> None:
    with plinth.start_run() as run:
        pass
    result = cli("nb", "diff", run.id, run.id)
    assert result.code == 2
    assert "neither a notebook file nor a run that recorded a notebook" in result.err


def test_notebook_text_cannot_steer_the_terminal(tmp_path: Path, cli: Callable[..., Any]) -> None:
    a = _write(tmp_path / "a.ipynb", new_notebook(cells=[new_code_cell("x = 1")]))
    b = _write(tmp_path / "b.ipynb", new_notebook(cells=[new_code_cell("x = 1\x1b]0;owned\x07")]))
    result = cli("nb", "diff", str(a), str(b))
    assert result.code == 0, result.err
    assert "\x1b" not in result.out
    assert "\\x1b]0;owned\\x07" in result.out
