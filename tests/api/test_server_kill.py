"""Killing the team server mid-run loses no metric: the journal keeps them until it is back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.testing.server import ServerHandle, start_server

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

PROJECT = "kill"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path / "server", in_thread=False)
    try:
        handle.create_project(PROJECT)
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def ctx(server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PLINTH_SERVER", server.url)
    monkeypatch.setenv("PLINTH_TOKEN", server.token("ada", PROJECT, "write"))
    monkeypatch.setenv("PLINTH_PROJECT", PROJECT)
    context = plinth.init(folder, system_metrics=False, flush_timeout=60, connect_timeout=2)
    yield context
    context.close()


def _values(run_id: str) -> list[float]:
    return plinth.metric_history(run_id, "x").values


def test_a_server_killed_mid_run_and_restarted_loses_no_metric(
    server: ServerHandle, ctx: Context
) -> None:
    run = plinth.start_run("kill")
    for i in range(2000):
        run.log_metric("x", float(i), step=i)
    assert run.flush(30)
    server.kill()  # SIGKILL: no goodbye
    for i in range(2000, 6000):
        run.log_metric("x", float(i), step=i)  # journaled; training never notices
    assert not run.flush(1.0), "nothing reaches a dead server"
    server.restart()
    for i in range(6000, 8000):
        run.log_metric("x", float(i), step=i)
    run.end()
    assert plinth.get_run(run.id).status == "finished"
    assert _values(run.id) == [float(i) for i in range(8000)]
    assert not list((ctx.settings.data_dir / "journals").glob("*.plj"))


def test_a_run_ending_while_the_server_is_down_finishes_once_it_is_back(
    server: ServerHandle, ctx: Context
) -> None:
    run = plinth.start_run("kill")
    server.kill()
    for i in range(3000):
        run.log_metric("x", float(i), step=i)

    def come_back() -> None:
        time.sleep(1.0)
        server.restart()

    restarted = threading.Thread(target=come_back)
    restarted.start()
    run.end()  # waits (up to flush_timeout) for the server to come back
    restarted.join()
    assert plinth.get_run(run.id).status == "finished"
    assert _values(run.id) == [float(i) for i in range(3000)]
    assert not list((ctx.settings.data_dir / "journals").glob("*.plj"))
