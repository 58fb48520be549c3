"""The metric journal: a memory-mapped file that ``log_metric`` appends to.

One journal per (run, writer process). A call to ``log_metric`` packs one 32-byte record into
a shared memory map and returns: no system call, no database. The page cache owns the bytes
as soon as they are written, so a process killed with SIGKILL loses nothing that a call
already returned (not an OS crash: like any write without fsync). A background thread (see
:mod:`plinth.tracking.ingest`) copies records into the ledger in batches.

Layout of ``<run_id>.<slot>.<host>.<pid>.plj``::

    header (128 bytes): b"PLJ1", version u32, slot u32, pad, ingested u64, run_id (36 ascii)
    records, 32 bytes each: marker u32, key_id u32, step i64, timestamp_ms i64, value f64

A record counts only once its marker is set, and the marker is written after the body, so
a writer killed mid-record leaves an uncommitted tail that readers ignore. Key names go to
``<same>.keys``, one per line, appended with one ``write`` before their first record.
A writer holds an exclusive ``flock`` on the journal for its lifetime: a journal whose lock
can be taken belongs to a process that is gone.

The file is sparse beyond what has been written. The writer fills the pages ahead of the
next record with ``pwrite`` of zeros, 1 MB at a time: the first store into a page that
exists only in a memory map costs a block-allocating page fault (~0.35 ms on this project's
CI VMs, against ~15 µs to ``pwrite`` 64 KB), and a file dirtied through a map is slower to
free when it is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plinth.errors import UsageError

__all__ = [
    "JOURNAL_SUFFIX",
    "JournalRecord",
    "JournalWriter",
    "OpenJournal",
    "journal_name",
    "parse_journal_name",
]

JOURNAL_SUFFIX = ".plj"
KEYS_SUFFIX = ".keys"
END_SUFFIX = ".end.json"
MAGIC = b"PLJ1"
VERSION = 1
HEADER_SIZE = 128
RECORD_SIZE = 32
COMMITTED = 0x4B4F_4B4F  # any non-zero value; the file starts zero-filled
SLOT_BITS = 40  # seq = slot << 40 | record index: 1e12 points per writer, 8M writers per run
MAX_KEY_LENGTH = 250

#: Bytes made ready with ``pwrite`` at a time (a multiple of the record size and of 4 KB).
READY_CHUNK = 1 << 20
_ZEROS = bytes(READY_CHUNK)

_HEADER = struct.Struct("<4sIIIQ36s")
_INGESTED = struct.Struct("<Q")
_INGESTED_OFFSET = 16
_BODY = struct.Struct("<Iqqd")  # key_id, step, timestamp, value (after the marker)
_MARKER = struct.Struct("<I")
_RECORD = struct.Struct("<IIqqd")


def journal_name(run_id: str, slot: int, host: str | None = None, pid: int | None = None) -> str:
    host = (host or socket.gethostname()).replace(".", "_")
    return f"{run_id}.{slot}.{host}.{pid or os.getpid()}{JOURNAL_SUFFIX}"


def parse_journal_name(name: str) -> tuple[str, int, str, int] | None:
    """(run_id, slot, host, pid) from a journal file name, or None if it is not one."""
    if not name.endswith(JOURNAL_SUFFIX):
        return None
    parts = name[: -len(JOURNAL_SUFFIX)].split(".")
    if len(parts) != 4:
        return None
    run_id, slot, host, pid = parts
    try:
        return run_id, int(slot), host, int(pid)
    except ValueError:
        return None


def check_key(key: object) -> str:
    """A metric key as stored: non-empty text of at most 250 characters, no line breaks."""
    if not isinstance(key, str) or not key.strip():
        raise UsageError(
            f"metric key {key!r} must be a non-empty string", hint="e.g. 'loss' or 'val/auc'"
        )
    if len(key) > MAX_KEY_LENGTH or any(ch in key for ch in "\n\r\x00"):
        raise UsageError(
            f"metric key {key[:60]!r} is longer than {MAX_KEY_LENGTH} characters or has a "
            "line break or NUL",
            hint="use a short name such as 'val/loss'",
        )
    return key


@dataclass(frozen=True)
class JournalRecord:
    index: int
    key: str
    step: int
    timestamp: int
    value: float


class JournalWriter:
    """The writing end of one journal, owned by one process. Thread-safe."""

    def __init__(self, folder: Path, run_id: str, slot: int, *, capacity: int = 1 << 16):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the ledger
        self.run_id = run_id
        self.slot = slot
        self.path = folder / journal_name(run_id, slot)
        self.keys_path = self.path.with_name(self.path.name + KEYS_SUFFIX)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._capacity = capacity
        self._ready = 0  # records whose pages were written with pwrite
        self._make_ready(first=64 << 10)
        os.ftruncate(self._fd, HEADER_SIZE + capacity * RECORD_SIZE)
        self._mm = mmap.mmap(self._fd, HEADER_SIZE + capacity * RECORD_SIZE)
        _HEADER.pack_into(self._mm, 0, MAGIC, VERSION, slot, 0, 0, run_id.encode("ascii"))
        self._limit = min(self._capacity, self._ready)  # append's one check per call
        self._keys_fd = os.open(
            self.keys_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600
        )
        self._key_ids: dict[str, int] = {}
        self._key_names: list[str] = []
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def count(self) -> int:
        """Records committed so far."""
        return self._count

    def append(self, key: str, value: float, step: int, timestamp: int) -> int:
        """Commit one point; returns its ``seq``. Once this returns, the point survives SIGKILL."""
        with self._lock:
            kid = self._key_ids.get(key)
            if kid is None:
                kid = self._add_key(key)
            index = self._count
            if index == self._limit:
                self._extend()
            offset = HEADER_SIZE + index * RECORD_SIZE
            _BODY.pack_into(self._mm, offset + 4, kid, step, timestamp, value)
            _MARKER.pack_into(self._mm, offset, COMMITTED)
            self._count = index + 1
        return self.slot << SLOT_BITS | index

    def _add_key(self, key: str) -> int:
        check_key(key)
        if self._closed:
            raise UsageError(f"the metric journal of run {self.run_id} is closed")
        kid = len(self._key_names)
        os.write(self._keys_fd, key.encode("utf-8") + b"\n")
        self._key_ids[key] = kid
        self._key_names.append(key)
        return kid

    def _extend(self) -> None:
        """Room for the next record: grow the map when full, pwrite the next pages."""
        if self._count == self._capacity:
            self._capacity *= 2
            self._mm.resize(HEADER_SIZE + self._capacity * RECORD_SIZE)
        if self._count == self._ready:
            self._make_ready()
        self._limit = min(self._capacity, self._ready)

    def _make_ready(self, first: int = READY_CHUNK) -> None:
        """Write zeros over the next ``first`` bytes of records (page-aligned at the end)."""
        start = HEADER_SIZE + self._ready * RECORD_SIZE
        end = (start + first) // 4096 * 4096
        os.pwrite(self._fd, memoryview(_ZEROS)[: end - start], start)
        self._ready = (end - HEADER_SIZE) // RECORD_SIZE

    def read(self, start: int, stop: int | None = None) -> list[JournalRecord]:
        """Committed records ``start`` up to ``stop`` (default: all), from memory."""
        with self._lock:
            stop = self._count if stop is None else min(stop, self._count)
            raw = self._mm[HEADER_SIZE + start * RECORD_SIZE : HEADER_SIZE + stop * RECORD_SIZE]
            names = list(self._key_names)
        return [
            JournalRecord(start + i, names[kid], step, ts, value)
            for i, (_, kid, step, ts, value) in enumerate(_RECORD.iter_unpack(raw))
        ]

    def mark_ingested(self, count: int) -> None:
        with self._lock:
            if not self._closed:
                _INGESTED.pack_into(self._mm, _INGESTED_OFFSET, count)

    def close(self, *, remove: bool) -> None:
        """Release the journal; ``remove`` deletes its files (everything was ingested)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._mm.close()
            os.close(self._keys_fd)
            if remove:
                for path in (self.path, self.keys_path, self.end_path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            os.close(self._fd)  # releases the flock last

    @property
    def end_path(self) -> Path:
        return self.path.with_name(self.path.name + END_SUFFIX)


class OpenJournal:
    """A journal left by a writer that is gone, opened (and locked) for recovery."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd = fd
        data = os.pread(fd, HEADER_SIZE, 0)
        if len(data) < _HEADER.size:
            raise ValueError(f"{path} is shorter than a journal header")
        magic, version, slot, _, ingested, run_id = _HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"{path} is not a plinth journal (magic {magic!r})")
        self.slot: int = slot
        self.ingested: int = ingested
        self.run_id: str = run_id.decode("ascii")
        self.keys_path = path.with_name(path.name + KEYS_SUFFIX)
        self.end_path = path.with_name(path.name + END_SUFFIX)

    @classmethod
    def try_open(cls, path: Path) -> OpenJournal | None:
        """Open a journal whose writer is gone; None if a live process still holds it."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            return cls(path, fd)
        except Exception:
            os.close(fd)
            raise

    def records(
        self, start: int | None = None, *, batch: int = 100_000
    ) -> Iterator[list[JournalRecord]]:
        """Committed records from ``start`` (default: the first not yet ingested), in batches."""
        names = (
            self.keys_path.read_bytes().decode("utf-8").split("\n")[:-1]
            if (self.keys_path.exists())
            else []
        )
        index = self.ingested if start is None else start
        while True:
            raw = os.pread(self._fd, batch * RECORD_SIZE, HEADER_SIZE + index * RECORD_SIZE)
            out: list[JournalRecord] = []
            for marker, kid, step, ts, value in _RECORD.iter_unpack(raw[: len(raw) // 32 * 32]):
                if marker != COMMITTED or kid >= len(names):
                    break
                out.append(JournalRecord(index + len(out), names[kid], step, ts, value))
            if out:
                yield out
            if len(out) < batch:
                return
            index += len(out)

    def mark_ingested(self, count: int) -> None:
        os.pwrite(self._fd, _INGESTED.pack(count), _INGESTED_OFFSET)
        self.ingested = count

    def remove(self) -> None:
        for path in (self.path, self.keys_path, self.end_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        os.close(self._fd)
