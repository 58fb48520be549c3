"""Logical artifact paths: the names users give files inside a run, dataset or model.

A logical path is relative, '/'-separated and can never point outside its owner, however
it is spelled (``..``, absolute, Windows drive or UNC, backslashes, percent-encoded or
double-encoded traversal, control characters)::

    >>> normalize_artifact_path("./plots//loss.png")
    'plots/loss.png'
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from plinth.errors import InvalidPathError

__all__ = ["MAX_PATH_LENGTH", "normalize_artifact_path", "safe_join"]

#: The longest logical path accepted, in characters.
MAX_PATH_LENGTH = 1024
#: Rounds of percent-decoding tried before a path is called too deeply encoded.
_DECODE_ROUNDS = 5

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _problem(path: str) -> str | None:
    """Why ``path`` (raw or decoded) is unsafe, or None."""
    if _CONTROL.search(path):
        return "it contains a NUL or control character"
    if path.startswith(("\\\\", "//")):
        return "it is a UNC path"
    if _DRIVE.match(path):
        return "it starts with a Windows drive"
    if "\\" in path:
        return "it contains a backslash (use '/')"
    if path.startswith("/"):
        return "it is absolute"
    if ".." in path.split("/"):
        return "it has a '..' segment"
    return None


def _reject(path: str, reason: str) -> InvalidPathError:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return InvalidPathError(f"invalid artifact path {shown!r}: {reason}", field="path")


def normalize_artifact_path(path: str) -> str:
    """``path`` with '.' and empty segments removed, or :class:`InvalidPathError`.

    >>> normalize_artifact_path("a/./b/")
    'a/b'
    """
    if not isinstance(path, str):
        raise InvalidPathError(f"invalid artifact path {path!r}: it is not a string")
    if len(path) > MAX_PATH_LENGTH:
        raise _reject(path, f"it is longer than {MAX_PATH_LENGTH} characters")
    reason = _problem(path)
    if reason:
        raise _reject(path, reason)
    decoded = path
    for _ in range(_DECODE_ROUNDS):
        # Invalid UTF-8 escapes decode to U+FFFD: harmless for the checks below.
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
        reason = _problem(decoded)
        if reason:
            raise _reject(path, f"once percent-decoded, {reason}")
    else:
        if unquote(decoded) != decoded:
            raise _reject(path, f"it is percent-encoded more than {_DECODE_ROUNDS} times")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or not path.strip("./"):
        raise _reject(path, "it is empty (or only dots and slashes)")
    return "/".join(parts)


def safe_join(root: Path, logical: str) -> Path:
    """``root / logical`` after normalising, checked to resolve inside ``root``.

    Symlinks are followed when checking, so a link inside ``root`` pointing elsewhere is
    caught too. The check is made when called: a writer should call it just before writing,
    create a temp file in the returned path's parent and ``os.replace`` it onto the path,
    which replaces a final-component symlink instead of writing through it.
    """
    normalized = normalize_artifact_path(logical)
    target = root / normalized
    try:
        resolved_root = root.resolve()
        resolved = target.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise _reject(logical, f"it cannot be resolved under {root}: {exc}") from None
    if not resolved.is_relative_to(resolved_root):
        raise _reject(logical, f"it resolves outside {resolved_root}")
    return target
