"""Failure handling: retries with backoff, resume from the failed step, timeouts, alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from plinth.context import Context
from plinth.pipelines import resume, run_pipeline

FLAKY = """
from pathlib import Path

import plinth


def _called(name):
    with open("calls.log", "a") as log:
        log.write(name + "\\n")


@plinth.step
def first(n: int) -> int:
    _called("first")
    return n + 1


@plinth.step(retries=3, retry_delay=0.01)
def flaky(x: int) -> int:
    _called("flaky")
    tries = Path("tries")
    seen = int(tries.read_text()) if tries.exists() else 0
    tries.write_text(str(seen + 1))
    if seen < 2:
        raise ConnectionError(f"try {seen + 1} failed")
    return x * 10


@plinth.step
def broken(x: int) -> int:
    _called("broken")
    if not Path("fixed").exists():
        raise ValueError("not fixed yet")
    return x + 100


@plinth.step
def last(x: int) -> int:
    _called("last")
    return x + 1


@plinth.pipeline
def retrying(n: int = 1):
    flaky(first(n))


@plinth.pipeline(alerts=[{"type": "log", "path": "alerts.log"}])
def fragile(n: int = 1):
    last(broken(first(n)))
"""


def test_a_step_failing_twice_then_succeeding_takes_three_attempts(
    project: Context, write_flow: Callable[[str, str], str], calls: Callable[[], list[str]]
) -> None:
    write_flow("flaky.py", FLAKY)
    result = run_pipeline("flaky.py:retrying")
    assert result.ok
    assert result.steps["flaky"].attempts == 3
    assert result.value("flaky") == 20
    assert calls() == ["first", "flaky", "flaky", "flaky"]
    [recorded] = [s for s in project.ledger.pipelines.steps(result.id) if s.step == "flaky"]
    assert (recorded.status, recorded.attempts) == ("succeeded", 3)


def test_a_failed_run_resumes_from_the_failed_step(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path,
    calls: Callable[[], list[str]],
) -> None:  # fmt: skip
    write_flow("fragile.py", FLAKY)
    failed = run_pipeline("fragile.py:fragile", {"n": 2})
    assert failed.status == "failed"
    assert "not fixed yet" in (failed.error or "")
    statuses = {n: s.status for n, s in failed.steps.items()}
    assert statuses == {"first": "succeeded", "broken": "failed", "last": "skipped"}
    assert calls() == ["first", "broken"]
    # the failure was sent to the pipeline's alert route
    [line] = (project_dir / "alerts.log").read_text().splitlines()
    alert = json.loads(line)
    assert alert["monitor"] == "pipeline:fragile"
    assert alert["details"]["step"] == "broken"

    (project_dir / "fixed").write_text("yes")
    resumed = resume(failed.id)
    assert resumed.ok
    assert resumed.run.resumes == failed.id
    assert calls() == ["broken", "last"]  # first is reused, not rerun
    assert resumed.steps["first"].status == "cached"
    assert resumed.value("last") == 104
    assert project.ledger.pipelines.get_run(failed.id).status == "resumed"


def test_resume_reuses_steps_even_when_their_cache_is_off(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path,
    calls: Callable[[], list[str]],
) -> None:  # fmt: skip
    write_flow(
        "nocache.py",
        FLAKY.replace("@plinth.step\ndef first", "@plinth.step(cache=False)\ndef first"),
    )
    failed = run_pipeline("nocache.py:fragile")
    calls()
    (project_dir / "fixed").write_text("yes")
    assert resume(failed.id).ok
    assert calls() == ["broken", "last"]


def test_a_step_past_its_timeout_fails_with_a_timeout_error(
    project: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow(
        "slow.py",
        """
        import threading

        import plinth

        release = threading.Event()

        @plinth.step(timeout=0.2)
        def slow() -> int:
            release.wait(5)
            return 1

        @plinth.pipeline
        def p():
            slow()
        """,
    )
    started = time.perf_counter()
    result = run_pipeline("slow.py:p")
    assert time.perf_counter() - started < 4
    assert result.status == "failed"
    assert result.steps["slow"].error is not None
    assert result.steps["slow"].error.startswith("TimeoutError")
    import sys

    [module] = [m for n, m in sys.modules.items() if n.startswith("plinth_pipeline_slow_")]
    module.release.set()  # let the abandoned thread end


def test_a_failed_gate_or_bad_input_is_not_retried(
    project: Context, write_flow: Callable[[str, str], str], project_dir: Path,
    calls: Callable[[], list[str]],
) -> None:  # fmt: skip
    write_flow(
        "gated.py",
        """
        import plinth
        from plinth.errors import UsageError
        from plinth.pipelines.gates import validation_gate


        def _called(name):
            with open("calls.log", "a") as log:
                log.write(name + "\\n")


        @plinth.step(retries=3, retry_delay=0.01)
        def gate(ref: str) -> str:
            _called("gate")
            validation_gate(ref, "suite.yaml")
            return ref


        @plinth.step(retries=3, retry_delay=0.01)
        def picky(n: int) -> int:
            _called("picky")
            raise UsageError(f"n={n} is not a valid count", field="n")


        @plinth.pipeline
        def gated(ref: str):
            gate(ref)


        @plinth.pipeline
        def bad(n: int = 1):
            picky(n)
        """,
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    from plinth import datasets

    pq.write_table(pa.table({"distance": [100.0, -5.0]}), project_dir / "flights.parquet")
    (project_dir / "suite.yaml").write_text(
        "suite: flights\nchecks:\n  - {check: between, column: distance, min: 0, max: 5000}\n"
    )
    ref = datasets.add(project_dir / "flights.parquet", "flights", suite="suite.yaml").version.ref

    result = run_pipeline("gated.py:gated", {"ref": ref})
    assert result.status == "failed"
    assert result.steps["gate"].attempts == 1
    assert calls() == ["gate"]
    decisions = project.ledger.pipelines.decisions(project.project.id, subject=ref)
    assert [(d.kind, d.outcome, d.pipeline_run_id) for d in decisions] == [
        ("gate", "failed", result.id)
    ]

    bad = run_pipeline("gated.py:bad")
    assert bad.status == "failed"
    assert bad.steps["picky"].attempts == 1
    assert "not a valid count" in (bad.steps["picky"].error or "")
    assert calls() == ["picky"]
