"""Notebooks as steps: parameters injected, executed with nbclient, the executed notebook and
its HTML stored as artifacts of the step run; a failing cell fails the step naming it; a run
started inside the notebook records the notebook as its source.

Each executed notebook starts a kernel (~1-2 s): two tests execute one, the rest do not.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import CheckFailedError, UsageError

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook  # noqa: E402

from plinth.pipelines import pipeline  # noqa: E402
from plinth.pipelines.notebook_step import notebook_step  # noqa: E402
from plinth.pipelines.notebooks import (  # noqa: E402
    EXECUTED_PATH,
    HTML_PATH,
    inject_parameters,
    run_notebook,
)
from plinth.versioning.jupyter import (  # noqa: E402
    NOTEBOOK_HISTORY_PATH,
    NOTEBOOK_SOURCE_PATH,
    capture_notebook,
)

# The notebook opens a plinth run of its own, in its kernel: that run must record the notebook.
REPORT_CODE = """\
import plinth
from plinth.pipelines.notebooks import output
plinth.init(root, system_metrics=False)
with plinth.start_run(experiment="notebooks") as run:
    run.log_metric("threshold", threshold)
print(f"label={label} threshold={threshold}")
output("run_id", run.id)
output("doubled", threshold * 2)
"""


def _write(path: Path, *cells: Any) -> Path:
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def _report(folder: Path) -> Path:
    return _write(
        folder / "report.ipynb",
        new_markdown_cell("# Report <script>alert(1)</script>"),
        new_code_cell(
            'threshold = 0.1\nlabel = "default"\nroot = "."', metadata={"tags": ["parameters"]}
        ),
        new_code_cell(REPORT_CODE),
    )


def _blob(project: Context, owner: RecordRef, path: str) -> bytes:
    artifact = project.ledger.artifacts.get(owner, path)
    return project.blobs.read_bytes(artifact.digest)


def test_a_notebook_step_with_parameters_runs_in_a_pipeline_and_is_stored(
    project: Context,
) -> None:
    root = project.settings.root.resolve()
    notebook = _report(root)
    report = notebook_step("report.ipynb", params={"label": "from-defaults"})

    @pipeline
    def nightly(threshold: float, root: str) -> None:
        report(threshold=threshold, root=root)

    result = nightly(threshold=0.25, root=str(root))
    assert result.ok, result.error
    value = result.value("report")
    assert value["values"]["doubled"] == 0.5  # the injected value reached the kernel
    assert value["notebook"] == "report.ipynb"

    # The executed notebook and its HTML are artifacts of the step run.
    step_run = result.steps["report"].step_run
    assert step_run is not None
    owner = RecordRef("step_run", step_run.id)
    assert {a.path for a in project.ledger.artifacts.list(owner)} >= {EXECUTED_PATH, HTML_PATH}
    executed = nbformat.reads(_blob(project, owner, EXECUTED_PATH).decode(), as_version=4)
    injected = executed.cells[2]
    assert "injected-parameters" in injected.metadata.tags  # right after the parameters cell
    assert "threshold = 0.25" in injected.source
    assert "label = 'from-defaults'" in injected.source
    stdout = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    assert "label=from-defaults threshold=0.25" in stdout
    page = _blob(project, owner, HTML_PATH).decode()
    assert 'http-equiv="Content-Security-Policy"' in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)" in page
    assert "label=from-defaults threshold=0.25" in page

    # The run the notebook opened records the notebook as its source.
    run = project.ledger.runs.get_run(value["values"]["run_id"])
    source = run.source["notebook"]
    assert source["found_by"] == "JPY_SESSION_NAME"
    assert source["path"] == str(notebook)
    # Not the kernel's command line: plinth reproduce must not rerun ipykernel_launcher.
    assert run.source["entry_point"] == {"kind": "notebook", "path": str(notebook), "args": []}
    run_ref = RecordRef("run", run.id)
    assert _blob(project, run_ref, NOTEBOOK_SOURCE_PATH) == notebook.read_bytes()
    history = _blob(project, run_ref, NOTEBOOK_HISTORY_PATH).decode()
    assert "threshold = 0.25" in history
    assert "plinth.start_run" in history
    # ... and belongs to the step run that executed the kernel: step_run -ran-> run.
    ran = project.ledger.lineage.edges_from(owner)
    assert ("ran", run_ref) in {(e.relation, e.dst) for e in ran}
    assert result.steps["report"].run_id == run.id

    # Same notebook, same parameters: a cache hit, no kernel; an edit changes the code digest.
    again = nightly(threshold=0.25, root=str(root))
    assert again.steps["report"].cache_hit
    before = report.code_digest
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[0].source = "# Report, edited"
    nbformat.write(nb, notebook)
    assert report.code_digest != before


def test_a_failing_cell_fails_naming_the_cell_and_keeps_the_notebook(project: Context) -> None:
    _write(
        project.settings.root / "broken.ipynb",
        new_code_cell("x = 1"),
        new_markdown_cell("next, a mistake"),
        new_code_cell("raise ValueError(f'bad value {x}')"),
        new_code_cell("print('never')"),
    )
    with plinth.start_run() as owner_run:
        pass
    owner = RecordRef("run", owner_run.id)
    with pytest.raises(CheckFailedError) as caught:
        run_notebook("broken.ipynb", owner=owner, ctx=project)
    assert "cell 2 raised ValueError: bad value 1" in str(caught.value)
    assert caught.value.field == "cells[2]"
    failed = f"failed/1/{EXECUTED_PATH}"
    executed = nbformat.reads(_blob(project, owner, failed).decode(), as_version=4)
    assert executed.cells[2].outputs[0]["ename"] == "ValueError"
    assert executed.cells[3].outputs == []  # stopped at the failing cell


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (object(), "object is not one of"),
        (float("nan"), "is not finite"),
        ({1: "a"}, "dict key 1 is not a string"),
        ((1, 2), "tuple is not one of"),
        ([1, {"deep": Path("x")}], "PosixPath is not one of"),
    ],
)
def test_a_param_that_is_not_json_is_refused_before_any_kernel_starts(
    project: Context, value: Any, problem: str
) -> None:
    _write(project.settings.root / "n.ipynb", new_code_cell("print(x)"))
    with pytest.raises(UsageError) as caught:
        run_notebook("n.ipynb", {"x": value}, ctx=project)
    assert problem in str(caught.value)
    assert caught.value.field == "x"
    assert list(project.blobs.iter_blobs()) == []  # nothing ran, nothing stored


def test_parameters_are_injected_after_the_parameters_cell_as_literals() -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("import math"),
            new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
            new_code_cell("print(n)"),
        ]
    )
    params = {"n": 3, "name": "a'\nimport os", "flags": [True, None, 1.5], "cfg": {"k": "v"}}
    once = inject_parameters(nb, params)
    assert [c.source for c in once.cells][:2] == ["import math", "n = 1"]
    tree = ast.parse(once.cells[2].source)
    assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}  # type: ignore[attr-defined]
    assert assigned == params  # literals only: the quote and newline stay inside the string
    # Injecting again replaces the injected cell; the original notebook is untouched.
    twice = inject_parameters(once, {"n": 4})
    assert len(twice.cells) == 4
    assert "n = 4" in twice.cells[2].source
    assert len(nb.cells) == 3
    # Without a parameters cell, the injected cell comes first.
    top = inject_parameters(new_notebook(cells=[new_code_cell("print(n)")]), {"n": 1})
    assert top.cells[0].source.endswith("n = 1")


def test_a_param_name_that_is_not_an_identifier_is_refused() -> None:
    nb = new_notebook(cells=[new_code_cell("pass")])
    for name in ("import os; x", "class", "1x"):
        with pytest.raises(UsageError, match="not a Python identifier"):
            inject_parameters(nb, {name: 1})


def test_capture_finds_the_vscode_notebook_and_the_executed_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("IPython")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("MY_API_TOKEN", "s3cr3t-value-123")
    notebook = _write(tmp_path / "explore.ipynb", new_code_cell("key = 's3cr3t-value-123'"))
    namespace = {
        "__vsc_ipynb_file__": str(notebook),
        "In": ["", "x = 1", "  ", "import plinth\nplinth.start_run()"],
    }
    found = capture_notebook(namespace)
    assert found is not None
    assert found.info["found_by"] == "__vsc_ipynb_file__"
    assert found.info["path"] == str(notebook)
    assert found.info["cells"] == 2
    assert found.notebook is not None
    assert b"s3cr3t-value-123" not in found.notebook
    assert found.history == "# In[1]\nx = 1\n\n# In[3]\nimport plinth\nplinth.start_run()\n\n"

    # No notebook file to be found: the executed cells are the source.
    history_only = capture_notebook({"In": ["", "y = 2"]})
    assert history_only is not None
    assert history_only.notebook is None
    assert history_only.info["path"] is None
    assert history_only.history == "# In[1]\ny = 2\n\n"
    json.dumps(history_only.info)  # stored as part of the run's source


def test_outside_ipython_nothing_is_captured(project: Context) -> None:
    with plinth.start_run() as run:
        pass
    source = project.ledger.runs.get_run(run.id).source
    assert "notebook" not in source
    paths = {a.path for a in project.ledger.artifacts.list(RecordRef("run", run.id))}
    assert NOTEBOOK_SOURCE_PATH not in paths
