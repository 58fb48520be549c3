"""The process-pool executor (two independent branches at once, values through the blob
store), the ledger records and lineage of a run, and a training step's run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from plinth.context import Context
from plinth.entities import RecordRef
from plinth.pipelines import run_pipeline

from .flows import BRANCHES


def test_the_process_executor_runs_independent_branches_in_parallel(
    project: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("branches.py", BRANCHES)
    result = run_pipeline("branches.py:fork", executor="process")
    assert result.ok, result.error
    assert result.value("join")[:3] == [3, 6, True]
    assert result.run.executor == "process"
    # a rerun in-process hits the cache the workers filled
    again = run_pipeline("branches.py:fork")
    assert all(s.cache_hit for s in again.steps.values())


TRAIN = """
import plinth


@plinth.step
def data(n: int) -> list:
    return list(range(n))


@plinth.step
def train(xs: list) -> float:
    with plinth.start_run(experiment="pipe") as run:
        run.log_metric("loss", 1.0 / (1 + sum(xs)))
    return 0.5


@plinth.pipeline
def fit(n: int = 4):
    train(data(n))
"""


def test_runs_and_steps_are_records_with_lineage(
    project: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("train.py", TRAIN)
    result = run_pipeline("train.py:fit", trigger="manual", reason="a test")
    assert result.ok, result.error
    store = project.ledger.pipelines
    run = store.get_run(result.id)
    assert (run.status, run.trigger, run.reason, run.params) == (
        "succeeded", "manual", "a test", {"n": 4},
    )  # fmt: skip
    steps = {s.step: s for s in store.steps(result.id)}
    assert set(steps) == {"data", "train"}
    train = steps["train"]
    assert train.run_id is not None
    assert train.run_id == result.steps["train"].run_id
    assert project.ledger.runs.get_run(train.run_id).status == "finished"
    lineage = project.ledger.lineage
    edges = {(e.relation, e.dst.type) for e in lineage.edges_from(RecordRef("step_run", train.id))}
    assert ("ran", "run") in edges
    assert ("used", "step_run") in edges
    contained = lineage.edges_from(RecordRef("pipeline_run", result.id))
    assert {e.dst.id for e in contained if e.relation == "contains"} == {
        s.id for s in steps.values()
    }
    # outputs are artifacts of the step run, so gc keeps them
    [artifact] = project.ledger.artifacts.list(RecordRef("step_run", steps["data"].id))
    assert artifact.path == "outputs/return.json"
    assert artifact.digest == steps["data"].outputs[0]["digest"]


def test_a_path_output_is_stored_by_content(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path
) -> None:
    write_flow(
        "files.py",
        """
        from pathlib import Path

        import plinth

        @plinth.step
        def write(text: str) -> Path:
            out = Path("out.txt")
            out.write_text(text)
            return out

        @plinth.step
        def read(path: Path) -> str:
            return path.read_text()

        @plinth.pipeline
        def p(text: str = "hi"):
            read(write(text))
        """,
    )
    assert run_pipeline("files.py:p").value("read") == "hi"
    (project_dir / "out.txt").unlink()
    again = run_pipeline("files.py:p")
    assert again.steps["write"].cache_hit
    restored = again.value("write")
    assert isinstance(restored, Path)
    assert restored.read_text() == "hi"


def test_the_process_executor_kills_a_step_past_its_timeout(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path
) -> None:
    write_flow(
        "hang.py",
        """
        import os
        import time
        from pathlib import Path

        import plinth

        @plinth.step(timeout=2.0)
        def hang() -> int:
            Path("pid").write_text(str(os.getpid()))
            time.sleep(60)
            return 1

        @plinth.pipeline
        def p():
            hang()
        """,
    )
    result = run_pipeline("hang.py:p", executor="process")
    assert result.status == "failed"
    assert "worker process was killed" in (result.steps["hang"].error or "")
    pid = int((project_dir / "pid").read_text())
    import os

    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
