"""The ``BlobStore`` interface (bytes under '/'-separated keys) and the registry by URI scheme.

A blob store knows nothing about hashes: :class:`plinth.storage.content.ContentStore` adds
content addressing on top. Writes go through a staging object so that a key only ever
appears complete::

    with store.stage() as staged:
        staged.write(b"hello")
        staged.commit("notes/hello.txt")
"""

from __future__ import annotations

import abc
import contextlib
import re
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, Self

from plinth.errors import ConfigError, InvalidPathError, UsageError
from plinth.settings import redact

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_SCHEMES",
    "CHUNK_SIZE",
    "ENTRY_POINT_GROUP",
    "BlobInfo",
    "BlobStore",
    "BlobStoreFactory",
    "Readable",
    "StagedBlob",
    "check_key",
    "chunk_buffer",
    "open_blob_store",
]

#: Entry point group third-party backends register under; the entry point name is the scheme.
ENTRY_POINT_GROUP = "plinth.blob_stores"
#: Schemes plinth handles itself ("" is a plain folder path).
BUILTIN_SCHEMES: tuple[str, ...] = ("file", "memory", "s3")

#: Bytes read from a source or a blob at a time.
CHUNK_SIZE = 1024 * 1024

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class BlobInfo:
    """One stored key: its size in bytes and last-modified time (epoch seconds)."""

    key: str
    size: int
    modified: float


def check_key(key: str) -> str:
    """``key`` itself when it is a valid store key, else :class:`InvalidPathError`.

    Keys are relative, '/'-separated, without empty, '.' or '..' segments, backslashes or
    control characters. They are made by plinth, not users, so this is a safety net.
    """
    reason = None
    if not isinstance(key, str) or not key:
        reason = "it is empty"
    elif _CONTROL.search(key):
        reason = "it contains a control character"
    elif "\\" in key:
        reason = "it contains a backslash"
    elif key.startswith("/"):
        reason = "it is absolute"
    elif any(part in ("", ".", "..") for part in key.split("/")):
        reason = "it has an empty, '.' or '..' segment"
    if reason:
        raise InvalidPathError(f"invalid blob key {key!r}: {reason}")
    return key


_BUFFERS = threading.local()


