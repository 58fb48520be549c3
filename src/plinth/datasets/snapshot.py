"""Snapshots of a file or a folder: walk, reuse cached digests, hash (and store) the rest.

One read per changed file: with a content store, the file is hashed while it is stored
(:meth:`ContentStore.put_file`); without one (``data status``) it is only hashed. Files
are processed in a thread pool: BLAKE3 and file I/O release the GIL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from plinth.datasets.manifests import Manifest
from plinth.datasets.statcache import CacheEntry, StatCache, is_racy
from plinth.errors import UsageError
from plinth.progress import NO_PROGRESS, Progress, reporter

if TYPE_CHECKING:
    from plinth.storage import BlobRef, ContentStore

__all__ = ["SKIPPED_NAMES", "Snapshot", "scan", "take_snapshot"]

#: Files per thread-pool task at most.
_BATCH = 256
#: Files at least this large are stored in parallel into a local folder; smaller ones are
#: written one after the other (see ``_put_local``).
_LARGE = 4 * 1024 * 1024

T = TypeVar("T")
R = TypeVar("R")

#: Folders never walked into: version control and plinth's own data.
SKIPPED_NAMES = frozenset({".git", ".plinth"})


@dataclass
class Snapshot:
    """The manifest of what is at ``root`` now, and which files had to be read for it."""

    root: Path
    manifest: Manifest
    #: Relative paths of the files that were read (not answered by the stat cache).
    read: list[str] = field(default_factory=list)
    bytes_read: int = 0


def scan(root: Path) -> tuple[bool, list[tuple[str, str, os.stat_result]]]:
    """``(is_dir, [(relative path, absolute path, stat)])`` for a file or a folder."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise UsageError(
            f"no file or folder at {root}", hint="check the path", field="path"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {root}: {exc.strerror or exc}", field="path") from None
    if not os.path.isdir(root):
        entries = [(root.name, str(root), st)]
    else:
        entries = list(_walk(str(root), ""))
    for _, abs_path, _ in entries:
        try:
            abs_path.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"file name {abs_path!r} is not valid UTF-8",
                hint="rename the file: plinth names files in UTF-8",
                field="path",
            ) from None
    return os.path.isdir(root), entries


def _walk(folder: str, prefix: str) -> Iterator[tuple[str, str, os.stat_result]]:
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise UsageError(f"cannot list {folder}: {exc.strerror or exc}", field="path") from None
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        rel = prefix + entry.name
        try:
            if entry.is_dir():
                yield from _walk(entry.path, rel + "/")
            elif entry.is_file():
                yield rel, entry.path, entry.stat()
        except FileNotFoundError:  # removed while walking
            continue


def _is_local(content: ContentStore) -> bool:
    from plinth.storage import LocalBlobStore

    return isinstance(content.store, LocalBlobStore)


def _workers(content: ContentStore | None) -> int:
    if content is not None and not _is_local(content):
        return 16  # a remote store waits on the network, not the CPU
    return min(8, (os.cpu_count() or 2) + 2)


def _put_local(
    pool: ThreadPoolExecutor,
    content: ContentStore,
    todo: list[tuple[str, str, os.stat_result]],
    done: Progress,
) -> list[BlobRef]:
    """Store files into a local folder: large ones on the pool, small ones in this thread.

    Writing many small files from several threads measured 1.5-2x slower here than one
    thread (the threads contend on the folders' locks and the GIL), while large files gain
    from overlapping (each one's copy runs in the kernel).
    """
    refs: list[BlobRef | None] = [None] * len(todo)
    large = [i for i, item in enumerate(todo) if item[2].st_size >= _LARGE]
    futures = {i: pool.submit(content.put_file, todo[i][1]) for i in large}
    for i, item in enumerate(todo):
        if i not in futures:
            refs[i] = content.put_file(item[1])
            done.advance()
    for i, future in futures.items():
        refs[i] = future.result()
        done.advance()
    return [ref for ref in refs if ref is not None]


def _batches(content: ContentStore) -> bool:
    """Whether the store sends small puts together (a team server: one request for many)."""
    from plinth.storage import BlobStore

    return type(content.store).batch is not BlobStore.batch


def _put_batched(
    pool: ThreadPoolExecutor,
    content: ContentStore,
    todo: list[tuple[str, str, os.stat_result]],
    done: Progress,
) -> list[BlobRef]:
    """Files of 1 MiB or more on the pool, each its own upload; the others in batches."""
    large = [i for i, item in enumerate(todo) if item[2].st_size >= 1 << 20]
    futures = {i: pool.submit(content.put_file, todo[i][1]) for i in large}
    small = [i for i in range(len(todo)) if i not in futures]
    refs: dict[int, BlobRef] = dict(
        zip(small, content.put_files([todo[i][1] for i in small]), strict=True)
    )
    done.advance(len(small))
    for i, future in futures.items():
        refs[i] = future.result()
        done.advance()
    return [refs[i] for i in range(len(todo))]


