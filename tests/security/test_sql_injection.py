"""SQL in user text: suite conditions, ``forget --where`` and pii masking try to read files,
list folders, write files, attach databases, install or load extensions, reach the network
and unlock the configuration. Each attack is refused (or runs harmlessly) and nothing
happened: no file read into the answer, no file written, no connection accepted."""

# Building hostile SQL out of strings is what these tests do.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.errors import UsageError
from plinth.guards import sql
from plinth.validation import Suite, validate

MARKER = "PLINTH-SECRET-7f3a9c"


class Listener:
    """A local TCP server that records every connection it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(peer)
            conn.close()

    def connections(self) -> list[tuple[str, int]]:
        time.sleep(0.3)  # a connection the attack made has been accepted by now
        return list(self.accepted)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def secrets_on_disk(tmp_path: Path) -> dict[str, Path]:
    """Files an attacker would like to read, each holding MARKER."""
    folder = tmp_path / "private"
    folder.mkdir()
    text = folder / "secret.txt"
    text.write_text(f"{MARKER}\n", encoding="utf-8")
    csv = folder / "secret.csv"
    csv.write_text(f"token\n{MARKER}\n", encoding="utf-8")
    parquet = folder / "secret.parquet"
    pq.write_table(pa.table({"token": [MARKER]}), parquet)
    (folder / f"{MARKER}.key").write_text("x", encoding="utf-8")
    return {"text": text, "csv": csv, "parquet": parquet, "folder": folder}


def _data() -> pa.Table:
    return pa.table({"user_id": [1, 2, 3], "amount": [10.0, 20.0, 30.0]})


def _suite(condition: str) -> Suite:
    return Suite.from_dict(
        {"suite": "attack", "checks": [{"check": "sql", "name": "attack", "condition": condition}]}
    )


def _refused(condition: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        validate(_data(), _suite(condition))
    error = caught.value
    assert error.field is not None
    assert error.field.startswith("checks[0]")
    return error


def _leaks(error: UsageError, secret: str = MARKER) -> bool:
    return secret in error.message or secret in error.hint or secret in str(error.to_dict())


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


# ---- suite conditions: reading -------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "(SELECT count(*) FROM read_text('{text}')) > 0",
        "user_id > length((SELECT content FROM read_text('{text}')))",
        "(SELECT any_value(content) FROM read_blob('{text}')) IS NOT NULL",
        "(SELECT any_value(token) FROM read_csv('{csv}')) = 'x'",
        "(SELECT any_value(token) FROM read_csv_auto('{csv}')) = 'x'",
        "(SELECT any_value(token) FROM read_parquet('{parquet}')) = 'x'",
        "(SELECT any_value(token) FROM '{parquet}') = 'x'",
        "(SELECT any_value(Prompt) FROM sniff_csv('{csv}')) IS NULL",
        "(SELECT count(*) FROM query('SELECT * FROM read_text(''{text}'')')) > 0",
    ],
)
def test_condition_reading_a_local_file_is_refused_and_its_content_never_shown(
    secrets_on_disk: dict[str, Path], template: str
) -> None:
    condition = template.format(**{k: str(v) for k, v in secrets_on_disk.items()})
    error = _refused(condition)
    assert "disabled by configuration" in error.message
    assert not _leaks(error)


def test_condition_reading_etc_passwd_is_refused_and_leaks_no_line_of_it() -> None:
    error = _refused("(SELECT count(*) FROM read_text('/etc/passwd')) > 0")
    assert "Permission Error" in error.message
    assert "root:" not in error.message
    assert "without file, network or extension access" in error.hint


def test_condition_listing_a_folder_with_glob_is_refused_and_names_no_file(
    secrets_on_disk: dict[str, Path],
) -> None:
    for pattern in ("/etc/*", f"{secrets_on_disk['folder']}/*"):
        error = _refused(f"(SELECT count(*) FROM glob('{pattern}')) > 0")
        assert "Permission Error" in error.message
        assert "passwd" not in error.message
        assert not _leaks(error)


def test_condition_reading_a_python_variable_by_name_is_refused() -> None:
    secret_frame = pd.DataFrame({"token": [MARKER]})  # a replacement scan would find it
    assert len(secret_frame) == 1
    error = _refused("(SELECT any_value(token) FROM secret_frame) = 'x'")
    assert "secret_frame" in error.message
    assert not _leaks(error)


# ---- suite conditions: writing, attaching, extensions, settings ----------------------------


@pytest.mark.parametrize(
    "template",
    [
        "true); COPY (SELECT 1) TO '{out}'; SELECT (true",
        "true) FROM _plinth_data; COPY (SELECT 1) TO '{out}'; SELECT (true",
        "true)), false)) FROM _plinth_data; COPY (SELECT 1) TO '{out}' --",
        "true --\n); COPY (SELECT 1) TO '{out}'; SELECT (1",
        "true /* */); COPY (SELECT 1) TO '{out}'; SELECT (/* */ true",
        "true);\nCOPY (SELECT 1) TO '{out}';\nSELECT (true",
        "true\x00); COPY (SELECT 1) TO '{out}'; SELECT (true",
        "true); EXPORT DATABASE '{folder}'; SELECT (true",
    ],
)
def test_condition_breaking_out_to_copy_a_file_is_refused_and_no_file_is_written(
    tmp_path: Path, template: str
) -> None:
    out, folder = tmp_path / "x.csv", tmp_path / "export"
    error = _refused(template.format(out=out, folder=folder))
    assert error.field == "checks[0].condition"
    assert "not one SQL expression" in error.message or "control character" in error.message
    assert not out.exists()
    assert not folder.exists()


def test_condition_breaking_out_to_attach_a_database_is_refused_and_no_file_is_created(
    tmp_path: Path,
) -> None:
    before = _files(tmp_path)
    for condition in (
        f"true); ATTACH '{tmp_path / 'x.db'}' AS evil; SELECT (true",
        f"true); ATTACH '{tmp_path / 'y.db'}'; CREATE TABLE y.t AS SELECT 1; SELECT (true",
    ):
        error = _refused(condition)
        assert "not one SQL expression" in error.message
    assert _files(tmp_path) == before


def test_condition_breaking_out_to_install_an_extension_is_refused_and_makes_no_connection(
    listener: Listener,
) -> None:
    url = f"http://127.0.0.1:{listener.port}"
    for condition in (
        f"true); INSTALL httpfs FROM '{url}'; SELECT (true",
        f"true); FORCE INSTALL httpfs FROM '{url}'; LOAD httpfs; SELECT (true",
        f"true); SET custom_extension_repository = '{url}'; INSTALL httpfs; SELECT (true",
    ):
        error = _refused(condition)
        assert "not one SQL expression" in error.message
    assert listener.connections() == []


def test_condition_reading_a_url_is_refused_and_makes_no_connection(listener: Listener) -> None:
    url = f"http://127.0.0.1:{listener.port}/data.csv"
    error = _refused(f"(SELECT count(*) FROM read_csv('{url}')) > 0")
    assert "disabled by configuration" in error.message
    assert listener.connections() == []


@pytest.mark.parametrize(
    "statement",
    [
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET GLOBAL enable_external_access = true",
        "PRAGMA enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "RESET ALL",
        "CALL enable_external_access()",
    ],
)
def test_condition_breaking_out_to_change_the_sandbox_is_refused_and_files_stay_unreadable(
    secrets_on_disk: dict[str, Path], statement: str
) -> None:
    error = _refused(f"true); {statement}; SELECT (true")
    assert "not one SQL expression" in error.message
    error = _refused(f"(SELECT count(*) FROM read_text('{secrets_on_disk['text']}')) > 0")
    assert "disabled by configuration" in error.message
    assert not _leaks(error)


@pytest.mark.parametrize(
    "template",
    [
        "user_id > 0 /* ); COPY (SELECT 1) TO '{out}'; SELECT ( */",
        "user_id > 0 -- ); COPY (SELECT 1) TO '{out}'; SELECT (",
        "user_id > 0 AND '); COPY (SELECT 1) TO ''{out}''; SELECT (' IS NOT NULL",
    ],
)
def test_break_out_hidden_in_a_comment_or_string_stays_inert_and_writes_nothing(
    tmp_path: Path, template: str
) -> None:
    out = tmp_path / "x.csv"
    result = validate(_data(), _suite(template.format(out=out)))
    assert result.success
    assert not out.exists()


def test_suite_yaml_with_a_break_out_condition_is_refused_and_names_the_check(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.csv"
    path = tmp_path / "suite.yaml"
    path.write_text(
        "suite: s\nchecks:\n  - {check: row_count, min: 1}\n"
        f"  - check: sql\n    name: evil\n    condition: \"true); COPY (SELECT 1) TO '{out}'; "
        'SELECT (true"\n',
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as caught:
        validate(_data(), path)
    assert caught.value.message.startswith(f"{path}, check 2 (sql, line 4): condition ")
    assert caught.value.field == "checks[1].condition"
    assert not out.exists()


def test_a_monitor_running_a_suite_that_reads_a_file_reports_an_error_and_leaks_nothing(
    project: Context, tmp_path: Path, secrets_on_disk: dict[str, Path]
) -> None:
    from plinth.monitoring.monitors import run_monitor
    from plinth.monitoring.spec import MonitorSpec

    datasets.save(_data(), "events", "first")
    (tmp_path / "suite.yaml").write_text(
        "suite: s\nchecks:\n  - check: sql\n    name: evil\n"
        f"    condition: \"(SELECT count(*) FROM read_text('{secrets_on_disk['text']}')) > 0\"\n",
        encoding="utf-8",
    )
    monitor = tmp_path / "events.yaml"
    monitor.write_text(
        "dataset: events\nreference: events@1\nchecks: {validation: {suite: suite.yaml}}\n",
        encoding="utf-8",
    )
    outcome = run_monitor(MonitorSpec.load(monitor), ctx=project)
    check = outcome.checks[0]
    assert (check["check"], check["status"]) == ("validation", "error"), check
    assert "disabled by configuration" in check["summary"]
    assert MARKER not in repr(outcome.report)
    assert MARKER not in repr(outcome.checks)


# ---- plinth data forget --where ------------------------------------------------------------


def _history(ctx: Context) -> Any:
    dataset = ctx.ledger.datasets.get(ctx.project.id, "users")
    return [(v.number, v.status) for v in datasets.versions("users")], ctx.ledger.datasets.erasures(
        dataset
    )


@pytest.fixture
def users(project: Context) -> Context:
    datasets.save(_data(), "users", "first")
    return project


def test_forget_where_reading_a_file_is_refused_and_nothing_is_erased(
    users: Context, secrets_on_disk: dict[str, Path]
) -> None:
    before = _history(users)
    where = f"user_id IN (SELECT length(content) FROM read_text('{secrets_on_disk['text']}'))"
    with pytest.raises(UsageError) as caught:
        datasets.forget("users", where, "erasure request")
    assert "disabled by configuration" in caught.value.message
    assert not _leaks(caught.value)
    assert _history(users) == before


@pytest.mark.parametrize(
    "template",
    [
        "true) AS hit FROM forget_rows; COPY (SELECT 1) TO '{out}'; SELECT (true",
        "true); ATTACH '{db}'; SELECT (true",
        "true); INSTALL httpfs FROM '{url}'; SELECT (true",
        "true); LOAD httpfs; SELECT (true",
        "true); SET enable_external_access = true; SELECT (true",
        "true --\n); COPY (SELECT 1) TO '{out}'; SELECT (true",
        "",
        "true\x00",
    ],
)
def test_forget_where_breaking_out_is_refused_and_nothing_is_written_or_contacted(
    users: Context, tmp_path: Path, listener: Listener, cli: Any, template: str
) -> None:
    out, db = tmp_path / "x.csv", tmp_path / "x.db"
    where = template.format(out=out, db=db, url=f"http://127.0.0.1:{listener.port}")
    before = _history(users)
    with pytest.raises(UsageError) as caught:
        datasets.forget("users", where, "erasure request")
    assert caught.value.field == "where"
    if where:
        r = cli("data", "forget", "users", "--where", where, "-m", "erasure request")
        assert r.code == 2
        assert "--where" in r.err
    assert _history(users) == before
    assert not out.exists()
    assert not db.exists()
    assert listener.connections() == []


# ---- pii masking: column names and salts are data, never SQL -------------------------------


def test_mask_of_a_column_whose_name_breaks_out_hashes_it_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.csv"
    name = f'email") AS "email" FROM masked_input; COPY (SELECT 1) TO \'{out}\'; SELECT ("'
    table = pa.table({name: ["a@example.com"], "id": [1]})
    masked = plinth.datasets.mask(table, [name])
    assert masked.column(name).to_pylist() == [hashlib.sha256(b"a@example.com").hexdigest()]
    assert not out.exists()


def test_mask_with_a_salt_that_breaks_out_uses_it_as_text_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "x.csv"
    salt = f"'); COPY (SELECT 1) TO '{out}'; SELECT ('"
    masked = plinth.datasets.mask(pa.table({"email": ["a@example.com"]}), ["email"], salt=salt)
    expected = hashlib.sha256((salt + "a@example.com").encode()).hexdigest()
    assert masked.column("email").to_pylist() == [expected]
    assert not out.exists()


# ---- the guard itself ----------------------------------------------------------------------


def test_the_listener_records_a_connection(listener: Listener) -> None:
    socket.create_connection(("127.0.0.1", listener.port)).close()
    assert len(listener.connections()) == 1


def test_sandbox_reports_every_setting_locked_in() -> None:
    con = sql.cursor()
    try:
        rows = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',"
                " 'lock_configuration', 'autoinstall_known_extensions', "
                "'autoload_known_extensions', 'allow_community_extensions', "
                "'allow_unsigned_extensions', 'python_enable_replacements', 'temp_directory', "
                "'allowed_paths', 'allowed_directories', 'TimeZone')"
            ).fetchall()
        )
    finally:
        con.close()
    assert rows == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "allow_unsigned_extensions": "false",
        "python_enable_replacements": "false",
        "temp_directory": "",
        "allowed_paths": "[]",
        "allowed_directories": "[]",
        "TimeZone": "UTC",
    }


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET GLOBAL enable_external_access = true",
        "SET SESSION enable_external_access = true",
        "PRAGMA enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET autoload_known_extensions = true",
        "SET allow_community_extensions = true",
        "SET temp_directory = '/tmp'",
        "SET allowed_directories = ['/']",
        "SET python_enable_replacements = true",
    ],
)
def test_sandbox_configuration_cannot_be_changed_and_files_stay_unreadable(
    secrets_on_disk: dict[str, Path], statement: str
) -> None:
    import duckdb

    con = sql.cursor()
    try:
        with pytest.raises(duckdb.Error, match=r"locked|Cannot change"):
            con.execute(statement)
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_text('{secrets_on_disk['text']}')")
    finally:
        con.close()


def test_sandbox_refuses_install_and_load_and_makes_no_connection(listener: Listener) -> None:
    import duckdb

    con = sql.connect()
    try:
        for statement in (
            f"INSTALL httpfs FROM 'http://127.0.0.1:{listener.port}'",
            f"FORCE INSTALL json FROM 'http://127.0.0.1:{listener.port}'",
            "LOAD httpfs",
            f"LOAD 'http://127.0.0.1:{listener.port}/x.duckdb_extension'",
            f"SELECT * FROM read_csv('http://127.0.0.1:{listener.port}/x.csv')",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(statement)
    finally:
        con.close()
    assert listener.connections() == []


def test_sandbox_writes_no_file_next_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()  # DuckDB's default spill folder: readable and writable
    con = sql.connect()
    try:
        for target in (":memory:", ":memory:.wal", ".tmp/x.csv", str(tmp_path / "x.csv")):
            with pytest.raises(duckdb.PermissionException):
                con.execute(f"COPY (SELECT 1) TO '{target}'")
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"ATTACH '{tmp_path / 'x.db'}'")
    finally:
        con.close()
    assert _files(tmp_path) == {".tmp"}


def test_sandbox_still_scans_arrow_tables_and_pandas_frames() -> None:
    con = sql.cursor()
    try:
        con.register("a", pa.table({"x": [1, 2, 3]}))
        con.register("p", pd.DataFrame({"y": [4.0, 5.0]}))
        assert con.execute("SELECT sum(x), (SELECT sum(y) FROM p) FROM a").fetchall() == [(6, 9.0)]
    finally:
        con.close()


def test_sandbox_cursors_do_not_see_each_others_tables_across_threads() -> None:
    import duckdb

    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                con = sql.cursor()
                try:
                    con.register("t", pa.table({"x": [i] * 100}))
                    assert con.execute("SELECT min(x), max(x) FROM t").fetchall() == [(i, i)]
                finally:
                    con.close()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    first, second = sql.cursor(), sql.cursor()
    try:
        first.register("mine", pa.table({"x": [MARKER]}))
        with pytest.raises(duckdb.CatalogException):
            second.execute("SELECT * FROM mine")
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 1 = 2", True),
        ("'a;b' = 'a;b'", True),
        ("1 < 2 -- a trailing comment", True),
        ("/* note */ 2 > 1", True),
        ("1 IN (SELECT 1)", True),
        ("\t1\n=\r\n1\n", True),
        ("(1) + (2) = 3", True),
        ("'été' = 'été'", True),
    ],
)
def test_check_expression_accepts_one_expression_and_it_evaluates_as_written(
    text: str, value: bool
) -> None:
    fragment = sql.check_expression(text, field="condition")
    con = sql.cursor()
    try:
        assert con.execute(f"SELECT NOT {fragment}, {fragment}").fetchall() == [(not value, value)]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        ("  \n\t", "is empty"),
        ("1 = 1\x00", "control character U+0000"),
        ("1 = 1\x1b[2J", "control character U+001B"),
        ("1 = 1\x7f", "control character U+007F"),
        ("1 = 1\x85", "control character U+0085"),
        ("1 = 1; SELECT 2", "not one SQL expression"),
        ("1); SELECT (2", "not one SQL expression"),
        ("1) FROM range(3) WHERE (true", "not one SQL expression"),
        ("1) UNION SELECT (2", "not one SQL expression"),
        ("1) ORDER BY (1", "not one SQL expression"),
        ("1) LIMIT (1", "not one SQL expression"),
        ("1) AS x, (2", "not one SQL expression"),
        ("1 --\n); SELECT (1", "not one SQL expression"),
        ("1 /* unterminated", "unterminated /* comment at the end of the text"),
        ("'unterminated", "unterminated string literal"),
        ("$$ dollar", "at the end of the text"),
        ("user_id = ", "syntax error at the end of the text"),
        ("COPY (SELECT 1) TO 'x.csv'", "not one SQL expression"),
        ("x" * (sql.MAX_EXPRESSION_CHARS + 1), "characters long"),
    ],
)
def test_check_expression_refuses_anything_but_one_expression(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        sql.check_expression(text, field="checks[3].condition", what="suite.yaml: condition")
    assert reason in caught.value.message
    assert caught.value.message.startswith("suite.yaml: condition")
    assert caught.value.field == "checks[3].condition"
    assert caught.value.hint == sql.SANDBOX_HINT
    assert "plinth_" not in caught.value.message  # the wrapping's alias is not the user's


def test_check_expression_refuses_what_is_not_text() -> None:
    with pytest.raises(UsageError, match="must be text, not int") as caught:
        sql.check_expression(42, field="where", what="--where", hint="say which rows")
    assert (caught.value.field, caught.value.hint) == ("where", "say which rows")
