"""The SQL sandbox: the only way plinth opens DuckDB on text someone else may have written.

Suite conditions, ``forget --where`` predicates and column names from stored tables all
reach DuckDB through here. :func:`connect` and :func:`cursor` give an in-memory database
with no file or network access, no extension install or load, no Python replacement
scans and no temporary folder, its configuration then locked so ``SET``/``PRAGMA``/``RESET``
cannot undo it; each setting is read back and checked once per database.
:func:`check_expression` parses user text with DuckDB's own parser and accepts exactly
one expression, returning it wrapped so it can be spliced into plinth's queries::

    fragment = check_expression(condition, field="checks[2].condition", what="condition")
    con = cursor()
    con.register("data", table)
    con.execute(f"SELECT count_if(NOT coalesce({fragment}, false)) FROM data")

:func:`spill_connection` is a second, separate sandbox for plinth's OWN queries only (the
point-in-time join): the same settings, except that DuckDB may spill to one private folder
plinth creates and removes. DuckDB lets SQL read and write that folder, so no user text may
ever run there; :func:`check_expression`, :func:`check_query` and :func:`cursor` never use it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import BackendError, UsageError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "MAX_EXPRESSION_CHARS",
    "SANDBOX_HINT",
    "check_expression",
    "check_query",
    "connect",
    "cursor",
    "error_detail",
    "spill_connection",
]

#: Longest expression accepted (a suite condition is a line or two, not a data file).
MAX_EXPRESSION_CHARS = 100_000

#: What every refusal adds: the rules of the sandbox.
SANDBOX_HINT = (
    "write one SQL expression over the table's columns (no ';', no statements); it runs "
    "in DuckDB without file, network or extension access"
)

#: Set when the database opens (before any user text), then locked.
_STARTUP: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    # A Python variable named in the SQL would otherwise be scanned as a table.
    "python_enable_replacements": False,
    # The temporary folder is otherwise readable and writable from SQL: no spilling.
    "temp_directory": "",
}

#: What the database must report once locked (read back: a setting DuckDB ignored fails).
_EXPECTED: dict[str, Any] = {
    **_STARTUP,
    "enable_external_access": False,
    "lock_configuration": True,
    "allowed_paths": [],
    "allowed_directories": [],
}

#: A size as DuckDB reads it ("40MB", "1.5GiB"): checked before it reaches DuckDB.
_SIZE = re.compile(r"\d{1,15}(\.\d{1,6})? ?(B|[KMGT]i?B)", re.IGNORECASE)

# C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def connect(*, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A new sandboxed in-memory DuckDB database (~40 ms); the caller closes it.

    Prefer :func:`cursor` (the process's shared sandbox): opening a database costs more
    than many queries take. ``memory_limit`` ("512MB") caps it: with no spill folder, a
    query that needs more fails with DuckDB's out-of-memory error.
    """
    return _open(_STARTUP, _EXPECTED, memory_limit=memory_limit)


