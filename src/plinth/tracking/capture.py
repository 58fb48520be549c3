"""What a run records about where it came from: code, argv and environment, once per run.

The capture itself lives in :mod:`plinth.versioning` (code and environment); this module
only decides what a new run stores and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.context import Context

if TYPE_CHECKING:
    from plinth.versioning.code import SourceCapture

__all__ = ["CapturedContext", "capture_run_context"]


@dataclass
class CapturedContext:
    source: dict[str, Any]
    environment_id: str | None
    capture: SourceCapture

    def attach(self, ctx: Context, run_id: str) -> None:
        """Store the uncommitted diff and the untracked file list as the run's artifacts."""
        from plinth.versioning.code import save_source

        save_source(ctx, run_id, self.capture)


def capture_run_context(
    ctx: Context, entry_point: Mapping[str, Any] | None = None
) -> CapturedContext:
    """Capture git state, entry point and environment; store the environment once per digest."""
    from plinth.versioning.code import capture_source
    from plinth.versioning.env import save_environment

    capture = capture_source()
    info = dict(capture.info)
    if entry_point is not None:
        info["entry_point"] = dict(entry_point)
    return CapturedContext(info, save_environment(ctx).id, capture)
