"""The team server's limits on what one client can try or make it hold.

- Login and token creation are rate-limited per user and address: past the configured
  count, 429 with a ``Retry-After`` and no session or token, even for the right password.
- A caller without credentials is answered 401 before the server reads the body: the
  routes that take large bodies (metric batches, blob batches) cannot be used by anyone on
  the network to make the server buffer tens of megabytes per connection.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from plinth.testing.server import ServerHandle, endpoints, start_server  # noqa: E402

PROJECT = "alpha"
PASSWORD = "correct-horse-93b1f7"
WRONG = "wrong-battery-0c4e2d"
LIMIT = 3
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A server that allows LIMIT logins and token creations per user and address."""
    handle = start_server(
        tmp_path_factory.mktemp("srv") / "root", login_limit=LIMIT, token_limit=LIMIT
    )
    try:
        handle.create_project(PROJECT)
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def outsider(limited: ServerHandle) -> str:
    """A token of an admin of another project than PROJECT."""
    limited.create_project("beta")
    return limited.token("outsider", "beta", "admin")


def _csrf(page: Any) -> str:
    found = _CSRF_FIELD.search(page.text)
    assert found, page.text
    return found[1]


def log_in(client: Any, user: str, password: str) -> Any:
    csrf = _csrf(client.get("/login"))
    return client.post("/login", data={"user": user, "password": password, "csrf": csrf})


def test_login_is_refused_with_429_and_retry_after_past_the_limit(limited: ServerHandle) -> None:
    limited.add_user("guesser", password=PASSWORD)
    with httpx.Client(base_url=limited.url) as client:
        for _ in range(LIMIT):
            assert log_in(client, "guesser", WRONG).status_code == 401
        refused = log_in(client, "guesser", PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "plinth_session" not in refused.cookies
        assert client.get("/api/v1/me").status_code == 401


def test_a_successful_login_within_the_limit_is_not_held_back(limited: ServerHandle) -> None:
    limited.add_user("typo", password=PASSWORD)
    with httpx.Client(base_url=limited.url) as client:
        for _ in range(LIMIT - 1):
            assert log_in(client, "typo", WRONG).status_code == 401
        assert log_in(client, "typo", PASSWORD).status_code == 303
        assert client.get("/api/v1/me").json()["user"] == "typo"


@pytest.mark.parametrize("route", ["/api/v1/me/tokens", "/api/v1/admin/tokens"])
def test_token_creation_is_refused_with_429_and_retry_after_past_the_limit(
    limited: ServerHandle, route: str
) -> None:
    """A user minting their own tokens, and a server admin minting them for someone."""
    admin = route.startswith("/api/v1/admin")
    minter, owner = ("minter-admin", "owner") if admin else ("minter", "minter")
    body = {"name": minter, "password": PASSWORD, "server_admin": admin}
    limited._call("POST", "/api/v1/admin/users", body)
    if admin:
        limited.add_user(owner)
    with httpx.Client(base_url=limited.url) as client:
        assert log_in(client, minter, PASSWORD).status_code == 303
        csrf = {"X-CSRF-Token": _csrf(client.get("/"))}
        payload = {"user": owner} if admin else {}
        for _ in range(LIMIT):
            assert client.post(route, json=payload, headers=csrf).status_code == 201
        refused = client.post(route, json=payload, headers=csrf)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "plt_" not in refused.text
    tokens = limited._call("GET", f"/api/v1/admin/tokens?user={owner}")["items"]
    assert len(tokens) == LIMIT


BIG = [e for e in endpoints() if e.max_body > 1 << 20 and e.access != "public"]


@pytest.mark.parametrize("caller", ["anonymous", "outsider"])
@pytest.mark.parametrize("endpoint", BIG, ids=[f"{e.method} {e.path}" for e in BIG])
def test_a_large_body_of_a_refused_caller_is_never_read(
    limited: ServerHandle, outsider: str, endpoint: Any, caller: str
) -> None:
    """Headers announcing a body just under the route's limit, and no body: the server
    must answer 401 (no credentials) or 403 (a member of another project only) from the
    headers alone rather than wait to buffer the body."""
    auth, status = "", b"401"
    if caller == "outsider":
        auth, status = f"Authorization: Bearer {outsider}\r\n", b"403"
    path = endpoint.path.replace("{project}", PROJECT).replace("{digest}", "ab" * 32)
    path = path.replace("{upload}", "0" * 32)
    request = (
        f"{endpoint.method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {endpoint.max_body - 1}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(request.encode())
        try:
            head = sock.recv(1 << 16)
        except TimeoutError:
            pytest.fail("the server waited for the body of an unauthenticated request")
    assert head.split(b"\r\n", 1)[0].split()[1] == status, head[:200]
