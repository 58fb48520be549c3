"""No route of the team server reads a filesystem path a client gives it.

Every path parameter of every route, and every query parameter the server reads, is sent
``../`` climbs, absolute POSIX and Windows paths, percent-encoded and double-encoded forms
and NUL bytes, by a server admin (who may call every route). Path parameters go over a raw
socket, since HTTP clients remove ``..`` segments before sending. No answer is a 500, and
none holds the bytes of ``/etc/passwd`` or of a marker file beside the server's root.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from blake3 import blake3

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

import plinth  # noqa: E402
from plinth.api.routes import Endpoint  # noqa: E402
from plinth.api.spaces import Spaces  # noqa: E402
from plinth.entities import RecordRef  # noqa: E402
from plinth.ledger import tables  # noqa: E402
from plinth.storage.http_blobs import FRAME_HEADER  # noqa: E402
from plinth.testing.server import ServerHandle, endpoints, start_server  # noqa: E402

PROJECT = "alpha"
MARKER = "marker-3c1f0a9e outside the server root"
PASSWD = "root:x:0:"
_PARAM = re.compile(r"{([A-Za-z_]+)(?::[a-z]+)?}")
#: Every query parameter a route of the server reads (a test below keeps this complete).
QUERY_NAMES = (
    "a", "after", "b", "columns", "days", "digest", "filter", "id", "kind", "limit", "next",
    "offset", "order", "page", "path", "pipeline", "points", "project", "report", "runs", "size",
    "token", "user", "version",
)  # fmt: skip


def evil_values(root: Path) -> list[str]:
    """Paths a client could hope the server opens; ``root`` is the server's root."""
    marker = root.parent / "marker.txt"
    return [
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "....//....//....//....//etc/passwd",
        "..\\..\\..\\..\\windows\\win.ini",
        "C:\\Windows\\win.ini",
        "C:/Windows/win.ini",
        "\\\\evil.example\\share\\x",
        "plinth.css\x00/../../../../etc/passwd",
        "\x00",
        str(marker),
        f"file://{marker}",
        "../marker.txt",
        "../../../marker.txt",
        "../../../../marker.txt",
    ]


@dataclass
class Target:
    server: ServerHandle
    token: str
    params: dict[str, str]
    values: list[str]


def _seed(server: ServerHandle) -> dict[str, str]:
    """A run with an artifact, a dataset and a model, so pages reach their handlers."""
    spaces = Spaces(server.config)
    try:
        ledger = spaces.ledger(PROJECT, "seed")
        project = ledger.projects.ensure_project(PROJECT)
        experiment = ledger.projects.ensure_experiment(project.id, "default")
        run = ledger.runs.create_run(experiment.id, name="r")
        blob = spaces.blobs(PROJECT).put_bytes(b"an artifact")
        ledger.artifacts.record(RecordRef("run", run.id), "model.bin", blob.digest, blob.size)
        ledger.datasets.ensure(project.id, "flights")
        ledger.models.ensure(project.id, "classifier")
    finally:
        spaces.close()
    return {"run_id": run.id, "digest": blob.digest}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("srv")
    (folder / "marker.txt").write_text(MARKER)
    # The fuzz calls the login and token routes far past any rate limit.
    server = start_server(folder / "root", login_limit=1 << 20, token_limit=1 << 20)
    try:
        server.create_project(PROJECT)
        seeded = _seed(server)
        upload = httpx.post(
            f"{server.url}/api/v1/projects/{PROJECT}/uploads",
            headers={"Authorization": f"Bearer {server.admin_token}"},
        )
        params = {
            "project": PROJECT, "run_id": seeded["run_id"], "id": seeded["run_id"],
            "kind": "run", "key": "loss", "digest": seeded["digest"],
            "upload": upload.json()["id"], "token_id": "0" * 16, "user": "nobody",
            "version": "1", "name": "flights",
        }  # fmt: skip
        yield Target(server, server.admin_token, params, evil_values(server.root))
    finally:
        server.stop()


def raw_request(server: ServerHandle, method: str, target: str, token: str) -> tuple[int, bytes]:
    """Send ``target`` exactly as written (no ``..`` removal); (status, whole answer)."""
    request = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request.encode("latin-1"))
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]), answer


def spellings(value: str) -> set[str]:
    """``value`` as a request target segment: raw (NUL and controls encoded, which HTTP
    needs), encoded once and encoded twice."""
    raw = "".join(quote(c, safe="") if ord(c) < 0x21 else c for c in value)
    once = quote(value, safe="")
    return {raw, once, quote(once, safe="")}


def leaks(body: bytes) -> list[str]:
    return [name for name in (PASSWD, MARKER) if name.encode() in body]


