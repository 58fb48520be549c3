"""Snapshots of a file or a folder: walk, reuse cached digests, hash (and store) the rest.

One read per changed file: with a content store, the file is hashed while it is stored
(:meth:`ContentStore.put_file`); without one (``data status``) it is only hashed. Files
are processed in a thread pool: BLAKE3 and file I/O release the GIL.

With ``link`` (``plinth data add --link``, the ``data_link`` setting) files enter a local
store as reflinks or hard links instead of copies (:meth:`ContentStore.link_file`):
``reflink`` and ``hardlink`` refuse where the file system cannot; ``auto`` tries a reflink,
then a hard link, and copies what neither can take, saying why (:attr:`Snapshot.link_note`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from plinth.datasets.manifests import Manifest
from plinth.datasets.statcache import CacheEntry, StatCache, is_racy
from plinth.errors import UsageError
from plinth.progress import NO_PROGRESS, Progress, reporter

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from plinth.storage import BlobRef, ContentStore

__all__ = ["LINK_MODES", "SKIPPED_NAMES", "Snapshot", "check_link", "scan", "take_snapshot"]

#: How ``data add`` puts files into the store: the ``data_link`` setting, ``--link``.
LINK_MODES = ("copy", "reflink", "hardlink", "auto")

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
    #: Files stored as links, by kind ("reflink", "hardlink"); the others were copied.
    linked: dict[str, int] = field(default_factory=dict)
    #: Why ``link="auto"`` copied some files (None when it linked every file it read).
    link_note: str | None = None


def check_link(mode: str) -> str:
    """``mode`` if it is one of :data:`LINK_MODES`, else :class:`UsageError`."""
    if mode not in LINK_MODES:
        raise UsageError(
            f"unknown link mode {mode!r}",
            hint=f"use one of {', '.join(LINK_MODES)} (--link, or the data_link setting)",
            field="link",
        )
    return mode


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
    is_dir = os.path.isdir(root)
    entries = _walk(str(root), "") if is_dir else [(root.name, str(root), st)]
    for _, abs_path, _ in entries:
        try:
            abs_path.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"file name {abs_path!r} is not valid UTF-8",
                hint="rename the file: plinth names files in UTF-8",
                field="path",
            ) from None
    return is_dir, entries


def _walk(folder: str, prefix: str) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file below ``folder``: one ``scandir`` per folder, one ``stat`` per
    file (the file type comes with the folder listing)."""
    found: list[tuple[str, str, os.stat_result]] = []
    append = found.append
    stack = [(folder, prefix)]
    while stack:
        here, rel = stack.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except OSError as exc:
            raise UsageError(f"cannot list {here}: {exc.strerror or exc}", field="path") from None
        for entry in entries:
            name = entry.name
            if name in SKIPPED_NAMES:
                continue
            try:
                if entry.is_dir():
                    stack.append((entry.path, rel + name + "/"))
                elif entry.is_file():
                    append((rel + name, entry.path, entry.stat()))
            except FileNotFoundError:  # removed while walking
                continue
    return found


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


def _put_linked(
    pool: ThreadPoolExecutor,
    content: ContentStore,
    todo: list[tuple[str, str, os.stat_result]],
    mode: str,
    snap: Snapshot,
    done: Progress,
) -> list[BlobRef]:
    """Store files as links (``mode`` reflink, hardlink or auto), on the pool: what is
    left of a link is reading and hashing the file, and both release the GIL.

    ``auto`` asks the first file whether reflinks work here and stops trying them after a
    refusal (a file system answer); a file a hard link is refused for is copied, and the
    first reason is kept for the user.
    """
    from plinth.storage.local import LINK_KINDS, LinkRefusedError

    kinds = list(LINK_KINDS) if mode == "auto" else [mode]

    def one(item: tuple[str, str, os.stat_result]) -> tuple[BlobRef, str | None, str | None]:
        refused = None
        for kind in list(kinds):
            try:
                return content.link_file(item[1], kind), kind, None
            except LinkRefusedError as exc:
                if mode != "auto":
                    raise
                refused = exc.message
        return content.put_file(item[1]), None, refused

    results = []
    rest = todo
    if mode == "auto" and todo:
        results.append(one(todo[0]))  # alone: its answer about reflinks holds for the rest
        if results[0][1] != "reflink":
            kinds.remove("reflink")
        done.advance()
        rest = todo[1:]
    results += _map(pool, one, rest, done)
    refs = []
    for ref, kind, refused in results:
        refs.append(ref)
        if kind is not None:
            snap.linked[kind] = snap.linked.get(kind, 0) + 1
        elif refused is not None and snap.link_note is None:
            snap.link_note = f"{refused}; copied instead"
    return refs


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
    link: str = "copy",
) -> Snapshot:
    """The manifest of ``path`` (kind ``file`` or ``directory``), reading only what changed.

    With ``content``, every file's blob is in the store afterwards: digests in ``stored``
    are known to be there already; other cached digests are checked (and refreshed, for
    gc's grace period), and files whose blob is missing are read and stored. ``progress``
    hears of each file read (:mod:`plinth.progress`). ``link`` (one of :data:`LINK_MODES`)
    says how files enter the store; links need a local artifact folder: ``reflink`` and
    ``hardlink`` refuse any other, ``auto`` copies there.
    """
    check_link(link)
    local = content is None or _is_local(content)
    note = None
    if content is not None and link != "copy" and not local:
        if link != "auto":
            from plinth.storage.local import LinkRefusedError

            raise LinkRefusedError(
                f"--link {link} needs the artifacts in a local folder; this project's are at "
                f"{content.store.describe()}",
                hint="use --link copy (the default), or auto, which copies there",
                field="link",
            )
        where = content.store.describe()
        link, note = "copy", f"links need a local artifact folder; copied to {where}"
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
    snap = Snapshot(root, Manifest("directory" if is_dir else "file", files), link_note=note)
    with _pool(_workers(content), needed=bool(check or todo)) as pool:
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
            elif link != "copy":
                refs = _put_linked(pool, content, todo, link, snap, done)
            elif local:
                refs = _put_local(pool, content, todo, done)
            elif _batches(content):
                refs = _put_batched(pool, content, todo, done)
            else:
                refs = _map(pool, lambda item: content.put_file(item[1]), todo, done)
        finally:
            done.finish()
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
    if not todo:
        snap.link_note = None  # nothing was stored: nothing was copied instead of linked
    return snap


@contextmanager
def _pool(workers: int, *, needed: bool) -> Iterator[ThreadPoolExecutor]:
    """A thread pool, or (nothing to read: a clean ``data status``) a stand-in that is
    never used, so the common case does not import or start one."""
    if not needed:
        yield cast("ThreadPoolExecutor", None)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="plinth-hash") as pool:
        yield pool


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
