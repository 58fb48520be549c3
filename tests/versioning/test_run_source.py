"""A tracked run's source: started with the run, completed once git answers (thread or end)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.tracking.runs import active_run
from plinth.versioning.code import SOURCE_DIFF_PATH

from .conftest import git, make_repo


@pytest.fixture
def dirty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    repo = make_repo(tmp_path / "repo", {"train.py": "print(1)\n", ".gitignore": ".plinth/\n"})
    (repo / "train.py").write_text("print(2)\n")  # uncommitted
    monkeypatch.chdir(repo)
    ctx = plinth.init(repo, system_metrics=False)
    yield ctx
    while (run := active_run()) is not None:
        run.end("finished")
    ctx.close()


def _diff_of(ctx: Context, run_id: str) -> bytes:
    (artifact,) = [
        a for a in ctx.ledger.artifacts.list(RecordRef("run", run_id)) if a.path == SOURCE_DIFF_PATH
    ]
    return ctx.blobs.read_bytes(artifact.digest)


def test_a_long_run_has_its_whole_source_while_it_runs(dirty_project: Context) -> None:
    head = git(Path.cwd(), "rev-parse", "HEAD").strip()
    run = plinth.start_run(experiment="src")
    deadline = time.monotonic() + 20
    source = dirty_project.ledger.runs.get_run(run.id).source
    while source.get("git_commit") is None and time.monotonic() < deadline:
        time.sleep(0.02)
        source = dirty_project.ledger.runs.get_run(run.id).source
    assert dirty_project.ledger.runs.get_run(run.id).status == "running"
    assert (source["git_commit"], source["git_dirty"]) == (head, True)
    assert source["cwd_rel"] == "."
    assert b"+print(2)" in _diff_of(dirty_project, run.id)
    run.end()
    assert dirty_project.ledger.runs.get_run(run.id).source == source


def test_a_short_run_gets_its_whole_source_when_it_ends(dirty_project: Context) -> None:
    head = git(Path.cwd(), "rev-parse", "HEAD").strip()
    with plinth.start_run(experiment="src") as run:
        started = dirty_project.ledger.runs.get_run(run.id).source
        assert started["argv"]
        assert started["cwd"] == str(Path.cwd())
    source = dirty_project.ledger.runs.get_run(run.id).source
    assert (source["git_commit"], source["git_branch"], source["git_dirty"]) == (
        head,
        "main",
        True,
    )
    # pytest's own entry point: a script or module; under pytest-xdist a `python -c` worker
    assert source["entry_point"]["kind"] in ("script", "module", "interactive", "command")
    assert b"+print(2)" in _diff_of(dirty_project, run.id)
