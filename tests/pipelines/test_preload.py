"""Warm process-executor workers: the forkserver imports the steps' installed libraries once,
so a worker has them at its first step (preload.py). The forkserver is process-global, so
each run is a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from plinth.context import Context
from plinth.pipelines.preload import THREAD_VARIABLES, library_modules
from plinth.pipelines.steps import Step

# threadpoolctl: an installed library that neither plinth nor this script imports.
PROBES = """
import json
import os
import sys

import plinth
from plinth.pipelines.executors import ProcessExecutor


@plinth.step
def probe(i: int, mode: str) -> list:
    had = "threadpoolctl" in sys.modules
    import threadpoolctl  # noqa: F401

    return [had, os.getpid(), os.environ.get("OPENBLAS_NUM_THREADS")]


@plinth.pipeline
def probes(mode: str):
    for i in range(4):
        probe(i, mode)  # the mode in the cache key: no run reuses another's


if __name__ == "__main__":
    plinth.init(".", system_metrics=False)
    assert "threadpoolctl" not in sys.modules
    executor = ProcessExecutor(2, preload=sys.argv[1] == "preload")
    result = probes.run({"mode": sys.argv[1]}, executor=executor)
    executor.close()
    assert result.ok, result.error
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # the parent's environment is unchanged
    print(json.dumps([result.value(name) for name in result.steps]))
"""


def _probe(folder: Path, mode: str) -> list[list[object]]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "probes.py", mode],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: list[list[object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_a_worker_has_its_steps_libraries_imported_at_its_first_step(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path
) -> None:
    write_flow("probes.py", PROBES)
    warm = _probe(project_dir, "preload")
    assert len(warm) == 4
    assert all(had is True for had, _, _ in warm), warm
    # Two workers share the cores: the native math libraries get cores // 2 threads each.
    per_worker = str(max(1, (os.cpu_count() or 1) // 2))
    assert {threads for _, _, threads in warm} == {per_worker}, warm
    # Without preloading, each worker imports the library on its own first step.
    cold = _probe(project_dir, "cold")
    firsts: dict[object, bool] = {}
    for had, pid, _ in cold:
        firsts.setdefault(pid, bool(had))
    assert firsts, cold
    assert not any(firsts.values()), cold


LOCAL = """
import threadpoolctl as tp

import helper_mod
from helper_mod import helper


def step(x: int) -> int:
    import json
    import joblib.parallel
    from . import sibling  # relative: never a library

    return helper(x)
"""


def test_only_installed_libraries_are_preloaded_never_project_code(project_dir: Path) -> None:
    (project_dir / "helper_mod.py").write_text("def helper(x):\n    return x\n")
    (project_dir / "local_steps.py").write_text(LOCAL)
    sys.path.insert(0, str(project_dir))
    try:
        import importlib

        module = importlib.import_module("local_steps")
        found = library_modules([Step(module.step)])
    finally:
        sys.path.remove(str(project_dir))
        for name in ("local_steps", "helper_mod"):
            sys.modules.pop(name, None)
    # Libraries from site-packages (body imports and module globals); not the project's
    # helper_mod, not the stdlib (json), not the relative import.
    assert set(found) == {"joblib.parallel", "threadpoolctl"}, found
