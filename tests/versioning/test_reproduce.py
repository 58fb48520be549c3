"""reproduce_run and `plinth reproduce` end to end, with a child that writes runs through the
ledger API (what plinth.start_run does, without depending on the tracking pillar)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from plinth.cli.main import main
from plinth.context import Context
from plinth.entities import MetricPoint, RecordRef
from plinth.errors import UsageError
from plinth.ids import now_ms
from plinth.versioning import (
    EnvironmentCapture,
    capture_environment,
    capture_source,
    reproduce_run,
    save_environment,
    save_source,
)
from plinth.versioning.comparison import close_enough, compare_metrics

from .conftest import git, make_repo, write

TRACK = '''
"""A minimal tracker: records a run the way plinth.start_run does."""
import os
from plinth.context import Context
from plinth.entities import MetricPoint, RecordRef
from plinth.ids import now_ms
from plinth.versioning import capture_source, reproduce_of, save_environment, save_source


def record(name, params, metrics):
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        capture = capture_source()
        env = save_environment(ctx=ctx)
        runs = ctx.ledger.runs
        run = runs.create_run(exp.id, name=name, source=capture.info, environment_id=env.id)
        save_source(run.id, capture, ctx=ctx)
        old = reproduce_of()
        if old:
            ctx.ledger.lineage.add(RecordRef("run", run.id), RecordRef("run", old), "reproduces")
            runs.set_tags(run.id, {"plinth.reproduces": old})
        runs.log_params(run.id, params)
        items = enumerate(metrics.items())
        points = [MetricPoint(k, float(v), 1, now_ms(), i) for i, (k, v) in items]
        runs.log_metrics(run.id, points)
        runs.set_status(run.id, "finished")
        print("RUN", name, run.id, flush=True)
'''

TRAIN = """
import argparse
import os
import pathlib

from track import record

SCALE = 1.0

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--data", default=None)
parser.add_argument("--models", default="base")
args = parser.parse_args()
target = float(pathlib.Path(args.data).read_text()) if args.data else 3.0
for name in args.models.split(","):
    w = 0.0
    for _ in range(args.steps):
        w -= args.lr * (w - target * len(name)) * SCALE
    loss = (w - target) ** 2 / 7.0
    record(
        name,
        {"lr": args.lr, "steps": args.steps, "model": name},
        {"loss": loss, "w": w, "system/pid": os.getpid()},
    )
"""


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A git repository that is also a plinth project, with train.py committed."""
    repo = make_repo(tmp_path / "proj", {"train.py": TRAIN, "track.py": TRACK})
    monkeypatch.chdir(repo)
    assert main(["init"]) == 0
    git(repo, "add", "plinth.yaml")
    git(repo, "commit", "-q", "-m", "plinth project")
    capsys.readouterr()
    return repo


