"""Content addressing over any :class:`BlobStore`: blobs named by their BLAKE3 digest.

A blob with digest ``d`` (64 lowercase hex characters) lives under the key
``blobs/<d[:2]>/<d[2:]>``. Puts read their source once, in 1 MiB chunks into one reused
buffer, hashing while staging, so a file is never held in memory; identical content is
stored once (a stored blob of the wrong size, torn by a crash, is written again). Reads
hash as they go and raise :class:`BlobCorruptedError` at the end when the bytes do not
match. Puts are atomic; with ``fsync=True`` they are also durable before they return,
one :meth:`BlobStore.sync` per call (:meth:`ContentStore.put_files` syncs a batch once)::

    content = ContentStore(open_blob_store(".plinth/artifacts", root=Path(".")))
    ref = content.put_file("model.onnx")          # BlobRef(digest='af13...', size=...)
    content.copy_to(ref.digest, "checkout/model.onnx")
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import types
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Self

from blake3 import blake3

from plinth.errors import BlobCorruptedError, NotFoundError, UsageError
from plinth.storage.blobs import CHUNK_SIZE, BlobStore, Readable, StagedBlob, chunk_buffer
from plinth.storage.local import LocalBlobStore

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "BLOB_PREFIX",
    "CHUNK_SIZE",
    "BlobRef",
    "ByteSource",
    "ContentStore",
    "StoredBlob",
    "blob_key",
    "check_digest",
    "hash_file",
]

#: Where content-addressed blobs live inside a blob store.
BLOB_PREFIX = "blobs/"

_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobRef:
    """A blob's name (its BLAKE3 hex digest) and its size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    """A blob found in a store: digest, size and last-modified time (epoch seconds)."""

    digest: str
    size: int
    modified: float


#: Anything with ``read(n) -> bytes``: open files, ``io.BytesIO``, HTTP bodies.
ByteSource = Readable


