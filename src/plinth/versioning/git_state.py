"""Reusing this process's last ``git status`` of a repository while nothing git reads changed.

A sweep of runs in one process (a grid search, a notebook loop) would otherwise start git
once per run (a few milliseconds each, more than the rest of a short run). When git answers,
:func:`remember` stamps everything that decides its answer; :func:`recall` gives the answer
back only while every stamp is unchanged and the answer is younger than ``max_age``.

A stamp is ``(mtime_ns, ctime_ns, size, inode)`` from ``lstat`` of:

- git's own files: ``HEAD``, ``index``, the branch's loose ref, ``packed-refs``, the
  reftable list, ``config``, ``info/exclude``, ``info/attributes``, and the user's global
  config, excludes and attributes files (plus the ``GIT_*`` environment variables, part of
  the key);
- every folder of the work tree that git does not ignore (a file created, deleted or
  renamed there changes its folder's stamp), and every file in them that git does not
  ignore (an edit, a ``chmod`` or a replaced file changes its stamp).

So a commit, a checkout, ``git add``, an edited tracked file or a new untracked file is
seen at the next run. The ``ctime`` cannot be set back by tools that restore modification
times (``touch -d``, ``rsync -t``). Kernel timestamps are coarse (a clock tick), so a change
made just before or while git ran could leave a stamp that looks unchanged: an answer is
only kept when every stamp is older than the moment git started minus :data:`RACY_MARGIN`
(two seconds where the file system has whole-second timestamps), as git itself distrusts
"racily clean" index entries. What no stamp covers (the system-wide git config, excludes or
attributes files at a configured path elsewhere, a network file system whose clock runs
behind) is bounded by ``max_age``.

Not remembered at all: repositories with submodules or nested repositories (git reports
their state from inside them), and work trees with more than :data:`MAX_PATHS` paths to
stamp (checking them would cost about as much as running git).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COARSE_RACY_MARGIN",
    "DEFAULT_MAX_AGE",
    "MAX_PATHS",
    "RACY_MARGIN",
    "GitDirs",
    "clear",
    "recall",
    "remember",
]

#: Seconds a remembered ``git status`` is reused at most (``git_cache_seconds`` unset).
DEFAULT_MAX_AGE = 2.0
#: Stamps younger than this, before git started, make an answer not worth keeping.
RACY_MARGIN = 0.05
#: The same for a stamp in whole seconds (FAT, HFS+, some network file systems).
COARSE_RACY_MARGIN = 2.0
#: Work trees with more paths than this are not remembered.
MAX_PATHS = 5_000

Stamp = tuple[int, int, int, int] | None


@dataclass(frozen=True)
class GitDirs:
    """Where a repository keeps its state: the work tree, its git dir, the common dir."""

    root: Path
    git_dir: Path
    common_dir: Path


@dataclass(frozen=True)
class _Entry:
    status: bytes
    recorded: float  # time.monotonic() when git started
    env: tuple[tuple[str, str], ...]
    paths: tuple[str, ...]
    stamps: tuple[Stamp, ...]


_entries: dict[Path, _Entry] = {}
#: Work trees found to hold more than MAX_PATHS paths: not walked again by this process.
_too_big: set[Path] = set()
_lock = threading.Lock()


def clear() -> None:
    """Forget every remembered answer (tests; after changes no stamp can show)."""
    with _lock:
        _entries.clear()
        _too_big.clear()


def recall(dirs: GitDirs, max_age: float = DEFAULT_MAX_AGE) -> bytes | None:
    """The remembered ``git status`` output of ``dirs.root``, if still true; else None."""
    with _lock:
        entry = _entries.get(dirs.root)
    if entry is None:
        return None
    if time.monotonic() - entry.recorded > max_age or entry.env != _git_env_key():
        return None
    if tuple(_stamp(path) for path in entry.paths) != entry.stamps:
        return None
    return entry.status


def remember(dirs: GitDirs, status: bytes, started_wall: float, started_mono: float) -> bool:
    """Keep ``status`` (the output of ``git status --porcelain=v2 --branch -z
    --untracked-files=all --ignored=matching``, started at ``started_wall``/``started_mono``
    by the wall and monotonic clocks) for :func:`recall`; False when it cannot be trusted
    later (see the module docstring), and nothing is kept then."""
    with _lock:
        _entries.pop(dirs.root, None)
        if dirs.root in _too_big:
            return False
    paths = _paths(dirs, status)
    if paths is None:
        return False
    stamps = tuple(_stamp(path) for path in paths)
    fine = int((started_wall - RACY_MARGIN) * 1e9)
    coarse = int((started_wall - COARSE_RACY_MARGIN) * 1e9)
    for stamp in stamps:
        if stamp is None:
            continue
        mtime, ctime = stamp[0], stamp[1]
        whole_seconds = mtime % 1_000_000_000 == 0 and ctime % 1_000_000_000 == 0
        if max(mtime, ctime) >= (coarse if whole_seconds else fine):
            return False  # changed just before or while git ran: its answer may not show it
    entry = _Entry(status, started_mono, _git_env_key(), paths, stamps)
    with _lock:
        _entries[dirs.root] = entry
    return True


def _git_env_key() -> tuple[tuple[str, str], ...]:
    """Environment variables that change what git reads (config files, excludes, ...)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_")))


