"""The progress bar of long commands (``data add``, ``data profile``, ``validate run``,
``monitor drift``, ``models predict``): a :class:`plinth.progress.Progress` drawn by Rich.

Drawn on stderr, transient (gone when the work ends), and only when stderr is a terminal and
``--json`` is off; so piped or captured output never holds one. Rich decides what a terminal
is: ``TTY_COMPATIBLE=1`` (or ``FORCE_COLOR``) forces the bar, ``TTY_COMPATIBLE=0`` turns it
off. The pillar functions report once per chunk (a file, a column, a record batch); updates
reach Rich at most ten times a second, so a bar costs nothing measurable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plinth.progress import Progress

__all__ = ["TerminalProgress", "progress_bar"]

#: Seconds between two updates handed to Rich.
INTERVAL = 0.1


class TerminalProgress:
    """One bar per phase: what is done (``hashing``), a bar, done/total units, the rate and
    the time left. ``advance`` only adds to a counter until :data:`INTERVAL` has passed."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
        from rich.text import Text

        class Rate(ProgressColumn):
            """Units per second (``1,204 files/s``), once Rich has samples to estimate it."""

            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                unit = task.fields.get("unit", "")
                return Text("" if speed is None else f"{speed:,.0f} {unit}/s")

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            Rate(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            refresh_per_second=10,
            redirect_stdout=False,  # stdout may be a pipe while stderr is the terminal
        )
        self._task: Any = None
        self._pending = 0
        self._last = 0.0

    def start(self, total: int, unit: str, *, label: str = "") -> None:
        from plinth.cli._common import safe_markup

        self.finish()
        if not self._bar.live.is_started:
            self._bar.start()
        # a label may hold a record's name (``scoring with NAME@4``): shown as text
        self._task = self._bar.add_task(safe_markup(label or "working"), total=total, unit=unit)
        self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self._pending += n
        now = time.monotonic()
        if now - self._last >= INTERVAL:
            self._flush(now)

    def finish(self) -> None:
        if self._task is None:
            return
        self._flush(time.monotonic())
        self._bar.remove_task(self._task)
        self._task = None

    def close(self) -> None:
        """End the current phase and take the bar off the terminal."""
        self.finish()
        self._bar.stop()

    def _flush(self, now: float) -> None:
        if self._pending and self._task is not None:
            self._bar.advance(self._task, self._pending)
        self._pending = 0
        self._last = now


@contextmanager
def progress_bar(as_json: bool) -> Iterator[Progress | None]:
    """A :class:`TerminalProgress` on stderr while the block runs, or ``None`` (report
    nothing) with ``--json`` or when stderr is not a terminal."""
    if as_json:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal or console.is_dumb_terminal:
        yield None
        return
    bar = TerminalProgress(console)
    try:
        yield bar
    finally:
        bar.close()
