"""The stat cache: (path, inode, size, mtime) -> digest, so unchanged files are never re-read.

Like git's index and DVC's state database, a file whose absolute path, inode number, size
and modification time (nanoseconds) all match its cache entry is taken to hold the content
hashed before, *without reading it*. A change that keeps all four (rewriting a file in
place with the same size and then resetting its mtime, e.g. ``touch -d``) is not seen;
``plinth data add --no-cache`` (``use_cache=False``) rehashes everything.

"Racy" entries are never stored: a file modified within :data:`RACY_WINDOW_NS` (two
seconds for file systems with whole-second timestamps) before hashing began could change
again within the same timestamp tick, so it is read again next time.

The cache is a SQLite file under the project's ``.plinth/cache/``; it is only a cache:
deleting it costs one full read of each file, and a damaged one is recreated.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

__all__ = ["RACY_WINDOW_NS", "CacheEntry", "StatCache", "is_racy"]

#: A file modified this recently before hashing began is not cached.
RACY_WINDOW_NS = 100_000_000
#: The window for timestamps without a sub-second part (FAT, some network file systems).
COARSE_RACY_WINDOW_NS = 2_000_000_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, "
    "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL) WITHOUT ROWID"
)


class CacheEntry(NamedTuple):
    inode: int
    size: int
    mtime_ns: int
    digest: str


def is_racy(mtime_ns: int, started_ns: int) -> bool:
    """Whether a file with this mtime could still change unseen after ``started_ns``."""
    window = COARSE_RACY_WINDOW_NS if mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
    return mtime_ns >= started_ns - window


class StatCache:
    """A SQLite file of :class:`CacheEntry` by absolute path; opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError:  # damaged: it is only a cache
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(_SCHEMA)
        return conn

    def entries_under(self, root: str, *, is_dir: bool) -> dict[str, tuple[int, int, int, str]]:
        """``(inode, size, mtime_ns, digest)`` for the file ``root`` or files below the folder."""
        conn = self._connect()
        if is_dir:
            prefix = root.rstrip("/") + "/"
            # Every path starting with "root/" sorts between "root/" and "root0".
            rows = conn.execute(
                "SELECT path, inode, size, mtime_ns, digest FROM stat WHERE path >= ? AND path < ?",
                (prefix, prefix[:-1] + "0"),
            )
        else:
            rows = conn.execute(
                "SELECT path, inode, size, mtime_ns, digest FROM stat WHERE path = ?", (root,)
            )
        # Plain tuples: a NamedTuple per row costs more than the query for 10,000 files.
        return {row[0]: row[1:] for row in rows}

    def update(self, entries: Iterable[tuple[str, CacheEntry]]) -> None:
        """Store entries (replacing older ones for the same paths) in one transaction."""
        rows = [(path, *entry) for path, entry in entries]
        if not rows:
            return
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.OperationalError:  # busy for too long: skip, it is only a cache
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
