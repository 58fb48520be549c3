"""Notebook steps: the notebook is found under the project root only (no ``..``, absolute path
or symlink out), and parameters reach the kernel as literals of plain JSON values only — no
kernel starts for a refused notebook or parameter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from plinth.context import Context
from plinth.errors import InvalidPathError, UsageError

nbformat = pytest.importorskip("nbformat")

from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

from plinth.pipelines.notebook_step import notebook_step  # noqa: E402
from plinth.pipelines.notebooks import inject_parameters, run_notebook  # noqa: E402


@pytest.fixture
def outside(project: Context, tmp_path: Path) -> Path:
    """A notebook outside the project, and a symlink to it inside."""
    path = tmp_path / "outside.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import os")]), path)
    (project.settings.root / "link.ipynb").symlink_to(path)
    return path


@pytest.mark.parametrize(
    "name",
    ["../outside.ipynb", "%2e%2e/outside.ipynb", "link.ipynb", "sub/../../outside.ipynb"],
)
def test_a_notebook_outside_the_project_is_refused(
    project: Context, outside: Path, name: str
) -> None:
    with pytest.raises(InvalidPathError):
        run_notebook(name, ctx=project)
    with pytest.raises(InvalidPathError):
        _ = notebook_step(name).code_digest
    assert list(project.blobs.iter_blobs()) == []


def test_an_absolute_notebook_path_is_refused(project: Context, outside: Path) -> None:
    with pytest.raises(InvalidPathError, match="absolute"):
        run_notebook(str(outside), ctx=project)


def test_a_file_that_is_not_a_notebook_is_refused(project: Context) -> None:
    (project.settings.root / "script.py").write_text("import os\n")
    with pytest.raises(UsageError, match=r"not a notebook \(\.ipynb\)"):
        run_notebook("script.py", ctx=project)


class _Sneaky(str):
    """A str whose repr is code: exact types only, or this would reach the kernel."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "__import__('os').system('touch pwned')"


@pytest.mark.parametrize("value", [_Sneaky("x"), [_Sneaky("x")], {"k": _Sneaky("x")}])
def test_a_value_that_only_looks_like_json_is_refused(value: object) -> None:
    with pytest.raises(UsageError, match="is not a JSON value"):
        inject_parameters(new_notebook(cells=[new_code_cell("pass")]), {"x": value})


def test_a_string_param_stays_a_string() -> None:
    text = "'; import os; os.system('touch pwned'); '\n\"\"\"\\"
    nb = inject_parameters(new_notebook(cells=[new_code_cell("pass")]), {"x": text})
    [assign] = ast.parse(nb.cells[0].source).body
    assert isinstance(assign, ast.Assign)
    assert ast.literal_eval(assign.value) == text
