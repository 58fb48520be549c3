"""Authentication and authorisation of the team server, over HTTP on a live server:
401 and 403, token expiry, revocation and project scope, browser sessions with their
cookie flags and CSRF tokens, rate limits, and secrets kept out of logs and the audit."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
httpx = pytest.importorskip("httpx")

from plinth.api.bootstrap import open_accounts  # noqa: E402
from plinth.ledger.tables_server import tokens  # noqa: E402
from plinth.testing.server import ServerHandle, start_server  # noqa: E402

PASSWORD = "a long enough password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path_factory.mktemp("auth") / "srv")
    handle.create_project("alpha")
    handle.create_project("beta")
    yield handle
    handle.stop()


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"}
    entry: dict[str, Any] = body["errors"][0]
    assert set(entry) == {"type", "field", "message", "hint"}
    return entry


def test_no_or_bad_credentials_get_401(srv: ServerHandle) -> None:
    for headers in (
        {},
        bearer("garbage"),
        {"Authorization": "Basic YTpi"},
        bearer("plt_0123456789abcdef_" + "x" * 43),
    ):
        response = httpx.get(f"{srv.url}/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert _error(response)["type"] == "UnauthorizedError"
        assert response.headers["www-authenticate"].startswith("Bearer")
    response = httpx.get(f"{srv.url}/api/v1/me", cookies={"plinth_session": "forged"})
    assert response.status_code == 401


def test_a_missing_role_an_other_project_or_an_unknown_one_get_403(srv: ServerHandle) -> None:
    reader = srv.token("reader", "alpha", "read")
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(reader)).json()["roles"] == {
        "alpha": "read"
    }
    denied = [
        ("GET", "/api/v1/projects/alpha/members"),  # needs admin
        ("GET", "/api/v1/projects/beta/members"),  # another project
        ("GET", "/api/v1/projects/nosuch/members"),  # does not exist
        ("GET", "/api/v1/projects/Not%20A%20Name/members"),  # not even a project name
        ("GET", "/api/v1/admin/users"),  # server admins only
    ]
    bodies = {}
    for method, path in denied:
        response = httpx.request(method, f"{srv.url}{path}", headers=bearer(reader))
        assert response.status_code == 403, path
        bodies[path] = response.text
    other, unknown = denied[1][1], denied[2][1]
    assert bodies[other] == bodies[unknown], "an unknown project answers like a forbidden one"
    admin = srv.token("owner", "alpha", "admin")
    response = httpx.get(f"{srv.url}/api/v1/projects/alpha/members", headers=bearer(admin))
    assert response.status_code == 200
    assert {m["user"]: m["role"] for m in response.json()["items"]}["reader"] == "read"


def test_a_token_reaches_only_its_projects(srv: ServerHandle) -> None:
    srv.token("both", "alpha", "write")
    only_beta = srv.token("both", "beta", "write")  # the user is in alpha and beta
    me = httpx.get(f"{srv.url}/api/v1/me", headers=bearer(only_beta)).json()
    assert me["roles"] == {"beta": "write"}
    response = httpx.get(f"{srv.url}/api/v1/projects", headers=bearer(only_beta))
    assert [p["name"] for p in response.json()["items"]] == ["beta"]
    # and a token cannot mint a wider one
    response = httpx.post(
        f"{srv.url}/api/v1/me/tokens", headers=bearer(only_beta), json={"projects": ["alpha"]}
    )
    assert response.status_code == 403
    response = httpx.post(f"{srv.url}/api/v1/me/tokens", headers=bearer(only_beta), json={})
    assert response.status_code == 201
    assert response.json()["projects"] == ["beta"]
    response = httpx.post(
        f"{srv.url}/api/v1/me/tokens", headers=bearer(only_beta), json={"scopes": ["gate"]}
    )
    assert response.status_code == 403, "only server admins grant scopes"


def test_a_server_admins_project_token_is_no_server_admin(srv: ServerHandle) -> None:
    scoped = srv._call("POST", "/api/v1/admin/tokens", {"user": "admin", "projects": ["alpha"]})
    me = httpx.get(f"{srv.url}/api/v1/me", headers=bearer(scoped["token"])).json()
    assert (me["server_admin"], me["roles"]) == (False, {"alpha": "admin"})
    users = httpx.get(f"{srv.url}/api/v1/admin/users", headers=bearer(scoped["token"]))
    assert users.status_code == 403


def test_expired_revoked_and_disabled_credentials_stop_working(srv: ServerHandle) -> None:
    token = srv.token("temp", "alpha", "read")
    token_id = token.split("_")[1]
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(token)).status_code == 200
    accounts = open_accounts(srv.config)
    try:
        with accounts.engine.begin() as conn:
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(expires_at=1))
    finally:
        accounts.close()
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(token)).status_code == 401

    second = srv.token("temp", "alpha", "read")
    srv._call("DELETE", f"/api/v1/admin/tokens/{second.split('_')[1]}")
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(second)).status_code == 401

    third = srv.token("temp", "alpha", "read")
    srv._call("POST", "/api/v1/admin/users/temp/disable")
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(third)).status_code == 401
    srv._call("POST", "/api/v1/admin/users/temp/enable")
    assert httpx.get(f"{srv.url}/api/v1/me", headers=bearer(third)).status_code == 200


def _login(client: Any, user: str, password: str, next_path: str = "/") -> Any:
    form = client.get("/login", params={"next": next_path})
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    return client.post(
        "/login", data={"user": user, "password": password, "csrf": csrf[1], "next": next_path}
    )


def _cookie_attributes(response: Any, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return str(header).lower()
    raise AssertionError(f"no Set-Cookie for {name}")


def test_login_sets_a_strict_http_only_cookie_and_csrf_guards_posts(srv: ServerHandle) -> None:
    srv.add_user("carol", password=PASSWORD)
    srv.token("carol", "alpha", "write")
    with httpx.Client(base_url=srv.url) as client:
        response = _login(client, "carol", PASSWORD, "/projects/alpha/runs")
        assert response.status_code == 303
        assert response.headers["location"] == "/projects/alpha/runs"
        flags = _cookie_attributes(response, "plinth_session")
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert "secure" not in flags
        me = client.get("/api/v1/me").json()
        assert (me["user"], me["via"], me["roles"]) == ("carol", "session", {"alpha": "write"})
        csrf = _session_csrf(srv, client)
        # An unsafe call with the cookie but without the CSRF token is refused...
        response = client.post("/api/v1/me/tokens", json={})
        assert response.status_code == 403
        assert "CSRF" in _error(response)["message"]
        response = client.post("/api/v1/me/tokens", json={}, headers={"X-CSRF-Token": "nope"})
        assert response.status_code == 403
        # ...and accepted with it.
        response = client.post("/api/v1/me/tokens", json={}, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 201
        response = client.post("/logout", data={"csrf": csrf})
        assert response.status_code == 303
        assert client.get("/api/v1/me").status_code == 401, "the session ended on the server"


def _session_csrf(srv: ServerHandle, client: Any) -> str:
    """The CSRF token of the client's session (what a page embeds in its forms)."""
    accounts = open_accounts(srv.config)
    try:
        credential = accounts.check_session(client.cookies["plinth_session"])
    finally:
        accounts.close()
    assert credential is not None
    assert credential.csrf
    return credential.csrf


