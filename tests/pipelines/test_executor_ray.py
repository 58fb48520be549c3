"""The Ray executor on a local Ray cluster (the shared session-wide ``ray_cluster`` fixture,
2 CPUs): parallel branches, records and lineage, caching shared with the in-process
executor, resources, timeouts, retries, and the default executor never importing Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import UsageError
from plinth.pipelines import run_pipeline

from .flows import BRANCHES


@pytest.fixture
def on_ray(project: Context, ray_cluster: Any) -> Context:
    """A project with the session's local Ray cluster up."""
    return project


def test_independent_branches_run_in_parallel_as_ray_tasks(
    on_ray: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("ray_branches.py", BRANCHES)
    result = run_pipeline("ray_branches.py:fork", executor="ray")
    assert result.ok, result.error
    left, right, apart, pid = result.value("join")
    assert (left, right, apart) == (3, 6, True)
    assert pid != os.getpid(), "the step ran in a Ray worker, not in this process"
    # records: the run names its executor; every step succeeded and stored its output
    store = on_ray.ledger.pipelines
    assert store.get_run(result.id).executor == "ray"
    steps = {s.step: s for s in store.steps(result.id)}
    assert {name: s.status for name, s in steps.items()} == dict.fromkeys(
        ("left", "right", "join"), "succeeded"
    )
    # lineage: the pipeline run contains the steps; join used both branches
    lineage = on_ray.ledger.lineage
    contained = lineage.edges_from(RecordRef("pipeline_run", result.id))
    assert {e.dst.id for e in contained if e.relation == "contains"} == {
        s.id for s in steps.values()
    }
    used = lineage.edges_from(RecordRef("step_run", steps["join"].id))
    assert {e.dst.id for e in used if e.relation == "used"} == {
        steps["left"].id,
        steps["right"].id,
    }
    # outputs are artifacts of their step runs in the content-addressed store
    [artifact] = on_ray.ledger.artifacts.list(RecordRef("step_run", steps["left"].id))
    assert artifact.digest == steps["left"].outputs[0]["digest"]
    stored = json.loads(on_ray.blobs.read_bytes(artifact.digest))
    assert stored == result.value("left")
    assert stored["left"] == 3
    assert stored["pid"] != os.getpid()


def test_a_run_on_ray_fills_the_cache_an_in_process_rerun_hits(
    on_ray: Context,
    write_flow: Callable[[str, str], str],
    flows_text: str,
    calls: Callable[[], list[str]],
) -> None:
    write_flow("ray_flows.py", flows_text)
    (Path.cwd() / "in.txt").write_text("hi")
    first = run_pipeline("ray_flows.py:words", params={"path": Path("in.txt")}, executor="ray")
    assert first.ok, first.error
    assert first.value("count") == 2
    assert sorted(calls()) == ["count", "read", "shout"], "steps ran in the driver's folder"
    again = run_pipeline("ray_flows.py:words", params={"path": Path("in.txt")})
    assert again.ok, again.error
    assert all(s.cache_hit for s in again.steps.values())
    assert calls() == []
    assert again.value("count") == 2
    # and the other way round: an in-process run's outputs feed a Ray rerun's cache hits
    (Path.cwd() / "in.txt").write_text("hello")
    local = run_pipeline("ray_flows.py:words", params={"path": Path("in.txt"), "times": 2})
    assert local.ok
    assert local.value("count") == 10
    calls()
    remote = run_pipeline(
        "ray_flows.py:words", params={"path": Path("in.txt"), "times": 2}, executor="ray"
    )
    assert all(s.cache_hit for s in remote.steps.values())
    assert calls() == []


def test_an_edited_step_file_is_imported_again_by_long_lived_workers(
    on_ray: Context, write_flow: Callable[[str, str], str]
) -> None:
    flow = """
import plinth


@plinth.step(cache=False)
def answer() -> int:
    return {value}


@plinth.pipeline
def ask():
    answer()
"""
    for value in (1, 2):
        write_flow("ray_edited.py", flow.replace("{value}", str(value)))
        os.utime("ray_edited.py", ns=(value * 10**9, value * 10**9))
        for _ in range(3):  # more attempts than workers: each worker sees the new code
            result = run_pipeline("ray_edited.py:ask", executor="ray")
            assert result.ok, result.error
            assert result.value("answer") == value


RESOURCES = """
import plinth


@plinth.step(resources={"cpu": 1, "memory": "100MB"})
def modest() -> dict:
    import ray

    return ray.get_runtime_context().get_assigned_resources()


@plinth.step(resources={"gpu": 64})
def greedy(x: dict) -> int:
    return 1


@plinth.pipeline
def ask():
    greedy(modest())
"""


def test_steps_get_their_resources_and_an_infeasible_ask_fails_at_once(
    on_ray: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("ray_resources.py", RESOURCES)
    started = time.perf_counter()
    result = run_pipeline("ray_resources.py:ask", executor="ray")
    assert time.perf_counter() - started < 30, "an infeasible ask must not wait for resources"
    modest, greedy = result.steps["modest"], result.steps["greedy"]
    assert modest.ok, modest.error
    assigned = result.value("modest")
    assert assigned["CPU"] == 1.0
    assert assigned["memory"] == 100e6
    assert greedy.status == "failed"
    assert greedy.error is not None
    assert "asks the Ray cluster for 1 CPU, 64 GPU: no live node has that much" in greedy.error
    assert "(the most one node has: 2 CPU, 0 GPU)" in greedy.error
    assert result.run.status == "failed"


SLOW = """
import os
import time
from pathlib import Path

import plinth


@plinth.step(timeout=1.5)
def slow() -> int:
    Path("slow.pid").write_text(str(os.getpid()))
    time.sleep(60)
    return 1


@plinth.pipeline
def wait():
    slow()
"""


def test_a_step_past_its_timeout_is_cancelled_and_its_worker_killed(
    on_ray: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("ray_slow.py", SLOW)
    started = time.perf_counter()
    result = run_pipeline("ray_slow.py:wait", executor="ray")
    assert time.perf_counter() - started < 20
    step = result.steps["slow"]
    assert step.status == "failed"
    assert step.error is not None
    assert step.error.startswith("TimeoutError:")
    assert "within 1.5 s" in step.error
    assert "cancelled" in step.error
    pid = int(Path("slow.pid").read_text())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "ray.cancel(force=True) kills the worker"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # the process ended between the two checks
        return False
    return stat.split(")")[-1].split()[0] != "Z"


FLAKY = """
from pathlib import Path

import plinth


@plinth.step(retries=2, retry_delay=0.01)
def flaky() -> int:
    tries = Path("tries")
    seen = int(tries.read_text()) if tries.exists() else 0
    tries.write_text(str(seen + 1))
    if seen < 2:
        raise ConnectionError(f"try {seen + 1} failed")
    return seen


@plinth.pipeline
def again():
    flaky()
"""


def test_the_runner_retries_a_failing_ray_task(
    on_ray: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("ray_flaky.py", FLAKY)
    result = run_pipeline("ray_flaky.py:again", executor="ray")
    assert result.ok, result.error
    assert result.steps["flaky"].attempts == 3
    assert result.value("flaky") == 2


def test_a_memory_artifact_store_is_refused(
    project_dir: Path, write_flow: Callable[[str, str], str], flows_text: str
) -> None:
    ctx = plinth.init(project_dir, system_metrics=False, artifacts="memory://")
    try:
        write_flow("ray_mem.py", flows_text)
        with pytest.raises(UsageError, match="memory:// is not visible to Ray workers") as err:
            run_pipeline("ray_mem.py:words", params={"path": Path("x")}, executor="ray")
        assert err.value.field == "artifacts"
    finally:
        ctx.close()


def test_running_a_pipeline_with_the_default_executor_never_imports_ray(
    project_dir: Path, write_flow: Callable[[str, str], str], flows_text: str
) -> None:
    write_flow("flows.py", flows_text)
    (project_dir / "in.txt").write_text("abc")
    script = (
        "import sys, pathlib, plinth\n"
        "from plinth.pipelines import run_pipeline\n"
        "ctx = plinth.init('.', system_metrics=False)\n"
        "result = run_pipeline('flows.py:words', params={'path': pathlib.Path('in.txt')})\n"
        "assert result.ok, result.error\n"
        "print(result.value('count'), 'ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project_dir, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False"]


@pytest.mark.parametrize(
    ("size", "expected"),
    [("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), ("1.5 g", 1_500_000_000), ("4e9", 4 * 10**9)],
)
def test_a_memory_resource_may_be_a_size(size: str, expected: int) -> None:
    from plinth.pipelines.executors_ray import ray_options
    from plinth.pipelines.steps import StepOptions

    resources = StepOptions(resources={"memory": size}).resources  # type: ignore[dict-item]
    assert resources == {"memory": expected}
    assert ray_options(dict(resources)) == {"memory": expected}


def test_a_memory_size_that_is_not_one_is_refused() -> None:
    from plinth.pipelines.steps import StepOptions

    with pytest.raises(UsageError, match="a size like '2GB' or '512MiB', got 'lots'"):
        StepOptions(resources={"memory": "lots"})  # type: ignore[dict-item]
