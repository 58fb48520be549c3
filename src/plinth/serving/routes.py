"""The routes of a model server around ``POST /v1/predict`` (which is :class:`Server`'s own):
the model description, canary statistics, the OpenAPI document, health, readiness and
metrics, each timed; and Starlette's own answers (404, 405, an unhandled 500) as plinth's
JSON errors with the policy headers.

::

    app = Starlette(routes=routes(server), exception_handlers=exception_handlers(server))
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, NotReadyError, PlinthError, UsageError
from plinth.guards.html import CSP_HEADER, csp_policy
from plinth.serving.decode import openapi

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from plinth.serving.app import Server

__all__ = ["HEADERS", "JSON", "exception_handlers", "not_ready", "routes"]

JSON = "application/json"
#: On every response: nothing the server answers is a page that may run or load anything.
HEADERS = {CSP_HEADER: csp_policy(), "X-Content-Type-Options": "nosniff"}
_ROUTES = "POST /v1/predict; GET /v1/model, /v1/canary, /openapi.json, /health, /ready, /metrics"

Handler = Callable[["Request"], Awaitable["Response"]]


def not_ready() -> NotReadyError:
    """The error a request gets before the models are loaded."""
    return NotReadyError("the model is still loading", field="model")


def routes(server: Server) -> list[Route]:
    """Every route of ``server``, each timed in ``plinth_request_latency_seconds``."""
    from starlette.routing import Route

    table: list[tuple[str, Handler, str]] = [
        ("/v1/predict", server.predict, "POST"),
        ("/v1/model", lambda r: model(server, r), "GET"),
        ("/v1/canary", lambda r: canary_stats(server, r), "GET"),
        ("/openapi.json", lambda r: openapi_document(server, r), "GET"),
        ("/health", lambda r: health(server, r), "GET"),
        ("/ready", lambda r: ready(server, r), "GET"),
        ("/metrics", lambda r: metrics(server, r), "GET"),
    ]
    return [Route(path, _timed(server, path, h), methods=[m]) for path, h, m in table]


def exception_handlers(server: Server) -> dict[Any, Callable[..., Awaitable[Response]]]:
    """Handlers for Starlette's own answers, which are plain text without the policy
    headers: plinth's JSON errors, with the headers, instead."""
    from starlette.exceptions import HTTPException

    async def on_http(request: Request, exc: Exception) -> Response:
        return http_exception(server, exc)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return crashed(server, exc)

    return {HTTPException: on_http, Exception: on_crash}


def http_exception(server: Server, exc: Exception) -> Response:
    """A route that does not exist (404) or a method it does not take (405), as JSON
    with the policy headers; the client's path is not echoed back."""
    status = int(getattr(exc, "status_code", 500))
    error: PlinthError = (
        NotFoundError("no such route on this server", hint=_ROUTES, field="path")
        if status == 404
        else UsageError(f"HTTP {status}: {getattr(exc, 'detail', '')}", hint=_ROUTES)
    )
    response = server.json_response(error.to_dict(), status)
    response.headers.update(getattr(exc, "headers", None) or {})  # 405's Allow
    return response


def crashed(server: Server, exc: Exception) -> Response:
    """An unhandled error: a 500 naming only its type, with the policy headers."""
    server.metrics.error("internal")
    return server.error_response(exc)


async def model(server: Server, request: Request) -> Response:
    """``GET /v1/model``: the served versions, the deployment, the canary and the shadow."""
    primary = server.primary.current
    if not server.ready or primary is None:
        return server.error_response(not_ready())
    doc = primary.describe()
    if server.features is not None:
        doc["features"] = server.features.binding(primary).describe()
    doc["deployment"] = {
        "name": server.spec.name,
        "version": None if server.deployment is None else server.deployment.number,
        "digest": server.spec.digest,
    }
    doc["canary"] = None
    if server.canary is not None and server.canary.current is not None:
        assert server.spec.canary is not None
        doc["canary"] = {
            **server.canary.current.describe(),
            "traffic": server.spec.canary.traffic,
        }
    doc["shadow"] = (
        None
        if server.shadow is None or server.shadow.current is None
        else server.shadow.current.describe()
    )
    return server.json_response(doc)


async def canary_stats(server: Server, request: Request) -> Response:
    """Requests, errors and latency per variant since the last load (serving/canary.py)."""
    return server.json_response(server.variants.snapshot(server))


async def openapi_document(server: Server, request: Request) -> Response:
    """``GET /openapi.json``, built once per primary version."""
    from starlette.responses import Response

    primary = server.primary.current
    if primary is None:
        return server.error_response(not_ready())
    cached = server.openapi_cache
    if cached is None or cached[0] is not primary:
        import orjson

        decoder = (
            primary.decoder if server.features is None else server.features.binding(primary).decoder
        )
        title = f"plinth deployment {server.spec.name}"
        doc = openapi(title, primary.name, decoder, primary.output)
        cached = (primary, orjson.dumps(doc))
        server.openapi_cache = cached
    return Response(cached[1], media_type=JSON, headers=HEADERS)


async def health(server: Server, request: Request) -> Response:
    return server.json_response({"status": "ok"})


async def ready(server: Server, request: Request) -> Response:
    primary = server.primary.current
    if not server.ready or primary is None:
        return server.json_response({"ready": False}, 503)
    return server.json_response({"ready": True, "model_version": primary.name})


async def metrics(server: Server, request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST
    from starlette.responses import Response

    return Response(
        server.metrics.render(), headers={**HEADERS, "Content-Type": CONTENT_TYPE_LATEST}
    )


def _timed(server: Server, route: str, handler: Handler) -> Handler:
    histogram = server.metrics.latency.labels(server.spec.name, route)

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            histogram.observe(time.perf_counter() - start)

    return endpoint
