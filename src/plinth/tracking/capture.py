"""What a run records about where it came from: code, argv and environment, once per run.

The capture itself lives in :mod:`plinth.versioning` (code and environment); this module
only decides what a new run stores and when.

``git status`` takes a few milliseconds (a child process), so it runs while the run starts:
the run is created with the part of its source known at once (working directory, argv,
interpreter), and the whole source replaces it as soon as git answers — written by the run's
ingest thread, or by ``end()`` in its closing transaction when the run is shorter than that.
When this process's last ``git status`` of the repository still holds (nothing it depends on
changed, :mod:`plinth.versioning.git_state`), no git runs and the capture is :attr:`ready`:
the run is created with its whole source.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plinth.context import Context
from plinth.guards.secrets import redact_entry_point

if TYPE_CHECKING:
    from plinth.versioning.code import PendingSource, SourceCapture
    from plinth.versioning.jupyter import NotebookCapture

__all__ = ["CapturedContext", "capture_run_context"]


class CapturedContext:
    """A run's capture: the environment (stored) and the source (maybe still in git's hands)."""

    def __init__(
        self,
        pending: PendingSource,
        entry_point: Mapping[str, Any] | None,
        environment_id: str | None,
        notebook: NotebookCapture | None = None,
    ) -> None:
        self.environment_id = environment_id
        self._pending = pending
        # Inside Jupyter: the notebook (and the cells the kernel ran) is the run's code.
        self._notebook = notebook
        # An entry point given by the caller is redacted like a detected one.
        self._entry_point = redact_entry_point(entry_point)
        self._lock = threading.Lock()
        self._stored = False

    @property
    def ready(self) -> bool:
        """Whether :meth:`source` returns without waiting for git."""
        return self._pending.ready

    @property
    def initial_source(self) -> dict[str, Any]:
        """What the run is created with: known without waiting for git."""
        info = dict(self._pending.base)
        if self._entry_point is not None:
            info["entry_point"] = self._entry_point
        if self._notebook is not None:
            _add_notebook(info, self._notebook, self._entry_point is None)
        return info

    def result(self) -> SourceCapture:
        """The whole capture (waits for git)."""
        return self._pending.result()

    def source(self) -> dict[str, Any]:
        """The run's whole ``source`` record (waits for git)."""
        info = dict(self.result().info)
        if self._entry_point is not None:
            info["entry_point"] = self._entry_point
        if self._notebook is not None:
            _add_notebook(info, self._notebook, self._entry_point is None)
        return info

    def claim(self) -> bool:
        """True for exactly one caller: the one that stores the source."""
        with self._lock:
            if self._stored:
                return False
            self._stored = True
            return True

    def release(self) -> None:
        """Give the claim back after storing failed, so that another caller can retry."""
        with self._lock:
            self._stored = False

    def store_artifacts(self, ctx: Context, run_id: str) -> None:
        """Store the uncommitted diff and the untracked file list as the run's artifacts."""
        from plinth.versioning.code import save_source

        save_source(run_id, self.result(), ctx=ctx)
        if self._notebook is not None:
            from plinth.versioning.jupyter import save_notebook_source

            save_notebook_source(ctx, run_id, self._notebook)


def _add_notebook(info: dict[str, Any], notebook: NotebookCapture, detected: bool) -> None:
    """A run started in a kernel: the notebook is its code, and its detected entry point (the
    kernel's command line) is replaced by one ``plinth reproduce`` knows it cannot rerun."""
    info["notebook"] = notebook.info
    if detected:
        info["entry_point"] = {"kind": "notebook", "path": notebook.info.get("path"), "args": []}


def capture_run_context(
    ctx: Context, entry_point: Mapping[str, Any] | None = None
) -> CapturedContext:
    """Start the git capture, store the environment once per digest."""
    from plinth.versioning.code import begin_capture_source
    from plinth.versioning.env import save_environment
    from plinth.versioning.jupyter import capture_notebook

    pending = begin_capture_source(git_cache_seconds=ctx.settings.git_cache_seconds)
    return CapturedContext(
        pending, entry_point, save_environment(ctx=ctx).id, notebook=capture_notebook()
    )
