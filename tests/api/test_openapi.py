"""``GET /api/v1/openapi.json``: generated from the route table, so every served route is
described (and nothing else), with its path parameters and who may call it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from plinth.api.config import ServerConfig  # noqa: E402
from plinth.api.openapi import build_openapi  # noqa: E402
from plinth.testing.server import create_app, endpoints, start_server  # noqa: E402

_METHODS = {"get", "post", "put", "delete", "head"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The document as a live server serves it, to a caller without credentials."""
    with start_server(tmp_path_factory.mktemp("openapi") / "srv") as handle:
        response = httpx.get(f"{handle.url}/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_every_endpoint_is_described_once_and_nothing_else(document: Any) -> None:
    served = {(e.method.lower(), re.sub(r"{(\w+)(:\w+)?}", r"{\1}", e.path)) for e in endpoints()}
    described = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in _METHODS
    }
    assert described == served
    assert ("get", "/health") in described
    assert ("post", "/login") in described
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_app_serves_exactly_the_route_table(tmp_path: Path) -> None:
    app = create_app(ServerConfig(root=tmp_path))
    routes = {(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or ())}
    table = {(e.method, e.path) for e in endpoints()}
    # Starlette adds HEAD to every GET route; any other route is one of the table's.
    assert {(m, p) for m, p in routes if m != "HEAD" or (m, p) in table} == table


def test_operations_name_their_path_parameters_and_access(document: Any) -> None:
    assert document["openapi"] == "3.1.0"
    assert set(document["components"]["securitySchemes"]) == {"token", "session"}
    for path, operations in document["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert [p["name"] for p in operation["parameters"]] == names
            assert all(p["in"] == "path" and p["required"] for p in operation["parameters"])
            assert operation["x-plinth-access"]
            if operation["x-plinth-access"] == "public":
                assert operation["security"] == []
            else:
                assert "security" not in operation, "protected: the document's default"
    members = document["paths"]["/api/v1/projects/{project}/members"]["get"]
    assert members["x-plinth-access"] == "project role 'admin' or higher"
    assert document["paths"]["/api/v1/admin/users"]["get"]["x-plinth-access"] == "server_admin"


def test_the_document_is_valid_openapi() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(build_openapi(endpoints()))
