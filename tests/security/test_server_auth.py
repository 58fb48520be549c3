"""The team server's browser and credential defences, on a live server over HTTP.

- No secret in any log, the audit log or the accounts database: the server runs with every
  uvicorn, starlette and plinth logger at DEBUG (access log on) through a login, a failed
  login, a token's creation and use, a wrong token and a one-time login link, and none of
  the password, the wrong password, the tokens' secrets, the link's secret or the session
  id appears anywhere.
- The session cookie is HttpOnly and SameSite=Strict (Secure when the server is on TLS),
  and a session's unsafe request without its CSRF token, or with another, is 403 and
  changes nothing.
- Every response, whatever the route or status, carries a CSP without inline or eval'd
  scripts that forbids framing, and ``X-Content-Type-Options: nosniff``, and no CORS
  header lets another site read it.
- Logout, expiry and disabling the user end a session on the server; login redirects only
  to a path on this server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from plinth.api.bootstrap import open_accounts  # noqa: E402
from plinth.api.config import load_config  # noqa: E402
from plinth.api.spaces import Spaces  # noqa: E402
from plinth.entities import RecordRef  # noqa: E402
from plinth.ledger.tables_server import metadata as accounts_tables  # noqa: E402
from plinth.ledger.tables_server import sessions  # noqa: E402
from plinth.testing.server import ServerHandle, endpoints, start_server  # noqa: E402

PROJECT = "alpha"
PASSWORD = "correct-horse-93b1f7"
WRONG = "wrong-battery-0c4e2d"
LINK_SECRET = "one-time-link-5d0e7a91c2"
_PARAM = re.compile(r"{([A-Za-z_]+)(?::[a-z]+)?}")
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    # Rate limits have their own tests (test_server_limits.py); here they must not bite.
    handle = start_server(
        tmp_path_factory.mktemp("srv") / "root", login_limit=1 << 20, token_limit=1 << 20
    )
    try:
        handle.create_project(PROJECT)
        yield handle
    finally:
        handle.stop()


def login_form(client: Any) -> str:
    """GET /login and return the form's CSRF token (its cookie stays in ``client``)."""
    page = client.get("/login")
    assert page.status_code == 200
    found = _CSRF_FIELD.search(page.text)
    assert found, page.text
    return found[1]


def log_in(client: Any, user: str, password: str) -> Any:
    csrf = login_form(client)
    return client.post("/login", data={"user": user, "password": password, "csrf": csrf})


def member(server: ServerHandle, user: str, role: str = "write") -> None:
    server.add_user(user, password=PASSWORD)
    server._call("PUT", f"/api/v1/projects/{PROJECT}/members/{user}", {"role": role})


# -- cookies and CSRF ---------------------------------------------------------------------


