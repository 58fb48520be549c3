"""``plinth pipeline``: exit codes 0 / 1 / 2, --json shapes, resume, runs, show, graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plinth.context import Context


@pytest.fixture
def flows(project: Context, write_flow: Callable[[str, str], str], flows_text: str,
          project_dir: Path) -> str:  # fmt: skip
    write_flow("flows.py", flows_text)
    (project_dir / "a.txt").write_text("hello")
    return "flows.py:words"


def test_run_show_runs_and_graph(cli: Callable[..., Any], flows: str) -> None:
    done = cli("pipeline", "run", flows, "--param", "path=a.txt", "--json")
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["status"] == "succeeded"
    assert [s["step"] for s in data["steps"]] == ["read", "shout", "count"]
    assert {s["status"] for s in data["steps"]} == {"succeeded"}

    again = json.loads(cli("pipeline", "run", flows, "--param", "path=a.txt", "--json").out)
    assert [s["cache_hit"] for s in again["steps"]] == [True, True, True]
    forced = cli("pipeline", "run", flows, "--param", "path=a.txt", "--force", "count", "--json")
    assert [s["status"] for s in json.loads(forced.out)["steps"]][-1] == "succeeded"

    shown = json.loads(cli("pipeline", "show", data["id"], "--json").out)
    assert shown["id"] == data["id"]
    assert shown["steps"][0]["attempts"] == 1
    text = cli("pipeline", "show", data["id"])
    assert text.code == 0
    assert "shout" in text.out
    assert "succeeded" in text.out

    runs = json.loads(cli("pipeline", "runs", "--pipeline", "words", "--json").out)
    assert len(runs) == 3
    assert runs[-1]["id"] == data["id"]
    assert cli("pipeline", "graph", flows, "--param", "path=a.txt").out.split("\n")[0] == "read"
    mermaid = cli("pipeline", "graph", flows, "--param", "path=a.txt", "--mermaid").out
    assert mermaid.startswith("flowchart TD")
    assert "read -->|text| shout" in mermaid


def test_exit_codes(cli: Callable[..., Any], flows: str, write_flow: Callable[[str, str], str],
                    project_dir: Path) -> None:  # fmt: skip
    assert cli("pipeline", "run", "flows.py:nope").code == 2
    assert cli("pipeline", "run", flows).code == 2  # the path parameter is missing
    assert cli("pipeline", "run", flows, "--param", "oops").code == 2
    assert cli("pipeline", "run", flows, "--param", "path=a.txt", "--force", "x").code == 2
    write_flow(
        "bad.py",
        """
        from pathlib import Path
        import plinth

        @plinth.step
        def boom(x: int) -> int:
            if not Path("ok").exists():
                raise RuntimeError("boom")
            return x

        @plinth.pipeline
        def bad(x: int = 1):
            boom(x)
        """,
    )
    failed = cli("pipeline", "run", "bad.py:bad", "--json")
    assert failed.code == 1
    run_id = json.loads(failed.out)["id"]
    assert json.loads(failed.out)["steps"][0]["error"] == "RuntimeError: boom"
    (project_dir / "ok").write_text("")
    resumed = cli("pipeline", "resume", run_id, "--json")  # the target as recorded
    assert resumed.code == 0, resumed.err
    assert json.loads(resumed.out)["resumes"] == run_id
    assert cli("pipeline", "resume", run_id).code == 2  # no longer failed
    assert cli("pipeline", "show", "nope").code == 2


def test_every_pipeline_command_has_an_example(cli: Callable[..., Any]) -> None:
    for command in ("run", "resume", "runs", "show", "graph"):
        shown = cli("pipeline", command, "--help")
        assert shown.code == 0
        assert "plinth pipeline " + command in shown.out
