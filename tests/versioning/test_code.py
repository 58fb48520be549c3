"""capture_source against real git repositories: clean, dirty, untracked, detached, binary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plinth.versioning import capture_source, module_entry_point, strip_credentials

from .conftest import child_env, git, make_repo, write


def _clean_copy(repo: Path, dest: Path) -> Path:
    git(repo, "worktree", "add", "-q", "--detach", str(dest), "HEAD")
    return dest


def test_clean_repository(repo: Path) -> None:
    capture = capture_source(cwd=repo, argv=["train.py", "--lr", "0.1"])
    info = capture.info
    assert info["git_commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert info["git_branch"] == "main"
    assert info["git_remote"] is None
    assert info["git_dirty"] is False
    assert info["repo_root"] == str(repo.resolve())
    assert info["cwd"] == str(repo.resolve())
    assert info["cwd_rel"] == "."
    assert info["argv"] == ["train.py", "--lr", "0.1"]
    assert info["python"] == sys.executable
    assert info["entry_point"] == {"kind": "script", "path": "train.py", "args": ["--lr", "0.1"]}
    assert capture.diff is None
    assert capture.untracked == []
    json.dumps(info)  # stored as the run's source: must be JSON


def test_script_in_a_subfolder(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"jobs/fit.py": "pass\n"})
    info = capture_source(cwd=repo / "jobs", argv=["fit.py", "-v"]).info
    assert info["cwd_rel"] == "jobs"
    assert info["entry_point"] == {"kind": "script", "path": "jobs/fit.py", "args": ["-v"]}


def test_dirty_tree_diff_recreates_the_changes(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    write(repo, {"staged.py": "x = 1\n"})
    git(repo, "add", "staged.py")  # staged, not committed: `git diff HEAD` includes it
    (repo / "README.md").unlink()
    capture = capture_source(cwd=repo, argv=["train.py"])
    assert capture.info["git_dirty"] is True
    assert capture.diff is not None
    copy = _clean_copy(repo, tmp_path / "copy")
    assert (copy / "train.py").read_text() == "print('train')\n"
    subprocess.run(["git", "apply", "--binary", "-"], cwd=copy, input=capture.diff, check=True)
    assert (copy / "train.py").read_text() == "print('changed')\n"
    assert (copy / "staged.py").read_text() == "x = 1\n"
    assert not (copy / "README.md").exists()


def test_binary_change_round_trips(tmp_path: Path) -> None:
    original = bytes(range(256)) * 8
    repo = make_repo(tmp_path / "r", {"weights.bin": original})
    changed = bytes(reversed(original)) + b"\x00\xff" * 100
    (repo / "weights.bin").write_bytes(changed)
    capture = capture_source(cwd=repo, argv=["x"])
    assert capture.diff is not None
    assert b"GIT binary patch" in capture.diff
    copy = _clean_copy(repo, tmp_path / "copy")
    subprocess.run(["git", "apply", "--binary", "-"], cwd=copy, input=capture.diff, check=True)
    assert (copy / "weights.bin").read_bytes() == changed


def test_untracked_files_are_listed_not_ignored_ones(repo: Path) -> None:
    write(repo, {".gitignore": "*.log\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    write(repo, {"data/raw.csv": "a,b\n", "notes.txt": "n", "run.log": "ignored"})
    capture = capture_source(cwd=repo, argv=["train.py"])
    assert capture.untracked == ["data/raw.csv", "notes.txt"]
    assert capture.info["git_dirty"] is True  # untracked files alone make the tree dirty
    assert capture.diff is None  # but there is no diff to tracked files


def test_rename_is_a_tracked_change(repo: Path) -> None:
    git(repo, "mv", "README.md", "README.txt")
    capture = capture_source(cwd=repo, argv=["train.py"])
    assert capture.untracked == []
    assert capture.diff is not None
    assert b"README.txt" in capture.diff


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cret@github.com/acme/x.git", "https://github.com/acme/x.git"),
        ("https://ghp_token@github.com/acme/x.git", "https://github.com/acme/x.git"),
        ("http://host:8080/x", "http://host:8080/x"),
        ("git@github.com:acme/x.git", "git@github.com:acme/x.git"),
        ("ssh://git@host/acme/x.git", "ssh://git@host/acme/x.git"),
        ("ssh://git:pw@host/acme/x.git", "ssh://git@host/acme/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "backup", "https://other.example/x.git")
    git(repo, "remote", "add", "origin", "https://ada:tok3n@git.example.com/acme/x.git")
    info = capture_source(cwd=repo, argv=["train.py"]).info
    assert info["git_remote"] == "https://git.example.com/acme/x.git"
    assert "tok3n" not in json.dumps(info)


def test_first_remote_when_there_is_no_origin(repo: Path) -> None:
    git(repo, "remote", "add", "upstream", "git@github.com:acme/x.git")
    assert capture_source(cwd=repo, argv=["a"]).info["git_remote"] == "git@github.com:acme/x.git"


def test_not_a_repository(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "train.py").write_text("pass\n")
    capture = capture_source(cwd=folder, argv=["train.py"])
    assert capture.info["git_commit"] is None
    assert not {"git_branch", "git_remote", "git_dirty", "repo_root"} & capture.info.keys()
    assert capture.info["cwd"] == str(folder.resolve())
    assert capture.diff is None
    assert capture.untracked == []


def test_repository_without_commits_is_like_no_repository(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "train.py").write_text("pass\n")
    info = capture_source(cwd=folder, argv=["train.py"]).info
    assert info["git_commit"] is None
    assert "repo_root" not in info


def test_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {"more.py": "pass\n"})
    git(repo, "add", "more.py")
    git(repo, "commit", "-q", "-m", "more")
    git(repo, "checkout", "-q", "--detach", first)
    info = capture_source(cwd=repo, argv=["train.py"]).info
    assert info["git_commit"] == first
    assert info["git_branch"] is None
    assert info["git_dirty"] is False


def test_interactive_and_console_scripts_are_commands(repo: Path) -> None:
    for argv in (["-c"], [""]):
        entry = capture_source(cwd=repo, argv=argv).info["entry_point"]
        assert entry == {"kind": "command", "args": argv}
    entry = capture_source(cwd=repo, argv=["/usr/local/bin/fit", "--x"]).info["entry_point"]
    assert entry == {"kind": "command", "args": ["/usr/local/bin/fit", "--x"]}


PROBE = """
import json
from plinth.versioning import capture_source
print(json.dumps(capture_source().info))
"""


def test_python_dash_m_is_a_module_entry_point(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r",
        {"src/pkg/__init__.py": "", "src/pkg/train.py": PROBE, "src/pkg/__main__.py": PROBE},
    )
    env = {**child_env(), "PYTHONPATH": str(repo / "src")}
    for module, expected in (("pkg.train", "pkg.train"), ("pkg", "pkg")):
        out = subprocess.run(
            [sys.executable, "-m", module, "--epochs", "3"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info = json.loads(out)
        assert info["entry_point"] == {
            "kind": "module",
            "module": expected,
            "module_root": "src",
            "args": ["--epochs", "3"],
        }
        assert info["git_commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_module_entry_point_finds_the_module_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "r", {"src/fitpkg_x/__init__.py": "", "src/fitpkg_x/fit.py": ""})
    monkeypatch.syspath_prepend(str(repo / "src"))
    entry = module_entry_point("fitpkg_x.fit", ["--a"], cwd=repo)
    assert entry == {
        "kind": "module",
        "module": "fitpkg_x.fit",
        "module_root": "src",
        "args": ["--a"],
    }
    # An installed module outside the repository has no module root.
    installed = module_entry_point("json", [], cwd=repo)
    assert installed["module_root"] is None