@contextlib.contextmanager
def spill_connection(
    spill_root: Path, *, memory_limit: str | None = None, max_spill: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A sandboxed database that may spill to disk, for plinth's own SQL: NEVER run user text.

    A private folder (owner-only, ``duckdb-spill-<random>``) is made in ``spill_root`` and
    removed when the block ends; DuckDB writes what does not fit in ``memory_limit`` there
    (at most ``max_spill``, e.g. "20GB"). Everything else is :func:`connect`'s sandbox, read
    back and locked, but DuckDB lets SQL read and write the spill folder (``COPY ... TO``,
    ``read_csv``, ``glob``, ``ATTACH`` inside it). So only queries plinth writes itself run
    here, over registered tables with plinth's own names, splicing no user text (not even
    text :func:`check_expression` accepted)::

        with spill_connection(ctx.settings.data_dir / "tmp", memory_limit="4GB") as con:
            con.register("plinth_entities", table)
            con.sql("SELECT count(*) FROM plinth_entities")
    """
    root = spill_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"duckdb-spill-{secrets.token_hex(8)}"
    folder.mkdir(mode=0o700)  # new and owner-only: nobody else can plant a file or link in it
    try:
        startup = {**_STARTUP, "temp_directory": str(folder)}
        if max_spill is not None:
            startup["max_temp_directory_size"] = _size(max_spill, "max_spill")
        # DuckDB allows its temporary folder, and nothing else.
        expected = {**_EXPECTED, "temp_directory": str(folder), "allowed_directories": [folder]}
        con = _open(startup, expected, memory_limit=memory_limit)
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # DuckDB removed its own files on close


def _size(value: str, field: str) -> str:
    if not isinstance(value, str) or _SIZE.fullmatch(value.strip()) is None:
        raise UsageError(
            f"{field} {value!r} is not a size",
            hint='write a number and a unit, e.g. "512MB" or "4GB"',
            field=field,
        )
    return value.strip()


def _open(
    startup: dict[str, Any], expected: dict[str, Any], *, memory_limit: str | None
) -> duckdb.DuckDBPyConnection:
    import duckdb

    config = dict(startup)
    if memory_limit is not None:
        config["memory_limit"] = _size(memory_limit, "memory_limit")
    con = duckdb.connect(":memory:", config=config)
    try:
        # ICU is built in: timestamps are compared and shown in UTC everywhere.
        with contextlib.suppress(duckdb.Error):
            con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Turned off after opening: opened with it off, DuckDB would allow the paths of
        # an on-disk database next to the working folder (``:memory:.wal`` and friends).
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _verify(con, expected)
    except BaseException:
        con.close()
        raise
    return con


def _verify(con: duckdb.DuckDBPyConnection, expected: dict[str, Any]) -> None:
    names = ", ".join("'" + name + "'" for name in expected)
    rows = con.execute(
        f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})"  # noqa: S608
    ).fetchall()
    seen = dict(rows)
    for name, wanted in expected.items():
        value = seen.get(name)
        if isinstance(wanted, bool):
            ok = str(value).lower() == str(wanted).lower()
        elif isinstance(wanted, list):
            ok = _same_folders(value, wanted)
        else:
            ok = value == wanted
        if not ok:
            import duckdb

            raise BackendError(
                f"DuckDB {duckdb.__version__} did not apply the sandbox setting {name} "
                f"(wanted {wanted!r}, it reports {value!r}): plinth will not run SQL "
                "without it",
                hint="install the DuckDB version plinth's extras pin",
            )


def _same_folders(value: object, wanted: list[Path]) -> bool:
    """Whether DuckDB's list setting (``[/a/b/, /c/]``) names exactly ``wanted``."""
    if value in ("[]", "", None):
        return not wanted
    if not wanted:
        return False
    text = "[" + ", ".join(os.path.join(str(w), "") for w in wanted) + "]"
    bare = "[" + ", ".join(str(w) for w in wanted) + "]"
    return value in (text, bare)


_shared: tuple[int, duckdb.DuckDBPyConnection] | None = None
_shared_lock = threading.Lock()


def cursor() -> duckdb.DuckDBPyConnection:
    """A cursor of this process's sandboxed database, opened on first use; close it after.

    Cursors are cheap (~0.1 ms) and each has its own registered tables, so threads never
    share one (a DuckDB connection is not thread-safe) and never see each other's data.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():  # a forked child opens its own
            _shared = (os.getpid(), connect())
        return _shared[1].cursor()


def error_detail(exc: BaseException) -> str:
    """A DuckDB error as one line, without the query excerpt and caret DuckDB appends."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    kept = [ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"}]
    return " ".join(kept).split(" ^")[0]


def check_expression(
    text: object, *, field: str, what: str = "SQL expression", hint: str | None = None
) -> str:
    """``text`` as ONE parenthesised SQL expression, safe to splice where a value goes.

    :class:`UsageError` (with ``field``, the message starting with ``what``) when it is not
    a string, is empty, holds control characters, or is not exactly one expression to
    DuckDB's parser: a second statement (``1); COPY ...``), a clause that closes the
    expression (``1) FROM t WHERE (1``) or a comment that swallows the rest all fail.
    """
    hint = hint or SANDBOX_HINT
    text = _checked_text(text, what=what, field=field, hint=hint, shown=True)
    problem = _problem(text)
    if problem is not None:
        raise UsageError(
            f"{what} {text!r} is not one SQL expression: {problem}", hint=hint, field=field
        )
    return _fragment(text)


def _checked_text(text: object, *, what: str, field: str, hint: str, shown: bool) -> str:
    """``text`` if it is non-empty text without control characters and not too long, else
    a UsageError naming ``field`` (``shown``: the text is quoted in the message)."""
    if not isinstance(text, str):
        raise UsageError(f"{what} must be text, not {type(text).__name__}", hint=hint, field=field)
    if not text.strip():
        raise UsageError(f"{what} is empty", hint=hint, field=field)
    quoted = f" {text!r}" if shown else ""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise UsageError(
            f"{what}{quoted} contains the control character U+{ord(bad.group()):04X}",
            hint=hint,
            field=field,
        )
    if len(text) > MAX_EXPRESSION_CHARS:
        raise UsageError(
            f"{what} is {len(text)} characters long, more than {MAX_EXPRESSION_CHARS}",
            hint=hint,
            field=field,
        )
    return text


