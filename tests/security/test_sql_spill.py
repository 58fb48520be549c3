"""The spill sandbox (``plinth.guards.sql.spill_connection``): plinth's own SQL may spill to
one private folder, and to nothing else; user text never reaches it.

DuckDB allows SQL to read and write its temporary folder, so the spill connection is the
sandbox plus exactly that folder. These cases check the folder is the only thing it opens
(files and folders beside it stay out of reach, no extension loads, the configuration stays
locked), that it is private and removed, and that the entry points for user text
(``check_expression``, ``check_query``, ``cursor``) keep the spill-free sandbox even while a
spill connection is open.
"""

# The SQL below is the attack, built on purpose.
# ruff: noqa: S608

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from plinth.errors import UsageError
from plinth.guards import sql
from plinth.validation import Suite, validate

MARKER = "SPILL-SECRET-7f3a"


class Listener:
    """A loopback TCP server that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._seen: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self._seen.append(addr)
            conn.close()

    def connections(self) -> list[tuple[str, int]]:
        return list(self._seen)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A secret file beside the spill root (``tmp_path / "data" / "tmp"``)."""
    path = tmp_path / "data" / "secret.csv"
    path.parent.mkdir()
    path.write_text(f"token\n{MARKER}\n")
    return path


def _root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tmp"


def _spill_folder(root: Path) -> Path:
    (folder,) = list(root.iterdir())
    return folder


def _settings(con: object, *names: str) -> dict[str, str]:
    listed = ", ".join(f"'{n}'" for n in names)
    rows = con.execute(  # type: ignore[attr-defined]
        f"SELECT name, value FROM duckdb_settings() WHERE name IN ({listed})"
    ).fetchall()
    return dict(rows)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_spill_connection_is_the_sandbox_plus_one_private_folder_removed_afterwards(
    tmp_path: Path,
) -> None:
    root = _root(tmp_path)
    with sql.spill_connection(root, memory_limit="64MB", max_spill="1GB") as con:
        folder = _spill_folder(root)
        assert folder.name.startswith("duckdb-spill-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert folder.stat().st_uid == os.getuid()
        assert _settings(
            con,
            "enable_external_access",
            "lock_configuration",
            "autoinstall_known_extensions",
            "autoload_known_extensions",
            "allow_community_extensions",
            "allow_unsigned_extensions",
            "python_enable_replacements",
            "temp_directory",
            "allowed_paths",
            "allowed_directories",
            "TimeZone",
        ) == {
            "enable_external_access": "false",
            "lock_configuration": "true",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "allow_community_extensions": "false",
            "allow_unsigned_extensions": "false",
            "python_enable_replacements": "false",
            "temp_directory": str(folder),
            "allowed_paths": "[]",
            "allowed_directories": f"[{folder}/]",
            "TimeZone": "UTC",
        }
        assert _settings(con, "memory_limit")["memory_limit"] == "61.0 MiB"
    assert list(root.iterdir()) == []


def test_two_spill_connections_get_different_folders(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with sql.spill_connection(root) as first, sql.spill_connection(root) as second:
        one = _settings(first, "temp_directory")["temp_directory"]
        two = _settings(second, "temp_directory")["temp_directory"]
        assert one != two
        assert {Path(one), Path(two)} == set(root.iterdir())
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM glob('{beside}/*')",
        "SELECT * FROM glob('{folder}/../*')",
        "SELECT * FROM read_text('{folder}/../../secret.csv')",
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY (SELECT 1) TO '{beside}/out.csv'",
        "COPY (SELECT 1) TO '{folder}/../out.csv'",
        "COPY (SELECT 1) TO '{folder}-x/out.csv'",
        "ATTACH '{beside}/out.db'",
        "ATTACH ':memory:.wal'",
    ],
)
def test_spill_connection_refuses_every_file_outside_its_folder(
    tmp_path: Path, secret: Path, template: str
) -> None:
    import duckdb

    root = _root(tmp_path)
    root.mkdir()
    before = _files(tmp_path)
    with sql.spill_connection(root) as con:
        folder = _spill_folder(root)
        statement = template.format(secret=secret, beside=secret.parent, folder=folder)
        with pytest.raises(duckdb.PermissionException) as caught:
            con.execute(statement)
        assert MARKER not in str(caught.value)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET GLOBAL enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET temp_directory = '/'",
        "RESET temp_directory",
        "SET allowed_directories = ['/']",
        "SET allowed_paths = ['/etc/passwd']",
        "SET memory_limit = '100GB'",
        "SET max_temp_directory_size = '1TB'",
        "SET autoload_known_extensions = true",
        "SET python_enable_replacements = true",
        "PRAGMA enable_external_access = true",
    ],
)
def test_spill_connection_configuration_cannot_be_changed(
    tmp_path: Path, secret: Path, statement: str
) -> None:
    import duckdb

    root = _root(tmp_path)
    with sql.spill_connection(root) as con:
        with pytest.raises(duckdb.Error, match=r"locked|Cannot change"):
            con.execute(statement)
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_text('{secret}')")
        folder = _spill_folder(root)
        assert _settings(con, "allowed_directories") == {"allowed_directories": f"[{folder}/]"}


