"""What every ledger store shares: transactions, error translation, upserts, argument checks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from plinth.errors import ConflictError, UsageError
from plinth.ids import new_id, now_ms
from plinth.ledger.engine import SQLITE_BEGIN_OPTION, translate_errors

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

#: Rows per statement for large batches; keeps bound parameters under SQLite's limit.
CHUNK = 500


class Db:
    """An engine, the (redacted) URL shown in errors, and the user stamped on every write."""

    def __init__(self, engine: sa.Engine, *, url: str, user: str) -> None:
        self.engine = engine
        self.url = url
        self.user = user

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (SQLite: ``BEGIN DEFERRED``, so writers are not blocked)."""
        with translate_errors(self.url), self.engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            with conn.begin():
                yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``); rolled back on any error."""
        with translate_errors(self.url), self.engine.begin() as conn:
            yield conn

    def stamp(self) -> dict[str, Any]:
        """``created_at`` and ``created_by`` for a new row."""
        return {"created_at": now_ms(), "created_by": self.user}


def upsert(conn: sa.Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT for ``table`` that supports ``ON CONFLICT`` on this connection's dialect.

    Each dialect module is imported when first used: a SQLite ledger never loads
    PostgreSQL's (and its asyncpg support, ~25 ms)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_text(value: object, what: str, *, max_length: int = 255) -> str:
    """``value`` if it is a non-empty string of at most ``max_length`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise UsageError(f"{what} is {len(value)} characters long; the limit is {max_length}")
    return value


def to_db_float(value: float) -> float | None:
    # SQLite stores NaN as NULL; store NULL for NaN on every backend so they agree.
    return None if math.isnan(value) else value


def from_db_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


#: Attempts at numbering a new version when other writers keep taking the next number.
NUMBERING_ATTEMPTS = 5


def save_numbered(
    db: Db,
    table: sa.Table,
    scope: Mapping[str, Any],
    digest: str,
    what: str,
    values: Mapping[str, Any] | None = None,
) -> Mapping[Any, Any]:
    """The row of ``table`` with ``scope`` (e.g. project and name) and ``digest``: found,
    or inserted with the next ``number`` in that scope. Concurrent savers of one text get
    one row; of different texts, consecutive numbers (a lost race is retried)."""
    key = sa.and_(*(table.c[k] == v for k, v in scope.items()))
    same = key & (table.c.digest == digest)
    for _ in range(NUMBERING_ATTEMPTS):
        with db.write() as conn:
            row = conn.execute(sa.select(table).where(same)).mappings().first()
            if row is not None:
                return row
            latest = conn.execute(sa.select(sa.func.max(table.c.number)).where(key)).scalar()
            conn.execute(
                upsert(conn, table)
                .values(
                    id=new_id(),
                    **scope,
                    number=(latest or 0) + 1,
                    digest=digest,
                    **(values or {}),
                    **db.stamp(),
                )
                .on_conflict_do_nothing()
            )
            row = conn.execute(sa.select(table).where(same)).mappings().first()
            if row is not None:
                return row
    raise ConflictError(  # pragma: no cover - needs five writers racing on one name
        f"could not number a new version of {what}: other writers kept taking the next number",
        hint="run the command again",
    )


def get_numbered(
    db: Db, table: sa.Table, scope: Mapping[str, Any], number: int | None, what: str, hint: str
) -> Mapping[Any, Any]:
    """The row of ``table`` with ``scope`` at ``number`` (None: the highest number), as
    :func:`save_numbered` writes them; NotFoundError naming ``what`` if there is none."""
    from plinth.errors import NotFoundError

    query = sa.select(table).where(sa.and_(*(table.c[k] == v for k, v in scope.items())))
    if number is None:
        query = query.order_by(table.c.number.desc()).limit(1)
    else:
        query = query.where(table.c.number == number)
    with db.read() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        shown = what + ("" if number is None else f" version {number}")
        raise NotFoundError(f"no {shown} in this project", hint=hint, field=what.split()[0])
    return row
