"""The team server's permission matrix: every route of the whole server (the REST API and
the web pages) called by every kind of caller, on a live server over HTTP.

Callers: nobody, an expired token, a revoked token, a token with ``read``, ``write`` or
``admin`` in the project, a user who belongs to another project only, and a server admin.
A caller without valid credentials gets 401 (a page: 303 to /login), one without the role
or from another project 403, and the body of either holds an error and no record data; a
caller with enough role never gets 401 or 403 (nor a 500). Path parameters are real ids of
a seeded project, so the allowed calls reach their handlers with records to show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from plinth.api.bootstrap import open_accounts  # noqa: E402
from plinth.api.policy import POLICY  # noqa: E402
from plinth.api.routes import Endpoint  # noqa: E402
from plinth.api.spaces import Spaces  # noqa: E402
from plinth.entities import MetricPoint  # noqa: E402
from plinth.ledger.surface import encode_args, method_spec  # noqa: E402
from plinth.ledger.tables_server import tokens  # noqa: E402
from plinth.testing.server import ServerHandle, endpoints, start_server  # noqa: E402

PROJECT, OTHER = "alpha", "beta"
#: Values only the seeded records hold: none may appear in a 401 or 403 answer.
RUN_NAME = "run-name-7f3a9c"
PARAM_VALUE = "param-value-51c9e0"
BLOB = b"blob-content-e2d4b8 of the seeded project"
MARKS = (RUN_NAME, PARAM_VALUE, BLOB.decode())
ANONYMOUS = ("anonymous", "expired", "revoked")
CALLERS = (*ANONYMOUS, "read", "write", "admin", "outsider", "server_admin")
#: The role each caller holds in PROJECT.
ROLE_IN_PROJECT = {"read": "read", "write": "write", "admin": "admin", "server_admin": "admin"}
_RANK = {"read": 0, "write": 1, "admin": 2}
_PARAM = re.compile(r"{([A-Za-z_]+)(?::[a-z]+)?}")
_ERROR_KEYS = {"type", "field", "message", "hint"}


@dataclass
class World:
    """The running server, a token per caller and the ids path parameters take."""

    server: ServerHandle
    client: Any
    headers: dict[str, dict[str, str]]
    params: dict[str, str]
    victim_digest: str


def _seed_records(server: ServerHandle) -> dict[str, str]:
    spaces = Spaces(server.config)
    try:
        ledger = spaces.ledger(PROJECT, "seed")
        project = ledger.projects.ensure_project(PROJECT)
        experiment = ledger.projects.ensure_experiment(project.id, "default")
        run = ledger.runs.create_run(experiment.id, name=RUN_NAME, params={"p": PARAM_VALUE})
        ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.5, 0, 1_700_000_000_000, 1)])
        ledger.datasets.ensure(project.id, "flights")
        model = ledger.models.ensure(project.id, "classifier")
        digest = spaces.blobs(PROJECT).put_bytes(BLOB).digest
        for _ in range(2):
            ledger.models.register(model, flavor="sklearn", manifest_digest=digest)
        victim = spaces.blobs(PROJECT).put_bytes(b"a blob the admin may delete").digest
    finally:
        spaces.close()
    return {"run_id": run.id, "digest": digest, "victim_digest": victim}


def _expire(server: ServerHandle, token: str) -> None:
    """Move ``token``'s expiry into the past, as time would."""
    token_id = token.split("_")[1]
    accounts = open_accounts(server.config)
    try:
        with accounts.engine.begin() as conn:
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(expires_at=1))
    finally:
        accounts.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # Every token the tests mint counts against the admin: no rate limit may bite here.
    server = start_server(tmp_path_factory.mktemp("srv") / "root", token_limit=1 << 20)
    try:
        server.create_project(PROJECT)
        server.create_project(OTHER)
        bearer = {
            role: server.token(f"{role}er", PROJECT, role) for role in ("read", "write", "admin")
        }
        bearer["outsider"] = server.token("outsider", OTHER, "admin")
        bearer["server_admin"] = server.admin_token
        bearer["expired"] = server.token("late", PROJECT, "admin")
        _expire(server, bearer["expired"])
        bearer["revoked"] = server.token("gone", PROJECT, "admin")
        server._call("DELETE", f"/api/v1/admin/tokens/{bearer['revoked'].split('_')[1]}")
        victim_token = server.token("victim", PROJECT, "read")
        seeded = _seed_records(server)
        client = httpx.Client(base_url=server.url, timeout=60.0, follow_redirects=False)
        upload = client.post(
            f"/api/v1/projects/{PROJECT}/uploads",
            headers={"Authorization": f"Bearer {bearer['write']}"},
        )
        assert upload.status_code == 201, upload.text
        headers = {who: {"Authorization": f"Bearer {t}"} for who, t in bearer.items()}
        headers["anonymous"] = {}
        params = {
            "project": PROJECT,
            "run_id": seeded["run_id"],
            "key": "loss",
            "digest": seeded["digest"],
            "upload": upload.json()["id"],
            "token_id": victim_token.split("_")[1],
            "user": "victim",
            "version": "1",
            "kind": "run",
            "id": seeded["run_id"],
        }
        yield World(server, client, headers, params, seeded["victim_digest"])
        client.close()
    finally:
        server.stop()


