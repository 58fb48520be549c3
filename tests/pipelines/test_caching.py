"""Caching by content: a content change reruns, a path-only change hits, a code change or a
parameter change reruns, ``force`` reruns a step and everything after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import UsageError
from plinth.pipelines import run_pipeline


@pytest.fixture
def flows(write_flow: Callable[[str, str], str], project_dir: Path, flows_text: str) -> str:
    write_flow("flows.py", flows_text)
    (project_dir / "a.txt").write_text("hello")
    return "flows.py:words"


def _statuses(result: object) -> dict[str, str]:
    return {name: s.status for name, s in result.steps.items()}  # type: ignore[attr-defined]


def test_a_rerun_with_nothing_changed_is_fully_cached(
    project: Context, flows: str, calls: Callable[[], list[str]]
) -> None:
    first = run_pipeline(flows, {"path": "a.txt"})
    assert first.ok
    assert calls() == ["read", "shout", "count"]
    assert first.value("count") == 5
    assert first.value("shout") == "HELLO"
    again = run_pipeline(flows, {"path": "a.txt"})
    assert _statuses(again) == {"read": "cached", "shout": "cached", "count": "cached"}
    assert calls() == []
    assert all(s.cache_hit and s.attempts == 0 for s in again.steps.values())
    # a hit's outputs load from the artifact store
    assert again.value("count") == 5
    assert again.outputs["shout"] == "HELLO"
    source = again.steps["count"].step_run
    assert source is not None
    assert source.source_step_run_id == first.steps["count"].step_run.id


def test_a_path_only_change_hits_and_a_content_change_reruns(
    project: Context, flows: str, project_dir: Path, calls: Callable[[], list[str]]
) -> None:
    run_pipeline(flows, {"path": "a.txt"})
    calls()
    (project_dir / "moved").mkdir()
    (project_dir / "moved" / "b.txt").write_text("hello")
    moved = run_pipeline(flows, {"path": "moved/b.txt"})
    assert calls() == []
    assert _statuses(moved)["read"] == "cached"
    (project_dir / "moved" / "b.txt").write_text("hello!")
    edited = run_pipeline(flows, {"path": "moved/b.txt"})
    assert calls() == ["read", "shout", "count"]
    assert edited.value("count") == 6


def test_a_rewrite_with_the_same_bytes_hits(
    project: Context, flows: str, project_dir: Path, calls: Callable[[], list[str]]
) -> None:
    run_pipeline("flows.py:words", {"path": "a.txt"})
    calls()
    (project_dir / "a.txt").write_text("hello")  # rewritten, same bytes
    result = run_pipeline("flows.py:words", {"path": "a.txt"})
    assert calls() == []
    assert result.ok


def test_a_code_change_reruns_that_step_and_what_depends_on_it(
    project: Context, flows: str, write_flow: Callable[[str, str], str],
    calls: Callable[[], list[str]], flows_text: str,
) -> None:  # fmt: skip
    run_pipeline(flows, {"path": "a.txt"})
    calls()
    write_flow("flows.py", flows_text.replace("text.upper() * times", "text.upper() * times + '!'"))
    changed = run_pipeline(flows, {"path": "a.txt"})
    assert calls() == ["shout", "count"]
    assert _statuses(changed) == {"read": "cached", "shout": "succeeded", "count": "succeeded"}
    assert changed.value("count") == 6


def test_a_change_in_a_called_step_changes_the_callers_key(
    project: Context, write_flow: Callable[[str, str], str], calls: Callable[[], list[str]]
) -> None:
    text = """
    import plinth

    @plinth.step
    def helper(x: int) -> int:
        return x + 1

    @plinth.step
    def outer(x: int) -> int:
        with open("calls.log", "a") as log:
            log.write("outer\\n")
        return helper(x) * 10

    @plinth.pipeline
    def p(x: int = 1):
        outer(x)
    """
    write_flow("nested.py", text)
    assert run_pipeline("nested.py:p").value("outer") == 20
    calls()
    write_flow("nested.py", text.replace("x + 1", "x + 2"))
    assert run_pipeline("nested.py:p").value("outer") == 30
    assert calls() == ["outer"]


def test_a_parameter_change_reruns(
    project: Context, flows: str, calls: Callable[[], list[str]]
) -> None:
    run_pipeline(flows, {"path": "a.txt"})
    calls()
    result = run_pipeline(flows, {"path": "a.txt", "times": "2"})  # coerced by annotation
    assert calls() == ["shout", "count"]
    assert result.value("shout") == "HELLOHELLO"
    assert result.run.params == {"path": "a.txt", "times": 2}


def test_force_reruns_a_step_and_everything_downstream(
    project: Context, flows: str, calls: Callable[[], list[str]]
) -> None:
    run_pipeline(flows, {"path": "a.txt"})
    calls()
    forced = run_pipeline(flows, {"path": "a.txt"}, force=["shout"])
    assert calls() == ["shout", "count"]
    assert _statuses(forced) == {"read": "cached", "shout": "succeeded", "count": "succeeded"}
    with pytest.raises(UsageError, match="no such step"):
        run_pipeline(flows, {"path": "a.txt"}, force=["nope"])


def test_a_step_with_cache_off_always_runs(
    project: Context, write_flow: Callable[[str, str], str], calls: Callable[[], list[str]]
) -> None:
    write_flow(
        "fresh.py",
        """
        import plinth

        @plinth.step(cache=False)
        def now() -> int:
            with open("calls.log", "a") as log:
                log.write("now\\n")
            return 1

        @plinth.pipeline
        def p():
            now()
        """,
    )
    run_pipeline("fresh.py:p")
    run_pipeline("fresh.py:p")
    assert calls() == ["now", "now"]


def test_in_memory_outputs_pass_downstream_but_are_never_cached(
    project: Context, write_flow: Callable[[str, str], str], calls: Callable[[], list[str]]
) -> None:
    write_flow(
        "memory.py",
        """
        import plinth

        class Box:
            def __init__(self, v):
                self.v = v

        @plinth.step
        def make() -> Box:
            with open("calls.log", "a") as log:
                log.write("make\\n")
            return Box(3)

        @plinth.step
        def unbox(box: Box) -> int:
            with open("calls.log", "a") as log:
                log.write("unbox\\n")
            return box.v

        @plinth.pipeline
        def p():
            unbox(make())
        """,
    )
    first = run_pipeline("memory.py:p")
    assert first.value("unbox") == 3
    assert first.steps["make"].outputs[0]["kind"] == "memory"
    run_pipeline("memory.py:p")
    assert calls() == ["make", "unbox", "make", "unbox"]


def test_a_step_costs_one_ledger_write_once_its_cache_key_is_known(
    project: Context, flows: str, calls: Callable[[], list[str]]
) -> None:
    """A computed step: its start and its end (outputs, artifacts, lineage together); a hit
    of a rerun: one write, its key found in one lookup for the whole run up front."""
    import sqlalchemy as sa

    seen: dict[str, int] = {"reads": 0, "writes": 0}
    wrote: list[bool] = [False]

    def statement(conn: sa.Connection, cursor: object, sql: str, *args: object) -> None:
        if sql.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            wrote[0] = True

    def commit(conn: sa.Connection) -> None:
        seen["writes" if wrote[0] else "reads"] += 1
        wrote[0] = False

    engine = project.ledger.engine
    assert project.project.id  # the project's record exists before counting starts
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        first = run_pipeline(flows, {"path": "a.txt"})
        computed = dict(seen)
        seen.update(reads=0, writes=0)
        again = run_pipeline(flows, {"path": "a.txt"})
        rerun = dict(seen)
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)
    assert first.ok
    assert again.ok
    assert calls() == ["read", "shout", "count"]
    # 3 steps; the pipeline run's start, its target artifact and its end. Reads: the last
    # run of the pipeline, then (a first run) one cache lookup per step, or (a rerun) the
    # last run's steps and their keys, all at once.
    assert computed == {"writes": 2 * 3 + 3, "reads": 1 + 3}
    assert rerun == {"writes": 3 + 3, "reads": 1 + 2}
    count_run = again.steps["count"].step_run
    assert count_run is not None
    me = RecordRef("step_run", count_run.id)
    edges = {(e.src.type, e.relation) for e in project.ledger.lineage.edges_to(me)}
    assert edges == {("pipeline_run", "contains")}
    used = {(e.dst.type, e.relation) for e in project.ledger.lineage.edges_from(me)}
    assert used == {("step_run", "used")}
    first_shout = first.steps["shout"].step_run
    assert first_shout is not None
    stored = project.ledger.artifacts.list(RecordRef("step_run", first_shout.id))
    assert [a.path for a in stored] == ["outputs/return.json"]