def test_login_refuses_a_forged_form_a_wrong_password_and_foreign_redirects(
    srv: ServerHandle,
) -> None:
    srv.add_user("dave", password=PASSWORD)
    with httpx.Client(base_url=srv.url) as client:
        forged = client.post(
            "/login", data={"user": "dave", "password": PASSWORD, "csrf": "x", "next": "/"}
        )
        assert forged.status_code == 403
        assert "plinth_session" not in forged.cookies
        assert _login(client, "dave", "wrong password!").status_code == 401
        response = _login(client, "dave", PASSWORD, "//evil.example/x")
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_a_page_sends_an_anonymous_browser_to_login(srv: ServerHandle) -> None:
    response = httpx.post(f"{srv.url}/logout")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_tls_servers_mark_cookies_secure_and_send_hsts(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", tls=True) as handle:
        response = httpx.get(f"{handle.url}/login")
        assert "secure" in _cookie_attributes(response, "plinth_login_csrf")
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_every_response_carries_the_security_headers(srv: ServerHandle) -> None:
    for path in ("/health", "/no/such/route", "/login", "/api/v1/me"):
        headers = httpx.get(f"{srv.url}{path}").headers
        assert "default-src 'none'" in headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_bodies_over_the_route_limit_get_413_after_the_caller_is_known(
    srv: ServerHandle,
) -> None:
    big = b"{" + b" " * (70 * 1024) + b"}"
    url = f"{srv.url}/api/v1/admin/users"
    assert httpx.post(url, headers=bearer(srv.admin_token), content=big).status_code == 413
    chunked = httpx.post(
        url, headers=bearer(srv.admin_token), content=iter([big[:40_000], big[40_000:]])
    )
    assert chunked.status_code == 413, "a streamed body is counted too"
    anonymous = httpx.post(url, content=iter([big[:40_000], big[40_000:]]))
    assert anonymous.status_code == 401, "an anonymous stream is refused before it is read"


def test_login_and_token_creation_are_rate_limited(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", login_limit=3, token_limit=2) as handle:
        handle.create_project("alpha")
        handle.add_user("erin", password=PASSWORD)
        handle.add_user("frank", password=PASSWORD)
        with httpx.Client(base_url=handle.url) as client:
            for _ in range(3):
                assert _login(client, "erin", "wrong password!").status_code == 401
            blocked = _login(client, "erin", PASSWORD)
            assert blocked.status_code == 429, "even the right password waits"
            assert int(blocked.headers["retry-after"]) > 0
            assert _login(client, "frank", PASSWORD).status_code == 303, "per user"
        token = handle.token("erin", "alpha", "read")
        codes = [
            httpx.post(f"{handle.url}/api/v1/me/tokens", headers=bearer(token), json={}).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 429]


_SERVER_LOGGERS = ("uvicorn", "plinth", "starlette")


@pytest.mark.parametrize("in_thread", [True, False], ids=["in-process", "subprocess"])
def test_tokens_and_passwords_never_reach_logs_or_the_audit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, in_thread: bool
) -> None:
    """In-process, the server's log records are captured; as a subprocess (``plinth server
    start``, access log on), its output file is read."""
    caplog.set_level(logging.DEBUG)
    handle = start_server(tmp_path / "srv", in_thread=in_thread)
    try:
        handle.create_project("alpha")
        handle.add_user("gina", password=PASSWORD)
        token = handle.token("gina", "alpha", "write")
        httpx.get(f"{handle.url}/api/v1/me", headers=bearer(token))
        httpx.get(f"{handle.url}/api/v1/me", params={"token": token})  # a careless client
        httpx.get(f"{handle.url}/api/v1/me", headers=bearer(token + "tampered"))
        with httpx.Client(base_url=handle.url) as client:
            _login(client, "gina", PASSWORD)
            _login(client, "gina", PASSWORD + " wrong")
        created = httpx.post(f"{handle.url}/api/v1/me/tokens", headers=bearer(token), json={})
        minted = created.json()["token"]
        accounts = open_accounts(handle.config)
        try:
            audit = repr(accounts.audit_log(limit=1000))
        finally:
            accounts.close()
    finally:
        handle.stop()
    if in_thread:
        records = [r for r in caplog.records if r.name.startswith(_SERVER_LOGGERS)]
        server_log = "\n".join(r.getMessage() for r in records)
    else:
        assert handle.log_path is not None
        server_log = handle.log_path.read_text()
    assert "/api/v1/me" in server_log, "the access log is on; only secrets are left out"
    assert "login" in audit
    assert "token.create" in audit
    secrets = (token, minted, handle.admin_token, PASSWORD)
    for text in (server_log, audit):
        for value in secrets:
            assert value.split("_", 2)[-1] not in text
