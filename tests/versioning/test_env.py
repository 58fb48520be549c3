"""capture_environment, diff_environments and export_environment."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from plinth.context import Context
from plinth.errors import UsageError
from plinth.versioning import (
    EnvironmentCapture,
    PackageDiff,
    capture_environment,
    diff_environments,
    export_environment,
    save_environment,
)
from plinth.versioning.env import environment_digest

PROBE = """
import json, sys
from plinth.versioning import capture_environment
env = capture_environment()
print(json.dumps({"digest": env.digest, "torch": "torch" in sys.modules}))
"""


def _probe() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def test_digest_is_stable_across_processes() -> None:
    first, second = _probe(), _probe()
    assert first["digest"] == second["digest"] == capture_environment().digest
    assert first["torch"] is False  # capturing never imports torch


def test_capture_lists_this_environment() -> None:
    env = capture_environment()
    assert env.packages["pytest"] == pytest.__version__
    assert "plinth" in env.packages
    assert all(name == name.lower() and "_" not in name for name in env.packages)
    assert env.python == ".".join(map(str, sys.version_info[:3]))
    assert env.extra["cpu_count"] >= 1
    assert env.extra["cpu"]
    assert env.extra["machine"]
    if importlib.util.find_spec("pynvml") is None:
        assert "cuda" not in env.extra  # no NVML: no GPU fields, and no error
    assert capture_environment() is env  # computed once per process


def test_digest_covers_python_packages_and_machine_only() -> None:
    packages = {"numpy": "2.0.0", "pandas": "2.2.2"}
    base = environment_digest("3.11.7", packages, "x86_64", "cpython")
    assert base == environment_digest(
        "3.11.7", dict(reversed(packages.items())), "x86_64", "cpython"
    )
    assert base != environment_digest("3.11.7", {**packages, "numpy": "2.0.1"}, "x86_64", "cpython")
    assert base != environment_digest("3.12.0", packages, "x86_64", "cpython")
    assert base != environment_digest("3.11.7", packages, "aarch64", "cpython")
    assert len(base) == 64


def test_diff_environments() -> None:
    recorded = {"numpy": "1.26.4", "Scikit_Learn": "1.4.0", "old-lib": "0.1", "same": "1"}
    current = {"numpy": "2.0.0", "scikit-learn": "1.4.0", "new.lib": "3", "same": "1"}
    assert diff_environments(recorded, current) == [
        PackageDiff("new-lib", None, "3"),
        PackageDiff("numpy", "1.26.4", "2.0.0"),
        PackageDiff("old-lib", "0.1", None),
    ]
    kinds = [d.kind for d in diff_environments(recorded, current)]
    assert kinds == ["added", "changed", "removed"]
    assert diff_environments(current, current) == []


SAMPLE = EnvironmentCapture(
    digest="ab" * 32,
    python="3.11.7",
    platform="Linux-6.1-x86_64-with-glibc2.36",
    packages={"zlib-ng": "1.0", "numpy": "1.26.4", "plinth": "0.1.0"},
    extra={"editable": ["plinth"]},
)


def test_export_requirements() -> None:
    text = export_environment(SAMPLE, "requirements")
    lines = text.splitlines()
    assert lines[0] == f"# plinth environment {'ab' * 32}"
    pins = [ln for ln in lines if not ln.startswith("#")]
    assert pins[0] == "numpy==1.26.4"
    assert pins[1].startswith("plinth==0.1.0  # installed from a local folder")
    assert pins[2] == "zlib-ng==1.0"


def test_export_dockerfile() -> None:
    text = export_environment(SAMPLE, "dockerfile")
    assert "FROM python:3.11-slim" in text
    assert f"# plinth environment {'ab' * 32}" in text
    assert "COPY requirements.txt /app/requirements.txt" in text
    assert "RUN pip install --no-cache-dir -r /app/requirements.txt" in text
    assert "WORKDIR /app" in text


def test_export_unknown_format() -> None:
    with pytest.raises(UsageError, match="unknown environment export format 'conda'"):
        export_environment(SAMPLE, "conda")


def test_requirements_install_this_environment_again(tmp_path: Path) -> None:
    """The export is a valid pip requirements file naming this venv's versions."""
    text = export_environment(capture_environment(), "requirements")
    assert f"pytest=={pytest.__version__}\n" in text
    (tmp_path / "requirements.txt").write_text(text)
    # `pip install --dry-run` would need the network; parsing is what we can check here.
    from packaging.requirements import Requirement

    for line in text.splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line.split("  #")[0])
            assert str(req.specifier).startswith("==")


def test_save_environment_stores_once(tmp_path: Path) -> None:
    with Context.open(tmp_path, metadata="sqlite:///l.db", artifacts="a") as ctx:
        first = save_environment(ctx=ctx)
        second = save_environment(ctx=ctx)
        assert first.id == second.id
        assert first.digest == capture_environment().digest
        assert first.packages == capture_environment().packages


def test_export_refuses_a_capture_outside_the_packaging_grammar() -> None:
    """Exports are validated: a pin that would become a pip option is refused, not written."""
    bad = EnvironmentCapture(
        SAMPLE.digest, SAMPLE.python, SAMPLE.platform, {"six": "1.16.0\n--index-url x"}, {}
    )
    for fmt in ("requirements", "dockerfile"):
        with pytest.raises(UsageError, match=r"field 'packages\.six'") as caught:
            export_environment(bad, fmt)
        assert caught.value.field == "packages.six"