def _name_of(endpoint: Endpoint) -> str:
    """The record a ``{name}`` parameter names on this route."""
    if endpoint.path.startswith("/static/"):
        return "plinth.css"
    for kind, name in (("/datasets/", "flights"), ("/models/", "classifier")):
        if kind in endpoint.path:
            return name
    return "missing"


def fill(endpoint: Endpoint, world: World) -> str:
    """``endpoint.path`` with every parameter set to a real id of the seeded project."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name == "name":
            return _name_of(endpoint)
        if name == "digest" and endpoint.method == "DELETE":
            return world.victim_digest
        return world.params[name]

    return _PARAM.sub(value, endpoint.path)


def expected(endpoint: Endpoint, caller: str) -> str:
    """``public``, ``401``, ``403`` or ``ok`` (neither 401 nor 403)."""
    if endpoint.access == "public":
        return "public"
    if caller in ANONYMOUS:
        return "401"
    if endpoint.access == "user":
        return "ok"
    if endpoint.access == "server_admin":
        return "ok" if caller == "server_admin" else "403"
    assert endpoint.access == "project", endpoint
    held = ROLE_IN_PROJECT.get(caller)
    return "ok" if held is not None and _RANK[held] >= _RANK[endpoint.role] else "403"


def call(world: World, endpoint: Endpoint, caller: str, method: str | None = None) -> Any:
    """``endpoint`` called by ``caller`` (with ``method``: Starlette's HEAD of a GET route)."""
    body: bytes | None = None
    headers = dict(world.headers[caller])
    if endpoint.method in ("POST", "PUT"):
        body = json.dumps({"args": {}} if "/ledger/" in endpoint.path else {}).encode()
        headers["Content-Type"] = "application/json"
    return world.client.request(
        method or endpoint.method, fill(endpoint, world), content=body, headers=headers
    )


def denial_problems(response: Any, endpoint: Endpoint, status: int) -> list[str]:
    """What is wrong with a 401/403 answer: anything but an error, or any record data."""
    problems = []
    text = response.text
    for mark in MARKS:
        if mark in text:
            problems.append(f"the {status} answer holds record data {mark!r}")
    if status == 401 and endpoint.html:
        location = response.headers.get("location", "")
        if response.status_code != 303 or not location.startswith("/login?next="):
            problems.append(f"a page answered {response.status_code} {location!r}, not 303 /login")
        return problems
    if response.status_code != status:
        return [*problems, f"answered {response.status_code}, expected {status}: {text[:200]}"]
    if endpoint.method == "HEAD":
        return [*problems, *(["a HEAD answer with a body"] if response.content else [])]
    try:
        payload = response.json()
    except ValueError:
        return [*problems, f"the {status} body is not JSON: {text[:200]}"]
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if set(payload) != {"errors"} or not errors or not all(set(e) == _ERROR_KEYS for e in errors):
        problems.append(f"the {status} body is not an error list: {text[:200]}")
    if status == 401 and "bearer" not in response.headers.get("www-authenticate", "").lower():
        problems.append("a 401 without 'WWW-Authenticate: Bearer'")
    return problems


ENDPOINTS = endpoints()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e.method} {e.path}" for e in ENDPOINTS])
def test_every_caller_gets_exactly_the_access_its_credentials_and_role_give(
    world: World, endpoint: Endpoint
) -> None:
    problems = []
    for caller in CALLERS:
        response = call(world, endpoint, caller)
        want = expected(endpoint, caller)
        status = response.status_code
        found: list[str] = []
        if status >= 500:
            found.append(f"a {status}: {response.text[:200]}")
        elif want in ("401", "403"):
            found += denial_problems(response, endpoint, int(want))
        elif want == "ok" and status in (401, 403):
            found.append(f"denied with {status} despite its role: {response.text[:200]}")
        elif want == "public" and status == 401:
            found.append("a public route asked for credentials")
        if endpoint.method == "GET":  # Starlette answers HEAD on every GET route too
            head = call(world, endpoint, caller, "HEAD")
            if head.status_code != status:
                found.append(f"HEAD answered {head.status_code}, GET {status}")
        problems += [f"{caller}: {p}" for p in found]
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_access_kind_and_role() -> None:
    """A route table that lost its project or admin routes would make the matrix vacuous."""
    kinds = {(e.access, e.role if e.access == "project" else None) for e in ENDPOINTS}
    assert {("public", None), ("user", None), ("server_admin", None)} <= kinds
    assert {("project", "read"), ("project", "write"), ("project", "admin")} <= kinds


