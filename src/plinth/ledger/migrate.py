"""Bring a ledger database to the newest schema, once, however many processes start at once.

:func:`ensure_schema` first reads ``alembic_version`` with one cheap query and returns at
once when the schema is current (the common case: no lock is taken). Otherwise it locks,
re-reads the version, runs ``alembic upgrade head`` on the locked connection and logs each
applied revision in ``schema_log``, all in one transaction:

- PostgreSQL: ``pg_advisory_xact_lock`` inside the migration transaction (DDL is
  transactional, so a failed migration leaves nothing behind);
- SQLite: a ``BEGIN EXCLUSIVE`` transaction (SQLite DDL is transactional too, once
  pysqlite's own BEGIN handling is off; see :mod:`plinth.ledger.engine`).
"""

from __future__ import annotations

import functools
import io
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from plinth.errors import LedgerUnavailableError
from plinth.ids import now_ms
from plinth.ledger.engine import SQLITE_BEGIN_OPTION, translate_errors
from plinth.ledger.tables import schema_log

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "HEAD",
    "MIGRATIONS",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "revisions",
]

#: The newest revision, spelled out so that opening a current ledger never imports Alembic
#: (~140 ms); a test checks it against the migration scripts' head.
HEAD = "0011_metric_series_index"

MIGRATIONS = Path(__file__).parent / "migrations"
#: Advisory lock key shared by every plinth process migrating a PostgreSQL database.
_PG_LOCK_KEY = 0x706C_696E_7468_0001  # "plinth" + 1


def _config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config(stdout=io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this version of plinth knows."""
    head = _scripts().get_current_head()
    assert head is not None, "the ledger migrations have no head"
    return head


def revisions() -> list[str]:
    """Every revision this version of plinth knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def _display_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (one query), or None for an empty database."""
    with translate_errors(_display_url(engine)), engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        return _read_revision(conn)


def _read_revision(conn: sa.Connection) -> str | None:
    try:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa_exc.DBAPIError as exc:
        if _is_missing_table(exc):
            return None
        raise


def _is_missing_table(exc: sa_exc.DBAPIError) -> bool:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "42P01" or "no such table" in str(orig)


def ensure_schema(engine: sa.Engine) -> list[str]:
    """Migrate the database to the newest schema; the revisions applied by *this* call.

    Safe to call from many processes at once: exactly one applies each revision.
    """
    current = current_revision(engine)
    if current == HEAD:  # the common case: no Alembic import, no script scan
        return []
    head = head_revision()
    if current == head:
        return []
    _check_known(engine, current)
    with translate_errors(_display_url(engine)):
        return _migrate(engine, head)


def _check_known(engine: sa.Engine, current: str | None) -> None:
    if current is None:
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if current not in known:
        raise LedgerUnavailableError(
            f"the ledger database {_display_url(engine)} is at schema revision {current!r}, "
            "which this version of plinth does not know (setting 'metadata')",
            hint="a newer plinth migrated it: upgrade plinth (pip install -U plinth)",
            field="metadata",
        )


def _migrate(engine: sa.Engine, head: str) -> list[str]:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN_OPTION: "EXCLUSIVE"})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            # Another process may have migrated while we waited for the lock.
            current = MigrationContext.configure(conn).get_current_revision()
            if current == head:
                return []
            pending = _scripts().iterate_revisions(head, current or "base")
            applied = [script.revision for script in reversed(list(pending))]
            command.upgrade(_config(conn), head)
            host, pid = socket.gethostname(), os.getpid()
            conn.execute(
                schema_log.insert(),
                [
                    {"revision": rev, "applied_at": now_ms(), "applied_by_pid": pid, "host": host}
                    for rev in applied
                ],
            )
    return applied
