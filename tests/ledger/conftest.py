"""Ledger fixtures: every test gets a fresh SQLite file or its own PostgreSQL schema.

PostgreSQL must be running on 127.0.0.1:5432 (trust auth, user root, database test);
when it is not, the postgres tests fail rather than skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.ledger import Ledger

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def pg_url(schema: str, *, password: str | None = None) -> str:
    """A URL whose connections use ``schema`` first on the search path."""
    base = PG_URL if password is None else PG_URL.replace("root@", f"root:{password}@")
    return f"{base}?options=-csearch_path%3D{schema}"


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'ledger' / 'plinth.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty ledger database on each backend."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return pg_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, user="tester") as opened:
        yield opened