def test_every_ledger_method_of_the_policy_table_is_one_route_with_its_role() -> None:
    prefix = "/api/v1/projects/{project}/ledger/"
    served: dict[tuple[str, str], Endpoint] = {}
    for e in ENDPOINTS:
        if e.path.startswith(prefix):
            store, method = e.path[len(prefix) :].split("/")
            served[(store, method)] = e
    assert set(served) == set(POLICY)
    for key, endpoint in served.items():
        assert (endpoint.method, endpoint.access, endpoint.role) == ("POST", "project", POLICY[key])


@pytest.mark.parametrize(
    "method",
    ["__init__", "_db", "__class__", "engine", "nonexistent", "get_run/..", "..%2fget_run"],
)
def test_a_ledger_method_outside_the_policy_table_is_not_served(world: World, method: str) -> None:
    """Private attributes and unknown names of a store are 404 even for a server admin."""
    response = world.client.post(
        f"/api/v1/projects/{PROJECT}/ledger/runs/{method}",
        json={"args": {}},
        headers=world.headers["server_admin"],
    )
    assert response.status_code in (404, 405), response.text
    assert RUN_NAME not in response.text


def test_an_allowed_read_returns_the_seeded_record(world: World) -> None:
    """The matrix's ``ok`` calls reach real data: a reader sees the run, an outsider not."""
    path = f"/api/v1/projects/{PROJECT}/ledger/runs/get_run"
    body = {"args": {"run_id": world.params["run_id"]}}
    seen = world.client.post(path, json=body, headers=world.headers["read"])
    assert seen.status_code == 200, seen.text
    assert RUN_NAME in seen.text
    denied = world.client.post(path, json=body, headers=world.headers["outsider"])
    assert denied.status_code == 403
    assert RUN_NAME not in denied.text


def test_a_project_that_does_not_exist_reads_like_a_forbidden_one(world: World) -> None:
    """403 for an unknown project and for one the caller is not in: existence is not told."""
    answers = {}
    for project in (OTHER, "no-such-project"):
        response = world.client.get(
            f"/api/v1/projects/{project}/runs", headers=world.headers["read"]
        )
        answers[project] = (response.status_code, response.json())
    assert answers[OTHER][0] == answers["no-such-project"][0] == 403
    assert answers[OTHER][1] == answers["no-such-project"][1]


def test_a_token_scoped_to_one_project_gets_nothing_in_another(world: World) -> None:
    """A user with roles in both projects, holding a token for one, is an outsider in the
    other."""
    world.server.add_user("both")
    world.server._call("PUT", f"/api/v1/projects/{OTHER}/members/both", {"role": "admin"})
    token = world.server.token("both", PROJECT, "read")
    response = world.client.get(
        f"/api/v1/projects/{OTHER}/runs", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    mine = world.client.get(
        f"/api/v1/projects/{PROJECT}/runs", headers={"Authorization": f"Bearer {token}"}
    )
    assert mine.status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("caller", "alias", "allowed"),
    [
        ("write", "champion", False),
        ("write", "staging", True),
        ("admin", "champion", True),
        ("gate", "champion", True),
    ],
)
@pytest.mark.parametrize("via", ["rpc", "page"])
def test_a_protected_alias_moves_only_for_a_project_admin_or_a_gate_token(
    world: World, caller: str, alias: str, allowed: bool, via: str
) -> None:
    if caller == "gate":
        headers = _bearer(world.server.token("gate-bot", PROJECT, "write", scopes=["gate"]))
    else:
        headers = world.headers[caller]
    spaces = Spaces(world.server.config)
    try:
        store = spaces.ledger(PROJECT, "seed").models
        model = store.get(store_project(spaces), "classifier")
        before = dict(store.aliases(model))
    finally:
        spaces.close()
    target = 2 if before.get(alias) == 1 else 1
    if via == "rpc":
        args = encode_args(method_spec("models", "set_alias"), (model, alias, target), {})
        response = world.client.post(
            f"/api/v1/projects/{PROJECT}/ledger/models/set_alias",
            json={"args": args},
            headers=headers,
        )
    else:
        response = world.client.post(
            f"/projects/{PROJECT}/models/classifier/aliases",
            data={"alias": alias, "version": str(target)},
            headers=headers,
        )
    spaces = Spaces(world.server.config)
    try:
        store = spaces.ledger(PROJECT, "seed").models
        after = dict(store.aliases(model))
    finally:
        spaces.close()
    if allowed:
        assert response.status_code in (200, 303), response.text
        assert after[alias] == target
    else:
        assert response.status_code == 403, response.text
        assert after == before


