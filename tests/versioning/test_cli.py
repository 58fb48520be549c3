"""`plinth env` and the help of `plinth reproduce`: output, exit codes, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plinth.context import Context
from plinth.versioning import capture_environment, save_environment


def _run_with_environment(project_dir: Path) -> tuple[str, str]:
    with Context.open(project_dir) as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "e")
        env = save_environment(ctx=ctx)
        with_env = ctx.ledger.runs.create_run(exp.id, environment_id=env.id)
        without = ctx.ledger.runs.create_run(exp.id)
        return with_env.id, without.id


def test_env_export_requirements(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    run_id, _ = _run_with_environment(project_dir)
    r = cli("env", "export", run_id)
    assert r.code == 0, r.err
    assert f"pytest=={pytest.__version__}\n" in r.out
    assert r.out.startswith(f"# plinth environment {capture_environment().digest}")


def test_env_export_dockerfile_to_a_file(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    run_id, _ = _run_with_environment(project_dir)
    r = cli("env", "export", run_id, "--format", "dockerfile", "-o", "Dockerfile")
    assert r.code == 0, r.err
    text = (project_dir / "Dockerfile").read_text()
    major_minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM python:{major_minor}-slim" in text


def test_env_show(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    run_id, _ = _run_with_environment(project_dir)
    r = cli("env", "show", run_id)
    assert r.code == 0, r.err
    assert f"digest      {capture_environment().digest}" in r.out
    assert f"  pytest=={pytest.__version__}" in r.out
    data = json.loads(cli("env", "show", run_id, "--json").out)
    assert data["packages"]["pytest"] == pytest.__version__
    assert data["extra"]["cpu_count"] >= 1


def test_env_of_a_run_without_environment_exits_2(
    project_dir: Path, cli: Callable[..., Any]
) -> None:
    assert cli("init").code == 0
    _, run_id = _run_with_environment(project_dir)
    r = cli("env", "export", run_id)
    assert r.code == 2
    assert f"run {run_id} has no environment recorded" in r.err
    r = cli("env", "export", run_id, "--format", "conda")
    assert r.code == 2


@pytest.mark.parametrize(
    "args", [["reproduce", "--help"], ["env", "--help"], ["env", "export", "--help"]]
)
def test_help_has_an_example_and_is_light(args: list[str]) -> None:
    code = (
        "import sys\nfrom plinth.cli.main import main\n"
        f"rc = main({args!r})\nassert rc == 0, rc\n"
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "Example: plinth" in out
    assert "HEAVY []" in out
