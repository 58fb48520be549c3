"""Engines for the ledger database: SQLite (embedded) and PostgreSQL (team), chosen by URL.

SQLite connections run in WAL mode with a 30 s busy timeout, foreign keys on and
``synchronous=NORMAL``. plinth emits ``BEGIN`` itself (pysqlite's own transaction handling
is switched off) so that writes start with ``BEGIN IMMEDIATE``: a writer takes the write
lock up front instead of upgrading a read lock later, which is what deadlocks concurrent
writers with ``SQLITE_BUSY``. Pass the execution option ``plinth_sqlite_begin`` (``DEFERRED``,
``IMMEDIATE`` or ``EXCLUSIVE``) on a connection to choose another mode.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from plinth._extras import require
from plinth.errors import ConfigError, LedgerUnavailableError
from plinth.settings import redact

__all__ = [
    "SQLITE_BEGIN_OPTION",
    "create_ledger_engine",
    "redacted_url",
    "translate_errors",
    "unavailable",
]

#: Execution option naming the ``BEGIN`` mode of a SQLite transaction.
SQLITE_BEGIN_OPTION = "plinth_sqlite_begin"
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})
_ACCEPTED = (
    "sqlite:///ABSOLUTE/PATH, sqlite:// (in memory) or postgresql+psycopg://USER@HOST:PORT/DB"
)
_POSTGRES_SCHEMES = ("postgresql+psycopg", "postgresql", "postgres")
_BUSY_TIMEOUT_MS = 30_000


def redacted_url(url: str) -> str:
    """``url`` with its password (and any secret query value) replaced by ``***``."""
    return redact(url)


def create_ledger_engine(url: str, *, connect_timeout: float = 5.0) -> sa.Engine:
    """A SQLAlchemy engine for a ``metadata`` URL; nothing is connected yet.

    >>> create_ledger_engine("sqlite:////srv/project/.plinth/plinth.db")  # doctest: +SKIP
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _sqlite_engine(url)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_engine(url, connect_timeout)
    shown = f"scheme '{scheme}'" if scheme else "no scheme"
    raise ConfigError(
        f"setting 'metadata' has {shown} in {redacted_url(url)!r}; accepted: {_ACCEPTED}",
        hint="set 'metadata' in plinth.yaml or PLINTH_METADATA to a sqlite:/// or "
        "postgresql+psycopg:// URL",
        field="metadata",
    )


#: Row values (3.15), UPSERT ... WHERE (3.24), window functions (3.25), NULLS LAST (3.30).
MIN_SQLITE = (3, 30, 0)


def _sqlite_engine(url: str) -> sa.Engine:
    import sqlite3

    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigError(
            f"the ledger needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python "
            f"has {sqlite3.sqlite_version} (setting 'metadata')",
            hint="use a Python built with a newer SQLite, or PostgreSQL for 'metadata'",
            field="metadata",
        )
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = sa.create_engine(
            "sqlite://",
            connect_args={"check_same_thread": False},
            poolclass=StaticPool,
        )
    else:
        path = Path(database)
        if not path.is_absolute():
            raise ConfigError(
                f"setting 'metadata' is a relative SQLite path ({database!r}); "
                "the ledger needs an absolute one",
                hint="resolve it against the project root first, e.g. sqlite:////srv/p/.plinth/x.db",
                field="metadata",
            )
        try:
            # Owner-only whatever the umask: the embedded ledger is one person's. SQLite
            # gives its -wal and -shm files the database file's mode.
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                _create_private(path)
        except OSError as exc:
            raise LedgerUnavailableError(
                f"cannot create the ledger database {path} or its folder "
                f"(setting 'metadata'): {exc.strerror or exc}",
                field="metadata",
            ) from None
        engine = sa.create_engine(
            parsed.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _create_private(path: Path) -> None:
    with contextlib.suppress(FileExistsError):  # another process made it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Switch pysqlite's own BEGIN handling off; _sqlite_on_begin emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database file to WAL (it stays so); retried while another process is busy.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is
    locked" at once, without waiting for busy_timeout, while another connection holds one:
    that happens whenever several processes open a fresh database together.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - jitter, not crypto


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")).upper()
    if mode not in _BEGIN_MODES:
        raise ValueError(
            f"{SQLITE_BEGIN_OPTION} must be one of {sorted(_BEGIN_MODES)}, not {mode!r}"
        )
    conn.exec_driver_sql(f"BEGIN {mode}")


def _postgres_engine(url: str, connect_timeout: float) -> sa.Engine:
    # SQLAlchemy imports psycopg itself when connecting: this names the extra first.
    require("psycopg", feature="metadata=postgresql://...", field="metadata")
    parsed = make_url(_with_psycopg(url))
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, math.ceil(connect_timeout))},
    )


def _with_psycopg(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme.lower() != "postgresql+psycopg":
        return "postgresql+psycopg://" + rest
    return url


def unavailable(url: str, exc: BaseException) -> LedgerUnavailableError:
    """The error for a database that cannot be reached, safe to show (no password)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0].strip() if reason else type(exc).__name__
    try:
        password = make_url(url).password
    except Exception:  # an unparsable URL has no password we could leak either
        password = None
    if password:
        text = text.replace(str(password), "***")
    return LedgerUnavailableError(
        f"cannot use the ledger database {redacted_url(url)} (setting 'metadata'): {text}",
        field="metadata",
    )


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver-level failures (unreachable server, locked file) into LedgerUnavailableError."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise unavailable(url, exc) from None
