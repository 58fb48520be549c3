"""The guard boundaries, checked on the source: network and DuckDB connections are opened only
in ``plinth/guards/``, the modules that write record paths to disk join them only with
``safe_join``, and the spill sandbox (DuckDB with a folder SQL may write) is used only by the
modules listed, whose SQL holds no user text. The checks read the code with :mod:`ast`; each
has a test showing it catches the code it exists to catch."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth

PACKAGE = Path(plinth.__file__).parent
SRC = PACKAGE.parent
GUARDS = PACKAGE / "guards"

#: Calls that open a connection to an address or a DuckDB database, by the dotted name they
#: resolve to through the module's imports. Only guards/ may make them.
FORBIDDEN_CALLS = {
    "duckdb.connect": "open DuckDB through plinth.guards.sql",
    "urllib.request.urlopen": "fetch through plinth.guards.net",
    "http.client.HTTPConnection": "connect through plinth.guards.net",
    "http.client.HTTPSConnection": "connect through plinth.guards.net",
    "smtplib.SMTP": "send mail through plinth.guards.net",
    "smtplib.SMTP_SSL": "send mail through plinth.guards.net",
    "socket.create_connection": "connect through plinth.guards.net",
}
#: Called by these names, whatever they were imported as (``opener.urlopen``, a re-export).
FORBIDDEN_NAMES = {"urlopen"}
#: (module under src/plinth, call) -> why it may connect without the guard. Each reaches only
#: an address the code itself chose, never one read from a config file or a record.
EXEMPT = {
    ("demo/serving.py", "urllib.request.urlopen"): "the demo's own server, on the loopback "
    "port it picked and started",
    ("testing/tcpproxy.py", "socket.create_connection"): "a test helper forwarding to the "
    "loopback server a test gave it",
}

#: The only modules that may use ``guards.sql.spill_connection``, a sandbox whose SQL can read
#: and write its spill folder: each runs only SQL it writes itself, over tables registered
#: under its own names, splicing no user text (names, values, expressions) into it.
SPILL_USERS = {
    "features/offline.py": "the point-in-time join: positional column names and integers",
}
#: Where user text reaches DuckDB: these functions of guards/sql.py never use the spill sandbox.
USER_TEXT_ENTRY_POINTS = ("check_expression", "check_query", "cursor", "connect", "_problem")

#: Modules that write files named by a record (a manifest) onto disk.
MATERIALISING = [
    "registry/model_files.py",
    "registry/flavors/__init__.py",
    "datasets/materialize.py",
    "tracking/artifacts.py",
    "cli/_runs_artifacts.py",
    "validation/runner.py",
    "monitoring/routes.py",
    "versioning/reproduce.py",
    "versioning/reproduce_plan.py",
]
#: Names that, on the right of a ``/`` join, say the value is a path taken from a record.
RECORD_NAME = re.compile(r"(^|_)(path|paths|entry|entries|rel|relpath|relative|name|file|key)$")
#: The one call whose result may be joined with ``/`` (it is already the joined path).
SAFE_CALLS = {"safe_join"}


def _modules() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name it was imported as, for every import in the module (at any
    depth: plinth imports heavy modules inside functions)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    head = alias.name.partition(".")[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def forbidden_calls(source: str, where: str, exempt: frozenset[str] = frozenset()) -> list[str]:
    """``where:line: name (what to do)`` for every forbidden call in ``source`` not named in
    ``exempt``.

    A call counts when its callee, with the head name replaced by what it was imported as,
    is in :data:`FORBIDDEN_CALLS`, or is any callable named in :data:`FORBIDDEN_NAMES`.
    Limits: a callee reached through a variable (``f = duckdb.connect; f()``), ``getattr``
    or ``importlib`` is not seen.
    """
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts = _dotted(node.func)
        if parts is None:
            continue
        resolved = ".".join([aliases.get(parts[0], parts[0]), *parts[1:]])
        if resolved in exempt:
            continue
        if resolved in FORBIDDEN_CALLS:
            why = FORBIDDEN_CALLS[resolved]
        elif parts[-1] in FORBIDDEN_NAMES:
            why = "fetch through plinth.guards.net"
        else:
            continue
        found.append((node.lineno, f"{where}:{node.lineno}: {resolved} ({why})"))
    return [text for _, text in sorted(found)]


def _record_name(node: ast.expr, sibling: str | None = None) -> str | None:
    """The identifier that marks ``node`` as a record path, if any (``path``, ``x.rel``,
    ``entry["path"]``, ``f"{path}"``). ``{sibling}.name`` in an f-string is not one: it is
    the final name of a path already joined and checked, used for a temp file beside it."""
    if isinstance(node, ast.Name):
        return node.id if RECORD_NAME.search(node.id) else None
    if isinstance(node, ast.Attribute):
        return node.attr if RECORD_NAME.search(node.attr) else _record_name(node.value)
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and RECORD_NAME.search(str(key.value)):
            return str(key.value)
        return _record_name(node.value)
    if isinstance(node, ast.JoinedStr):
        for value in node.values:
            if not isinstance(value, ast.FormattedValue):
                continue
            part = value.value
            if (
                isinstance(part, ast.Attribute)
                and part.attr == "name"
                and ast.unparse(part.value) == sibling
            ):
                continue
            if name := _record_name(part):
                return name
    return None


def unsafe_joins(source: str, where: str) -> list[str]:
    """``where:line: ...`` for every ``a / b`` in ``source`` whose right side may be a path
    read from a record instead of a literal or a :func:`safe_join` result.

    Flagged right sides: a name, attribute or subscript named like a record path (see
    :data:`RECORD_NAME`: ``path``, ``entry``, ``rel``, ``name``, ...), an f-string that
    interpolates one, and any call other than ``safe_join`` (``normalize_artifact_path``
    checks spelling, not symlinks; ``str(path)`` hides the name).

    Limits: it reads names, not types or data flow, so a record path bound to an unrelated
    name (``x = entry; root / x``) passes, and it checks ``/`` only, not ``os.path.join``,
    ``Path.joinpath`` or string concatenation. It is meant for the few modules listed in
    :data:`MATERIALISING`, where every join is reviewed; numeric division by a variable
    named like a path would be a false positive (there is none there).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        left, right = node.left, node.right
        # ``x.parent / f".{x.name}.tmp"``: a temp file beside a path checked when x was joined
        beside = left.value if isinstance(left, ast.Attribute) and left.attr == "parent" else None
        sibling = None if beside is None else ast.unparse(beside)
        if isinstance(right, ast.Call):
            callee = _dotted(right.func)
            if callee and callee[-1] in SAFE_CALLS:
                continue
            why = f"joins the result of {ast.unparse(right.func)}(), not of safe_join()"
        elif name := _record_name(right, sibling):
            why = f"joins {name!r}, which looks like a path from a record"
        else:
            continue
        found.append((node.lineno, f"{where}:{node.lineno}: {ast.unparse(node)} {why}"))
    return [text for _, text in sorted(found)]


