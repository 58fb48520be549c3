"""A blob store in a local folder: ``<root>/<key>``, staged in ``<root>/tmp/``.

A write goes to a temp file in ``<root>/tmp/`` (same file system as its target) and is
published with ``os.replace``: readers see the old blob or the new one, never half of one.
The folder is created on first write. Regular files of ``KERNEL_COPY_MIN`` bytes and more
are copied by the kernel in a helper thread while the caller reads back (and hashes) what
is already staged: the cost of ``cp`` plus the part of hashing the copy does not hide.

Commits are atomic, not durable: like ``cp``, they leave the bytes to the OS's writeback,
because an ``fsync`` per blob costs more than the copy itself (see benchmarks/RESULTS.md,
W3). An OS crash or power loss within the writeback interval can leave a blob empty,
short or, on some file systems, zero-filled. That is detected rather than trusted: a read
hashes the blob and raises :class:`~plinth.errors.BlobCorruptedError`, and a put of the
same content rewrites a blob whose size is wrong instead of skipping it (a zero-filled
blob of the right size is only caught on read; docs/storage.md says what to do).
Durability is a separate, batched step: :meth:`LocalBlobStore.sync` flushes the store's
file system once (``syncfs`` on Linux; elsewhere an ``fsync`` of each blob and its
folder), which :class:`~plinth.storage.content.ContentStore` calls per batch with
``fsync=True`` (the ``blob_fsync`` setting).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import itertools
import mmap
import os
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from plinth.errors import BlobStoreError, InvalidPathError, NotFoundError, UsageError
from plinth.storage._kernel_copy import KernelCopy
from plinth.storage.blobs import BlobInfo, BlobStore, Readable, StagedBlob, check_key, chunk_buffer

__all__ = ["LINK_KINDS", "LinkRefusedError", "LocalBlobStore"]

#: How a file may enter a local store besides a copy: see the module docstring.
LINK_KINDS = ("reflink", "hardlink")
#: ``ioctl(dest, FICLONE, src)``: share all of ``src``'s blocks with ``dest`` (Linux).
_FICLONE = 0x40049409
#: Errors meaning "this file system (or this pair of files) cannot be linked like that".
_NO_LINK = {
    errno.EXDEV,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EPERM,
    errno.EACCES,
    errno.EMLINK,
    errno.EROFS,
}


class LinkRefusedError(UsageError):
    """A file cannot be reflinked or hard-linked into the store (another file system, a
    file system without reflinks, a file this user may not link or make read-only)."""

    default_hint = "use --link copy (the default), or --link auto to copy where links fail"


#: The staging folder under the root; never a key, never listed.
TMP_DIR = "tmp"
#: Files at least this large are copied inside the kernel (see ``_LocalStagedBlob``).
KERNEL_COPY_MIN = 8 * 1024 * 1024
_TEMP_PREFIX = uuid.uuid4().hex[:16] + "-"
_TEMP_COUNTER = itertools.count()


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()
        # Paths are built as strings: pathlib costs more than the system calls of a small
        # blob's put.
        self._root = os.path.normpath(self.root)
        self._root_slash = os.path.join(self._root, "")
        self._tmp = os.path.join(self._root, TMP_DIR)
        # Blobs are as private as their folder: owner-only in a folder plinth creates
        # (0700) or one without group and other access; the umask decides elsewhere.
        try:
            self._file_mode = 0o600 if os.stat(self._root).st_mode & 0o077 == 0 else 0o666
        except OSError:
            self._file_mode = 0o600

    def _make_root(self) -> None:
        """The root (owner-only, whatever the umask) and its staging folder."""
        os.makedirs(os.path.dirname(self._root), exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._root, 0o700)
        os.makedirs(self._tmp, exist_ok=True)

    def _path(self, key: str) -> str:
        check_key(key)
        if key == TMP_DIR or key.startswith(TMP_DIR + "/"):
            raise InvalidPathError(f"invalid blob key {key!r}: '{TMP_DIR}/' is the staging area")
        path = self._root_slash + key
        # Keys are made by plinth and check_key rejects '..', so this is a last line of
        # defence should that check ever be loosened.
        if not os.path.normpath(path).startswith(self._root_slash):
            raise InvalidPathError(f"blob key {key!r} escapes the store root {self.root}")
        return path

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def touch(self, key: str, size: int | None = None) -> bool:
        path = self._path(key)
        if not os.access(path, os.F_OK):  # no exception for the common case: a new blob
            return False
        return self._touch(path, size)

    def _touch(self, path: str, size: int | None) -> bool:
        try:
            st = os.stat(path)
            if size is not None and st.st_size != size:
                return False  # torn: the put rewrites it (os.replace, so still atomic)
            if st.st_nlink > 1:
                # A hard link shares the user's file: its mtime is theirs (and their stat
                # cache's). chmod to the same mode refreshes the ctime, which list() reports.
                os.chmod(path, stat.S_IMODE(st.st_mode))
            else:
                os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def put_whole(self, key: str, data: bytes | memoryview) -> bool:
        """Publish ``data`` under ``key`` unless a blob of its size is there (touched
        instead); returns whether it wrote. As atomic as :meth:`stage` (a temp file in
        ``tmp/``, then ``os.replace``) without the staging object, whose bookkeeping
        costs as much as the copy of a small file."""
        path = self._path(key)
        if os.access(path, os.F_OK) and self._touch(path, len(data)):
            return False
        staged = _LocalStagedBlob(self)
        try:
            staged._write(data)
            staged._publish(path)
        except BaseException:
            staged._abort()
            raise
        return True

    def link(self, source: str, key: str, size: int, expect: tuple[int, int, int]) -> bool:
        """Hard-link the file ``source`` as the blob ``key`` and make it read-only.

        ``expect`` is ``source``'s (inode, size, mtime_ns) from before the caller hashed
        it: a file that changed since is unlinked again and refused. Returns False,
        linking nothing, when ``key`` already holds a blob of ``size`` bytes.
        :class:`LinkRefusedError` when the file system or the file refuses.
        """
        _check_linkable(source)
        target = self._path(key)
        try:
            try:
                os.link(source, target, follow_symlinks=False)
            except FileNotFoundError:
                if not os.path.lexists(source):
                    raise NotFoundError(f"no file to store at {source}") from None
                self._make_root()
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            if self.touch(key, size):
                return False
            self._replace_by_link(source, target)  # torn: replaced, still atomically
        except OSError as exc:
            raise _refused("hardlink", source, self._root, exc) from None
        try:
            st = os.lstat(target)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise PermissionError(errno.EPERM, "not this user's regular file")
            os.chmod(target, stat.S_IMODE(st.st_mode) & ~0o222)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise _refused("hardlink", source, self._root, exc) from None
        if (st.st_ino, st.st_size, st.st_mtime_ns) != expect:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise UsageError(
                f"{source} changed while it was being added",
                hint="add it again once nothing writes to it",
                field="path",
            )
        return True

    def _replace_by_link(self, source: str, target: str) -> None:
        temp = os.path.join(self._tmp, f"{_TEMP_PREFIX}{next(_TEMP_COUNTER)}.link")
        try:
            os.link(source, temp, follow_symlinks=False)
            os.replace(temp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise _refused("hardlink", source, self._root, exc) from None

    def stage_clone(self, source: str) -> _LocalStagedBlob:
        """A staged blob that shares ``source``'s blocks (a reflink: ``FICLONE``); nothing
        is copied. :class:`LinkRefusedError` where the file system cannot share blocks."""
        try:
            import fcntl  # POSIX only: elsewhere the ImportError is a refusal, below
        except ImportError:
            raise LinkRefusedError(
                f"cannot reflink {source}: this platform has no FICLONE", field="link"
            ) from None
        staged = _LocalStagedBlob(self)
        try:
            with open(source, "rb", buffering=0) as src:
                fcntl.ioctl(staged._fd, _FICLONE, src.fileno())
            staged.size = os.fstat(staged._fd).st_size
        except FileNotFoundError:
            staged.abort()
            raise NotFoundError(f"no file to store at {source}") from None
        except OSError as exc:
            staged.abort()
            raise _refused("reflink", source, self._root, exc) from None
        return staged

    def sync(self, keys: Iterable[str]) -> None:
        """Flush the store's file system (``syncfs``), or else each key's file and folder.

        ``syncfs`` writes back everything dirty on that file system, other programs' data
        included, in one call: for 1,000 small blobs it measured ~10-17 ms against
        ~0.2-1 s for an ``fsync`` per blob.
        """
        paths = [self._path(key) for key in keys]
        if not paths:
            return
        syncfs = _syncfs()
        if syncfs is not None:
            try:
                fd = os.open(self._root, os.O_RDONLY)
            except OSError as exc:
                raise BlobStoreError(f"cannot sync {self._root}: {exc.strerror or exc}") from exc
            try:
                if syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        try:
            for path in paths:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for folder in {os.path.dirname(path) for path in paths}:
                _fsync_dir(folder)
        except OSError as exc:
            raise BlobStoreError(f"cannot sync {self._root}: {exc.strerror or exc}") from exc

    def stage(self) -> StagedBlob:
        return _LocalStagedBlob(self)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no blob at {path}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError):
            pass
        except OSError as exc:
            raise BlobStoreError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        if folder:
            self._path(folder)
        yield from self._walk(start, folder + "/" if folder else "", prefix)

    def _walk(self, folder: Path, key_prefix: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise BlobStoreError(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for entry in entries:
            key = key_prefix + entry.name
            if not key_prefix and entry.name == TMP_DIR:
                continue
            if entry.is_dir(follow_symlinks=False):
                # Descend only into folders that can hold keys with this prefix.
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key + "/", prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while listing
                    continue
                # A hard-linked blob keeps the user's mtime; linking, chmod and touch()
                # change its ctime, which gc's grace period then counts from.
                modified = stat.st_mtime if stat.st_nlink < 2 else max(stat.st_mtime, stat.st_ctime)
                yield BlobInfo(key, stat.st_size, modified)

    def location(self, key: str) -> str:
        return self._path(key)

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        # Creating, writing and removing a staged file exercises everything a put needs.
        with _LocalStagedBlob(self) as staged:
            staged.write(b"plinth check\n")


class _LocalStagedBlob(StagedBlob):
    def __init__(self, store: LocalBlobStore) -> None:
        super().__init__()
        self._store = store
        # A random per-process prefix and a counter: unique without a uuid per blob. A name
        # taken anyway (a forked child continues the counter) gets a uuid instead.
        self.temp_path = os.path.join(store._tmp, f"{_TEMP_PREFIX}{next(_TEMP_COUNTER)}.tmp")
        # The mode is 0o600 in a private folder, else 0o666 for the umask to decide.
        # Read-write: a kernel copy is read back to show the observer the staged bytes.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            try:
                self._fd = os.open(self.temp_path, flags, store._file_mode)
            except FileNotFoundError:  # the first write: create the staging folder
                store._make_root()
                self._fd = os.open(self.temp_path, flags, store._file_mode)
            except FileExistsError:
                self.temp_path = os.path.join(store._tmp, f"{uuid.uuid4().hex}.tmp")
                self._fd = os.open(self.temp_path, flags, store._file_mode)
        except OSError as exc:
            raise BlobStoreError(
                f"cannot write to the artifact folder {store.root}: {exc.strerror or exc}",
                hint="check that the folder exists or can be created and that you may write to it",
            ) from exc

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise BlobStoreError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc

    def write_from(
        self, source: Readable, observe: Callable[[memoryview], object] | None = None
    ) -> int:
        """For a large regular file, a kernel copy overlapped with reading the copy back.

        ``copy_file_range`` (or ``sendfile``) copies the file in a helper thread, as ``cp``
        does, while this thread reads back what is already staged and passes it to
        ``observe``: hashing overlaps copying, and ``observe`` sees exactly the bytes that
        are stored. Anything else is read and written chunk by chunk.
        """
        self._require_open("write to")
        if not isinstance(source, io.FileIO) or not hasattr(os, "copy_file_range"):
            return super().write_from(source, observe)
        src = source.fileno()
        try:
            info = os.fstat(src)
            start = os.lseek(src, 0, os.SEEK_CUR)
        except OSError:
            return super().write_from(source, observe)
        if not stat.S_ISREG(info.st_mode) or info.st_size - start < KERNEL_COPY_MIN:
            return super().write_from(source, observe)
        base = self.size  # what was written before: the copy goes after it
        copy = KernelCopy(src, start, self._fd, base)
        thread = threading.Thread(target=copy.run, name="plinth-blob-copy", daemon=True)
        thread.start()
        seen = 0
        try:
            buffer = chunk_buffer()
            while True:
                copied, finished = copy.wait_past(seen)
                while seen < copied:
                    if observe is None:
                        seen = copied
                    else:
                        seen += self._show(base + seen, copied - seen, buffer, observe)
                if finished:
                    break
        finally:
            copy.cancel()
            thread.join()
        if copy.error is not None:
            exc = copy.error
            raise BlobStoreError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc
        os.lseek(src, start + seen, os.SEEK_SET)  # as if read to EOF
        os.lseek(self._fd, base + seen, os.SEEK_SET)  # later writes append
        self.size += seen
        return seen

    def _show(
        self, offset: int, count: int, buffer: memoryview, observe: Callable[[memoryview], object]
    ) -> int:
        """Pass ``observe`` the staged bytes from ``offset``, up to ``count``; how many.

        Mapped where the platform can: hashing a mapping of the page cache skips copying
        every byte into ``buffer`` first (a third of the hashing time of a large put). The
        temp file is private to this process and only grows, so the mapping stays valid.
        """
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(
                self._fd, offset + count - aligned, offset=aligned, access=mmap.ACCESS_READ
            )
        except (OSError, ValueError):  # a file system that cannot map: read it back
            n = os.preadv(self._fd, [buffer[: min(len(buffer), count)]], offset)
            if not n:
                raise BlobStoreError(f"{self.temp_path} shrank while being written") from None
            observe(buffer[:n])
            return n
        with mapped, memoryview(mapped) as view:
            observe(view[offset - aligned :])
        return count

    def replay(self, observe: Callable[[memoryview], object]) -> None:
        """Show ``observe`` every byte staged so far, in order (read back from the file)."""
        self._require_open("read back")
        buffer = chunk_buffer()
        seen = 0
        while seen < self.size:
            piece = buffer[: min(len(buffer), self.size - seen)]
            n = os.preadv(self._fd, [piece], seen)
            if not n:
                raise BlobStoreError(f"{self.temp_path} shrank while being read back")
            observe(buffer[:n])
            seen += n

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def _commit(self, key: str) -> None:
        self._publish(self._store._path(key))

    def _publish(self, target: str) -> None:
        """Close the temp file and rename it to ``target`` (a checked path in the store)."""
        try:
            self._close()
            try:
                os.replace(self.temp_path, target)
            except FileNotFoundError:  # the first blob in this folder
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(self.temp_path, target)
        except OSError as exc:
            raise BlobStoreError(f"cannot write {target}: {exc.strerror or exc}") from exc

    def _abort(self) -> None:
        self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)


def _check_linkable(source: str) -> None:
    """Refuse to hard-link what is not this user's own regular file.

    Linking makes the file read-only, and a hard link shares the file's mode with every
    other name of it: a symbolic link in a dataset folder (whoever wrote it) would have the
    store change the mode of its target anywhere on the machine, and root could link and
    change any user's file. Checked on the name itself, never following a link.
    """
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        raise NotFoundError(f"no file to store at {source}") from None
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symbolic link (linking would make its target read-only)"
    elif not stat.S_ISREG(st.st_mode):
        why = "it is not a regular file"
    elif st.st_uid != os.geteuid():
        why = f"it belongs to another user (uid {st.st_uid}): linking would change its mode"
    else:
        return
    raise LinkRefusedError(
        f"cannot hard-link {source} into the artifact folder: {why}",
        hint="--link copy, or --link auto to copy what cannot be linked",
        field="link",
    )


def _refused(kind: str, source: str, root: str, exc: OSError) -> Exception:
    """The error for a link of ``source`` into the store at ``root`` that failed."""
    if exc.errno not in _NO_LINK:
        return BlobStoreError(f"cannot {kind} {source} into {root}: {exc.strerror or exc}")
    what = "hard-link" if kind == "hardlink" else "reflink"
    hint: str
    if exc.errno == errno.EXDEV:
        why = "they are on different file systems"
        hint = "put the artifact folder on the data's file system ('artifacts' setting)"
    elif kind == "reflink" and exc.errno != errno.EPERM and exc.errno != errno.EACCES:
        why = "this file system does not share blocks between files (reflinks: Btrfs, XFS)"
        hint = "use --link hardlink (the file becomes read-only)"
    elif exc.errno in (errno.EPERM, errno.EACCES):
        why = "this user may not link it or make it read-only (another owner's file?)"
        hint = "run as the file's owner"
    else:
        why = exc.strerror or str(exc)
        hint = "check the file and the artifact folder"
    return LinkRefusedError(
        f"cannot {what} {source} into the artifact folder {root}: {why}",
        hint=f"{hint}, --link copy, or --link auto to copy what cannot be linked",
        field="link",
    )


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(fd)`` (Linux; Python 3.11's ``os`` lacks it), or None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only when a sync is asked for: ctypes is slow to import
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


def _fsync_dir(folder: str) -> None:
    """Make renames into ``folder`` durable; some platforms cannot open folders, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
