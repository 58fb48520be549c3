"""The team server's route inventory: every route, its method, who may call it and with
which least role, written out here by hand.

A route added to the server, removed from it, or given another access or role fails this
test until the list below is changed with it, so no route ever appears (or widens) without
a reviewer seeing it; the permission matrix (test_server_permissions.py) then checks each
listed route with real callers. ``-`` is the role column of routes outside projects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette")

from starlette.routing import Route

from plinth.api.config import ServerConfig
from plinth.testing.server import create_app, endpoints

LEDGER = "/api/v1/projects/{project}/ledger"

ROUTES: list[tuple[str, str, str, str]] = [
    ("GET", "/health", "public", "-"),
    ("GET", "/login", "public", "-"),
    ("POST", "/login", "public", "-"),
    ("POST", "/logout", "user", "-"),
    ("GET", "/login/local", "public", "-"),
    ("GET", "/api/v1/me", "user", "-"),
    ("GET", "/api/v1/projects", "user", "-"),
    ("GET", "/api/v1/me/tokens", "user", "-"),
    ("POST", "/api/v1/me/tokens", "user", "-"),
    ("DELETE", "/api/v1/me/tokens/{token_id}", "user", "-"),
    ("GET", "/api/v1/admin/users", "server_admin", "-"),
    ("POST", "/api/v1/admin/users", "server_admin", "-"),
    ("POST", "/api/v1/admin/users/{user}/disable", "server_admin", "-"),
    ("POST", "/api/v1/admin/users/{user}/enable", "server_admin", "-"),
    ("PUT", "/api/v1/admin/users/{user}/password", "server_admin", "-"),
    ("GET", "/api/v1/admin/tokens", "server_admin", "-"),
    ("POST", "/api/v1/admin/tokens", "server_admin", "-"),
    ("DELETE", "/api/v1/admin/tokens/{token_id}", "server_admin", "-"),
    ("GET", "/api/v1/admin/projects", "server_admin", "-"),
    ("POST", "/api/v1/admin/projects", "server_admin", "-"),
    ("GET", "/api/v1/admin/audit", "server_admin", "-"),
    ("GET", "/api/v1/projects/{project}/members", "project", "admin"),
    ("PUT", "/api/v1/projects/{project}/members/{user}", "project", "admin"),
    ("DELETE", "/api/v1/projects/{project}/members/{user}", "project", "admin"),
    ("GET", "/api/v1/projects/{project}/audit", "project", "admin"),
    ("GET", "/api/v1/openapi.json", "public", "-"),
    ("GET", "/api/v1/projects/{project}/ledger", "project", "read"),
    ("GET", "/api/v1/projects/{project}/blobs", "project", "read"),
    ("GET", "/api/v1/projects/{project}/blobs:list", "project", "admin"),
    ("POST", "/api/v1/projects/{project}/blobs:batch", "project", "write"),
    ("HEAD", "/api/v1/projects/{project}/blobs/{digest}", "project", "read"),
    ("GET", "/api/v1/projects/{project}/blobs/{digest}", "project", "read"),
    ("PUT", "/api/v1/projects/{project}/blobs/{digest}", "project", "write"),
    ("DELETE", "/api/v1/projects/{project}/blobs/{digest}", "project", "admin"),
    ("POST", "/api/v1/projects/{project}/blobs/{digest}:touch", "project", "write"),
    ("POST", "/api/v1/projects/{project}/blobs/{digest}:presign", "project", "read"),
    ("POST", "/api/v1/projects/{project}/uploads", "project", "write"),
    ("GET", "/api/v1/projects/{project}/uploads/{upload}", "project", "write"),
    ("PUT", "/api/v1/projects/{project}/uploads/{upload}", "project", "write"),
    ("POST", "/api/v1/projects/{project}/uploads/{upload}:presign", "project", "write"),
    ("POST", "/api/v1/projects/{project}/uploads/{upload}:commit", "project", "write"),
    ("GET", "/api/v1/projects/{project}/runs", "project", "read"),
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/metrics/{key:path}", "project", "read"),
    ("GET", "/", "user", "-"),
    ("GET", "/static/{name}", "public", "-"),
    ("GET", "/projects/{project}/runs", "project", "read"),
    ("GET", "/projects/{project}/runs/{run_id}", "project", "read"),
    ("POST", "/projects/{project}/runs/{run_id}/tags", "project", "write"),
    ("GET", "/projects/{project}/runs/{run_id}/artifact", "project", "read"),
    ("GET", "/projects/{project}/runs/{run_id}/notebook", "project", "read"),
    ("GET", "/projects/{project}/compare", "project", "read"),
    ("GET", "/projects/{project}/datasets", "project", "read"),
    ("GET", "/projects/{project}/datasets/{name}", "project", "read"),
    ("GET", "/projects/{project}/datasets/{name}/diff", "project", "read"),
    ("GET", "/projects/{project}/datasets/{name}/{version}", "project", "read"),
    ("GET", "/projects/{project}/models", "project", "read"),
    ("GET", "/projects/{project}/models/{name}", "project", "read"),
    ("POST", "/projects/{project}/models/{name}/aliases", "project", "write"),
    ("GET", "/projects/{project}/deployments", "project", "read"),
    ("GET", "/projects/{project}/deployments/{name}", "project", "read"),
    ("GET", "/projects/{project}/monitors", "project", "read"),
    ("GET", "/projects/{project}/monitors/{name}", "project", "read"),
    ("GET", "/projects/{project}/alerts", "project", "read"),
    ("GET", "/projects/{project}/features", "project", "read"),
    ("GET", "/projects/{project}/pipelines", "project", "read"),
    ("GET", "/projects/{project}/pipelines/runs/{run_id}", "project", "read"),
    ("GET", "/projects/{project}/lineage", "project", "read"),
    ("GET", "/projects/{project}/lineage/{kind}/{id}", "project", "read"),
]
LEDGER_METHODS: dict[str, dict[str, str]] = {
    "artifacts": {
        "read": "get list",
        "write": "record record_many",
    },
    "datasets": {
        "read": (
            "erasures get get_version_by_id latest_versions list list_versions "
            "referenced_blobs resolve tags"
        ),
        "write": "add_version ensure set_profile set_status set_tag",
        "admin": "record_erasure",
    },
    "deployments": {
        "read": "batches batches_of find_batch get get_by_id",
        "write": "record_batch save set_batch_profile",
    },
    "environments": {
        "read": "get get_by_digest",
        "write": "put",
    },
    "features": {
        "read": (
            "find_definition get_definition get_definition_by_id "
            "last_materialization latest_definitions materializations pushes "
            "versions"
        ),
        "write": "record_materialization record_push save_definition",
    },
    "gc": {
        "admin": "list_events record referenced_digests",
    },
    "lineage": {
        "read": "downstream edges_from edges_to upstream",
        "write": "add add_many",
    },
    "models": {
        "read": "alias_history aliases get get_version_by_id list list_versions resolve",
        "write": "delete_alias ensure register rollback set_alias set_aliases",
    },
    "monitoring": {
        "read": (
            "alerts get_label_batch get_report label_batch_by_digest label_batches "
            "last_alert reports"
        ),
        "write": "delete_label_batch record_alert record_labels record_report",
    },
    "pipelines": {
        "read": "decisions find_cached find_cached_many firings get_run runs steps",
        "write": (
            "attach_firing claim_firing end_step finish_run finish_step "
            "record_cached record_decision record_step start_run"
        ),
    },
    "projects": {
        "read": "get_experiment get_project list_experiments",
        "write": "ensure_experiment ensure_project",
    },
    "runs": {
        "read": ("get_params get_run get_tags latest_metrics list_runs max_seq metric_history"),
        "write": (
            "create_run delete_run finish log_metrics log_params restore_run "
            "set_environment set_source set_status set_tags"
        ),
    },
    "search": {
        "read": (
            "latest_metrics_of metric_points metric_samples metric_series "
            "metric_summaries params_of resolve_run_id search_runs"
        ),
    },
    "validation": {
        "read": "get_suite get_suite_by_id results",
        "write": "record_result save_suite",
    },
}


def listed() -> set[tuple[str, str, str, str]]:
    """The literal lists above as (method, path, access, role) rows."""
    rows = set(ROUTES)
    for store, by_role in LEDGER_METHODS.items():
        for role, methods in by_role.items():
            rows |= {("POST", f"{LEDGER}/{store}/{m}", "project", role) for m in methods.split()}
    return rows


def served() -> list[tuple[str, str, str, str]]:
    return [
        (e.method, e.path, e.access, e.role if e.access == "project" else "-") for e in endpoints()
    ]


def test_the_route_table_is_exactly_the_inventory() -> None:
    rows = served()
    extra = sorted(set(rows) - listed())
    gone = sorted(listed() - set(rows))
    assert not extra, "routes served but not in the inventory (add them after review):\n" + (
        "\n".join(map(str, extra))
    )
    assert not gone, "routes in the inventory that are gone:\n" + "\n".join(map(str, gone))


def test_no_route_is_declared_twice() -> None:
    keys = [(method, path) for method, path, _, _ in served()]
    assert len(keys) == len(set(keys))


def test_the_app_mounts_the_route_table_and_nothing_else(tmp_path: Path) -> None:
    """No mount, static folder or extra route beside the table (Starlette adds HEAD to GET)."""
    app = create_app(ServerConfig(root=tmp_path))
    mounted: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r} is not a plain route of the table"
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        mounted |= {(m, route.path) for m in methods}
    assert mounted == {(method, path) for method, path, _, _ in served()}


def test_the_inventory_names_public_routes_only_where_no_data_is_served() -> None:
    """The public routes are the probe, the API description, the login pages and the
    shipped CSS/JS; anything else public would serve data to anyone."""
    public = {(method, path) for method, path, access, _ in listed() if access == "public"}
    assert public == {
        ("GET", "/health"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/login/local"),
        ("GET", "/static/{name}"),
    }
