"""Materialise a dataset version's files in a folder, each verified against its digest.

From a local blob folder each file is a reflink (``FICLONE``: the file systems that share
blocks, e.g. Btrfs, XFS) or else an in-kernel copy (``copy_file_range``), written to a temp
file, hashed and renamed into place. Never a hard link: a hard link *is* the blob, so
editing the checked-out file in place (``open(path, "r+")``, ``>>``) would corrupt the
store for every version that lists it, and read-only permissions do not stop the owner's
``chmod`` or root. Reflinks share blocks copy-on-write, so they are as cheap and safe.
Other stores (S3) stream each blob, verified, into place. Files already present with the
right content are left alone; files with other content are a conflict unless ``force``.

Manifest paths are records someone else may have written: each is joined with
:func:`~plinth.guards.paths.safe_join` (no ``..``, absolute or encoded paths, no symlink in
``dest`` leading out of it), all before anything is written and again just before each
write. A file is renamed onto its path, so a symlink there is replaced, not written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plinth.errors import (
    BlobCorruptedError,
    ConflictError,
    InvalidPathError,
    NotFoundError,
    UsageError,
)
from plinth.guards.paths import safe_join
from plinth.storage import LocalBlobStore, hash_file

if TYPE_CHECKING:
    from plinth.datasets.manifests import Manifest
    from plinth.storage import ContentStore

__all__ = ["CheckoutStats", "materialize"]

#: ``ioctl(dest, FICLONE, src)``: share the source's blocks (Linux).
_FICLONE = 0x40049409
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}


@dataclass
class CheckoutStats:
    """How each file got there: reflinked, copied, or already present."""

    files: int = 0
    reflinked: int = 0
    copied: int = 0
    present: int = 0


def materialize(
    content: ContentStore, manifest: Manifest, dest: Path, *, force: bool = False
) -> CheckoutStats:
    """Write every file of ``manifest`` under ``dest``; see the module docstring."""
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder", field="dir")
    targets = {path: _join(dest, path) for path in manifest.files}
    stats = CheckoutStats(files=len(targets))
    workers = min(8, (os.cpu_count() or 2) + 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="plinth-checkout") as pool:
        existing = [p for p, target in targets.items() if os.path.lexists(target)]
        found = list(pool.map(lambda p: _digest_or_none(targets[p]), existing))
        conflicts = []
        for path, digest in zip(existing, found, strict=True):
            if digest == manifest.files[path][0]:
                stats.present += 1
                del targets[path]
            else:
                conflicts.append(path)
        if conflicts and not force:
            shown = ", ".join(conflicts[:3]) + (" ..." if len(conflicts) > 3 else "")
            raise ConflictError(
                f"{len(conflicts)} file(s) in {dest} differ from the version: {shown}",
                hint="check out into an empty folder, or pass --force to overwrite them",
                field="dir",
            )
        local = isinstance(content.store, LocalBlobStore)
        writer = _LocalWriter(content) if local else None
        items = sorted(targets.items())

        def write(item: tuple[str, Path]) -> bool:
            path, _ = item
            digest, size = manifest.files[path]
            target = _join(dest, path)  # again: a symlink may have appeared since
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.isdir(target) and not os.path.islink(target):
                raise ConflictError(f"{target} is a folder; the version has a file there")
            if writer is None:
                content.copy_to(digest, target, size=size)
                return False
            return writer.write(digest, size, target)

        for cloned in pool.map(write, items):
            if cloned:
                stats.reflinked += 1
            else:
                stats.copied += 1
    return stats


def _join(dest: Path, path: str) -> Path:
    try:
        return safe_join(dest, path)
    except InvalidPathError as exc:
        raise InvalidPathError(
            f"refusing to check out into {dest}: {exc.message}",
            hint="the version lists a path outside the folder, or the folder holds a symlink "
            "leading out of it; check out into an empty folder",
            field="dir",
        ) from None


def _digest_or_none(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hash_file(path).digest


class _LocalWriter:
    """Reflink or kernel-copy blobs out of a local folder, verifying each result."""

    def __init__(self, content: ContentStore) -> None:
        self._content = content
        self._clone = True  # probed on the first file; dropped once it fails

    def write(self, digest: str, size: int, target: Path) -> bool:
        source = self._content.location(digest)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
        cloned = False
        try:
            try:
                src_file = open(source, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                raise NotFoundError(
                    f"blob {digest} not found at {source}",
                    hint="the blob is missing from the artifact store; check the 'artifacts' "
                    "setting",
                ) from None
            with src_file as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                with os.fdopen(fd, "wb") as out:
                    cloned = self._clone and self._try_clone(src.fileno(), out.fileno())
                    if not cloned:
                        _copy(src.fileno(), out.fileno(), size)
            ref = hash_file(tmp)
            if ref.digest != digest or ref.size != size:
                raise BlobCorruptedError(digest, source, ref.digest)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return cloned

    def _try_clone(self, src: int, dst: int) -> bool:
        try:
            import fcntl
        except ImportError:  # Windows
            self._clone = False
            return False
        try:
            fcntl.ioctl(dst, _FICLONE, src)
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
            self._clone = False
            return False
        return True


def _copy(src: int, dst: int, size: int) -> None:
    """Copy inside the kernel where it can (Linux), else chunk by chunk."""
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < size:
                n = os.copy_file_range(src, dst, size - done)
                if not n:
                    return
                done += n
            return
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
            os.lseek(src, 0, os.SEEK_SET)
            os.lseek(dst, 0, os.SEEK_SET)
            os.ftruncate(dst, 0)
    while chunk := os.read(src, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
