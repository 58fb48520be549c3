"""A blob store in process memory, for tests: ``memory://NAME``.

Every store opened with the same name in one process shares the same blobs, so a test can
open the store twice (as two parts of plinth would) and see one set of blobs.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from plinth.errors import NotFoundError
from plinth.storage.blobs import BlobInfo, BlobStore, StagedBlob, check_key

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MemoryBlobStore"]


@dataclass
class _Space:
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A committed bytearray is never mutated again, so it can be shared without copying.
    blobs: dict[str, tuple[bytearray, float]] = field(default_factory=dict)


_SPACES: dict[str, _Space] = {}
_SPACES_LOCK = threading.Lock()


class MemoryBlobStore(BlobStore):
    """Blobs in a dict shared by every store with the same ``name`` in this process."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        with _SPACES_LOCK:
            self._space = _SPACES.setdefault(name, _Space())

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._space.lock:
            return key in self._space.blobs

    def touch(self, key: str, size: int | None = None) -> bool:
        check_key(key)
        with self._space.lock:
            entry = self._space.blobs.get(key)
            if entry is None or (size is not None and len(entry[0]) != size):
                return False
            self._space.blobs[key] = (entry[0], time.time())
        return True

    def stage(self) -> StagedBlob:
        return _MemoryStagedBlob(self._space)

    def open(self, key: str) -> BinaryIO:
        check_key(key)
        with self._space.lock:
            entry = self._space.blobs.get(key)
        if entry is None:
            raise NotFoundError(f"no blob at {self.location(key)}")
        return io.BufferedReader(_Reader(memoryview(entry[0])))

    def delete(self, key: str) -> None:
        check_key(key)
        with self._space.lock:
            self._space.blobs.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        with self._space.lock:
            items = sorted(self._space.blobs.items())
        for key, (data, modified) in items:
            if key.startswith(prefix):
                yield BlobInfo(key, len(data), modified)

    def location(self, key: str) -> str:
        return f"memory://{self.name}/{key}"

    def describe(self) -> str:
        return f"memory://{self.name}"

    def check(self) -> None:
        return None

    def clear(self) -> None:
        """Remove every blob of this store (and of every store sharing its name)."""
        with self._space.lock:
            self._space.blobs.clear()


class _Reader(io.RawIOBase):
    """Reads a shared buffer without copying all of it."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        n = min(len(out), len(self._view) - self._pos)
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._view.release()
        super().close()


class _MemoryStagedBlob(StagedBlob):
    def __init__(self, space: _Space) -> None:
        super().__init__()
        self._space = space
        self._buffer = bytearray()

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data  # a copy: the caller may reuse ``data``

    def _commit(self, key: str) -> None:
        with self._space.lock:
            self._space.blobs[key] = (self._buffer, time.time())

    def _abort(self) -> None:
        self._buffer = bytearray()
