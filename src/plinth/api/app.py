"""The Starlette application of the team server (and of ``plinth ui``).

:func:`create_app` collects the ``ENDPOINTS`` of the API's resource modules (plus the web
pages' endpoints its caller passes: :mod:`plinth.ui` sits above this layer) and wraps each
handler: authenticate (401, or 303 to /login for pages), check access and role (403, also
for a project that does not exist), bound the body (413), check the CSRF token of browser
sessions on unsafe methods (403), run the sync handler in the threadpool, answer a
:class:`~plinth.errors.PlinthError` with its status and JSON shape and anything else with a
generic 500, and audit mutations. Every response carries the security headers (a strict
CSP unless the page set its own, nosniff, no framing, no referrer; HSTS on TLS).

Mutations are audited automatically (method, path, status) on unsafe requests to endpoints
that need ``write``/``admin`` or a server admin, unless the handler called
:meth:`~plinth.api.routes.Call.audit` itself; endpoints that take reads and writes through
one route (the ledger RPC) audit their mutations themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from plinth.api.auth import (
    ForbiddenError,
    Principal,
    TooManyRequestsError,
    UnauthorizedError,
    authenticate,
    csrf_matches,
)
from plinth.api.config import PROJECT_NAME, ServerConfig
from plinth.api.ratelimit import RateLimiter
from plinth.api.routes import Call, Endpoint, json_response, role_at_least
from plinth.api.spaces import Spaces
from plinth.errors import PayloadTooLargeError, PlinthError
from plinth.guards.html import csp_policy

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from plinth.ledger.accounts import AccountStore

__all__ = [
    "RedactQueryStrings",
    "ServerState",
    "api_endpoints",
    "create_app",
    "log_config",
    "server_state",
]

log = logging.getLogger("plinth.api")

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_INTERNAL = {
    "errors": [
        {
            "type": "InternalError",
            "field": None,
            "message": "the server failed to answer this request",
            "hint": "the server's log has the details",
        }
    ]
}
#: Added to the CSP of every response: no framing, forms post only here, no <base>.
_CSP_EXTRA = "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"


def api_endpoints() -> list[Endpoint]:
    """Every endpoint of the REST API, one resource module after another.

    The web pages sit in a layer above (:mod:`plinth.ui`), so this module never imports
    them: whoever builds the whole server passes them to :func:`create_app` (``plinth server
    start`` and ``plinth ui`` do, through :func:`plinth.cli.server.build_app`).
    """
    from plinth.api import admin, blobs, health, ledger_rpc, openapi, runs, session

    found: list[Endpoint] = []
    for module in (health, session, admin, openapi, ledger_rpc, blobs, runs):
        found.extend(module.ENDPOINTS)
    return found


class ServerState:
    """What every request shares: config, project spaces, the accounts store (opened on
    first use, so start-up stays fast) and the rate limiters."""

    def __init__(self, config: ServerConfig, routes: Sequence[Endpoint]) -> None:
        self.config = config
        self.endpoints = list(routes)
        self.spaces = Spaces(config)
        self.limiters = {
            "login": RateLimiter(config.login_limit, config.login_window_s),
            "token": RateLimiter(config.token_limit, config.token_window_s),
        }
        self._accounts: AccountStore | None = None
        self._lock = threading.Lock()
        # plinth ui only: sha256 of the one-time login token, and whom it logs in.
        self._local_login: tuple[str, str] | None = None

    def set_local_login(self, token: str, user: str) -> None:
        """Arm the one-time link ``/login/local?token=<token>`` for ``user``."""
        self._local_login = (hashlib.sha256(token.encode()).hexdigest(), user)

    def take_local_login(self, token: str | None) -> str | None:
        """The user of the one-time link if ``token`` is its token (it then stops working)."""
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            armed = self._local_login
            if armed is None or not hmac.compare_digest(digest, armed[0]):
                return None
            self._local_login = None
            return armed[1]

    @property
    def accounts(self) -> AccountStore:
        return self.open_accounts()

    def open_accounts(self) -> AccountStore:
        """The accounts store, opened (and its tables created) on first use."""
        if self._accounts is None:
            with self._lock:
                if self._accounts is None:
                    from plinth.api.bootstrap import open_accounts

                    self._accounts = open_accounts(self.config)
        return self._accounts

    def close(self) -> None:
        self.spaces.close()
        if self._accounts is not None:
            self._accounts.close()


def _error(error: PlinthError) -> Response:
    headers = {}
    if isinstance(error, TooManyRequestsError):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="plinth"'
    return json_response(error.to_dict(), error.status, headers)


def _too_big(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is larger than this route takes ({limit} bytes)",
        hint="send less per request (large files: the resumable upload routes)",
        field="body",
    )


def _check_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_big(limit)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_big(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _sent_csrf(request: Request, body: bytes) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), max_num_fields=1000).get("csrf")
        return values[0] if values else None
    return None


def _authorise(endpoint: Endpoint, principal: Principal | None, project: str | None) -> None:
    if endpoint.access == "public":
        return
    if principal is None:
        raise UnauthorizedError("this route needs a token or a logged-in session")
    if endpoint.access == "server_admin" and not principal.server_admin:
        raise ForbiddenError("this route is for server admins")
    # Unknown and forbidden projects read the same: existence is not revealed.
    if endpoint.access == "project" and (
        project is None or not role_at_least(principal.role_in(project), endpoint.role)
    ):
        raise ForbiddenError(f"this route needs the '{endpoint.role}' role in the project")


def _route(endpoint: Endpoint, state: ServerState) -> Route:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    async def handle(request: Request) -> Response:
        call: Call | None = None
        try:
            _check_declared_size(request, endpoint.max_body)
            project = request.path_params.get("project")
            if project is not None and not PROJECT_NAME.fullmatch(str(project)):
                project = None
            principal = await run_in_threadpool(_principal, request, endpoint, state)
            call = Call(
                request=request,
                body=b"",
                principal=principal,
                project=project,
                spaces=state.spaces,
                config=state.config,
                open_accounts=state.open_accounts,
                limiters=state.limiters,
            )
            _authorise(endpoint, principal, project)
            # Read only once the caller may call: nobody streams a body at a 401 or 403.
            body = call.body = await _read_body(request, endpoint.max_body)
            # Public routes (the login form) check their own pre-session CSRF token.
            unsafe = request.method not in _SAFE and endpoint.access != "public"
            if unsafe and principal and not csrf_matches(principal, _sent_csrf(request, body)):
                raise ForbiddenError(
                    "missing or wrong CSRF token", hint="reload the page and submit the form again"
                )
            response = await run_in_threadpool(endpoint.handler, call)
        except UnauthorizedError as error:
            if endpoint.html:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            response = _error(error)
        except PlinthError as error:
            response = _error(error)
        except Exception:
            log.exception("%s %s failed", request.method, endpoint.path)
            response = json_response(_INTERNAL, 500)
        if call is not None and _audit_needed(endpoint, call, request.method):
            await run_in_threadpool(_auto_audit, call, endpoint, response.status_code)
        return response

    return Route(endpoint.path, handle, methods=[endpoint.method], name=None)


def _principal(request: Request, endpoint: Endpoint, state: ServerState) -> Principal | None:
    has_credentials = "authorization" in request.headers or "plinth_session" in request.cookies
    if not has_credentials:
        return None
    try:
        return authenticate(request, state.accounts, local=state.config.embedded is not None)
    except UnauthorizedError:
        if endpoint.access == "public":
            return None  # a stale cookie must not lock anyone out of the login page
        raise


def _audit_needed(endpoint: Endpoint, call: Call, method: str) -> bool:
    if method in _SAFE or call.audited or call.principal is None:
        return False
    return (
        endpoint.access == "server_admin"
        or endpoint.role in ("write", "admin")
        or (endpoint.access == "user")
    )


def _auto_audit(call: Call, endpoint: Endpoint, status: int) -> None:
    try:
        call.audit(
            f"{endpoint.method} {endpoint.path}",
            call.request.url.path,
            status="ok" if status < 400 else str(status),
        )
    except PlinthError:
        log.warning("could not write the audit entry of %s %s", endpoint.method, endpoint.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    kind = {404: "NotFoundError", 405: "MethodNotAllowedError"}.get(exc.status_code, "HTTPError")
    return json_response(
        {"errors": [{"type": kind, "field": None, "message": str(exc.detail), "hint": ""}]},
        exc.status_code,
        exc.headers,
    )


def _no_framing(header: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    name, value = header
    if name.lower() != b"content-security-policy" or b"frame-ancestors" in value:
        return header
    return name, value.rstrip(b"; ") + b"; frame-ancestors 'none'"


class SecurityHeaders:
    """Adds the security headers to every response, including the router's 404s."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    policy = f"{csp_policy()}; {_CSP_EXTRA}"
                    headers.append((b"content-security-policy", policy.encode()))
                else:  # a page's own policy: never frameable either
                    headers = [_no_framing(h) for h in headers]
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if self.tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                headers.extend(h for h in extra if h[0] not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


def create_app(config: ServerConfig, pages: Sequence[Endpoint] = ()) -> Starlette:
    """The server's ASGI app for ``config``: the REST API plus ``pages`` (the web pages'
    endpoints, from the layer above). Opens no database until the first request."""
    from plinth._extras import require

    require("starlette", feature="the team server", extra="server")
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware

    routes = [*api_endpoints(), *pages]
    state = ServerState(config, routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.close()

    app = Starlette(
        routes=[_route(e, state) for e in routes],
        middleware=[Middleware(SecurityHeaders, tls=config.tls)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.server = state
    return app


class RedactQueryStrings(logging.Filter):
    """Drops query strings from uvicorn's access log lines: a one-time login link or a
    presigned URL must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactQueryStrings` on the access log."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQueryStrings}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query"]
    return config


def server_state(app: Any) -> ServerState:
    """The :class:`ServerState` of an app made by :func:`create_app`."""
    state = app.state.server
    assert isinstance(state, ServerState)
    return state
