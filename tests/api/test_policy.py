"""The ledger RPC's role table: complete, and what each route enforces."""

from __future__ import annotations

import pytest

from plinth.api.auth import ForbiddenError, Principal
from plinth.api.ledger_rpc import ENDPOINTS, LEDGER_PREFIX
from plinth.api.policy import POLICY, check_protected_aliases, role_of, touched_aliases
from plinth.ledger.surface import STORES, store_methods

ALL_METHODS = {(store, method) for store in STORES for method in store_methods(store)}


def test_every_public_store_method_has_a_role() -> None:
    missing = sorted(ALL_METHODS - set(POLICY))
    assert not missing, f"add these ledger methods to plinth/api/policy.py: {missing}"
    stale = sorted(set(POLICY) - ALL_METHODS)
    assert not stale, f"the policy names methods the stores no longer have: {stale}"


def test_each_method_has_its_own_route_with_the_tables_role() -> None:
    routes = {e.path: e for e in ENDPOINTS if e.method == "POST"}
    for (store, method), role in POLICY.items():
        endpoint = routes[f"{LEDGER_PREFIX}/{store}/{method}"]
        assert endpoint.role == role
        assert endpoint.access == "project"
    assert len(routes) == len(POLICY)


@pytest.mark.parametrize(
    ("store", "method", "role"),
    [
        ("runs", "get_run", "read"),
        ("search", "search_runs", "read"),
        ("runs", "log_metrics", "write"),
        ("models", "set_alias", "write"),
        ("datasets", "record_erasure", "admin"),
        ("gc", "referenced_digests", "admin"),
        ("gc", "record", "admin"),
        ("gc", "list_events", "admin"),
    ],
)
def test_roles_of_sample_methods(store: str, method: str, role: str) -> None:
    assert role_of(store, method) == role


def test_reads_never_write_by_name() -> None:
    writes = ("create", "record", "set_", "log_", "delete", "add", "ensure", "put", "save")
    for (store, method), role in POLICY.items():
        if role == "read":
            assert not method.startswith(writes), f"{store}.{method} looks like a write"


def _principal(role: str | None, scopes: frozenset[str] = frozenset()) -> Principal:
    roles = {"p": role} if role else {}
    return Principal("u", False, roles, scopes, "t", "token", None)  # type: ignore[arg-type]


def test_protected_aliases_need_admin_or_the_gate_scope() -> None:
    moves = touched_aliases("models", "set_aliases", {"moves": [("champion", 2), ("dev", 1)]})
    assert moves == ["champion", "dev"]
    with pytest.raises(ForbiddenError, match="champion"):
        check_protected_aliases(_principal("write"), "p", moves, ("champion",))
    check_protected_aliases(_principal("admin"), "p", moves, ("champion",))
    check_protected_aliases(_principal("write", frozenset({"gate"})), "p", moves, ("champion",))
    check_protected_aliases(_principal("write"), "p", ["dev"], ("champion",))
    assert touched_aliases("models", "rollback", {"alias": "champion"}) == ["champion"]
    assert touched_aliases("runs", "set_tags", {"alias": "champion"}) == []
