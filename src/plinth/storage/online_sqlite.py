"""The SQLite online store: the default, one file in the project folder.

One table, ``online_rows (view, key, ts, vals)`` with the primary key ``(view, key)``,
without rowids; view names and keys are bound parameters, never SQL text. The file is
owner-only (0600, like the ledger; SQLite gives its -wal and -shm files the same mode) and
in WAL mode, so readers never wait for a materialization. A write is one ``executemany``
upsert, rows in key order, inside one ``BEGIN IMMEDIATE`` transaction; its ``WHERE
excluded.ts >= ts`` keeps the newer event. A read is one ``SELECT ... IN (...)`` per 500 keys.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from operator import itemgetter
from pathlib import Path

from plinth.errors import BackendError
from plinth.storage.online import Encoded, OnlineStore, check_view

__all__ = ["SqliteOnlineStore"]

_BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS online_rows ("
    "view TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, vals TEXT NOT NULL, "
    "PRIMARY KEY (view, key)) WITHOUT ROWID"
)
_UPSERT = (
    "INSERT INTO online_rows (view, key, ts, vals) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (view, key) DO UPDATE SET ts = excluded.ts, vals = excluded.vals "
    "WHERE excluded.ts >= online_rows.ts"
)
_GET_ONE = "SELECT ts, vals FROM online_rows WHERE view = ? AND key = ?"


def _get_many(count: int) -> str:
    marks = ", ".join("?" * count)
    return f"SELECT key, ts, vals FROM online_rows WHERE view = ? AND key IN ({marks})"  # noqa: S608 - only placeholders


class SqliteOnlineStore(OnlineStore):
    """An online store in one SQLite file (``sqlite:///PATH``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            _enable_wal(conn)
            conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise self._error("cannot open", exc) from None
        self._conn = conn
        self._lock = threading.Lock()
        self._queries: dict[int, str] = {}

    def _error(self, action: str, exc: BaseException) -> BackendError:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return BackendError(
            f"{action} the online store {self.path} (setting 'online_store'): {detail}",
            hint="check the 'online_store' setting and the file's permissions",
            field="online_store",
        )

    def _put(self, view: str, rows: list[Encoded]) -> None:
        # In the table's key order, each upsert lands next to the previous one: in random
        # order every row touches another B-tree page, and once the table outgrows SQLite's
        # page cache the write grows faster than the batch (3x slower at a million keys).
        # The sort is stable: equal keys stay in batch order, so the later one still wins.
        params = sorted(((view, key, ts, vals) for key, ts, vals in rows), key=itemgetter(1))
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_UPSERT, params)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error("cannot write to", exc) from None

    def _get(self, view: str, keys: list[str]) -> list[tuple[int, str | bytes] | None]:
        try:
            with self._lock:
                if len(keys) == 1:
                    row = self._conn.execute(_GET_ONE, (view, keys[0])).fetchone()
                    return [row]
                found: dict[str, tuple[int, str]] = {}
                unique = list(dict.fromkeys(keys))
                for start in range(0, len(unique), _CHUNK):
                    chunk = unique[start : start + _CHUNK]
                    sql = self._queries.get(len(chunk))
                    if sql is None:
                        sql = self._queries[len(chunk)] = _get_many(len(chunk))
                    for key, ts, vals in self._conn.execute(sql, (view, *chunk)):
                        found[key] = (ts, vals)
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from None
        return [found.get(key) for key in keys]

    def delete_view(self, view: str) -> None:
        check_view(view)
        with self._lock:
            try:
                self._conn.execute("DELETE FROM online_rows WHERE view = ?", (view,))
            except sqlite3.Error as exc:
                raise self._error("cannot delete from", exc) from None

    def check(self) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise self._error("cannot write to", exc) from None

    def describe(self) -> str:
        return f"sqlite:///{self.path}" if not self.path.is_absolute() else f"sqlite://{self.path}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """WAL mode (it stays so), retried while another process holds the lock it needs."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
