"""Code execution from records: reproduce's entry points, pickled models, YAML tags.

The attacker can write the shared ledger (a run's ``source``, a model's manifest) or a config
file; the victim is a teammate who runs ``plinth reproduce``, loads a model or reads a file.
Every case asserts the refusal and that the attacker's code did not run (no marker file).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import plinth
from plinth.cli.main import main
from plinth.context import Context
from plinth.errors import ConfigError, InvalidPathError, UntrustedModelError, UsageError
from plinth.ledger import tables
from plinth.versioning import plan_reproduction, reproduce_run

GIT = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]

SECRETS = {
    "PGPASSWORD": "pg-secret-1234",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-5678",
    "GITHUB_TOKEN": "ghp-token-9012",
    "MY_DB_PASSWORD": "db-password-3456",
    "DATABASE_URL": "postgresql://app:url-secret-7890@db.example/app",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [*GIT, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Ada Tester")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "ada@example.com")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "_PLINTH_REPRODUCE_OF"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where the attacker's code writes if it runs (outside every worktree)."""
    return tmp_path / "outside" / "ran.txt"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: Path) -> Path:
    """A git repository that is a plinth project; an evil script waits outside it."""
    marker.parent.mkdir()
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (marker.parent / "evil.py").write_text(evil)
    (marker.parent / "evilpkg").mkdir()
    (marker.parent / "evilpkg" / "__init__.py").write_text("")
    (marker.parent / "evilpkg" / "run.py").write_text(evil)
    folder = tmp_path / "proj"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "train.py").write_text(evil)  # legit code of the repo: writes the marker too
    monkeypatch.chdir(folder)
    assert main(["init"]) == 0
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "initial")
    return folder


def _run_with(repo: Path, entry: dict[str, Any], **source: Any) -> str:
    """A run record whose entry point an attacker wrote."""
    head = git(repo, "rev-parse", "HEAD").strip()
    with Context.open() as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "attack")
        record = {"git_commit": head, "repo_root": str(repo), "cwd_rel": ".", **source}
        record["entry_point"] = entry
        return ctx.ledger.runs.create_run(exp.id, name="r", source=record).id


