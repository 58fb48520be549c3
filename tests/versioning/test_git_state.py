"""Reusing the last ``git status`` within a process: never a stale commit or dirty flag."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.versioning import code, git_state
from plinth.versioning.code import SOURCE_DIFF_PATH, capture_source

from .conftest import git, make_repo, write


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    git_state.clear()
    yield
    git_state.clear()


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every ``git status`` the capture starts (the cache's misses)."""
    calls: list[list[str]] = []
    start = code._start_git

    def spy(args: list[str], cwd: Path) -> subprocess.Popen[bytes] | None:
        calls.append(args)
        return start(args, cwd)

    monkeypatch.setattr(code, "_start_git", spy)
    return calls


def settle() -> None:
    """Let every time stamp in the repository become older than the racy margin."""
    time.sleep(git_state.RACY_MARGIN * 2 + 0.05)


@pytest.fixture
def cached_repo(repo: Path, git_calls: list[list[str]]) -> Path:
    """``repo`` whose clean status this process remembers (the second capture hit it)."""
    settle()
    first = capture_source(cwd=repo)
    second = capture_source(cwd=repo)
    assert second.info == first.info
    assert len(git_calls) == 1, "the second capture should reuse the first git status"
    return repo


def test_a_sweep_over_unchanged_code_runs_git_once(
    cached_repo: Path, git_calls: list[list[str]]
) -> None:
    for _ in range(5):
        info = capture_source(cwd=cached_repo).info
        assert info["git_commit"] == git(cached_repo, "rev-parse", "HEAD").strip()
        assert info["git_dirty"] is False
    assert len(git_calls) == 1


def test_a_commit_between_two_runs_gives_the_new_sha(
    cached_repo: Path, git_calls: list[list[str]]
) -> None:
    before = capture_source(cwd=cached_repo).info["git_commit"]
    write(cached_repo, {"train.py": "print('v2')\n"})
    git(cached_repo, "commit", "-q", "-am", "second")
    after = capture_source(cwd=cached_repo).info
    assert after["git_commit"] == git(cached_repo, "rev-parse", "HEAD").strip()
    assert after["git_commit"] != before
    assert after["git_dirty"] is False
    assert len(git_calls) == 2


def test_a_commit_of_nothing_new_still_gives_the_new_sha(cached_repo: Path) -> None:
    """No work-tree file changes: only the branch's ref moves."""
    git(cached_repo, "commit", "-q", "--allow-empty", "-m", "empty")
    info = capture_source(cwd=cached_repo).info
    assert info["git_commit"] == git(cached_repo, "rev-parse", "HEAD").strip()


def test_editing_a_tracked_file_between_two_runs_is_dirty(cached_repo: Path) -> None:
    # Same size as before: only the time stamps (and the content) differ.
    write(cached_repo, {"train.py": "print('tra1n')\n"})
    capture = capture_source(cwd=cached_repo)
    assert capture.info["git_dirty"] is True
    assert capture.diff is not None
    assert b"tra1n" in capture.diff


def test_a_new_untracked_file_between_two_runs_is_dirty(cached_repo: Path) -> None:
    write(cached_repo, {"notes/idea.txt": "try a bigger model\n"})
    capture = capture_source(cwd=cached_repo)
    assert capture.info["git_dirty"] is True
    assert capture.untracked == ["notes/idea.txt"]


def test_deleting_and_staging_are_seen(cached_repo: Path) -> None:
    (cached_repo / "README.md").unlink()
    assert capture_source(cwd=cached_repo).info["git_dirty"] is True
    git(cached_repo, "checkout", "--", "README.md")
    assert capture_source(cwd=cached_repo).info["git_dirty"] is False
    settle()
    capture_source(cwd=cached_repo)
    write(cached_repo, {"extra.py": "x = 1\n"})
    git(cached_repo, "add", "extra.py")
    capture = capture_source(cwd=cached_repo)
    assert capture.info["git_dirty"] is True
    assert capture.diff is not None
    assert b"extra.py" in capture.diff


def test_switching_branches_is_seen(cached_repo: Path) -> None:
    git(cached_repo, "checkout", "-q", "-b", "feature/x")
    assert capture_source(cwd=cached_repo).info["git_branch"] == "feature/x"


