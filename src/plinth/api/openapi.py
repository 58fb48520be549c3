"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description generated from the route table.

Built from the same :class:`~plinth.api.routes.Endpoint` list the app serves, so it cannot
drift from the routes: every path, method, summary, path parameter and who may call it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth._version import __version__
from plinth.api.routes import Call, Endpoint, json_response

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS", "build_openapi"]

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")
_ERROR_REF = {"$ref": "#/components/responses/Error"}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(endpoint.path)
    ]
    access: str = endpoint.access
    if access == "project":
        access = f"project role '{endpoint.role}' or higher"
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.method.lower()}_{endpoint.path}",
        "parameters": params,
        "x-plinth-access": access,
        "responses": {"200": {"description": "OK"}, "default": _ERROR_REF},
    }
    if endpoint.access == "public":
        operation["security"] = []
    if endpoint.method in ("POST", "PUT"):
        operation["x-plinth-max-body"] = endpoint.max_body
    return operation


def build_openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of ``endpoints``."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = _PARAM.sub(lambda m: "{" + m[1] + "}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint)
    error_entry = {
        "type": "object",
        "properties": {
            k: {"type": ["string", "null"]} for k in ("type", "field", "message", "hint")
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "plinth team server", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "security": [{"token": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "plt_<id>_<secret>"},
                "session": {"type": "apiKey", "in": "cookie", "name": "plinth_session"},
            },
            "responses": {
                "Error": {
                    "description": "An error: 401 no credentials, 403 no role, 404, 413, 422, 429",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"errors": {"type": "array", "items": error_entry}},
                            }
                        }
                    },
                }
            },
        },
    }


def openapi(call: Call) -> Response:
    """The document of the app serving this request."""
    routes: list[Endpoint] = call.request.app.state.server.endpoints
    return json_response(build_openapi(routes))


ENDPOINTS = [
    Endpoint(
        "GET", "/api/v1/openapi.json", openapi, "This API's OpenAPI description.", access="public"
    ),
]