def test_spill_connection_refuses_install_and_load_and_makes_no_connection(
    tmp_path: Path, listener: Listener
) -> None:
    import duckdb

    root = _root(tmp_path)
    with sql.spill_connection(root) as con:
        folder = _spill_folder(root)
        for statement in (
            f"INSTALL httpfs FROM 'http://127.0.0.1:{listener.port}'",
            f"FORCE INSTALL json FROM 'http://127.0.0.1:{listener.port}'",
            "LOAD httpfs",
            f"LOAD '{folder}/x.duckdb_extension'",
            f"SELECT * FROM read_csv('http://127.0.0.1:{listener.port}/x.csv')",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(statement)
    assert listener.connections() == []


def test_spill_folder_is_removed_when_the_block_fails(tmp_path: Path) -> None:
    root = _root(tmp_path)

    def fail() -> None:
        with sql.spill_connection(root) as con:
            con.execute(f"COPY (SELECT 1) TO '{_spill_folder(root)}/left.csv'")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"memory_limit": "1GB'; SET lock_configuration = false; --"}, "memory_limit"),
        ({"memory_limit": "lots"}, "memory_limit"),
        ({"max_spill": "10GB, temp_directory='/'"}, "max_spill"),
    ],
)
def test_spill_sizes_that_are_not_sizes_are_refused_and_leave_no_folder(
    tmp_path: Path, kwargs: dict[str, str], field: str
) -> None:
    root = _root(tmp_path)
    with pytest.raises(UsageError) as caught, sql.spill_connection(root, **kwargs):
        pass
    assert caught.value.field == field
    assert list(root.iterdir()) == []


# ---- user text never gets the spill connection ---------------------------------------------


def test_user_text_entry_points_keep_the_spill_free_sandbox_while_one_is_open(
    tmp_path: Path,
) -> None:
    import duckdb

    root = _root(tmp_path)
    with sql.spill_connection(root) as spill:
        folder = _spill_folder(root)
        spill.execute(f"COPY (SELECT '{MARKER}' AS token) TO '{folder}/planted.csv'")
        spill.register("plinth_entities", pa.table({"r": [1, 2]}))

        con = sql.cursor()
        try:
            assert _settings(con, "temp_directory", "allowed_directories") == {
                "temp_directory": "",
                "allowed_directories": "[]",
            }
            for statement in (
                f"SELECT * FROM read_csv('{folder}/planted.csv')",
                f"SELECT * FROM glob('{folder}/*')",
                f"COPY (SELECT 1) TO '{folder}/more.csv'",
            ):
                with pytest.raises(duckdb.PermissionException):
                    con.execute(statement)
            with pytest.raises(duckdb.CatalogException):  # not the spill database
                con.execute("SELECT * FROM plinth_entities")
        finally:
            con.close()

        # A suite condition (check_expression, then the shared cursor) cannot reach it.
        condition = f"(SELECT any_value(token) FROM read_csv('{folder}/planted.csv')) = 'x'"
        suite = Suite.from_dict(
            {"suite": "s", "checks": [{"check": "sql", "name": "c", "condition": condition}]}
        )
        with pytest.raises(UsageError) as caught:
            validate(pa.table({"user_id": [1]}), suite)
        assert MARKER not in str(caught.value.to_dict())
        # check_query parses on the shared cursor, never on the spill connection.
        assert sql.check_query(f"SELECT * FROM glob('{folder}/*')", field="source.query")
        assert _files(folder) == {"planted.csv"}


def test_new_sandboxes_stay_spill_free_after_a_spill_connection(tmp_path: Path) -> None:
    with sql.spill_connection(_root(tmp_path)):
        pass
    con = sql.connect(memory_limit="64MB")
    try:
        assert _settings(con, "temp_directory", "allowed_directories") == {
            "temp_directory": "",
            "allowed_directories": "[]",
        }
    finally:
        con.close()
