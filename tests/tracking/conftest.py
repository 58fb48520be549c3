"""Tracking fixtures: a project with the embedded stores, made current for the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.tracking.runs import active_run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A fresh embedded project (system metrics off unless a test turns them on)."""
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    ctx = plinth.init(folder, system_metrics=False)
    yield ctx
    while (run := active_run()) is not None:
        run.end("finished")
    ctx.close()
