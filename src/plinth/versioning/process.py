"""The rerun as a child process: its output streamed line by line, its stderr tail kept."""

from __future__ import annotations

import collections
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from plinth.errors import UsageError

__all__ = ["TAIL_LINES", "run_child"]

#: Lines of the child's stderr kept for the result when it fails.
TAIL_LINES = 40


def run_child(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float | None,
    echo: Callable[[str], None] | None,
) -> tuple[int | None, str]:
    """Run the rerun; its exit code (None on timeout) and the tail of its stderr."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise UsageError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    assert proc.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, echo, None), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, echo, tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    for reader in readers:
        reader.join(timeout=5)
    return code, "".join(tail)


def _pump(
    stream: IO[str],
    echo: Callable[[str], None] | None,
    tail: collections.deque[str] | None,
) -> None:
    with stream:
        for line in stream:
            if echo is not None:
                echo(line.rstrip("\n"))
            if tail is not None:
                tail.append(line)