def _reproduce(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["reproduce", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_worktree_left(repo: Path) -> None:
    assert len(git(repo, "worktree", "list").splitlines()) == 1


# -- raw commands and the child's environment -------------------------------------------------


def test_raw_command_entry_point_without_allow_command_is_refused_and_nothing_written(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leak = tmp_path / "leak.txt"
    run_id = _run_with(repo, {"kind": "command", "args": ["sh", "-c", f"env > {leak}"]})
    code, out, err = _reproduce(run_id, "--yes", capsys=capsys)
    assert code == 2
    assert "raw command" in out  # the warning is part of the plan, before anything runs
    assert f"command:     sh -c 'env > {leak}'" in out
    assert "--allow-command" in err
    with Context.open() as ctx, pytest.raises(UsageError, match="raw command"):
        reproduce_run(run_id, yes=True, ctx=ctx)
    assert not leak.exists()
    _no_worktree_left(repo)


def _leaked_env(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, *extra: str
) -> str:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    leak = tmp_path / "leak.txt"
    run_id = _run_with(repo, {"kind": "command", "args": ["sh", "-c", f"env > {leak}"]})
    code, out, err = _reproduce(run_id, "--yes", "--allow-command", *extra, capsys=capsys)
    assert code == 1, out + err  # it ran; it recorded no run, so nothing matches
    return leak.read_text()


def test_command_run_with_consent_gets_no_credentials_from_the_environment(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    env = _leaked_env(repo, tmp_path, monkeypatch, capsys)
    for name, value in SECRETS.items():
        assert value not in env, name
        assert f"{name}=" not in env
    # What reproduce itself hands the child so that it can record its run, as documented.
    assert "PLINTH_METADATA=sqlite:///" in env
    assert "PATH=" in env


def test_pass_env_hands_only_the_named_credential_to_the_rerun(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    env = _leaked_env(repo, tmp_path, monkeypatch, capsys, "--pass-env", "GITHUB_TOKEN")
    assert f"GITHUB_TOKEN={SECRETS['GITHUB_TOKEN']}" in env
    for name, value in SECRETS.items():
        if name != "GITHUB_TOKEN":
            assert value not in env, name


# -- recorded paths that leave the worktree ---------------------------------------------------


def _escapes(marker: Path, rel: str) -> str:
    return "../" * 30 + str(marker.parent / rel).lstrip("/")


@pytest.mark.parametrize(
    ("entry", "source"),
    [
        pytest.param({"kind": "script", "path": "DOTDOT/evil.py", "args": []}, {}, id="dotdot"),
        pytest.param({"kind": "script", "path": "ABS/evil.py", "args": []}, {}, id="absolute"),
        pytest.param(
            {"kind": "module", "module": "evilpkg.run", "module_root": "DOTDOT", "args": []},
            {},
            id="module-root-dotdot",
        ),
        pytest.param(
            {"kind": "module", "module": "evilpkg.run", "module_root": "ABS", "args": []},
            {},
            id="module-root-absolute",
        ),
        pytest.param(
            {"kind": "script", "path": "train.py", "args": []},
            {"cwd_rel": "DOTDOT"},
            id="working-folder-dotdot",
        ),
    ],
)
def test_recorded_path_outside_the_worktree_is_refused_and_the_outside_code_never_ran(
    repo: Path,
    marker: Path,
    capsys: pytest.CaptureFixture[str],
    entry: dict[str, Any],
    source: dict[str, Any],
) -> None:
    def fill(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("DOTDOT"):
            return _escapes(marker, value[len("DOTDOT/") :])
        if value.startswith("ABS"):
            return str(marker.parent / value[len("ABS/") :]).rstrip("/")
        return value

    run_id = _run_with(
        repo, {k: fill(v) for k, v in entry.items()}, **{k: fill(v) for k, v in source.items()}
    )
    code, _, err = _reproduce(run_id, "--yes", capsys=capsys)
    assert code == 2
    assert "cannot be used" in err
    with Context.open() as ctx, pytest.raises(InvalidPathError, match="nothing ran"):
        plan_reproduction(run_id, ctx=ctx)
    assert not marker.exists()
    assert sorted(p.name for p in marker.parent.iterdir()) == ["evil.py", "evilpkg"]
    _no_worktree_left(repo)


@pytest.mark.parametrize("kind", ["script", "module", "folder"])
def test_symlink_in_the_commit_pointing_out_of_the_tree_is_refused_before_it_runs(
    repo: Path, marker: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    (repo / "link.py").symlink_to(marker.parent / "evil.py")
    (repo / "libs").symlink_to(marker.parent, target_is_directory=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links out")
    entry: dict[str, Any] = {
        "script": {"kind": "script", "path": "link.py", "args": []},
        "module": {"kind": "module", "module": "evilpkg.run", "module_root": "libs", "args": []},
        "folder": {"kind": "script", "path": "libs/evil.py", "args": []},
    }[kind]
    run_id = _run_with(repo, entry)
    code, out, err = _reproduce(run_id, "--yes", capsys=capsys)
    assert code == 2, out + err
    assert "resolves outside" in err
    assert not marker.exists()
    _no_worktree_left(repo)


# -- consent -------------------------------------------------------------------------------


def test_reproduce_without_yes_and_without_a_terminal_exits_2_and_nothing_ran(
    repo: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run_id = _run_with(repo, {"kind": "script", "path": "train.py", "args": ["--lr", "0.1"]})
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal, whatever it says
    code, out, err = _reproduce(run_id, capsys=capsys)
    assert code == 2
    assert "pass --yes" in err
    assert "command:     " in out  # the plan was shown
    assert "train.py --lr 0.1" in out
    with Context.open() as ctx:
        with pytest.raises(UsageError, match="needs consent; nothing ran"):
            reproduce_run(run_id, ctx=ctx)
        with pytest.raises(UsageError, match="declined"):
            reproduce_run(run_id, confirm=lambda plan: False, ctx=ctx)
    assert not marker.exists()
    _no_worktree_left(repo)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reproduce_asks_on_a_terminal_and_runs_only_after_yes(
    repo: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    run_id = _run_with(repo, {"kind": "script", "path": "train.py", "args": []})
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    code, _, err = _reproduce(run_id, capsys=capsys)
    assert code == 1
    assert "Nothing ran." in err
    assert not marker.exists()
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    code, _, _ = _reproduce(run_id, capsys=capsys)
    assert marker.read_text() == "ran"  # consent given: the recorded code ran
    seen: list[str] = []
    marker.unlink()
    with Context.open() as ctx:
        reproduce_run(run_id, confirm=lambda plan: seen.append(plan.argv[1]) or True, ctx=ctx)
    assert seen == ["train.py"]
    assert marker.exists()


# -- pickled models --------------------------------------------------------------------------


class _Predictor:
    def predict(self, rows: Any) -> list[int]:
        return [0 for _ in rows]


class _Payload:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))  # unpickling creates the file


def test_pickled_model_blob_is_never_unpickled_without_trust_or_with_a_swapped_digest(
    project: Context, marker: Path
) -> None:
    marker.parent.mkdir()
    with plinth.start_run() as run:
        version = run.log_model(_Predictor(), "m", flavor="python_function")
    assert plinth.models.load("m@1", trusted=True).predict([1, 2]) == [0, 0]
    # The attacker swaps the pickle for one that writes a file when unpickled.
    doc = json.loads(project.blobs.read_bytes(version.manifest_digest))
    evil = project.blobs.put_bytes(pickle.dumps(_Payload(marker)))
    doc["files"] = [
        [p, evil.digest, evil.size] if p.endswith(".pkl") else [p, d, s] for p, d, s in doc["files"]
    ]
    ref = project.blobs.put_bytes(json.dumps(doc).encode())
    rows = tables.model_versions
    with project.ledger.engine.begin() as conn:
        conn.execute(
            sa.update(rows).where(rows.c.id == version.id).values(manifest_digest=ref.digest)
        )
    with pytest.raises(UntrustedModelError, match="pickled"):
        plinth.models.load("m@1")
    with pytest.raises(UntrustedModelError):
        plinth.models.load("m@1", trusted=True)  # its digest is not the one recorded
    assert not marker.exists()


# -- YAML tags -------------------------------------------------------------------------------

TAG = "!!python/object/apply:os.system [{cmd!r}]"


@pytest.mark.parametrize("kind", ["suite", "monitor", "deployment", "plinth.yaml"])
def test_python_yaml_tag_in_a_config_file_is_refused_and_not_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: Path, kind: str
) -> None:
    from plinth.monitoring.spec import MonitorSpec
    from plinth.serving.spec import DeploymentSpec
    from plinth.settings import load_settings
    from plinth.validation.suites import Suite

    marker.parent.mkdir()
    tag = TAG.format(cmd=f"touch {marker}")
    texts = {
        "suite": f"suite: s\nchecks:\n  - {tag}\n",
        "monitor": f"monitor: m\nmodel: {tag}\n",
        "deployment": f"name: web\nmodel: {tag}\n",
        "plinth.yaml": f"project: {tag}\n",
    }
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "plinth.yaml").write_text(texts[kind])
    monkeypatch.chdir(folder)
    readers: dict[str, Callable[[], object]] = {
        "suite": lambda: Suite.from_yaml(texts[kind]),
        "monitor": lambda: MonitorSpec.from_yaml(texts[kind]),
        "deployment": lambda: DeploymentSpec.from_yaml(texts[kind]),
        "plinth.yaml": lambda: load_settings(folder),
    }
    with pytest.raises((UsageError, ConfigError)) as info:
        readers[kind]()
    assert "python/object" in str(info.value)
    assert not marker.exists()


def test_redacted_argument_is_named_in_the_plan_before_anything_runs(
    repo: Path, marker: Path
) -> None:
    run_id = _run_with(
        repo, {"kind": "script", "path": "train.py", "args": ["--token", "***", "--lr", "1"]}
    )
    with Context.open() as ctx:
        plan = plan_reproduction(run_id, ctx=ctx)
    assert plan.argv[1:] == ["train.py", "--token", "***", "--lr", "1"]
    (warning,) = [w for w in plan.warnings if "redacted" in w]
    assert "argument 2 ('***')" in warning
    assert "--pass-env" in warning
    assert any(line.startswith("warning: argument 2") for line in plan.describe())
    assert not marker.exists()
