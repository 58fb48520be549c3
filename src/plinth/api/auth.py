"""Who is calling: API tokens (``Authorization: Bearer plt_<id>_<secret>``) and browser
sessions (the ``plinth_session`` cookie), resolved to a :class:`Principal`.

A token is checked against the sha256 of its secret (constant-time), its expiry, its
revocation and its user's ``disabled`` flag; its project list narrows the user's roles.
A server admin's token scoped to some projects is admin there and no server admin.
A session carries a CSRF token that every unsafe request made with it must echo (header
``X-CSRF-Token`` or form field ``csrf``). Server admins hold ``admin`` in every project
their credential's scope allows.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from plinth.api.routes import Role
from plinth.errors import PlinthError

if TYPE_CHECKING:
    from starlette.requests import Request

    from plinth.ledger.accounts import AccountStore, Credential

__all__ = [
    "SESSION_COOKIE",
    "ForbiddenError",
    "Principal",
    "TooManyRequestsError",
    "UnauthorizedError",
    "authenticate",
    "csrf_matches",
]

#: The browser session cookie (HttpOnly, SameSite=Strict, Secure on TLS).
SESSION_COOKIE = "plinth_session"


class UnauthorizedError(PlinthError):
    """No credentials, or credentials the server does not accept (401)."""

    status = 401
    default_hint = "send 'Authorization: Bearer <token>' (PLINTH_TOKEN) or log in at /login"


class ForbiddenError(PlinthError):
    """Authenticated, but without the role, scope or CSRF token the request needs (403)."""

    status = 403
    default_hint = "ask a project admin for the role, or a server admin for access"


class TooManyRequestsError(PlinthError):
    """Too many attempts from one user and address; ``retry_after`` seconds to wait (429)."""

    status = 429
    default_hint = "wait and try again"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message, hint=f"try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and what it may do."""

    user: str
    server_admin: bool
    #: project -> role, already narrowed by the credential's project scope.
    roles: Mapping[str, Role]
    #: Extra powers of a service token, e.g. {"gate"}: may move protected aliases.
    scopes: frozenset[str]
    #: The API token's id; None for a browser session.
    token_id: str | None
    via: Literal["token", "session", "local"]
    #: The session's CSRF token (browser sessions only).
    csrf: str | None

    def role_in(self, project: str) -> Role | None:
        """This caller's role in ``project``, or None (no access, or no such project)."""
        return self.roles.get(project)


def _principal(credential: Credential, accounts: AccountStore, *, local: bool) -> Principal:
    roles = accounts.roles_of(credential.user, server_admin=credential.server_admin)
    if credential.projects is not None:
        roles = {p: r for p, r in roles.items() if p in credential.projects}
    via: Literal["token", "session", "local"] = (
        "token" if credential.token_id else ("local" if local else "session")
    )
    return Principal(
        user=credential.user,
        # A project-scoped token (say, a server admin's for one CI job) is narrowed like
        # anyone's: it holds no power over the whole server.
        server_admin=credential.server_admin and credential.projects is None,
        roles=roles,
        scopes=credential.scopes,
        token_id=credential.token_id,
        via=via,
        csrf=credential.csrf,
    )


def authenticate(
    request: Request, accounts: AccountStore, *, local: bool = False
) -> Principal | None:
    """The caller of ``request``; None when it sent no credentials at all.

    Raises :class:`UnauthorizedError` for a malformed, unknown, expired or revoked
    credential, so a bad token is never mistaken for an anonymous call.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthorizedError("the Authorization header is not 'Bearer <token>'")
        credential = accounts.check_token(value.strip())
    else:
        session = request.cookies.get(SESSION_COOKIE)
        if not session:
            return None
        credential = accounts.check_session(session)
    if credential is None:
        raise UnauthorizedError("the token or session is unknown, expired or revoked")
    return _principal(credential, accounts, local=local)


def csrf_matches(principal: Principal, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (constant-time); tokens need none."""
    if principal.via == "token":
        return True
    if not sent or not principal.csrf:
        return False
    return hmac.compare_digest(sent.encode(), principal.csrf.encode())
