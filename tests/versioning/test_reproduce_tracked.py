"""`plinth reproduce` of runs made with the public tracking API (plinth.start_run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from plinth.cli.main import main
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.versioning import reproduce_run

from .conftest import git, make_repo

TRAIN = """
import sys

import plinth

SCALE = 1.0

params = dict(arg.split("=", 1) for arg in sys.argv[1:])
lr, steps = float(params.get("lr", "0.1")), int(params.get("steps", "10"))
for name in params.get("models", "base").split(","):
    with plinth.start_run(
        experiment="tracked", name=name, params={"lr": lr, "steps": steps}
    ) as run:
        w = 0.0
        for step in range(steps):
            w -= lr * (w - 2.0 * len(name)) * SCALE
            run.log_metric("w", w, step=step)
        run.log_metric("loss", (w - 2.0) ** 2, step=steps)
        print("RUN", name, run.id, flush=True)
"""


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    repo = make_repo(tmp_path / "tracked", {"train.py": TRAIN})
    monkeypatch.chdir(repo)
    assert main(["init"]) == 0
    git(repo, "add", "plinth.yaml")
    git(repo, "commit", "-q", "-m", "plinth project")
    capsys.readouterr()
    return repo


def test_reproduce_a_tracked_run(
    project: Path, run_script: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    runs = run_script(project, "train.py", "lr=0.2", "steps=5", "models=a,bb")
    old = runs["bb"]
    capsys.readouterr()
    assert main(["reproduce", "--yes", old]) == 0, capsys.readouterr()
    with Context.open() as ctx:
        edges = ctx.ledger.lineage.edges_to(RecordRef("run", old))
        new_ids = [e.src.id for e in edges if e.relation == "reproduces"]
        assert len(new_ids) == 2  # both runs of the process link to the run reproduced
        assert ctx.ledger.runs.get_tags(new_ids[1])["plinth.reproduces"] == old


def test_uncommitted_change_after_the_run(
    project: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    old = run_script(project, "train.py", "steps=5")["base"]
    (project / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.5"))
    with Context.open() as ctx:
        result = reproduce_run(old, yes=True, ctx=ctx)
    assert result.matches, result


def test_run_made_with_an_uncommitted_change(
    project: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    (project / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.5"))
    old = run_script(project, "train.py", "steps=5")["base"]
    git(project, "checkout", "--", "train.py")
    with Context.open() as ctx:
        result = reproduce_run(old, yes=True, ctx=ctx)
    assert result.matches, result


def test_code_that_now_computes_something_else_fails(
    project: Path, run_script: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    old = run_script(project, "train.py", "steps=5")["base"]
    (project / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.5"))
    git(project, "commit", "-q", "-am", "change the update")
    # Pretend the run was made on the new commit: its code now gives another result.
    head = git(project, "rev-parse", "HEAD").strip()
    with Context.open() as ctx:
        source = ctx.ledger.runs.get_run(old).source
        exp = ctx.ledger.runs.get_run(old).experiment_id
        fake = ctx.ledger.runs.create_run(exp, name="base", source={**source, "git_commit": head})
        ctx.ledger.runs.log_params(fake.id, ctx.ledger.runs.get_params(old))
        from plinth.entities import MetricPoint
        from plinth.ids import now_ms

        final = ctx.ledger.runs.latest_metrics(old)
        ctx.ledger.runs.log_metrics(
            fake.id, [MetricPoint(k, v, 99, now_ms(), i) for i, (k, v) in enumerate(final.items())]
        )
        ctx.ledger.runs.set_status(fake.id, "finished")
    capsys.readouterr()
    assert main(["reproduce", "--yes", fake.id]) == 1
    out = capsys.readouterr().out
    assert "metric  loss" in out