def spill_uses(source: str, where: str) -> list[str]:
    """``where:line: ...`` for every mention of ``spill_connection`` in ``source``: a call,
    an import, an attribute, a bare name or a string (``getattr(sql, "spill_connection")``).
    Limits: a name built at run time (``"spill_" + "connection"``) is not seen."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        if "spill_connection" in names:
            found.append((node.lineno, f"{where}:{node.lineno}: uses spill_connection"))
    return [text for _, text in sorted(set(found))]


def _fail(found: list[str], what: str) -> None:
    if found:
        pytest.fail(f"{what}:\n  " + "\n  ".join(found), pytrace=False)


def test_only_guards_open_network_or_duckdb_connections() -> None:
    found = []
    for module in _modules():
        if module.is_relative_to(GUARDS):
            continue
        where = str(module.relative_to(SRC.parent))
        relative = module.relative_to(PACKAGE).as_posix()
        exempt = frozenset(call for (path, call) in EXEMPT if path == relative)
        found += forbidden_calls(module.read_text("utf-8"), where, exempt)
    _fail(found, "connections opened outside src/plinth/guards/ (use the guard named)")


@pytest.mark.parametrize("relative", MATERIALISING)
def test_materialising_modules_join_record_paths_only_with_safe_join(relative: str) -> None:
    module = PACKAGE / relative
    where = str(module.relative_to(SRC.parent))
    _fail(unsafe_joins(module.read_text("utf-8"), where), "record paths joined without safe_join")


def test_the_connection_check_sees_every_spelling() -> None:
    source = """
