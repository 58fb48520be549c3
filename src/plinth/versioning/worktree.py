"""Temporary git worktrees: a recorded commit plus a recorded diff, checked out aside.

The user's own checkout is never touched: ``git worktree add --detach`` makes a second
working tree of the same repository in a temporary folder, and ``git worktree remove``
takes it away again (only the folder and git's bookkeeping of it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plinth.errors import IntegrityError, UsageError
from plinth.versioning.code import git_env, run_git

__all__ = ["Worktree", "add_worktree", "find_repo", "remove_worktree"]

#: Seconds a checkout or patch may take; large repositories take a while to check out.
CHECKOUT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Worktree:
    """A checked-out worktree: the repository it belongs to and the folders it lives in."""

    repo: Path
    path: Path
    #: The temporary folder holding ``path`` (and the patch file, outside the worktree).
    holder: Path


def has_commit(repo: Path, commit: str) -> bool:
    """Whether ``repo`` is a git repository that holds ``commit``."""
    return run_git(["cat-file", "-e", f"{commit}^{{commit}}"], repo) is not None


def find_repo(commit: str, candidates: list[Path]) -> Path:
    """The first candidate folder whose repository holds ``commit``; UsageError if none does."""
    tried: list[str] = []
    for folder in candidates:
        if not folder.is_dir():
            tried.append(f"{folder} (missing)")
            continue
        top = run_git(["rev-parse", "--show-toplevel"], folder)
        if top is None:
            tried.append(f"{folder} (not a git repository)")
            continue
        root = Path(top.decode("utf-8", "replace").strip())
        if has_commit(root, commit):
            return root
        tried.append(f"{root} (no commit {commit[:12]})")
    raise UsageError(
        f"cannot find commit {commit} to reproduce from; looked in: " + "; ".join(tried),
        hint="run plinth reproduce inside a clone of the repository that has this commit "
        "(git fetch it if it was pushed)",
    )


def add_worktree(repo: Path, commit: str, diff: bytes | None) -> Worktree:
    """``commit`` checked out in a new temporary folder, with ``diff`` applied on top."""
    holder = Path(tempfile.mkdtemp(prefix="plinth-reproduce-"))
    # The worktree folder keeps the repository's name: code that reads it sees no change.
    path = holder / (repo.name or "repo")
    try:
        _git_checked(
            ["worktree", "add", "--detach", str(path), commit],
            repo,
            f"cannot check out commit {commit} in a temporary worktree",
        )
        if diff:
            patch = holder / "source.patch"  # outside the worktree: not an untracked file there
            patch.write_bytes(diff)
            try:
                _git_checked(
                    ["apply", "--binary", "--whitespace=nowarn", str(patch)],
                    path,
                    f"the run's recorded diff does not apply to commit {commit}",
                )
            finally:
                patch.unlink()
    except BaseException:
        remove_worktree(Worktree(repo, path, holder))
        raise
    return Worktree(repo, path, holder)


def remove_worktree(tree: Worktree) -> None:
    """Remove the worktree folder and git's record of it; never raises."""
    if tree.path.exists():
        run_git(["worktree", "remove", "--force", str(tree.path)], tree.repo)
    shutil.rmtree(tree.holder, ignore_errors=True)
    run_git(["worktree", "prune"], tree.repo)


def _git_checked(args: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=CHECKOUT_TIMEOUT,
            env=git_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"{what}: {exc}", hint="check that git is installed and on PATH") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        message = f"{what}: {detail[-1] if detail else f'git exited {done.returncode}'}"
        if args[0] == "apply":
            raise IntegrityError(
                message, hint="the diff artifact 'source/diff.patch' may be damaged"
            )
        raise UsageError(message, hint="check the repository with 'git worktree list'")