def chunk_buffer() -> memoryview:
    """This thread's reusable ``CHUNK_SIZE`` buffer, for ``readinto`` loops.

    A fresh 1 MiB ``bytes`` per read is memory the process has not touched yet, and on
    some VMs touching it costs more than reading the file (benchmarks/RESULTS.md, W3).
    """
    buffer: memoryview | None = getattr(_BUFFERS, "buffer", None)
    if buffer is None:
        buffer = _BUFFERS.buffer = memoryview(bytearray(CHUNK_SIZE))
    return buffer


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: open files, ``io.BytesIO``, HTTP bodies."""

    def read(self, size: int = -1, /) -> bytes: ...


class StagedBlob(abc.ABC):
    """Bytes being written that become visible under a key only on :meth:`commit`.

    Use as a context manager: leaving the ``with`` block without committing aborts, and
    aborting removes every temporary file.
    """

    def __init__(self) -> None:
        self._state = "open"
        self.size = 0

    @property
    def closed(self) -> bool:
        """True once committed or aborted."""
        return self._state != "open"

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; returns the number of bytes written.

        ``data`` may be a view of a buffer the caller reuses once this returns: a backend
        that keeps the bytes must copy them.
        """
        self._require_open("write to")
        if data:
            self._write(data)
            self.size += len(data)
        return len(data)

    def write_from(
        self, source: Readable, observe: Callable[[memoryview], object] | None = None
    ) -> int:
        """Append everything ``source`` holds from its position to EOF; returns the count.

        ``observe``, when given, is called with every piece of the staged bytes, in order
        (a view valid only during the call): a content store hashes them. Backends may
        override this to copy inside the kernel and show ``observe`` the staged copy.
        """
        self._require_open("write to")
        total = 0
        readinto: Callable[[memoryview], int | None] | None = getattr(source, "readinto", None)
        buffer = chunk_buffer()
        while True:
            if readinto is not None:
                n = readinto(buffer) or 0
                piece = buffer[:n]
            else:
                piece = memoryview(source.read(CHUNK_SIZE))
            if not piece:
                return total
            if observe is not None:
                observe(piece)
            self._write(piece)
            self.size += len(piece)
            total += len(piece)

    def commit(self, key: str) -> None:
        """Publish everything written under ``key`` at once, replacing what was there."""
        self._require_open("commit")
        check_key(key)
        try:
            self._commit(key)
        except BaseException:
            self._state = "aborted"
            self._abort()
            raise
        self._state = "committed"

    def abort(self) -> None:
        """Drop what was written; does nothing if already committed or aborted."""
        if self._state == "open":
            self._state = "aborted"
            self._abort()

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise UsageError(f"cannot {action} a staged blob that was already {self._state}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.abort()

    @abc.abstractmethod
    def _write(self, data: bytes | bytearray | memoryview) -> None: ...

    @abc.abstractmethod
    def _commit(self, key: str) -> None: ...

    @abc.abstractmethod
    def _abort(self) -> None: ...


class BlobStore(abc.ABC):
    """A small store of bytes under '/'-separated keys; backends implement this."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a blob."""

    def touch(self, key: str, size: int | None = None) -> bool:
        """Mark ``key`` as just written, if it exists; returns whether it exists.

        A put of content that is already stored calls this instead of writing, so that
        ``plinth gc``'s grace period protects the blob until its reference is recorded.
        Backends should refresh the blob's ``modified`` time; this default only checks.
        With ``size``, a blob of another size counts as absent (it is torn, e.g. by an OS
        crash before it reached the disk) and the put writes it again; backends should
        check it.
        """
        return self.exists(key)

    def sync(self, keys: Iterable[str]) -> None:  # noqa: B027 - most backends are durable
        """Make the committed ``keys`` durable: on stable storage, surviving an OS crash.

        A commit is atomic but need not be durable; callers that want durability call this
        once per batch, before recording references to the blobs. This default does
        nothing, for backends whose commit already is durable (S3) or never can be (memory).
        """

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """A block whose small puts a backend may send together when it ends (one request
        to a team server for many small files); by default each put is sent on its own.

        Inside it, :meth:`touch` may answer False for a blob that exists (the batch's
        receiver dedups) and a committed blob may only be readable once the block ends.
        """
        return contextlib.nullcontext()

    @abc.abstractmethod
    def stage(self) -> StagedBlob:
        """A writable staging object; its :meth:`StagedBlob.commit` publishes atomically."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A streaming reader for ``key``; :class:`NotFoundError` if it does not exist."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every key starting with ``prefix``, in no particular order."""

    @abc.abstractmethod
    def location(self, key: str) -> str:
        """Where ``key`` lives (a full path or URL), for messages."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The store's root, without secrets, for ``plinth doctor``."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise :class:`BlobStoreError` if the store cannot be reached or written."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class BlobStoreFactory(Protocol):
    """What a ``plinth.blob_stores`` entry point loads: a callable building the store."""

    def __call__(
        self, uri: str, *, root: Path, endpoint_url: str | None, connect_timeout: float
    ) -> BlobStore: ...


def _plugins() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # only for schemes plinth does not know

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _accepted(plugins: dict[str, EntryPoint]) -> str:
    schemes = [f"{s}://" for s in (*BUILTIN_SCHEMES, *sorted(set(plugins) - set(BUILTIN_SCHEMES)))]
    return "a folder path, " + ", ".join(schemes[:-1]) + " or " + schemes[-1]


def open_blob_store(
    uri: str,
    *,
    root: Path,
    endpoint_url: str | None = None,
    connect_timeout: float = 5.0,
) -> BlobStore:
    """The blob store for the ``artifacts`` setting ``uri``, chosen by its scheme.

    A plain path (relative ones taken from ``root``) or ``file://`` is a local folder,
    ``memory://NAME`` a process-wide in-memory store, ``s3://BUCKET/PREFIX`` S3 (the 's3'
    extra). Other schemes come from the ``plinth.blob_stores`` entry point group.

    >>> store = open_blob_store("memory://doc", root=Path("."))
    """
    match = _SCHEME.match(uri)
    scheme = match["scheme"].lower() if match else ""
    if scheme in ("", "file"):
        from plinth.storage.local import LocalBlobStore

        return LocalBlobStore(_local_path(uri, scheme, root))
    if scheme == "memory":
        from plinth.storage.memory import MemoryBlobStore

        return MemoryBlobStore(uri[len("memory://") :])
    if scheme == "s3":
        from plinth.storage.s3 import S3BlobStore

        return S3BlobStore.from_uri(uri, endpoint_url=endpoint_url, connect_timeout=connect_timeout)
    plugins = _plugins()
    if scheme not in plugins:
        raise ConfigError(
            f"setting 'artifacts' has unknown scheme '{scheme}://' in {redact(uri)!r}",
            hint=f"use {_accepted(plugins)}; see docs/storage.md",
            field="artifacts",
        )
    return _from_plugin(plugins[scheme], uri, root, endpoint_url, connect_timeout)


def _local_path(uri: str, scheme: str, root: Path) -> Path:
    text = uri
    if scheme == "file":
        rest = uri[len("file://") :]
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise ConfigError(
                f"setting 'artifacts' names a remote host in {redact(uri)!r}",
                hint="file:// URIs must be local, e.g. file:///srv/artifacts",
                field="artifacts",
            )
        text = slash + path
    if not text:
        raise ConfigError(
            f"setting 'artifacts' has no folder in {redact(uri)!r}", field="artifacts"
        )
    folder = Path(text).expanduser()
    return folder if folder.is_absolute() else root / folder


def _from_plugin(
    ep: EntryPoint, uri: str, root: Path, endpoint_url: str | None, connect_timeout: float
) -> BlobStore:
    where = f"entry point '{ep.name} = {ep.value}' in group {ENTRY_POINT_GROUP}"
    try:
        factory: BlobStoreFactory = ep.load()
    except Exception as exc:
        raise ConfigError(
            f"cannot load the blob store plugin for '{ep.name}://' ({where}): {exc}",
            hint="reinstall the package that provides it, or change the 'artifacts' setting",
            field="artifacts",
        ) from exc
    store = factory(uri, root=root, endpoint_url=endpoint_url, connect_timeout=connect_timeout)
    if not isinstance(store, BlobStore):
        raise ConfigError(
            f"the blob store plugin for '{ep.name}://' returned {type(store).__name__}, "
            "not a BlobStore",
            hint=f"fix the plugin ({where})",
            field="artifacts",
        )
    return store
