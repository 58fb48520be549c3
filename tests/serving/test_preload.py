"""``plinth serve --workers 2 --preload``: forked workers that share the parent's memory.

A real server in a subprocess: both workers answer on one port, each of them shares
anonymous memory (the imported libraries' objects, copy-on-write) with the parent that
loaded them — which workers spawned as fresh interpreters never do — and SIGTERM to the
parent stops the whole tree.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from plinth.context import Context

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--preload forks")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _shared_anonymous_kb(pid: int) -> int:
    """Dirty pages this process shares with another (after a fork: copy-on-write ones)."""
    with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
        for line in f:
            if line.startswith("Shared_Dirty:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux /proc")
def test_preloaded_workers_answer_and_share_the_parents_memory(
    served_project: Context, project_dir: Path
) -> None:
    (project_dir / "deployment.yaml").write_text("name: web\nmodel: m@champion\n", "utf-8")
    port = _free_port()
    argv = ["serve", "deployment.yaml", "--port", str(port), "--workers", "2", "--preload"]
    log = project_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "plinth", *argv], cwd=project_dir, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        ready = False
        while time.monotonic() < deadline and process.poll() is None and not ready:
            time.sleep(0.1)
            workers = _children(process.pid)
            try:
                ready = len(workers) == 2 and httpx.get(f"{base}/ready").status_code == 200
            except httpx.TransportError:
                ready = False
        assert ready, log.read_text("utf-8")[-3000:]
        answers = [
            httpx.post(f"{base}/v1/predict", json={"records": [{"distance": 1.0, "hour": 2}]})
            for _ in range(8)
        ]
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["model_version"] for a in answers} == {"m@1"}
        for pid in workers:  # spawned interpreters share no anonymous memory at all
            assert _shared_anonymous_kb(pid) > 20_000
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"
