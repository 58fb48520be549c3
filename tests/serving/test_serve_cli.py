"""``plinth serve``: the CLI in-process for bad input, and once as a real server.

``test_real_server`` starts ``plinth serve`` in a subprocess on a free port, waits for
``/ready``, predicts once and terminates it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from plinth.context import Context


def test_serve_help_and_bad_spec(cli: Callable[..., Any], project: Context, tmp_path: Path) -> None:
    helped = cli("serve", "--help")
    assert helped.code == 0
    assert "plinth serve deployment.yaml" in helped.out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: d\nmodel: m@champion\nlimts: {}\n", encoding="utf-8")
    result = cli("serve", str(bad))
    assert result.code == 2
    assert "did you mean 'limits'" in result.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_real_server(served_project: Context, project_dir: Path) -> None:
    """A real uvicorn process: ready, one prediction, then terminated."""
    (project_dir / "deployment.yaml").write_text("name: web\nmodel: m@champion\n", encoding="utf-8")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "plinth", "serve", "deployment.yaml", "--port", str(port)],
        cwd=project_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{base}/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                break
            time.sleep(0.1)
        assert ready, process.stderr.read().decode() if process.poll() is not None else "not ready"
        answer = httpx.post(
            f"{base}/v1/predict", json={"records": [{"distance": 1.0, "hour": 2}]}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "m@1"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert b"deployment web@1" in err
