"""``plinth runs artifacts``: list a run's artifacts, or download them into a folder.

Artifact paths come from the ledger, which anyone who can write it may have altered: every
one is joined under the destination with :func:`plinth.guards.paths.safe_join`, all of them
before the first file is written, and each blob is verified against its digest as it is
copied (a corrupted blob leaves nothing at its path).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, human_bytes

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Artifact, Run


def select(ctx: Context, run: Run, path: str | None) -> list[Artifact]:
    """The run's artifacts at ``path`` or under the folder ``path`` (all without one)."""
    from plinth.entities import RecordRef
    from plinth.errors import NotFoundError
    from plinth.guards.paths import normalize_artifact_path

    found = ctx.ledger.artifacts.list(RecordRef("run", run.id))
    if path is None:
        return found
    wanted = normalize_artifact_path(path)
    chosen = [a for a in found if a.path == wanted or a.path.startswith(wanted + "/")]
    if not chosen:
        listed = ", ".join(a.path for a in found[:5]) or "none"
        raise NotFoundError(
            f"run {run.id} has no artifact {wanted!r}",
            hint=f"its artifacts: {listed}{', ...' if len(found) > 5 else ''}; list them "
            f"all with: plinth runs artifacts {run.id[:13]}",
            field="path",
        )
    return chosen


def download(ctx: Context, chosen: list[Artifact], folder: Path) -> list[Path]:
    """Copy ``chosen`` into ``folder`` by their paths; the files written."""
    from plinth.guards.paths import safe_join

    # Every path is checked before anything is written: one bad record writes nothing.
    targets = [safe_join(folder, a.path) for a in chosen]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for artifact, target in zip(chosen, targets, strict=True):
        # Checked again just before writing: a symlink may have appeared since.
        target = safe_join(folder, artifact.path)
        ctx.blobs.copy_to(artifact.digest, target, size=artifact.size)
        written.append(target)
    return written


def show(items: list[Artifact], written: list[Path] | None, as_json: bool) -> None:
    rows: list[dict[str, Any]] = [
        {"path": a.path, "size": a.size, "digest": a.digest, "media_type": a.media_type}
        for a in items
    ]
    if written is not None:
        for row, target in zip(rows, written, strict=True):
            row["file"] = str(target)
    if as_json:
        echo_json({"artifacts": rows})
        return
    if not items:
        click.echo("The run has no artifacts.")
        return
    from plinth.guards.terminal import printable

    # A listed path (and digest) is whatever the ledger row says: show escapes, never send them.
    width = max(len(printable(a.path)) for a in items)
    for a, row in zip(items, rows, strict=True):
        where = f"  -> {row['file']}" if "file" in row else ""
        line = f"{printable(a.path):<{width}}  {human_bytes(a.size):>9}  {a.digest[:12]}{where}"
        click.echo(printable(line))
    if written is not None:
        noun = "artifact" if len(written) == 1 else "artifacts"
        click.echo(f"Downloaded {len(written)} {noun} (verified).", err=True)
