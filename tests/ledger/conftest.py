"""Ledger fixtures: every test gets a fresh SQLite file or its own PostgreSQL schema.

``ledger_url`` is an EMPTY database (for the tests of migrating); the ``ledger`` fixture
starts from a database migrated once per session: a copy of a migrated SQLite file, or a
per-worker PostgreSQL schema emptied (TRUNCATE ... RESTART IDENTITY) before each test —
running every migration per test cost ~170 s of the suite.

PostgreSQL must be running on 127.0.0.1:5432 (trust auth, user root, database test);
when it is not, the postgres tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

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


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ledger-template")
    Ledger.open(sqlite_url(folder), user="tester").close()
    return folder / "ledger" / "plinth.db"


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[tuple[str, list[str]]]:
    """A schema migrated once for this worker, and its tables (alembic's excluded)."""
    schema = f"t_tpl_{uuid.uuid4().hex}"
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        Ledger.open(pg_url(schema), user="tester").close()
        tables = [t for t in sa.inspect(engine).get_table_names(schema) if t != "alembic_version"]
        yield schema, tables
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def ledger(request: pytest.FixtureRequest, ledger_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """A migrated, empty ledger on each backend (from the session's template)."""
    if ledger_url.startswith("sqlite"):
        target = tmp_path / "ledger" / "plinth.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), target)
        url = sqlite_url(tmp_path)
    else:
        schema, tables = request.getfixturevalue("_pg_template")
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
        with engine.begin() as conn:
            names = ", ".join(f'"{schema}"."{t}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        url = pg_url(schema)
    with Ledger.open(url, user="tester") as opened:
        yield opened
