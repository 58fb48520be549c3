"""Scenes for pipeline tests: step files written into the project, a call log to count runs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

#: Steps that append their name to calls.log in the working directory, so a test can see
#: which ones really ran (a cache hit does not write).
FLOWS = """
from pathlib import Path

import plinth


def _called(name: str) -> None:
    with open("calls.log", "a") as log:
        log.write(name + "\\n")


@plinth.step
def read(path: Path) -> str:
    _called("read")
    return path.read_text()


@plinth.step
def shout(text: str, times: int = 1) -> str:
    _called("shout")
    return text.upper() * times


@plinth.step
def count(text: str) -> int:
    _called("count")
    return len(text)


@plinth.pipeline
def words(path: Path, times: int = 1):
    count(shout(read(path), times=times))
"""


@pytest.fixture
def flows_text() -> str:
    """The text of a step file with steps read -> shout -> count and pipeline ``words``."""
    return FLOWS


@pytest.fixture
def write_flow(project_dir: Path) -> Callable[[str, str], str]:
    """Write a step file into the project; returns its ``FILE.py`` name."""

    def write(name: str, text: str) -> str:
        (project_dir / name).write_text(textwrap.dedent(text))
        return name

    return write


@pytest.fixture
def calls(project_dir: Path) -> Callable[[], list[str]]:
    """The steps that ran since the last call (read and cleared)."""

    def read() -> list[str]:
        log = project_dir / "calls.log"
        if not log.exists():
            return []
        names = log.read_text().split()
        log.unlink()
        return names

    return read