def _fill(endpoint: Endpoint, params: dict[str, str], name: str, value: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match[1] == name:
            return value
        if match[1] == "name" and endpoint.path.startswith("/static/"):
            return "plinth.css"
        return quote(params[match[1]], safe="")

    return _PARAM.sub(one, endpoint.path)


def _sample(all_endpoints: list[Endpoint]) -> list[Endpoint]:
    """Every route but the ledger RPC's ~150, of which one per store: they share one handler
    factory and the app's one {project} check, and read no query parameter."""
    seen: set[str] = set()
    out = []
    for e in all_endpoints:
        store = e.path.split("/ledger/")[1].split("/")[0] if "/ledger/" in e.path else None
        if store is not None and store in seen:
            continue
        if store is not None:
            seen.add(store)
        out.append(e)
    return out


ENDPOINTS = _sample(endpoints())
WITH_PARAMS = [e for e in ENDPOINTS if _PARAM.search(e.path)]


@pytest.mark.parametrize("endpoint", WITH_PARAMS, ids=[f"{e.method} {e.path}" for e in WITH_PARAMS])
def test_no_path_parameter_opens_a_client_path(target: Target, endpoint: Endpoint) -> None:
    problems = []
    names = _PARAM.findall(endpoint.path)
    # The ledger RPC's ~150 routes have only {project}, checked once by the app for all of
    # them: the first four values (climbs, absolute, encoded) are enough there.
    values = target.values if "/ledger/" not in endpoint.path else target.values[:4]
    for name in names:
        for value in values:
            for spelled in spellings(value):
                path = _fill(endpoint, target.params, name, spelled)
                status, answer = raw_request(target.server, endpoint.method, path, target.token)
                if status >= 500 or leaks(answer):
                    problems.append(f"{name}={value!r} as {path}: {status} {leaks(answer)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e.method} {e.path}" for e in ENDPOINTS])
def test_no_query_parameter_opens_a_client_path(target: Target, endpoint: Endpoint) -> None:
    problems = []
    headers = {"Authorization": f"Bearer {target.token}"}
    path = _fill(endpoint, target.params, "", "")
    with httpx.Client(base_url=target.server.url, timeout=60.0, headers=headers) as client:
        for value in target.values:
            query = dict.fromkeys(QUERY_NAMES, value)
            response = client.request(endpoint.method, path, params=query)
            if response.status_code >= 500 or leaks(response.content):
                problems.append(f"{value!r}: {response.status_code} {leaks(response.content)}")
    assert not problems, "\n".join(problems)


def _query_names_read_by_the_server() -> set[str]:
    package = Path(plinth.__file__).parent
    pattern = re.compile(
        r"(?:query_params|query|params)\.(?:get|getlist)\(\s*\"([A-Za-z_]+)\""
        r"|query_params\[\"([A-Za-z_]+)\"\]"
        r"|_int\(\s*(?:params|call\.request\.query_params),\s*\"([A-Za-z_]+)\""
    )
    found: set[str] = set()
    for folder in ("api", "ui"):
        for source in (package / folder).rglob("*.py"):
            for match in pattern.finditer(source.read_text(encoding="utf-8")):
                found |= {g for g in match.groups() if g}
    return found


def test_the_fuzzed_query_names_are_every_one_the_server_reads() -> None:
    missing = _query_names_read_by_the_server() - set(QUERY_NAMES)
    assert not missing, f"add these query parameters to QUERY_NAMES: {sorted(missing)}"


@pytest.mark.parametrize(
    "digest",
    ["../../../../../../../../etc/passwd", "/etc/passwd", "..\\..\\x", "ab" * 32 + "/../../x"],
)
def test_an_artifact_recorded_with_a_path_for_a_digest_is_never_read(
    target: Target, digest: str
) -> None:
    """A writer with direct access to the ledger records an artifact whose digest is a path;
    the run's download page must not open that path (nor fail with a 500)."""
    run_id = target.params["run_id"]
    path = f"evil-{hashlib.sha256(digest.encode()).hexdigest()[:12]}.bin"
    engine = sa.create_engine(target.server.config.project_metadata(PROJECT))
    try:
        with engine.begin() as conn:
            row = conn.execute(tables.artifacts.select().limit(1)).mappings().one()
            conn.execute(tables.artifacts.insert().values({**row, "path": path, "digest": digest}))
    finally:
        engine.dispose()
    response = httpx.get(
        f"{target.server.url}/projects/{PROJECT}/runs/{run_id}/artifact",
        params={"path": path},
        headers={"Authorization": f"Bearer {target.token}"},
    )
    assert response.status_code < 500, response.text
    assert not leaks(response.content)


@pytest.mark.parametrize("name", ["../../../../../../etc/passwd", "/etc/passwd", "..\\..\\x"])
def test_a_blob_batch_frame_named_by_a_path_stores_nothing(target: Target, name: str) -> None:
    """The batch route's frames carry a digest each: one that is a path is refused (its
    bytes do not hash to it) and the batch stores nothing."""
    data = b"bytes under a path name"
    frame = FRAME_HEADER.pack(name.encode().ljust(64, b"/"), len(data)) + data
    response = httpx.post(
        f"{target.server.url}/api/v1/projects/{PROJECT}/blobs:batch",
        content=frame,
        headers={"Authorization": f"Bearer {target.token}"},
    )
    assert response.status_code == 422, response.text
    assert not leaks(response.content)
    spaces = Spaces(target.server.config)
    try:
        assert not spaces.blobs(PROJECT).exists(blake3(data).hexdigest())
    finally:
        spaces.close()