import duckdb as ddb
import http.client
import urllib.request
from smtplib import SMTP_SSL as Mail
from socket import create_connection

def f(opener):
    ddb.connect(":memory:")
    http.client.HTTPSConnection("example.com")
    urllib.request.urlopen("http://x")
    Mail("smtp.example.com")
    create_connection(("x", 1))
    opener.urlopen("http://x")
    ddb.sql("select 1")  # not a connection
"""
    lines = [hit.split(":")[1] for hit in forbidden_calls(source, "m.py")]
    assert lines == ["9", "10", "11", "12", "13", "14"]


def test_the_join_check_catches_the_traversal_bugs_it_exists_for() -> None:
    source = """
def load(folder, manifest, dest, entry, ctx):
    for path, (digest, size) in manifest.files.items():
        ctx.blobs.copy_to(digest, folder / path)            # registry/model_files.py before
    targets = {p: dest / normalize_artifact_path(p) for p in manifest.files}  # checkout
    script = folder / str(entry["path"])
    out = dest / f"{entry.rel}.tmp"
    beside = out.parent / f".{entry.name}.tmp"
    fine = folder / "plinth-model.json"
    also_fine = safe_join(folder, path)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"  # beside a checked path
    return dest / f".tmp-{uuid.uuid4().hex}"
"""
    hits = unsafe_joins(source, "m.py")
    assert [hit.split(":")[1] for hit in hits] == ["4", "5", "6", "7", "8"]
    assert "joins 'path'" in hits[0]
    assert "normalize_artifact_path()" in hits[1]


def test_only_the_listed_modules_use_the_spill_sandbox() -> None:
    found = []
    for module in _modules():
        relative = module.relative_to(PACKAGE).as_posix()
        if relative in SPILL_USERS or relative == "guards/sql.py":
            continue
        found += spill_uses(module.read_text("utf-8"), str(module.relative_to(SRC.parent)))
    _fail(found, "spill_connection used outside SPILL_USERS (it must never run user text)")


def test_user_text_entry_points_never_reach_the_spill_sandbox() -> None:
    source = (GUARDS / "sql.py").read_text("utf-8")
    functions = {
        node.name: node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)
    }
    assert set(USER_TEXT_ENTRY_POINTS) <= set(functions)
    found = []
    for name in USER_TEXT_ENTRY_POINTS:
        body = ast.unparse(functions[name])
        found += [f"guards/sql.py: {name}: {hit}" for hit in spill_uses(body, name)]
        if "temp_directory" in body:
            found.append(f"guards/sql.py: {name}: sets a temp_directory")
    _fail(found, "user-text entry points that reach the spill sandbox")


def test_the_spill_check_sees_every_spelling() -> None:
    source = """
from plinth.guards.sql import spill_connection as open_spill
from plinth.guards import sql
import plinth.guards.sql

def f(root):
    open_spill(root)
    sql.spill_connection(root)
    plinth.guards.sql.spill_connection(root)
    getattr(sql, "spill_connection")(root)
    sql.cursor()  # the shared sandbox: fine
"""
    lines = [hit.split(":")[1] for hit in spill_uses(source, "m.py")]
    assert lines == ["2", "8", "9", "10"]