def _reproduce_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["reproduce", "--yes", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _reproduces(ctx: Context, old: str) -> list[str]:
    edges = ctx.ledger.lineage.edges_to(RecordRef("run", old))
    return [e.src.id for e in edges if e.relation == "reproduces"]


def test_clean_run_reproduces_and_links(
    project: Path, run_script: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    old = run_script(project, "train.py", "--lr", "0.3")["base"]
    code, out, err = _reproduce_cli(old, capsys=capsys)
    assert code == 0, out + err
    assert "Environment: same packages as recorded" in out
    assert "Params and 2 final metric(s) match." in out  # loss and w; system/pid ignored
    with Context.open() as ctx:
        (new,) = _reproduces(ctx, old)
        assert new != old
        assert ctx.ledger.runs.get_tags(new)["plinth.reproduces"] == old
        assert ctx.ledger.runs.get_params(new) == ctx.ledger.runs.get_params(old)
        source = ctx.ledger.runs.get_run(new).source
        assert source["git_commit"] == ctx.ledger.runs.get_run(old).source["git_commit"]
    # The worktree is gone and git no longer lists it.
    assert len(git(project, "worktree", "list").splitlines()) == 1


def test_uncommitted_edit_after_the_run_does_not_matter(
    project: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    old = run_script(project, "train.py")["base"]
    (project / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.25"))
    with Context.open() as ctx:
        result = reproduce_run(old, yes=True, ctx=ctx)
    assert result.matches, result
    assert result.metric_diffs == []


def test_run_with_uncommitted_change_reproduces_with_its_diff(
    project: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    (project / "train.py").write_text(TRAIN.replace("SCALE = 1.0", "SCALE = 0.25"))
    old = run_script(project, "train.py", "--steps", "3")["base"]
    git(project, "checkout", "--", "train.py")  # back to the committed code
    with Context.open() as ctx:
        assert ctx.ledger.runs.get_run(old).source["git_dirty"] is True
        result = reproduce_run(old, yes=True, ctx=ctx)
        assert result.matches, result
        assert result.new_run_id is not None
        new_w = ctx.ledger.runs.latest_metrics(result.new_run_id)["w"]
    committed_w = 0.0
    for _ in range(3):
        committed_w -= 0.1 * (committed_w - 12.0)
    assert not math.isclose(new_w, committed_w)  # the rerun ran the diffed code


def test_changed_data_fails_with_a_table(
    project: Path,
    tmp_path: Path,
    run_script: Callable[..., dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "target.txt"
    data.write_text("3.0")
    write(project, {"notes.txt": "scratch"})  # untracked while the run starts
    old = run_script(project, "train.py", "--data", str(data))["base"]
    data.write_text("3.5")
    code, out, err = _reproduce_cli(old, capsys=capsys)
    assert code == 1
    assert "metric  loss" in out
    assert "metric  w" in out
    assert "kind    name" in out
    assert "notes.txt" in out  # warned: untracked content was not recorded
    assert f"error: run {old} did not reproduce" in err
    code, out, _ = _reproduce_cli(old, "--json", capsys=capsys)
    assert code == 1
    data_out = json.loads(out)
    assert data_out["matches"] is False
    assert [d["name"] for d in data_out["metric_diffs"]] == ["loss", "w"]
    assert data_out["metric_diffs"][1]["rel_diff"] > 0.1


def test_tolerance_allows_small_differences(
    project: Path, tmp_path: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    data = tmp_path / "target.txt"
    data.write_text("3.0")
    old = run_script(project, "train.py", "--data", str(data))["base"]
    data.write_text("3.0000001")
    with Context.open() as ctx:
        assert not reproduce_run(old, yes=True, ctx=ctx).matches
        assert reproduce_run(old, yes=True, tolerance=1e-5, ctx=ctx).matches


def test_failing_rerun_reports_its_stderr(
    project: Path, tmp_path: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    data = tmp_path / "target.txt"
    data.write_text("3.0")
    old = run_script(project, "train.py", "--data", str(data))["base"]
    data.unlink()
    lines: list[str] = []
    with Context.open() as ctx:
        result = reproduce_run(old, yes=True, echo=lines.append, ctx=ctx)
    assert not result.matches
    assert result.exit_code == 1
    assert result.new_run_id is None
    assert result.stderr_tail is not None
    assert "FileNotFoundError" in result.stderr_tail
    assert any("FileNotFoundError" in line for line in lines)


def test_several_runs_in_one_process_pick_the_same_model(
    project: Path, run_script: Callable[..., dict[str, str]]
) -> None:
    runs = run_script(project, "train.py", "--models", "a,bb,ccc")
    with Context.open() as ctx:
        result = reproduce_run(runs["bb"], yes=True, ctx=ctx)
        assert result.matches, result
        assert result.new_run_id is not None
        assert ctx.ledger.runs.get_run(result.new_run_id).name == "bb"
        assert any("made 3 runs" in w for w in result.warnings)


def test_module_entry_point_runs_the_worktree_code(
    project: Path, run_script: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project,
        {
            "src/fitpkg/__init__.py": "",
            "src/fitpkg/fit.py": "import sys\nsys.path.insert(0, '.')\n"
            + TRAIN.replace("from track", "import track\nfrom track"),
        },
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "module")
    monkeypatch.setenv("PYTHONPATH", str(project / "src"))
    old = run_script(project, "-m", "fitpkg.fit", "--steps", "4")["base"]
    # Break the checkout's copy, still on PYTHONPATH: the rerun must use the worktree's copy.
    (project / "src/fitpkg/fit.py").write_text("raise SystemExit('wrong copy')\n")
    with Context.open() as ctx:
        source = ctx.ledger.runs.get_run(old).source
        assert source["entry_point"]["kind"] == "module"
        result = reproduce_run(old, yes=True, ctx=ctx)
    assert result.matches, result


def test_keep_worktree(project: Path, run_script: Callable[..., dict[str, str]]) -> None:
    old = run_script(project, "train.py")["base"]
    with Context.open() as ctx:
        result = reproduce_run(old, yes=True, keep_worktree=True, ctx=ctx)
    assert result.worktree is not None
    tree = Path(result.worktree)
    assert (tree / "train.py").read_text() == TRAIN
    git(project, "worktree", "remove", "--force", str(tree))


def test_environment_differences_are_listed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An old run recorded directly in the ledger, with another environment."""
    current = capture_environment()
    packages = dict(current.packages)
    packages["pytest"] = "7.0.0"
    packages["ancient-lib"] = "0.0.1"
    del packages["blake3"]
    other = EnvironmentCapture("cd" * 32, current.python, "elsewhere", packages, {})
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        env = save_environment(other, ctx=ctx)
        capture = capture_source(cwd=project, argv=["train.py", "--steps", "2"])
        run = ctx.ledger.runs.create_run(
            exp.id, name="base", source=capture.info, environment_id=env.id
        )
        save_source(run.id, capture, ctx=ctx)
        w = 0.0
        for _ in range(2):
            w -= 0.1 * (w - 12.0)
        ctx.ledger.runs.log_params(run.id, {"lr": 0.1, "steps": 2, "model": "base"})
        ctx.ledger.runs.log_metrics(
            run.id,
            [
                MetricPoint("loss", (w - 3.0) ** 2 / 7.0, 1, now_ms(), 0),
                MetricPoint("w", w, 1, now_ms(), 1),
            ],
        )
        ctx.ledger.runs.set_status(run.id, "finished")
    code, out, err = _reproduce_cli(run.id, capsys=capsys)
    assert code == 0, out + err  # a different environment is reported, not a failure
    assert "3 package(s) differ" in out
    assert f"  ~ pytest 7.0.0 -> {pytest.__version__}" in out
    assert "  - ancient-lib 0.0.1 (not installed now)" in out
    assert f"  + blake3 {current.packages['blake3']} (not in the recorded environment)" in out


def test_run_without_git_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        source = {"git_commit": None, "argv": ["train.py"], "cwd": "/tmp"}
        run = ctx.ledger.runs.create_run(exp.id, source=source)
    code, _, err = _reproduce_cli(run.id, capsys=capsys)
    assert code == 2
    assert f"run {run.id} has no git commit recorded" in err
    assert "git repository" in err


def test_interactive_run_exits_2(project: Path) -> None:
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        source = capture_source(cwd=project, argv=["-c"]).info
        run = ctx.ledger.runs.create_run(exp.id, source=source)
        with pytest.raises(UsageError, match="interactive session"):
            reproduce_run(run.id, yes=True, ctx=ctx)


def test_unknown_commit_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        source = capture_source(cwd=project, argv=["train.py"]).info
        source["git_commit"] = "0" * 40
        run = ctx.ledger.runs.create_run(exp.id, source=source)
    code, _, err = _reproduce_cli(run.id, capsys=capsys)
    assert code == 2
    assert "cannot find commit 0000000000000000000000000000000000000000" in err


def test_unknown_run_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _reproduce_cli("no-such-run", capsys=capsys)
    assert code == 2
    assert "no-such-run" in err


def test_close_enough() -> None:
    assert close_enough(1.0, 1.0, 0.0)
    assert close_enough(math.nan, math.nan, 0.0)
    assert not close_enough(math.nan, 1.0, 1.0)
    assert close_enough(math.inf, math.inf, 0.0)
    assert not close_enough(math.inf, 1e308, 1.0)
    assert close_enough(100.0, 100.0 + 1e-8, 1e-9)
    assert not close_enough(100.0, 100.0 + 1e-6, 1e-9)
    assert close_enough(0.0, 0.0, 0.0)
    assert not close_enough(0.0, 1e-300, 1e-9)
    names, diffs = compare_metrics({"a": 1.0, "system/cpu": 5.0}, {"a": 2.0, "b": 1.0}, 1e-9)
    assert names == ["a", "b"]
    assert [(d.name, d.old, d.new, d.rel_diff) for d in diffs] == [
        ("a", 1.0, 2.0, 0.5),
        ("b", None, 1.0, None),
    ]


def test_rerun_past_the_timeout_is_killed(project: Path) -> None:
    write(project, {"slow.py": "import time\ntime.sleep(60)\n"})
    git(project, "add", "slow.py")
    git(project, "commit", "-q", "-m", "slow")
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "repro")
        source = capture_source(cwd=project, argv=["slow.py"]).info
        run = ctx.ledger.runs.create_run(exp.id, source=source)
        result = reproduce_run(run.id, yes=True, timeout=1.0, ctx=ctx)
        with pytest.raises(UsageError, match="tolerance"):
            reproduce_run(run.id, yes=True, tolerance=-1.0, ctx=ctx)
    assert result.exit_code is None
    assert not result.matches
    assert any("timeout" in w for w in result.warnings)
