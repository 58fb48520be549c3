"""``GET /health``: a cheap liveness and readiness answer for load balancers and probes.

It touches no database: a replica that answers is ready to take requests, and a database
outage shows as 503s on the requests that need it rather than as a flapping pod.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plinth._version import __version__
from plinth.api.routes import Call, Endpoint, json_response

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS"]


def health(call: Call) -> Response:
    """``{"status": "ok", "version": ...}``."""
    return json_response({"status": "ok", "version": __version__})


ENDPOINTS = [Endpoint("GET", "/health", health, "Liveness and readiness probe.", access="public")]
