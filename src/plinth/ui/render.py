"""The one Jinja2 environment of the web UI and the page response every handler returns.

Templates are autoescaped always (whatever their file name) and an undefined name is an
error, not an empty string, so a typo fails a test instead of hiding data. Every page gets
the navigation, the signed-in user, the project, the session's CSRF token and whether the
user may write in the project (templates show write controls only then; the server checks
the role again on every unsafe request)::

    def runs_page(call: Call) -> Response:
        return render(call, "runs.html", rows=rows)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import jinja2

from plinth.api.routes import Call, html_response, role_at_least
from plinth.errors import UsageError

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = [
    "NAV",
    "PAGE_CSP",
    "duration",
    "environment",
    "form",
    "num",
    "query_url",
    "render",
    "when",
]

#: The Content-Security-Policy of every UI page: the shipped CSS and JS only (no inline
#: script, style or handler), images from the server or ``data:``, forms posting back here.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The sections of a project, in navigation order: (label, path below the project).
NAV: tuple[tuple[str, str], ...] = (
    ("Runs", "runs"),
    ("Datasets", "datasets"),
    ("Models", "models"),
    ("Deployments", "deployments"),
    ("Monitors", "monitors"),
    ("Features", "features"),
    ("Pipelines", "pipelines"),
    ("Lineage", "lineage"),
)


def num(value: object) -> str:
    """A number as a short readable text (6 significant digits); anything else as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def when(ms: int | None) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS`` UTC; empty for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    """The time from ``start`` to ``end`` (epoch ms) as ``1h 02m``, ``3m 05s`` or ``4.2s``."""
    if start is None or end is None:
        return ""
    seconds = max(0, end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def query_url(path: str, params: Mapping[str, object], **changes: object) -> str:
    """``path`` with the query ``params`` updated by ``changes`` (None drops a key)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v is not None and v != ""}
    return f"{path}?{urlencode(merged, doseq=True)}" if merged else path


@cache
def environment() -> jinja2.Environment:
    """The shared environment over ``plinth/ui/templates`` (built once, thread-safe to use)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("plinth.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    env.filters["when"] = when
    env.globals["duration"] = duration
    env.globals["query_url"] = query_url
    return env


def render(call: Call, template: str, *, status: int = 200, **context: Any) -> Response:
    """The page ``template`` rendered with ``context`` plus the common page context."""
    principal = call.principal
    project = call.project
    role = principal.role_in(project) if principal is not None and project else None
    common: dict[str, Any] = {
        "nav": [(label, f"/projects/{project}/{path}") for label, path in NAV] if project else [],
        "user": principal.user if principal is not None else None,
        "project": project,
        "csrf": (principal.csrf or "") if principal is not None else "",
        "can_write": role_at_least(role, "write"),
        "path": call.request.url.path,
    }
    html = environment().get_template(template).render(**{**common, **context})
    return html_response(
        html,
        status_code=status,
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
    )


def form(call: Call) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (last value of a name wins).

    Only url-encoded forms are read (the UI posts nothing else), so no multipart parser
    touches a page's body.
    """
    kind = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UsageError(
            f"this form expects application/x-www-form-urlencoded, got {kind or 'no type'!r}",
            hint="post the page's own form",
        )
    try:
        text = call.body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError("the form body is not UTF-8", hint="post the page's own form") from error
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
