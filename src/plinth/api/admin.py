"""Accounts over HTTP: ``/api/v1/me`` (the caller, their projects and tokens), the server
admin's ``/api/v1/admin/{users,tokens,projects,audit}`` and a project admin's members and
audit under ``/api/v1/projects/{project}/``.

A token is shown once, in the answer that creates it. A user may create tokens for
themselves (rate-limited per user and address), never wider than the credential they call
with: only the projects that credential reaches, and no scopes; a server admin may create
any token, e.g. a ``gate`` service token that may move protected aliases.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from plinth.api.auth import ForbiddenError, TooManyRequestsError
from plinth.api.bootstrap import create_project
from plinth.api.config import parse_duration
from plinth.api.routes import Call, Endpoint, json_response, no_content
from plinth.errors import NotFoundError, RequestError

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.api.auth import Principal

__all__ = ["ENDPOINTS"]


def _json(value: Any, status: int = 200) -> Response:
    return json_response(value, status)


def _items(values: list[Any]) -> Response:
    return _json({"items": [dataclasses.asdict(v) for v in values]})


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RequestError(f"'{name}' must be a non-empty string", field=name)
    return value


def _string_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"'{name}' must be a list of strings", field=name)
    return list(value)


def _principal(call: Call) -> Principal:
    assert call.principal is not None
    return call.principal


# -- the caller -------------------------------------------------------------------------


def me(call: Call) -> Response:
    """Who the caller is and what it may do."""
    p = _principal(call)
    return _json(
        {
            "user": p.user,
            "server_admin": p.server_admin,
            "roles": dict(p.roles),
            "scopes": sorted(p.scopes),
            "token_id": p.token_id,
            "via": p.via,
        }
    )


def my_projects(call: Call) -> Response:
    """The projects the caller can see, with its role in each."""
    roles = _principal(call).roles
    return _json({"items": [{"name": n, "role": roles[n]} for n in sorted(roles)]})


def my_tokens(call: Call) -> Response:
    return _items(call.accounts.list_tokens(_principal(call).user))


def _issue(call: Call, user: str, body: dict[str, Any], *, admin: bool) -> Response:
    p = _principal(call)
    client = call.request.client.host if call.request.client else "-"
    wait = call.limiters["token"].hit(f"{p.user}|{client}")
    if wait:
        raise TooManyRequestsError("too many tokens created", retry_after=wait)
    projects = _string_list(body, "projects")
    scopes = _string_list(body, "scopes") or []
    if not admin:
        if scopes:
            raise ForbiddenError("only a server admin may create tokens with scopes")
        reach = set(p.roles)
        if projects is None and p.token_id is not None:
            projects = sorted(reach)  # a token never mints a wider one
        if projects is not None and not set(projects) <= reach:
            raise ForbiddenError("a token may only reach projects you can access")
    expires = _text(body, "expires", required=False)
    lifetime = parse_duration(expires) if expires else call.config.token_ttl_s
    note = body.get("note", "")
    token, info = call.accounts.create_token(
        user,
        by=p.user,
        projects=projects,
        scopes=scopes,
        expires_in_s=lifetime,
        note=note if isinstance(note, str) else "",
    )
    call.audit("token.create", info.id, {"user": user, "projects": projects, "scopes": scopes})
    return _json({"token": token, **dataclasses.asdict(info)}, 201)


def create_my_token(call: Call) -> Response:
    """A new token for the caller (shown once)."""
    return _issue(call, _principal(call).user, call.json(), admin=False)


def revoke_my_token(call: Call) -> Response:
    token_id = call.request.path_params["token_id"]
    mine = {t.id for t in call.accounts.list_tokens(_principal(call).user)}
    if token_id not in mine:
        raise NotFoundError(f"you have no token {token_id[:40]!r}", field="token")
    call.accounts.revoke_token(token_id)
    call.audit("token.revoke", token_id)
    return no_content()


# -- server admin ------------------------------------------------------------------------


def list_users(call: Call) -> Response:
    return _items(call.accounts.list_users())


def add_user(call: Call) -> Response:
    body = call.json()
    name = _text(body, "name")
    assert name is not None
    password = _text(body, "password", required=False)
    admin = body.get("server_admin", False)
    if not isinstance(admin, bool):
        raise RequestError("'server_admin' must be true or false", field="server_admin")
    user = call.accounts.add_user(
        name, by=_principal(call).user, password=password, server_admin=admin
    )
    call.audit("user.add", name, {"server_admin": admin})
    return _json(dataclasses.asdict(user), 201)


def _set_disabled(call: Call, disabled: bool) -> Response:
    name = call.request.path_params["user"]
    call.accounts.set_disabled(name, disabled)
    call.audit("user.disable" if disabled else "user.enable", name)
    return _json(dataclasses.asdict(call.accounts.get_user(name)))


def disable_user(call: Call) -> Response:
    return _set_disabled(call, True)


def enable_user(call: Call) -> Response:
    return _set_disabled(call, False)


def set_password(call: Call) -> Response:
    name = call.request.path_params["user"]
    password = _text(call.json(), "password")
    assert password is not None
    call.accounts.set_password(name, password)
    call.audit("user.passwd", name)
    return no_content()


def list_tokens(call: Call) -> Response:
    return _items(call.accounts.list_tokens(call.request.query_params.get("user")))


def create_token(call: Call) -> Response:
    body = call.json()
    user = _text(body, "user")
    assert user is not None
    return _issue(call, user, body, admin=True)


def revoke_token(call: Call) -> Response:
    token_id = call.request.path_params["token_id"]
    call.accounts.revoke_token(token_id)
    call.audit("token.revoke", token_id)
    return no_content()


def list_projects(call: Call) -> Response:
    return _json({"items": [{"name": n} for n in call.accounts.list_projects()]})


def add_project(call: Call) -> Response:
    name = _text(call.json(), "name")
    assert name is not None
    create_project(call.accounts, call.spaces, name, by=_principal(call).user)
    call.audit("project.create", name)
    return _json({"name": name}, 201)


def _audit_items(call: Call, project: str | None) -> Response:
    query = call.request.query_params
    limit = query.get("limit", "100")
    if not limit.isdigit():
        raise RequestError("'limit' must be a positive integer", field="limit")
    entries = call.accounts.audit_log(project=project, user=query.get("user"), limit=int(limit))
    return _items(entries)


def server_audit(call: Call) -> Response:
    return _audit_items(call, call.request.query_params.get("project"))


# -- project admin -----------------------------------------------------------------------


def members(call: Call) -> Response:
    return _items(call.accounts.members(call.project))


def grant(call: Call) -> Response:
    assert call.project is not None
    user = call.request.path_params["user"]
    role = _text(call.json(), "role")
    assert role is not None
    call.accounts.grant(user, call.project, role, by=_principal(call).user)
    call.audit("member.grant", user, {"role": role})
    return _json({"user": user, "project": call.project, "role": role})


def revoke(call: Call) -> Response:
    assert call.project is not None
    user = call.request.path_params["user"]
    call.accounts.revoke(user, call.project)
    call.audit("member.revoke", user)
    return no_content()


def project_audit(call: Call) -> Response:
    return _audit_items(call, call.project)


_ME, _ADMIN, _P = "/api/v1/me", "/api/v1/admin", "/api/v1/projects/{project}"
_SMALL = 64 * 1024

ENDPOINTS = [
    Endpoint("GET", _ME, me, "Who the caller is, with roles and scopes.", access="user"),
    Endpoint(
        "GET", "/api/v1/projects", my_projects, "The caller's projects and roles.", access="user"
    ),
    Endpoint("GET", f"{_ME}/tokens", my_tokens, "The caller's tokens.", access="user"),
    Endpoint(
        "POST",
        f"{_ME}/tokens",
        create_my_token,
        "Create a token for the caller.",
        access="user",
        max_body=_SMALL,
    ),
    Endpoint(
        "DELETE",
        f"{_ME}/tokens/{{token_id}}",
        revoke_my_token,
        "Revoke one of the caller's tokens.",
        access="user",
    ),
    Endpoint("GET", f"{_ADMIN}/users", list_users, "Every user.", access="server_admin"),
    Endpoint(
        "POST", f"{_ADMIN}/users", add_user, "Add a user.", access="server_admin", max_body=_SMALL
    ),
    Endpoint(
        "POST",
        f"{_ADMIN}/users/{{user}}/disable",
        disable_user,
        "Disable a user (tokens and sessions stop working).",
        access="server_admin",
    ),
    Endpoint(
        "POST",
        f"{_ADMIN}/users/{{user}}/enable",
        enable_user,
        "Re-enable a user.",
        access="server_admin",
    ),
    Endpoint(
        "PUT",
        f"{_ADMIN}/users/{{user}}/password",
        set_password,
        "Set a user's password.",
        access="server_admin",
        max_body=_SMALL,
    ),
    Endpoint(
        "GET",
        f"{_ADMIN}/tokens",
        list_tokens,
        "Every token (never the secrets).",
        access="server_admin",
    ),
    Endpoint(
        "POST",
        f"{_ADMIN}/tokens",
        create_token,
        "Create a token for any user.",
        access="server_admin",
        max_body=_SMALL,
    ),
    Endpoint(
        "DELETE",
        f"{_ADMIN}/tokens/{{token_id}}",
        revoke_token,
        "Revoke a token.",
        access="server_admin",
    ),
    Endpoint("GET", f"{_ADMIN}/projects", list_projects, "Every project.", access="server_admin"),
    Endpoint(
        "POST",
        f"{_ADMIN}/projects",
        add_project,
        "Create a project.",
        access="server_admin",
        max_body=_SMALL,
    ),
    Endpoint(
        "GET",
        f"{_ADMIN}/audit",
        server_audit,
        "The audit log, newest first.",
        access="server_admin",
    ),
    Endpoint(
        "GET",
        f"{_P}/members",
        members,
        "The project's members and roles.",
        access="project",
        role="admin",
    ),
    Endpoint(
        "PUT",
        f"{_P}/members/{{user}}",
        grant,
        "Give a user a role in the project.",
        access="project",
        role="admin",
        max_body=_SMALL,
    ),
    Endpoint(
        "DELETE",
        f"{_P}/members/{{user}}",
        revoke,
        "Remove a user from the project.",
        access="project",
        role="admin",
    ),
    Endpoint(
        "GET",
        f"{_P}/audit",
        project_audit,
        "The project's audit log, newest first.",
        access="project",
        role="admin",
    ),
]