def _cookie(response: Any, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return str(value)
    raise AssertionError(f"no {name} cookie in {response.headers}")


def _flags(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_httponly_and_samesite_strict(server: ServerHandle) -> None:
    member(server, "cookie")
    with httpx.Client(base_url=server.url) as client:
        form = client.get("/login")
        answer = log_in(client, "cookie", PASSWORD)
    assert answer.status_code == 303
    for cookie in (_cookie(answer, "plinth_session"), _cookie(form, "plinth_login_csrf")):
        flags = _flags(cookie)
        assert {"httponly", "samesite=strict"} <= flags, cookie
        assert "secure" not in flags  # plain HTTP: a Secure cookie would never come back


def test_on_tls_the_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    handle = start_server(tmp_path / "root", tls=True)
    try:
        handle.add_user("tls-user", password=PASSWORD)
        with httpx.Client(base_url=handle.url) as client:
            form = client.get("/login")
            csrf = _CSRF_FIELD.search(form.text)
            assert csrf
            # httpx keeps Secure cookies for https only: send the form's cookie by hand.
            answer = client.post(
                "/login",
                data={"user": "tls-user", "password": PASSWORD, "csrf": csrf[1]},
                headers={"Cookie": f"plinth_login_csrf={csrf[1]}"},
            )
    finally:
        handle.stop()
    assert answer.status_code == 303, answer.text
    for cookie in (_cookie(answer, "plinth_session"), _cookie(form, "plinth_login_csrf")):
        assert {"secure", "httponly", "samesite=strict"} <= _flags(cookie), cookie
    assert "max-age=" in form.headers["strict-transport-security"]


def _session(server: ServerHandle, user: str) -> tuple[Any, str]:
    """A logged-in browser client of ``user`` and its CSRF token (from a page's form)."""
    client = httpx.Client(base_url=server.url)
    assert log_in(client, user, PASSWORD).status_code == 303
    page = client.get("/")
    found = _CSRF_FIELD.search(page.text)
    assert found, page.text
    return client, found[1]


def _run(server: ServerHandle) -> str:
    spaces = Spaces(server.config)
    try:
        ledger = spaces.ledger(PROJECT, "seed")
        project = ledger.projects.ensure_project(PROJECT)
        experiment = ledger.projects.ensure_experiment(project.id, "default")
        run = ledger.runs.create_run(experiment.id, name="csrf-target")
        blob = spaces.blobs(PROJECT).put_bytes(b"<script>alert(1)</script>")
        ledger.artifacts.record(RecordRef("run", run.id), "page.html", blob.digest, blob.size)
        return run.id
    finally:
        spaces.close()


def _tags(server: ServerHandle, run_id: str) -> dict[str, str]:
    spaces = Spaces(server.config)
    try:
        return dict(spaces.ledger(PROJECT, "reader").runs.get_tags(run_id))
    finally:
        spaces.close()


@pytest.mark.parametrize("sent", [None, "", "forged-csrf-token", "other-session"])
def test_a_session_post_without_its_csrf_token_is_403_and_changes_nothing(
    server: ServerHandle, sent: str | None
) -> None:
    """The caller is a server admin, so only the CSRF check stands between each forged
    request (a run's tag from a page form, the ledger RPC, a new user) and its effect."""
    users = {u["name"] for u in server._call("GET", "/api/v1/admin/users")["items"]}
    if "browser" not in users:
        body = {"name": "browser", "password": PASSWORD, "server_admin": True}
        server._call("POST", "/api/v1/admin/users", body)
    member(server, "other-browser")
    run_id = _run(server)
    client, csrf = _session(server, "browser")
    other, other_csrf = _session(server, "other-browser")
    try:
        fields = {"key": "stage", "value": "forged"}
        if sent is not None:
            fields["csrf"] = other_csrf if sent == "other-session" else sent
        forged = client.post(f"/projects/{PROJECT}/runs/{run_id}/tags", data=fields)
        rpc = client.post(
            f"/api/v1/projects/{PROJECT}/ledger/runs/set_tags",
            json={"args": {"run_id": run_id, "tags": {"stage": "forged"}}},
            headers={} if sent is None else {"X-CSRF-Token": fields["csrf"]},
        )
        admin = client.post(
            "/api/v1/admin/users",
            json={"name": "planted"},
            headers={} if sent is None else {"X-CSRF-Token": fields["csrf"]},
        )
        assert (forged.status_code, rpc.status_code) == (403, 403), (forged.text, rpc.text)
        assert admin.status_code == 403, admin.text
        assert "stage" not in _tags(server, run_id)
        # The same form with the session's own token goes through: the check is the token.
        done = client.post(
            f"/projects/{PROJECT}/runs/{run_id}/tags",
            data={"key": "stage", "value": "real", "csrf": csrf},
        )
    finally:
        client.close()
        other.close()
    assert done.status_code == 303, done.text
    assert _tags(server, run_id)["stage"] == "real"
    users = {u["name"] for u in server._call("GET", "/api/v1/admin/users")["items"]}
    assert "planted" not in users


def test_the_login_form_without_its_csrf_cookie_starts_no_session(server: ServerHandle) -> None:
    member(server, "no-cookie")
    with httpx.Client(base_url=server.url) as stranger:
        csrf = login_form(stranger)  # a token from someone else's form
    with httpx.Client(base_url=server.url) as client:
        answer = client.post(
            "/login", data={"user": "no-cookie", "password": PASSWORD, "csrf": csrf}
        )
        assert answer.status_code == 403
        assert "plinth_session" not in answer.cookies
        assert client.get("/api/v1/me").status_code == 401


def test_logout_ends_the_session_on_the_server(server: ServerHandle) -> None:
    """A copied cookie stops working once its owner logs out."""
    member(server, "leaving")
    with httpx.Client(base_url=server.url) as client:
        assert log_in(client, "leaving", PASSWORD).status_code == 303
        cookie = client.cookies["plinth_session"]
        csrf = _session_csrf(client)
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    with httpx.Client(base_url=server.url, headers={"Cookie": f"plinth_session={cookie}"}) as copy:
        assert copy.get("/api/v1/me").status_code == 401
        page = copy.get(f"/projects/{PROJECT}/runs")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("end", ["expired", "disabled"])
def test_a_session_that_expired_or_whose_user_was_disabled_is_refused(
    server: ServerHandle, end: str
) -> None:
    user = f"ending-{end}"
    member(server, user)
    with httpx.Client(base_url=server.url) as client:
        assert log_in(client, user, PASSWORD).status_code == 303
        assert client.get("/api/v1/me").status_code == 200
        if end == "disabled":
            server._call("POST", f"/api/v1/admin/users/{user}/disable")
        else:  # as time would: the session's expiry moves into the past
            accounts = open_accounts(server.config)
            try:
                with accounts.engine.begin() as conn:
                    conn.execute(
                        sessions.update().where(sessions.c.user_name == user).values(expires_at=1)
                    )
            finally:
                accounts.close()
        assert client.get("/api/v1/me").status_code == 401
        page = client.get(f"/projects/{PROJECT}/runs")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",  # browsers drop tabs and newlines: this reads //evil.example
        "/\n/evil.example",
    ],
)
def test_login_sends_the_browser_only_to_a_path_on_this_server(
    server: ServerHandle, target: str
) -> None:
    member(server, "redirected")
    with httpx.Client(base_url=server.url) as client:
        csrf = login_form(client)
        answer = client.post(
            "/login",
            data={"user": "redirected", "password": PASSWORD, "csrf": csrf, "next": target},
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


# -- security headers ----------------------------------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def header_problems(response: Any) -> list[str]:
    problems = []
    policy = response.headers.get("content-security-policy")
    if not policy:
        return ["no Content-Security-Policy"]
    rules = _directives(policy)
    scripts = rules.get("script-src", rules.get("default-src"))
    if scripts is None:
        problems.append(f"the CSP does not restrict scripts: {policy}")
    elif {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:", "data:"} & set(scripts):
        problems.append(f"the CSP allows inline or foreign scripts: {policy}")
    if rules.get("frame-ancestors") != ["'none'"]:
        problems.append(f"the CSP does not forbid framing (frame-ancestors 'none'): {policy}")
    if response.headers.get("x-content-type-options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if "access-control-allow-origin" in response.headers:
        problems.append("a CORS header lets another site read the answer")
    return problems


def _fill(path: str, run_id: str) -> str:
    values = {"project": PROJECT, "run_id": run_id, "id": run_id, "kind": "run", "key": "x"}
    values["name"] = "plinth.css" if path.startswith("/static/") else "missing"
    return _PARAM.sub(lambda m: values.get(m[1], "0" * 32), path)


def test_every_response_carries_the_security_headers(server: ServerHandle) -> None:
    """Every route answered to a server admin, an anonymous caller and a reader, plus the
    router's own 404 and 405 and a 413: the headers never depend on the outcome."""
    run_id = _run(server)
    reader = server.token("header-reader", PROJECT, "read")
    problems = []
    callers = [server.admin_token, reader, None]
    origin = {"Origin": "https://evil.example"}
    with httpx.Client(base_url=server.url, headers=origin) as client:
        for endpoint in endpoints():
            for token in callers:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                path = _fill(endpoint.path, run_id)
                response = client.request(endpoint.method, path, headers=headers)
                problems += [
                    f"{endpoint.method} {path} ({response.status_code}): {p}"
                    for p in header_problems(response)
                ]
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        extra = [
            client.get(
                f"/projects/{PROJECT}/runs/{run_id}/artifact",
                params={"path": "page.html"},
                headers=admin,
            ),
            client.get("/no/such/route"),
            client.delete("/health"),
            client.post("/api/v1/admin/users", content=b"x" * (1 << 17), headers=admin),
        ]
    assert [r.status_code for r in extra] == [200, 404, 405, 413]
    problems += [f"{r.request.url}: {p}" for r in extra for p in header_problems(r)]
    assert not problems, "\n".join(problems)


# -- secrets in logs, audit and the accounts database -------------------------------------


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[ServerHandle]:
    """A server whose uvicorn leaves logging to the test (caplog sees every record), with
    its access log on as ``plinth server start`` has it."""
    handle = start_server(tmp_path / "root")
    try:
        yield handle
    finally:
        handle.stop()


def _database_text(root: Path) -> str:
    """Every value of every accounts table, and the raw bytes of the database files."""
    config = load_config(root, env={})
    accounts = open_accounts(config)
    try:
        with accounts.engine.connect() as conn:
            rows = [
                repr(row) for table in accounts_tables.sorted_tables
                for row in conn.execute(sa.select(table))
            ]  # fmt: skip
    finally:
        accounts.close()
    files = [p.read_bytes().decode("latin-1") for p in root.glob("server.db*")]
    return "\n".join(rows + files)


def test_no_password_token_or_session_id_is_logged_audited_or_stored(
    logged_server: ServerHandle,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url, admin_token, root = logged_server.url, logged_server.admin_token, logged_server.root
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "starlette", "plinth"):
        caplog.set_level(logging.DEBUG, logger=name)
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url) as client:
        assert client.post("/api/v1/admin/projects", json={"name": PROJECT}, headers=admin)
        made = client.post(
            "/api/v1/admin/users", json={"name": "ada", "password": PASSWORD}, headers=admin
        )
        assert made.status_code == 201, made.text
        client.put(f"/api/v1/projects/{PROJECT}/members/ada", json={"role": "write"}, headers=admin)
        assert log_in(client, "ada", WRONG).status_code == 401
        assert log_in(client, "ada", PASSWORD).status_code == 303
        session = client.cookies["plinth_session"]
        created = client.post(
            "/api/v1/me/tokens", json={}, headers={"X-CSRF-Token": _session_csrf(client)}
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/api/v1/me", headers=bearer).json()["user"] == "ada"
        wrong_secret = token[:-6] + "AAAAAA"
        wrong = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {wrong_secret}"})
        assert wrong.status_code == 401
        assert wrong_secret.split("_", 2)[2] not in wrong.text
        # A one-time login link (plinth ui's) carries its secret in the query string.
        client.get("/login/local", params={"token": LINK_SECRET})
        audit = client.get("/api/v1/admin/audit", params={"limit": 1000}, headers=admin).text
    out, err = capfd.readouterr()
    # The test's own HTTP client logs what it sends (httpx, httpcore): not the server's.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logs = "\n".join(
        [out, err]
        + [logging.Formatter().format(r) + repr(r.args) + repr(r.__dict__) for r in server_records]
    )
    assert any(r.name == "uvicorn.access" for r in server_records), "the logs were not seen"
    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG,
        "token": token,
        "token secret": token.split("_", 2)[2],
        "wrong token secret": wrong_secret.split("_", 2)[2],
        "admin token secret": admin_token.split("_", 2)[2],
        "session id": session,
        "login link secret": LINK_SECRET,
    }
    stored = _database_text(root)
    found = [
        f"the {what} is in the {where}"
        for what, value in secrets.items()
        for where, text in (("logs", logs), ("audit log", audit), ("accounts database", stored))
        if value in text
    ]
    assert not found, "\n".join(found)
    assert "$argon2id$" in stored  # the password is there, hashed


def _session_csrf(client: Any) -> str:
    found = _CSRF_FIELD.search(client.get("/").text)
    assert found
    return found[1]