def check_query(text: object, *, field: str, what: str = "SQL query") -> str:
    """``text`` as ONE read-only query (SELECT, WITH ... SELECT, VALUES) to DuckDB's parser.

    :class:`UsageError` (with ``field``) when it is not text, is empty, holds control
    characters, or is anything else: two statements, an INSERT, COPY, ATTACH, SET, PRAGMA,
    CREATE... The sandbox refuses files and network whatever the query says; this keeps a
    feature view's source to what it claims to be. Returns the query without a final ';'.
    """
    hint = "write one SELECT over the tables the source names (no ';' between statements)"
    if isinstance(text, str):
        text = text.strip().rstrip(";").strip()
    body = _checked_text(text, what=what, field=field, hint=hint, shown=False)
    import duckdb

    con = cursor()
    try:
        statements = con.extract_statements(body)
    except duckdb.Error as exc:
        raise UsageError(
            f"{what} does not parse: {error_detail(exc)}", hint=hint, field=field
        ) from None
    finally:
        con.close()
    if len(statements) != 1:
        raise UsageError(
            f"{what} holds {len(statements)} statements, not one query", hint=hint, field=field
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        raise UsageError(
            f"{what} is not a query (DuckDB reads it as {statements[0].type.name})",
            hint=hint,
            field=field,
        )
    return body


def _fragment(text: str) -> str:
    # The newlines end a trailing ``--`` comment; the outer parentheses keep the
    # expression one operand wherever it is spliced.
    return f"((\n{text}\n))"


@functools.lru_cache(maxsize=512)
def _problem(text: str) -> str | None:
    """Why ``text`` is not one expression (None when it is): parsed, never run."""
    import duckdb

    # Unknowable alias: the text cannot close the expression and fake what follows.
    alias = "plinth_" + secrets.token_hex(8)
    probe = f"SELECT {_fragment(text)} AS {alias}"
    con = cursor()
    try:
        serialized = con.execute("SELECT json_serialize_sql($1)", [probe]).fetchall()[0][0]
        tree = json.loads(serialized)
        if tree.get("error") and tree.get("error_type") == "parser":
            detail = str(tree.get("error_message"))
            end = len(f"SELECT ((\n{text}".encode())
            if int(tree.get("position") or 0) >= end or alias in detail:  # plinth's wrapping
                detail = detail.split(" at or near ")[0] + " at the end of the text"
            return f"Parser Error: {detail}"
        try:
            statements = con.extract_statements(probe)
        except duckdb.Error as exc:  # pragma: no cover - the serializer parsed it already
            return error_detail(exc)
    finally:
        con.close()
    if len(statements) != 1:
        kinds = ", ".join(s.type.name for s in statements)
        return f"it holds {len(statements)} statements ({kinds})"
    if statements[0].type != duckdb.StatementType.SELECT or statements[0].query != probe:
        return f"it reads as a {statements[0].type.name} statement"
    if tree.get("error"):
        return str(tree.get("error_message") or "DuckDB cannot serialize it")
    return _structure(tree, alias)


def _structure(tree: dict[str, Any], alias: str) -> str | None:
    statements = tree.get("statements") or []
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    if node.get("type") != "SELECT_NODE":
        return "it closes the expression and adds a query"
    extras = {
        "FROM": (node.get("from_table") or {}).get("type", "EMPTY") != "EMPTY",
        "WHERE": node.get("where_clause") is not None,
        "GROUP BY": bool(node.get("group_expressions") or node.get("group_sets")),
        "HAVING": node.get("having") is not None,
        "QUALIFY": node.get("qualify") is not None,
        "a sample": node.get("sample") is not None,
        "ORDER BY or LIMIT": bool(node.get("modifiers")),
        "WITH": bool((node.get("cte_map") or {}).get("map")),
    }
    added = [name for name, present in extras.items() if present]
    if added:
        return f"it closes the expression and adds {', '.join(added)}"
    items = node.get("select_list") or []
    if len(items) != 1 or items[0].get("alias") != alias:
        return f"it closes the expression and adds {max(len(items) - 1, 1)} more"
    return None