def check_digest(digest: str) -> str:
    """``digest`` if it is 64 lowercase hex characters, else :class:`UsageError`."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise UsageError(
            f"invalid blob digest {digest!r}: expected 64 lowercase hex characters",
            hint="pass a BLAKE3 digest as returned by put_file() or shown by plinth",
        )
    return digest


def blob_key(digest: str) -> str:
    """The store key of a digest: ``blobs/ab/cdef...``."""
    check_digest(digest)
    return f"{BLOB_PREFIX}{digest[:2]}/{digest[2:]}"


def _open_source(path: Path | str) -> io.FileIO:
    try:
        # Unbuffered: readinto() then reads straight into the caller's buffer.
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise NotFoundError(f"no file to store at {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_small(source: io.FileIO) -> memoryview | None:
    """A regular file smaller than ``CHUNK_SIZE``, whole, in this thread's chunk buffer
    (valid until the thread's next read); None, nothing read, for anything else.

    One read for the bytes and one that finds EOF, where a chunked copy costs a staging
    loop per file: for many small files that loop costs more than the copy.
    """
    try:
        info = os.fstat(source.fileno())
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size >= CHUNK_SIZE:
        return None
    buffer = chunk_buffer()
    n = source.readinto(buffer) or 0
    if n < len(buffer) and not source.readinto(buffer[n:]):
        return buffer[:n]
    # It grew since fstat: start again, streamed (an unbuffered FileIO seeks back exactly).
    source.seek(0)
    return None


def hash_file(path: Path | str) -> BlobRef:
    """The digest and size of a file, read in chunks; nothing is stored."""
    hasher = blake3()
    size = 0
    buffer = chunk_buffer()
    with _open_source(path) as source:
        while n := source.readinto(buffer):
            hasher.update(buffer[:n])
            size += n
    return BlobRef(hasher.hexdigest(), size)


class ContentStore:
    """Immutable blobs named by their BLAKE3 digest, on top of a :class:`BlobStore`."""

    def __init__(self, store: BlobStore, *, fsync: bool = False) -> None:
        self.store = store
        #: Whether each put returns only once its blobs are durable (the ``blob_fsync``
        #: setting); otherwise durability is left to the backend (see docs/storage.md).
        self.fsync = fsync

    def put_file(self, path: Path | str) -> BlobRef:
        """Store a file's content (streamed); returns its digest and size."""
        ref = self._put_file(path)
        if self.fsync:
            self.sync([ref.digest])
        return ref

    def put_files(self, paths: Iterable[Path | str]) -> list[BlobRef]:
        """Store many files, in order; with ``fsync``, one sync for the whole batch.

        Small files go together where the backend can (:meth:`BlobStore.batch`).
        """
        with self.store.batch():
            refs = [self._put_file(path) for path in paths]
        if self.fsync:
            self.sync(ref.digest for ref in refs)
        return refs

    def link_file(self, path: Path | str, kind: str) -> BlobRef:
        """Store a file as a reflink or a hard link (``kind``) instead of a copy.

        Only into a local folder on the file's file system; otherwise, and where the file
        system cannot, :class:`~plinth.storage.local.LinkRefusedError`. A reflink is hashed
        from the staged clone (exactly what is stored). A hard link is the file itself:
        hashed, linked, made read-only, then checked unchanged (inode, size, mtime).
        """
        from plinth.storage.local import LINK_KINDS, LinkRefusedError, LocalBlobStore

        store = self.store
        source = os.fspath(path)
        if kind not in LINK_KINDS:
            raise UsageError(f"unknown link kind {kind!r}: use one of {', '.join(LINK_KINDS)}")
        if not isinstance(store, LocalBlobStore):
            raise LinkRefusedError(
                f"cannot {kind} {source} into {store.describe()}: links need the artifacts "
                "in a local folder",
                hint="use --link copy (or auto, which copies there)",
                field="link",
            )
        if kind == "reflink":
            hasher = blake3()
            with store.stage_clone(source) as staged:
                staged.replay(hasher.update)
                ref = self._publish(staged, hasher.hexdigest())
        else:
            try:
                before = os.stat(source)
            except FileNotFoundError:
                raise NotFoundError(f"no file to store at {source}") from None
            ref = hash_file(source)
            expect = (before.st_ino, before.st_size, before.st_mtime_ns)
            store.link(source, blob_key(ref.digest), ref.size, expect)
        if self.fsync:
            self.sync([ref.digest])
        return ref

    def put_stream(self, source: ByteSource) -> BlobRef:
        """Store everything read from ``source`` until EOF, one chunk at a time."""
        hasher = blake3()
        with self.store.stage() as staged:
            staged.write_from(source, hasher.update)
            ref = self._publish(staged, hasher.hexdigest())
        if self.fsync:
            self.sync([ref.digest])
        return ref

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store ``data``."""
        with self.store.stage() as staged:
            staged.write(data)
            ref = self._publish(staged, blake3(data).hexdigest())
        if self.fsync:
            self.sync([ref.digest])
        return ref

    def sync(self, digests: Iterable[str]) -> None:
        """Make stored blobs durable (one :meth:`BlobStore.sync`), whatever ``fsync`` says."""
        self.store.sync([blob_key(digest) for digest in digests])

    def _put_file(self, path: Path | str) -> BlobRef:
        with _open_source(path) as source:
            whole = _read_small(source)
            if whole is not None:
                return self._put_small(whole)
            hasher = blake3()
            with self.store.stage() as staged:
                # Hashes the bytes as staged: the digest is of exactly what is stored.
                staged.write_from(source, hasher.update)
                return self._publish(staged, hasher.hexdigest())

    def _put_small(self, data: memoryview) -> BlobRef:
        """Store bytes already in memory: hashed first, so a blob already stored costs
        one check and no temp file (the usual case for a re-logged folder)."""
        ref = BlobRef(blake3(data).hexdigest(), len(data))
        key = blob_key(ref.digest)
        if isinstance(self.store, LocalBlobStore):
            self.store.put_whole(key, data)
        elif not self.store.touch(key, ref.size):
            with self.store.stage() as staged:
                staged.write(data)
                staged.commit(key)
        return ref

    def _publish(self, staged: StagedBlob, digest: str) -> BlobRef:
        key = blob_key(digest)
        size = staged.size
        # Identical content is stored once (touched, so gc's grace period covers it until
        # the caller records its reference); a stored blob of another size is torn and is
        # replaced. Two writers racing past this check both commit the same bytes, which
        # every backend publishes atomically.
        if self.store.touch(key, size):
            staged.abort()
        else:
            staged.commit(key)
        return BlobRef(digest, size)

    def open(self, digest: str, *, verify: bool = True, size: int | None = None) -> BinaryIO:
        """A streaming reader of a blob; with ``verify`` it raises at EOF on a mismatch.

        Verification happens when the reader reaches the end: read it to the end (as
        :meth:`read_bytes` and :meth:`copy_to` do) before trusting what it returned.
        ``size``, when known, is checked too.
        """
        key = blob_key(digest)
        try:
            inner = self.store.open(key)
        except NotFoundError:
            raise NotFoundError(
                f"blob {digest} not found at {self.store.location(key)}",
                hint="the blob is missing from the artifact store; check the 'artifacts' "
                "setting, or re-log the artifact",
            ) from None
        if not verify:
            return inner
        raw = _VerifyingReader(inner, digest, self.store.location(key), size)
        return io.BufferedReader(raw, CHUNK_SIZE)

    def read_bytes(self, digest: str, *, verify: bool = True, size: int | None = None) -> bytes:
        """A whole blob in memory (for small blobs), verified unless ``verify`` is false."""
        with self.open(digest, verify=verify, size=size) as reader:
            return reader.read()

    def copy_to(
        self, digest: str, dest: Path | str, *, verify: bool = True, size: int | None = None
    ) -> BlobRef:
        """Write a blob to ``dest`` atomically; on corruption nothing is left at ``dest``.

        The blob streams into a temp file next to ``dest``, is verified, then renamed.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp"
        written = 0
        try:
            with self.open(digest, verify=verify, size=size) as source:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(CHUNK_SIZE):
                        out.write(chunk)
                        written += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return BlobRef(digest, written)

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return self.store.exists(blob_key(digest))

    def delete(self, digest: str) -> None:
        """Remove a blob; a missing one is not an error. Only ``plinth gc`` should call this."""
        self.store.delete(blob_key(digest))

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob; anything under ``blobs/`` not named like a blob is skipped."""
        for info in self.store.list(BLOB_PREFIX):
            parts = info.key.split("/")
            if len(parts) != 3 or len(parts[1]) != 2:
                continue
            digest = parts[1] + parts[2]
            if _DIGEST.fullmatch(digest):
                yield StoredBlob(digest, info.size, info.modified)

    def location(self, digest: str) -> str:
        """Where the blob lives, for messages."""
        return self.store.location(blob_key(digest))

    def close(self) -> None:
        """Close the underlying blob store."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


class _VerifyingReader(io.RawIOBase):
    """Hashes what passes through; raises :class:`BlobCorruptedError` at EOF on a mismatch."""

    def __init__(self, inner: BinaryIO, digest: str, location: str, size: int | None) -> None:
        self._inner = inner
        self._digest = digest
        self._location = location
        self._size = size
        self._hasher = blake3()
        self._read = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        if not len(out):
            return 0
        data = self._inner.read(len(out))
        if not data:
            self._verify()
            return 0
        self._hasher.update(data)
        self._read += len(data)
        out[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def _verify(self) -> None:
        if self._verified:
            return
        # Raised again on every further read: a corrupted reader never reports a clean EOF.
        actual = self._hasher.hexdigest()
        if actual != self._digest:
            raise BlobCorruptedError(self._digest, self._location, actual)
        if self._size is not None and self._read != self._size:
            detail = (
                f"the right digest, but has {self._read} bytes where {self._size} were recorded"
            )
            raise BlobCorruptedError(self._digest, self._location, detail)
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()
