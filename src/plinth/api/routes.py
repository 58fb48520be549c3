"""The route table: what every resource module exposes, and what a handler receives.

Each resource module lists its routes as ``ENDPOINTS: list[Endpoint]``; :mod:`plinth.api.app`
turns them into Starlette routes that authenticate, authorise (``access`` and ``role``),
bound the body (``max_body``), check CSRF for browser sessions and run the *sync* handler in
the threadpool with a :class:`Call`::

    def show(call: Call) -> Response:
        run = call.ledger().runs.get_run(call.request.path_params["run_id"])
        return JSONResponse({"id": run.id})

    ENDPOINTS = [Endpoint("GET", "/api/v1/projects/{project}/runs/{run_id}", show,
                          "One run.", access="project", role="read")]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plinth.errors import RequestError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from plinth.api.auth import Principal
    from plinth.api.config import ServerConfig
    from plinth.api.ratelimit import RateLimiter
    from plinth.api.spaces import Spaces
    from plinth.ledger import Ledger
    from plinth.ledger.accounts import AccountStore
    from plinth.storage import ContentStore

__all__ = [
    "ROLES",
    "Access",
    "Call",
    "Endpoint",
    "Role",
    "json_response",
    "no_content",
    "role_at_least",
]

Role = Literal["read", "write", "admin"]
Access = Literal["public", "user", "project", "server_admin"]
#: Roles from least to most powerful.
ROLES: tuple[Role, ...] = ("read", "write", "admin")


def role_at_least(role: Role | None, needed: Role) -> bool:
    """Whether ``role`` grants at least ``needed`` (None grants nothing)."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def json_response(
    value: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer (Starlette is imported here, not when the module loads: the server's
    modules import on a core install and name the missing extra only when used)."""
    from starlette.responses import JSONResponse

    return JSONResponse(value, status_code=status, headers=dict(headers or {}))


def plain_response(*args: Any, **kwargs: Any) -> Response:
    """A Starlette ``Response`` (imported on use, like :func:`json_response`)."""
    from starlette.responses import Response

    return Response(*args, **kwargs)


def html_response(*args: Any, **kwargs: Any) -> Response:
    """A Starlette ``HTMLResponse`` (imported on use)."""
    from starlette.responses import HTMLResponse

    return HTMLResponse(*args, **kwargs)


def redirect_response(*args: Any, **kwargs: Any) -> Response:
    """A Starlette ``RedirectResponse`` (imported on use)."""
    from starlette.responses import RedirectResponse

    return RedirectResponse(*args, **kwargs)


def stream_response(*args: Any, **kwargs: Any) -> Response:
    """A Starlette ``StreamingResponse`` (imported on use)."""
    from starlette.responses import StreamingResponse

    return StreamingResponse(*args, **kwargs)


def no_content() -> Response:
    """An empty 204 answer."""
    from starlette.responses import Response

    return Response(status_code=204)


@dataclass(frozen=True)
class Endpoint:
    """One route: method, Starlette path, sync handler and who may call it."""

    method: str
    path: str
    handler: Callable[[Call], Response]
    summary: str
    access: Access
    #: For ``access="project"``: the least role in the ``{project}`` of the path.
    role: Role = "read"
    #: A web page: an anonymous caller is sent to /login (303) instead of a 401 JSON.
    html: bool = False
    #: Bodies above this many bytes are refused with 413 before the handler runs.
    max_body: int = 1 << 20


@dataclass
class Call:
    """One authorised request as a handler sees it."""

    request: Request
    body: bytes
    principal: Principal | None
    #: The ``{project}`` path parameter, already authorised; None on other routes.
    project: str | None
    spaces: Spaces
    config: ServerConfig
    #: Opens (once per process) the accounts store; see :attr:`accounts`.
    open_accounts: Callable[[], AccountStore]
    #: The process's rate limiters by name ("login", "token").
    limiters: Mapping[str, RateLimiter] = field(default_factory=dict)
    #: Set once :meth:`audit` wrote an entry, so the app does not add a generic one.
    audited: bool = field(default=False)

    @property
    def accounts(self) -> AccountStore:
        """The server's accounts store (users, tokens, sessions, roles, audit)."""
        return self.open_accounts()

    def ledger(self) -> Ledger:
        """The project's ledger, recording the authenticated user as ``created_by``."""
        return self.spaces.ledger(self._project(), self._user())

    def blobs(self) -> ContentStore:
        """The project's content-addressed blob store."""
        return self.spaces.blobs(self._project())

    def audit(
        self,
        action: str,
        target: str,
        detail: Mapping[str, object] | None = None,
        *,
        status: str = "ok",
    ) -> None:
        """Record a mutation (never a secret in ``detail``) in the server's audit log."""
        self.accounts.audit(
            user=self.principal.user if self.principal else None,
            project=self.project,
            action=action,
            target=target,
            status=status,
            detail=detail,
        )
        self.audited = True

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or RequestError (422) naming what is wrong."""
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the request body is not valid JSON", field="body") from None
        if not isinstance(value, dict):
            raise RequestError("the request body must be a JSON object", field="body")
        return value

    def _project(self) -> str:
        if self.project is None:
            raise RuntimeError("this route has no {project}; only project routes open a ledger")
        return self.project

    def _user(self) -> str:
        if self.principal is None:
            raise RuntimeError("an anonymous call cannot open a ledger")
        return self.principal.user
