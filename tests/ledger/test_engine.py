"""Opening a ledger: URL schemes, unreachable servers, SQLite settings, migrations, secrets."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from plinth.entities import MetricPoint, RecordRef
from plinth.errors import ConfigError, LedgerUnavailableError, MissingExtraError, UsageError
from plinth.ledger import Ledger, create_ledger_engine, ensure_schema, head_revision
from plinth.ledger.migrate import revisions
from plinth.ledger.tables import metadata, schema_log

from .conftest import pg_url, sqlite_url

MARKER = "s3cretMARKER"


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "plinth.db", "redis://x:6379/0"])
def test_unknown_scheme_is_a_config_error_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_ledger_engine(url)
    err = caught.value
    assert err.field == "metadata"
    assert "'metadata'" in err.message
    assert "sqlite:///" in err.message
    assert "postgresql+psycopg://" in err.message
    if url.startswith("mysql"):
        assert "'mysql'" in err.message


def test_relative_sqlite_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="absolute") as caught:
        create_ledger_engine("sqlite:///.plinth/plinth.db")
    assert caught.value.field == "metadata"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_schemes_use_psycopg(scheme: str) -> None:
    engine = create_ledger_engine(f"{scheme}://root@127.0.0.1:5432/test")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an uninstalled package looks like
    with pytest.raises(MissingExtraError) as caught:
        create_ledger_engine("postgresql://root@127.0.0.1/test")
    assert caught.value.extra == "postgres"
    assert caught.value.field == "metadata"
    assert "plinth[postgres]" in caught.value.hint


@pytest.mark.timeout(60)
def test_unreachable_postgres_fails_fast_without_showing_the_password() -> None:
    url = f"postgresql+psycopg://root:{MARKER}@127.0.0.1:1/test"
    with pytest.raises(LedgerUnavailableError) as caught:
        Ledger.open(url, user="tester", connect_timeout=2)
    err = caught.value
    shown = [str(err), err.hint, err.one_line(), repr(err.to_dict())]
    assert all(MARKER not in text for text in shown)
    assert "root:***@127.0.0.1:1/test" in err.message
    assert "'metadata'" in err.message
    assert err.field == "metadata"


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "plinth.db").mkdir()  # a folder where the database file should be
    with pytest.raises(LedgerUnavailableError, match="'metadata'"):
        Ledger.open(f"sqlite:///{tmp_path / 'plinth.db'}", user="tester")


def test_ledger_needs_a_user(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Ledger.open(sqlite_url(tmp_path), user="")


def test_sqlite_connections_use_wal_and_wait_for_locks(tmp_path: Path) -> None:
    with (
        Ledger.open(sqlite_url(tmp_path), user="tester") as ledger,
        ledger.engine.connect() as conn,
    ):
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 1,
    }


def test_sqlite_writes_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    with Ledger.open(sqlite_url(tmp_path), user="tester") as ledger:
        path = ledger.engine.url.database
        assert path is not None
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with ledger.engine.begin() as conn:
                conn.exec_driver_sql("SELECT 1")  # a read only, yet the write lock is held
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # released at commit
            other.execute("ROLLBACK")
        finally:
            other.close()


def test_sqlite_begin_mode_is_an_execution_option(tmp_path: Path) -> None:
    with Ledger.open(sqlite_url(tmp_path), user="tester") as ledger:
        seen: list[str] = []
        sa.event.listen(
            ledger.engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql)
        )
        with ledger.engine.connect() as conn:
            conn.execution_options(plinth_sqlite_begin="EXCLUSIVE")
            with conn.begin():
                conn.exec_driver_sql("SELECT 1")
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert [sql for sql in seen if sql.startswith("BEGIN")] == [
            "BEGIN EXCLUSIVE",
            "BEGIN IMMEDIATE",
        ]


def test_sqlite_ddl_rolls_back_with_its_transaction(tmp_path: Path) -> None:
    # What makes a failed migration leave nothing behind on SQLite.
    with Ledger.open(sqlite_url(tmp_path), user="tester") as ledger:
        conn = ledger.engine.connect()
        transaction = conn.begin()
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        transaction.rollback()
        conn.close()
        assert not sa.inspect(ledger.engine).has_table("half_done")


def test_sqlite_in_memory_works(tmp_path: Path) -> None:
    with Ledger.open("sqlite://", user="tester") as ledger:
        assert ledger.migrations_applied == tuple(revisions())
        assert ledger.projects.ensure_project("p").name == "p"


def test_migrations_are_applied_once_and_logged(ledger_url: str) -> None:
    with Ledger.open(ledger_url, user="tester") as first:
        assert first.migrations_applied == tuple(revisions())
        assert first.schema_revision() == head_revision()
    with Ledger.open(ledger_url, user="tester") as second:
        assert second.migrations_applied == ()
        assert ensure_schema(second.engine) == []
        with second.engine.connect() as conn:
            logged = conn.execute(sa.select(schema_log.c.revision)).scalars().all()
    assert logged == revisions()


def test_migrating_prints_and_logs_nothing(tmp_path: Path) -> None:
    code = (
        "import logging, sys\n"
        "from plinth.ledger import Ledger\n"
        "with Ledger.open(sys.argv[1], user='tester') as ledger:\n"
        "    assert ledger.migrations_applied\n"
        "assert not logging.getLogger().handlers\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, sqlite_url(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_migrated_schema_matches_the_table_definitions(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_open_without_migrate_leaves_an_empty_database_alone(ledger_url: str) -> None:
    with Ledger.open(ledger_url, user="tester", migrate=False) as ledger:
        assert ledger.schema_revision() is None
        assert ledger.migrations_applied == ()


def test_a_schema_newer_than_this_plinth_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with Ledger.open(url, user="tester") as ledger, ledger.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(LedgerUnavailableError, match="9999_future") as caught:
        Ledger.open(url, user="tester")
    assert "upgrade plinth" in caught.value.hint


@pytest.mark.postgres
def test_each_postgres_test_schema_holds_the_ledger(pg_schema: str, pg_engine: sa.Engine) -> None:
    with Ledger.open(pg_url(pg_schema), user="tester") as ledger:
        ledger.projects.ensure_project("p")
    query = sa.text(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_name IN ('alembic_version', 'projects', 'runs')"
    )
    with pg_engine.connect() as conn:
        found = {(row.table_schema, row.table_name) for row in conn.execute(query)}
    assert {(pg_schema, "alembic_version"), (pg_schema, "projects"), (pg_schema, "runs")} <= found
    assert not any(schema == "public" for schema, _ in found)


@pytest.mark.postgres
def test_the_password_of_the_url_never_reaches_the_ledger(pg_schema: str) -> None:
    url = pg_url(pg_schema, password=MARKER)  # trust auth accepts any password
    with Ledger.open(url, user="tester") as ledger:
        assert MARKER not in ledger.url
        assert MARKER not in repr(ledger)
        project = ledger.projects.ensure_project("p")
        experiment = ledger.projects.ensure_experiment(project.id, "e")
        run = ledger.runs.create_run(experiment.id, source={"argv": ["train.py"]}, tags={"a": 1})
        ledger.runs.log_params(run.id, {"lr": 0.1})
        ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.5, 0, 0, 0)])
        ledger.artifacts.record(RecordRef("run", run.id), "m.bin", "ab" * 32, 1)
        ledger.lineage.add(RecordRef("run", run.id), RecordRef("dataset_version", "d"), "used")
        ledger.gc.record(0, 0, [])
        with ledger.engine.connect() as conn:
            tables = [*metadata.sorted_tables, sa.table("alembic_version")]
            dump = [
                repr(conn.execute(sa.text(f"SELECT * FROM {table.name}")).all())  # noqa: S608
                for table in tables
            ]
    assert len(dump) == len(metadata.tables) + 1
    assert "tester" in "".join(dump)
    assert all(MARKER not in text for text in dump)


def test_a_too_old_sqlite_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 22, 0))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.22.0")
    with pytest.raises(ConfigError, match=r"SQLite 3\.30\.0 or newer; this Python has 3\.22\.0"):
        create_ledger_engine("sqlite:////tmp/never-created/plinth.db")