def test_changes_to_ignored_files_keep_the_cache(repo: Path, git_calls: list[list[str]]) -> None:
    write(repo, {".gitignore": "*.log\n.plinth/\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    write(repo, {".plinth/journals/a.plj": "x", "train.log": "epoch 1\n"})
    settle()
    capture_source(cwd=repo)
    write(repo, {".plinth/journals/b.plj": "y", "train.log": "epoch 1\nepoch 2\n"})
    info = capture_source(cwd=repo).info
    assert info["git_dirty"] is False
    assert len(git_calls) == 1


def test_a_new_file_beside_only_ignored_files_is_seen(repo: Path) -> None:
    write(repo, {".gitignore": "*.log\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    write(repo, {"logs/run.log": "epoch 1\n"})
    settle()
    capture_source(cwd=repo)
    write(repo, {"logs/notes.txt": "not a log\n"})
    capture = capture_source(cwd=repo)
    assert capture.untracked == ["logs/notes.txt"]


def test_a_status_taken_while_files_change_is_not_kept(
    repo: Path, git_calls: list[list[str]]
) -> None:
    write(repo, {"train.py": "print('just now')\n"})  # younger than the racy margin
    capture_source(cwd=repo)
    capture_source(cwd=repo)
    assert len(git_calls) == 2


def test_remember_refuses_stamps_newer_than_git(repo: Path) -> None:
    dirs = code._repo(repo.resolve())
    assert dirs is not None
    status = b"# branch.oid " + git(repo, "rev-parse", "HEAD").strip().encode() + b"\0"
    settle()
    # git started before the last change: its answer may predate the change.
    assert not git_state.remember(dirs.dirs, status, time.time() - 10, time.monotonic())
    assert git_state.recall(dirs.dirs) is None
    assert git_state.remember(dirs.dirs, status, time.time(), time.monotonic())
    assert git_state.recall(dirs.dirs) == status


def test_whole_second_time_stamps_need_a_longer_wait(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = code._repo(repo.resolve())
    assert dirs is not None
    status = b"# branch.oid " + git(repo, "rev-parse", "HEAD").strip().encode() + b"\0"
    write(repo, {"README.md": "# edited\n"})
    settle()  # old enough for nanosecond time stamps, not for whole seconds
    assert git_state.remember(dirs.dirs, status, time.time(), time.monotonic())
    stamp = git_state._stamp

    def whole_seconds(path: str) -> git_state.Stamp:
        found = stamp(path)
        if found is None:
            return None
        second = 1_000_000_000
        return found[0] // second * second, found[1] // second * second, found[2], found[3]

    # As on FAT or HFS+: the repository's files may have changed within the same second.
    monkeypatch.setattr(git_state, "_stamp", whole_seconds)
    assert not git_state.remember(dirs.dirs, status, time.time(), time.monotonic())


def test_the_age_bound(cached_repo: Path, git_calls: list[list[str]]) -> None:
    time.sleep(0.3)
    code.begin_capture_source(cwd=cached_repo, git_cache_seconds=60).result()
    assert len(git_calls) == 1, "younger than its bound: reused"
    code.begin_capture_source(cwd=cached_repo, git_cache_seconds=0.2).result()
    assert len(git_calls) == 2
    code.begin_capture_source(cwd=cached_repo, git_cache_seconds=0).result()
    assert len(git_calls) == 3, "0 turns the cache off"


def test_git_environment_variables_are_part_of_the_key(
    cached_repo: Path, git_calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_COUNT", "0")
    capture_source(cwd=cached_repo)
    assert len(git_calls) == 2


def test_nested_repositories_are_not_remembered(
    repo: Path, tmp_path: Path, git_calls: list[list[str]]
) -> None:
    make_repo(repo / "vendor" / "lib", {"lib.py": "pass\n"})
    settle()
    capture_source(cwd=repo)
    capture_source(cwd=repo)
    assert len(git_calls) == 2


def test_large_work_trees_are_not_remembered(
    repo: Path, git_calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_state, "MAX_PATHS", 3)
    settle()
    capture_source(cwd=repo)
    capture_source(cwd=repo)
    assert len(git_calls) == 2


def test_a_run_in_a_sweep_is_created_with_its_whole_source(
    project: Context, project_dir: Path
) -> None:
    make_repo(project_dir, {".gitignore": ".plinth/\n", "train.py": "print('train')\n"})
    head = git(project_dir, "rev-parse", "HEAD").strip()
    settle()
    with plinth.start_run():
        pass
    with plinth.start_run() as run:
        # Before the run ends, the ledger has the commit: no git status was waited for.
        stored = project.ledger.runs.get_run(run.id).source
        assert stored["git_commit"] == head
        assert stored["git_dirty"] is False
    write(project_dir, {"train.py": "print('changed')\n"})
    with plinth.start_run() as run:
        pass
    assert plinth.get_run(run.id).source["git_dirty"] is True
    stored_paths = [a.path for a in project.ledger.artifacts.list(RecordRef("run", run.id))]
    assert SOURCE_DIFF_PATH in stored_paths


def test_the_git_cache_seconds_setting_turns_it_off(
    project_dir: Path, git_calls: list[list[str]]
) -> None:
    make_repo(project_dir, {".gitignore": ".plinth/\n", "train.py": "print('train')\n"})
    settle()
    ctx = plinth.init(project_dir, git_cache_seconds=0, system_metrics=False)
    try:
        for _ in range(3):
            with plinth.start_run():
                pass
    finally:
        ctx.close()
    assert len(git_calls) == 3


def test_a_linked_worktree_sees_its_own_commits(
    repo: Path, tmp_path: Path, git_calls: list[list[str]]
) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    settle()
    capture_source(cwd=linked)
    assert capture_source(cwd=linked).info["git_branch"] == "side"
    assert len(git_calls) == 1
    write(linked, {"train.py": "print('side')\n"})
    git(linked, "commit", "-q", "-am", "on the side")
    info = capture_source(cwd=linked).info
    assert info["git_commit"] == git(linked, "rev-parse", "HEAD").strip()
    assert info["git_dirty"] is False
    # A commit in the main work tree moves another branch: the linked one is unchanged.
    settle()
    capture_source(cwd=linked)
    calls = len(git_calls)
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moves")
    assert capture_source(cwd=linked).info["git_commit"] == info["git_commit"]
    assert len(git_calls) == calls
