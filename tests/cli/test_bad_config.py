"""Bad configuration: one clear line naming the setting and the fix, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "s3cretMARKER"


def plinth(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "plinth", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_clean_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert SECRET not in proc.stderr + proc.stdout


def test_unknown_key(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("artifact: store\n")
    proc = plinth(tmp_path, "gc")
    assert_one_clean_line(proc, "unknown setting 'artifact'", "did you mean 'artifacts'")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("artifact: store\n")
    proc = plinth(tmp_path, "--debug", "gc")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


@pytest.mark.parametrize(
    ("setting", "value", "needles"),
    [
        ("METADATA", "mysql://root@127.0.0.1/x", ("metadata", "mysql")),
        ("ARTIFACTS", "ftp://host/x", ("artifacts", "ftp")),
    ],
)
def test_bad_uri_scheme(tmp_path: Path, setting: str, value: str, needles: tuple[str, ...]) -> None:
    proc = plinth(tmp_path, "gc", env={f"PLINTH_{setting}": value})
    assert_one_clean_line(proc, *needles)


def test_unreachable_postgres(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://root:{SECRET}@127.0.0.1:1/test"
    proc = plinth(tmp_path, "gc", env={"PLINTH_METADATA": url})
    assert_one_clean_line(proc, "metadata", "127.0.0.1:1")


def _without(tmp_path: Path, module: str) -> str:
    shadow = tmp_path / "shadow" / module
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError('no {module} here')\n")
    return str(tmp_path / "shadow")


def test_missing_s3_extra(tmp_path: Path) -> None:
    env = {"PLINTH_ARTIFACTS": "s3://bucket/prefix", "PYTHONPATH": _without(tmp_path, "boto3")}
    proc = plinth(tmp_path, "gc", env=env)
    assert_one_clean_line(proc, "artifacts", "pip install 'plinth[s3]'")


def test_missing_postgres_extra(tmp_path: Path) -> None:
    env = {
        "PLINTH_METADATA": "postgresql+psycopg://root@127.0.0.1/test",
        "PYTHONPATH": _without(tmp_path, "psycopg"),
    }
    proc = plinth(tmp_path, "gc", env=env)
    assert_one_clean_line(proc, "metadata", "pip install 'plinth[postgres]'")


def test_json_flag_prints_the_error_shape(tmp_path: Path) -> None:
    import json

    (tmp_path / "plinth.yaml").write_text("artifact: store\n")
    proc = plinth(tmp_path, "gc", "--json")
    assert proc.returncode == 2
    (error,) = json.loads(proc.stdout)["errors"]
    assert error["type"] == "ConfigError"
    assert error["field"] == "artifact"
