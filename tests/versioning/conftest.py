"""Versioning fixtures: real git repositories in tmp_path, isolated from the user's git config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GIT_BASE = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config (aliases, hooks, signing) and a fixed identity."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Ada Tester")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "ada@example.com")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "_PLINTH_REPRODUCE_OF"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its stdout (check=True)."""
    done = subprocess.run(
        [*GIT_BASE, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def make_repo(folder: Path, files: dict[str, str | bytes]) -> Path:
    """A git repository in ``folder`` with ``files`` in one commit."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q")
    write(folder, files)
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "initial")
    return folder


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit: train.py and README.md."""
    return make_repo(tmp_path / "repo", {"train.py": "print('train')\n", "README.md": "# demo\n"})


def child_env() -> dict[str, str]:
    """The environment for a training child process: no PLINTH_* leaking in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PLINTH_", "_PLINTH_"))}


RUN_LINE = re.compile(r"^RUN (\S+) (\S+)$", re.MULTILINE)


@pytest.fixture
def run_script() -> Callable[..., dict[str, str]]:
    """Run ``python <args>`` in a folder; the ``RUN <name> <id>`` lines it printed."""

    def run(cwd: Path, *args: str) -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return dict(RUN_LINE.findall(done.stdout))

    return run
