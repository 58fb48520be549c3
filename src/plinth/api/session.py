"""Browser login: ``GET/POST /login`` (a form with a CSRF token), ``POST /logout``, and the
one-time link ``GET /login/local?token=...`` that ``plinth ui`` prints.

Login attempts are rate-limited per user name and client address (429 with Retry-After).
Before a session exists, the form's CSRF token is double-submitted: a random value in an
HttpOnly, SameSite=Strict cookie and in the form must match. A successful login sets the
``plinth_session`` cookie (HttpOnly, SameSite=Strict, Secure on TLS) and sends the browser
to ``next`` — a path on this server only, never another site.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from plinth.api.auth import SESSION_COOKIE
from plinth.api.routes import Call, Endpoint

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS", "LOGIN_CSRF_COOKIE", "safe_next"]

LOGIN_CSRF_COOKIE = "plinth_login_csrf"
_FORM_LIMIT = 16 * 1024


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 for c in target)
    ):
        return "/"
    return target


def _page(csrf: str, next_path: str, message: str = "") -> str:
    notice = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        "<title>Log in · plinth</title><style>body{font-family:system-ui,sans-serif;"
        "max-width:22rem;margin:4rem auto}label,input,button{display:block;width:100%;"
        "margin:.3rem 0}.error{color:#b00}</style></head><body><h1>plinth</h1>"
        f'{notice}<form method="post" action="/login">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<label for="user">User</label><input id="user" name="user" autocomplete="username" '
        'required><label for="password">Password</label><input id="password" name="password" '
        'type="password" autocomplete="current-password" required>'
        '<button type="submit">Log in</button></form></body></html>'
    )


def _form(call: Call, status: int = 200, message: str = "", next_path: str = "/") -> Response:
    from starlette.responses import HTMLResponse

    csrf = secrets.token_urlsafe(32)
    response = HTMLResponse(_page(csrf, next_path, message), status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/login",
        httponly=True,
        secure=call.config.tls,
        samesite="strict",
    )
    return response


def login_form(call: Call) -> Response:
    """The login page."""
    return _form(call, next_path=safe_next(call.request.query_params.get("next")))


def _start_session(call: Call, user: str, next_path: str) -> Response:
    from starlette.responses import RedirectResponse

    session = call.accounts.create_session(user, ttl_s=call.config.session_ttl_s)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=call.config.session_ttl_s,
        path="/",
        httponly=True,
        secure=call.config.tls,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def login(call: Call) -> Response:
    """Check the form's CSRF token, the rate limit and the password; start a session."""
    fields = parse_qs(call.body.decode("utf-8", "replace"), max_num_fields=20)
    value = {k: v[0] for k, v in fields.items() if v}
    user, password = value.get("user", ""), value.get("password", "")
    next_path = safe_next(value.get("next"))
    cookie = call.request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = value.get("csrf", "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return _form(call, 403, "The form expired; please log in again.", next_path)
    client = call.request.client.host if call.request.client else "-"
    key = f"{user[:64]}|{client}"
    wait = call.limiters["login"].hit(key)
    if wait:
        call.audit("login", user[:64], status="limited")
        response = _form(call, 429, f"Too many attempts; try again in {wait} s.", next_path)
        response.headers["Retry-After"] = str(wait)
        return response
    if not user or not password or not call.accounts.check_password(user, password):
        call.audit("login", user[:64], status="denied")
        return _form(call, 401, "Wrong user name or password.", next_path)
    call.limiters["login"].reset(key)
    call.audit("login", user, status="ok")
    return _start_session(call, user, next_path)


def logout(call: Call) -> Response:
    """End this browser session and forget its cookie."""
    from starlette.responses import RedirectResponse

    raw = call.request.cookies.get(SESSION_COOKIE)
    if raw and call.principal is not None and call.principal.via != "token":
        call.accounts.end_session(raw)
    call.audit("logout", call.principal.user if call.principal else "-")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def local_login(call: Call) -> Response:
    """``plinth ui``'s one-time link: trade its token for a session of the local user."""
    user = call.request.app.state.server.take_local_login(call.request.query_params.get("token"))
    if user is None:
        return _form(call, 403, "This login link is not valid (it works once).")
    call.audit("login", user, status="ok")
    return _start_session(call, user, "/")


ENDPOINTS = [
    Endpoint("GET", "/login", login_form, "The login page.", access="public", html=True),
    Endpoint(
        "POST",
        "/login",
        login,
        "Log in with a user name and password.",
        access="public",
        html=True,
        max_body=_FORM_LIMIT,
    ),
    Endpoint(
        "POST",
        "/logout",
        logout,
        "End this browser session.",
        access="user",
        html=True,
        max_body=_FORM_LIMIT,
    ),
    Endpoint(
        "GET",
        "/login/local",
        local_login,
        "Trade plinth ui's one-time link for a session.",
        access="public",
        html=True,
    ),
]