def store_project(spaces: Spaces) -> str:
    """The id of PROJECT's project record in its ledger."""
    return spaces.ledger(PROJECT, "seed").projects.get_project(PROJECT).id


@pytest.mark.parametrize(
    "body",
    [{"projects": [OTHER]}, {"projects": [PROJECT, OTHER]}, {"scopes": ["gate"]}],
)
def test_a_token_never_mints_a_wider_one(world: World, body: dict[str, Any]) -> None:
    minted = world.client.post("/api/v1/me/tokens", json=body, headers=world.headers["read"])
    assert minted.status_code == 403, minted.text
    assert "plt_" not in minted.text


def test_a_token_minted_by_a_scoped_token_reaches_only_its_projects(world: World) -> None:
    world.server.add_user("two-projects")
    for project in (PROJECT, OTHER):
        world.server._call(
            "PUT", f"/api/v1/projects/{project}/members/two-projects", {"role": "write"}
        )
    body = {"user": "two-projects", "projects": [PROJECT]}
    scoped = world.server._call("POST", "/api/v1/admin/tokens", body)["token"]
    minted = world.client.post("/api/v1/me/tokens", json={}, headers=_bearer(scoped))
    assert minted.status_code == 201, minted.text
    me = world.client.get("/api/v1/me", headers=_bearer(minted.json()["token"])).json()
    assert me["roles"] == {PROJECT: "write"}


def test_a_disabled_users_tokens_stop_working(world: World) -> None:
    token = world.server.token("leaver", PROJECT, "admin")
    assert world.client.get("/api/v1/me", headers=_bearer(token)).status_code == 200
    world.server._call("POST", "/api/v1/admin/users/leaver/disable")
    response = world.client.get(f"/api/v1/projects/{PROJECT}/runs", headers=_bearer(token))
    assert response.status_code == 401
    assert RUN_NAME not in response.text


def test_a_user_cannot_revoke_or_list_someone_elses_token(world: World) -> None:
    victim = world.server.token("victim-two", PROJECT, "read")
    victim_id = victim.split("_")[1]
    for caller in ("read", "write", "admin", "outsider"):
        revoked = world.client.delete(
            f"/api/v1/me/tokens/{victim_id}", headers=world.headers[caller]
        )
        assert revoked.status_code == 404, (caller, revoked.text)
        mine = world.client.get("/api/v1/me/tokens", headers=world.headers[caller]).json()
        assert victim_id not in {t["id"] for t in mine["items"]}
    assert world.client.get("/api/v1/me", headers=_bearer(victim)).status_code == 200


def test_a_server_admins_token_scoped_to_one_project_holds_no_server_admin_power(
    world: World,
) -> None:
    """A token a server admin makes for one project (say, for a CI job) is narrowed like
    anyone's: it cannot create users or mint tokens for the whole server."""
    body = {"user": "admin", "projects": [PROJECT]}
    scoped = world.server._call("POST", "/api/v1/admin/tokens", body)["token"]
    me = world.client.get("/api/v1/me", headers=_bearer(scoped)).json()
    assert me["roles"] == {PROJECT: "admin"}
    other = world.client.get(f"/api/v1/projects/{OTHER}/runs", headers=_bearer(scoped))
    assert other.status_code == 403
    minted = world.client.post(
        "/api/v1/admin/tokens", json={"user": "admin"}, headers=_bearer(scoped)
    )
    assert minted.status_code == 403, minted.text
    users = world.client.post(
        "/api/v1/admin/users",
        json={"name": "planted-admin", "server_admin": True},
        headers=_bearer(scoped),
    )
    assert users.status_code == 403, users.text