def take_snapshot(
    path: Path,
    *,
    cache: StatCache | None,
    content: ContentStore | None = None,
    stored: Collection[str] = (),
    progress: Progress | None = None,
) -> Snapshot:
    """The manifest of ``path`` (kind ``file`` or ``directory``), reading only what changed.

    With ``content``, every file's blob is in the store afterwards: digests in ``stored``
    are known to be there already; other cached digests are checked (and refreshed, for
    gc's grace period), and files whose blob is missing are read and stored. ``progress``
    hears of each file read (:mod:`plinth.progress`).
    """
    started = time.time_ns()
    root = Path(os.path.realpath(path))
    is_dir, entries = scan(root)
    if not entries:
        raise UsageError(f"no files under {root}", hint="add a folder that holds files")
    cached = cache.entries_under(str(root), is_dir=is_dir) if cache is not None else {}
    files: dict[str, tuple[str, int]] = {}
    todo: list[tuple[str, str, os.stat_result]] = []
    check: list[tuple[str, str, os.stat_result, str]] = []
    get = cached.get
    for rel, abs_path, st in entries:
        hit = get(abs_path)
        if hit is not None and hit[:3] == (st.st_ino, st.st_size, st.st_mtime_ns):
            if content is not None and hit[3] not in stored:
                check.append((rel, abs_path, st, hit[3]))
            else:
                files[rel] = (hit[3], hit[1])
        else:
            todo.append((rel, abs_path, st))
    local = content is None or _is_local(content)
    with ThreadPoolExecutor(_workers(content), thread_name_prefix="plinth-hash") as pool:
        if check:
            assert content is not None
            touch = _map if not local else _serial
            present = touch(pool, lambda item: _touch(content, item[3], item[2].st_size), check)
            for item, there in zip(check, present, strict=True):
                if there:
                    files[item[0]] = (item[3], item[2].st_size)
                else:
                    todo.append(item[:3])
        done = reporter(progress)
        done.start(len(todo), "files", label="hashing" if content is None else "storing")
        try:
            if content is None:
                from plinth.storage import hash_file

                refs = _map(pool, lambda item: hash_file(item[1]), todo, done)
            elif local:
                refs = _put_local(pool, content, todo, done)
            elif _batches(content):
                refs = _put_batched(pool, content, todo, done)
            else:
                refs = _map(pool, lambda item: content.put_file(item[1]), todo, done)
        finally:
            done.finish()
    snap = Snapshot(root, Manifest("directory" if is_dir else "file", files))
    fresh: list[tuple[str, CacheEntry]] = []
    for (rel, abs_path, st), ref in zip(todo, refs, strict=True):
        files[rel] = (ref.digest, ref.size)
        snap.read.append(rel)
        snap.bytes_read += ref.size
        if cache is None or is_racy(st.st_mtime_ns, started) or ref.size != st.st_size:
            continue
        try:
            after = os.stat(abs_path)
        except OSError:
            continue
        if (after.st_ino, after.st_size, after.st_mtime_ns) == (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        ):  # unchanged while it was read
            fresh.append((abs_path, CacheEntry(st.st_ino, st.st_size, st.st_mtime_ns, ref.digest)))
    if cache is not None:
        cache.update(fresh)
    snap.read.sort()
    return snap


def _touch(content: ContentStore, digest: str, size: int) -> bool:
    from plinth.storage import blob_key

    return content.store.touch(blob_key(digest), size)


def _serial(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T]) -> list[R]:
    return [fn(item) for item in items]


def _map(
    pool: ThreadPoolExecutor,
    fn: Callable[[T], R],
    items: list[T],
    done: Progress = NO_PROGRESS,
) -> list[R]:
    """``[fn(item) for item in items]`` on the pool, in order, a batch of items per task;
    ``done`` advances (in this thread) as each batch's results arrive.

    A task per file would cost more in futures and GIL hand-offs than a small file's hash.
    """
    if len(items) <= 1:
        found = [fn(item) for item in items]
        done.advance(len(found))
        return found
    workers = getattr(pool, "_max_workers", 4)
    size = max(1, min(_BATCH, -(-len(items) // (workers * 4))))
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    results: list[R] = []
    for batch in pool.map(lambda b: [fn(item) for item in b], batches):
        results.extend(batch)
        done.advance(len(batch))
    return results