def _stamp(path: str) -> Stamp:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def _git_files(dirs: GitDirs, status: bytes) -> list[str]:
    git_dir, common = str(dirs.git_dir), str(dirs.common_dir)
    files = [
        os.path.join(git_dir, "HEAD"),
        os.path.join(git_dir, "index"),
        os.path.join(common, "packed-refs"),
        os.path.join(common, "reftable", "tables.list"),
        os.path.join(common, "config"),
        os.path.join(git_dir, "config.worktree"),
        os.path.join(common, "info", "exclude"),
        os.path.join(common, "info", "attributes"),
        os.path.join(common, "info", "sparse-checkout"),
    ]
    for line in status.split(b"\0"):
        if line.startswith(b"# branch.head "):
            branch = os.fsdecode(line[len(b"# branch.head ") :])
            if branch != "(detached)":
                files.append(os.path.join(common, "refs", "heads", *branch.split("/")))
        elif not line.startswith(b"#"):
            break
    home = os.path.expanduser("~")
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files += [
        os.path.join(home, ".gitconfig"),
        os.path.join(config_home, "git", "config"),
        os.path.join(config_home, "git", "ignore"),
        os.path.join(config_home, "git", "attributes"),
    ]
    return files


def _ignored(status: bytes) -> tuple[set[str], set[str]] | None:
    """(ignored files, ignored folders) relative to the root, from ``! path`` entries; None
    when the status shows a submodule (its state comes from inside it)."""
    files: set[str] = set()
    folders: set[str] = set()
    for entry in status.split(b"\0"):
        if entry.startswith(b"! "):
            path = os.fsdecode(entry[2:])
            if path.endswith("/"):
                folders.add(path.rstrip("/"))
            else:
                files.add(path)
        elif entry[:2] in (b"1 ", b"2 ", b"u ") and entry[5:9] != b"N...":
            return None  # a submodule: "1 XY S<c><m><u> ..." where others have "N..."
    return files, folders


def _paths(dirs: GitDirs, status: bytes) -> tuple[str, ...] | None:
    """Every path whose stamp decides ``status``; None when it cannot be remembered."""
    found = _ignored(status)
    if found is None:
        return None
    ignored_files, ignored_folders = found
    if (dirs.root / ".gitmodules").exists():
        return None
    paths = _git_files(dirs, status)
    root = str(dirs.root)
    todo = [("", root)]
    while todo:
        rel, folder = todo.pop()
        paths.append(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return None
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name == ".git":
                if rel:
                    return None  # a nested repository or a submodule
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                return None
            if is_folder:
                if name not in ignored_folders:
                    todo.append((name, entry.path))
            elif name not in ignored_files:
                paths.append(entry.path)
        if len(paths) > MAX_PATHS:
            with _lock:
                _too_big.add(dirs.root)
            return None
    return tuple(paths)
