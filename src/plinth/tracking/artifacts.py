"""Logging files and objects as run artifacts: blob first, then the ledger record."""

from __future__ import annotations

import io
import json
import mimetypes
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.guards.paths import normalize_artifact_path

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Artifact, RecordRef

__all__ = ["log_bytes", "log_dict", "log_dir", "log_figure", "log_file"]


def _media_type(path: str) -> str | None:
    return mimetypes.guess_type(path)[0]


def _join(prefix: str | None, name: str) -> str:
    return normalize_artifact_path(f"{prefix}/{name}" if prefix else name)


def log_file(ctx: Context, owner: RecordRef, path: Path, artifact_path: str | None) -> Artifact:
    if not path.is_file():
        raise UsageError(
            f"{path} is not a file", hint="pass an existing file, or use log_artifacts for a folder"
        )
    logical = _join(artifact_path, path.name)
    ref = ctx.blobs.put_file(path)
    return ctx.ledger.artifacts.record(owner, logical, ref.digest, ref.size, _media_type(logical))


def log_dir(
    ctx: Context, owner: RecordRef, folder: Path, artifact_path: str | None
) -> list[Artifact]:
    if not folder.is_dir():
        raise UsageError(
            f"{folder} is not a folder", hint="pass a folder, or use log_artifact for a file"
        )
    # Strings rather than Paths: pathlib costs as much as the copy for small files.
    found: list[tuple[list[str], str]] = []
    for root, _, names in os.walk(folder):
        relative = os.path.relpath(root, folder)
        parts = [] if relative == "." else relative.split(os.sep)
        found.extend(([*parts, name], os.path.join(root, name)) for name in names)
    found.sort()  # by path segments, as Path sorts
    refs = ctx.blobs.put_files(path for _, path in found)  # one sync for the batch, if any
    items = []
    for (parts, _), ref in zip(found, refs, strict=True):
        logical = _join(artifact_path, "/".join(parts))
        items.append((logical, ref.digest, ref.size, _media_type(logical)))
    return ctx.ledger.artifacts.record_many(owner, items)


def log_bytes(ctx: Context, owner: RecordRef, data: bytes, path: str) -> Artifact:
    logical = normalize_artifact_path(path)
    ref = ctx.blobs.put_bytes(data)
    return ctx.ledger.artifacts.record(owner, logical, ref.digest, ref.size, _media_type(logical))


def log_dict(ctx: Context, owner: RecordRef, obj: Any, path: str) -> Artifact:
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_dump(obj, sort_keys=False).encode("utf-8")
    else:
        try:
            data = json.dumps(obj, indent=2, allow_nan=True).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise UsageError(f"cannot store {path} as JSON: {exc}", field="obj") from None
    return log_bytes(ctx, owner, data, path)


def log_figure(ctx: Context, owner: RecordRef, figure: Any, path: str) -> Artifact:
    if not hasattr(figure, "savefig"):
        raise UsageError(
            f"log_figure needs a matplotlib figure, got {type(figure).__name__}",
            hint="pass plt.gcf() or the Figure your plotting code returned",
        )
    if not path.lower().endswith(".png"):
        path += ".png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return log_bytes(ctx, owner, buffer.getvalue(), path)
