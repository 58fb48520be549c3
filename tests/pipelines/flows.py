"""Pipeline files the executor tests write into their projects."""

#: Two branches that each wait for the other (so only a parallel executor finishes them),
#: joined: [left value, right value, ran in different processes, the joining pid].
BRANCHES = """
import os
import time
from pathlib import Path

import plinth


def _wait_for(other: str) -> None:
    # Each branch announces itself and waits for the other: only parallel branches finish.
    Path(f"started-{os.getpid()}-{other}").write_text("")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(list(Path(".").glob("started-*"))) >= 2:
            return
        time.sleep(0.01)
    raise RuntimeError("the other branch never started: branches did not run in parallel")


@plinth.step
def left(n: int) -> dict:
    _wait_for("left")
    return {"left": n, "pid": os.getpid()}


@plinth.step
def right(n: int) -> dict:
    _wait_for("right")
    return {"right": n * 2, "pid": os.getpid()}


@plinth.step
def join(a: dict, b: dict) -> list:
    return [a["left"], b["right"], a["pid"] != b["pid"], os.getpid()]


@plinth.pipeline
def fork(n: int = 3):
    join(left(n), right(n))
"""
