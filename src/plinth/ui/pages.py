"""Every endpoint of the web UI: the shell (home page, static files) and the page modules.

``ENDPOINTS`` is what :mod:`plinth.api.app` mounts. Static files come from a fixed
allow-list of files shipped in the wheel, read once from the package; the name in the URL
only selects an entry of that list and never reaches the filesystem.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from plinth.api.routes import Call, Endpoint, plain_response
from plinth.errors import NotFoundError
from plinth.ui import (
    pages_data,
    pages_features,
    pages_lineage,
    pages_models,
    pages_ops,
    pages_pipelines,
    pages_runs,
)
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS", "STATIC"]

#: The shipped static files by URL name, with their media type.
STATIC: dict[str, str] = {
    "plinth.css": "text/css; charset=utf-8",
    "plinth.js": "text/javascript; charset=utf-8",
}


@cache
def _static_bytes(name: str) -> bytes:
    return (resources.files("plinth.ui") / "static" / name).read_bytes()


def static_file(call: Call) -> Response:
    """A shipped CSS or JS file; any other name is 404 (never a path lookup)."""
    name = call.request.path_params["name"]
    media = STATIC.get(name)
    if media is None:
        raise NotFoundError(f"no static file {name!r}", hint="the UI ships plinth.css, plinth.js")
    return plain_response(
        _static_bytes(name),
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def home(call: Call) -> Response:
    """The projects the signed-in user may see, with their role in each."""
    principal = call.principal
    assert principal is not None  # access="user"
    return render(call, "index.html", projects=sorted(principal.roles.items()))


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/", home, "The projects you can see", access="user", html=True),
    Endpoint("GET", "/static/{name}", static_file, "A shipped CSS or JS file", access="public"),
    *pages_runs.ENDPOINTS,
    *pages_data.ENDPOINTS,
    *pages_models.ENDPOINTS,
    *pages_ops.ENDPOINTS,
    *pages_features.ENDPOINTS,
    *pages_pipelines.ENDPOINTS,
    *pages_lineage.ENDPOINTS,
]
