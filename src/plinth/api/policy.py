"""Who may call which ledger method: the role table of the generic ledger RPC.

Every public method of every store of :class:`plinth.ledger.Ledger` has a row here, and a
test fails when a store grows a method this table does not name, so no method is ever
reachable by default. ``read`` methods only read; ``write`` methods add or change records;
``admin`` ones delete or rewrite history (gc, erasure).

Protected aliases (``ServerConfig.protected_aliases``, default ``champion``) add one rule:
moving, deleting or rolling back such an alias needs the project's ``admin`` role or a
token with the ``gate`` scope (a gate's service token), whatever the method's role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from plinth.api.auth import ForbiddenError, Principal
from plinth.api.routes import Role, role_at_least

__all__ = [
    "ALIAS_METHODS",
    "GATE_SCOPE",
    "POLICY",
    "check_protected_aliases",
    "role_of",
    "touched_aliases",
]

#: The token scope that may move protected aliases besides project admins.
GATE_SCOPE = "gate"

_READ: dict[str, tuple[str, ...]] = {
    "projects": ("get_experiment", "get_project", "list_experiments"),
    "runs": (
        "get_params",
        "get_run",
        "get_tags",
        "latest_metrics",
        "list_runs",
        "max_seq",
        "metric_history",
    ),
    "search": (
        "latest_metrics_of",
        "metric_points",
        "metric_samples",
        "metric_series",
        "metric_summaries",
        "params_of",
        "resolve_run_id",
        "search_runs",
    ),
    "artifacts": ("get", "list"),
    "environments": ("get", "get_by_digest"),
    "lineage": ("downstream", "edges_from", "edges_to", "upstream"),
    "datasets": (
        "erasures",
        "get",
        "get_version_by_id",
        "latest_versions",
        "list",
        "list_versions",
        "referenced_blobs",
        "resolve",
        "tags",
    ),
    "deployments": ("batches", "batches_of", "find_batch", "get", "get_by_id"),
    "validation": ("get_suite", "get_suite_by_id", "results"),
    "models": (
        "alias_history",
        "aliases",
        "get",
        "get_version_by_id",
        "list",
        "list_versions",
        "resolve",
    ),
    "monitoring": (
        "alerts",
        "get_label_batch",
        "get_report",
        "label_batch_by_digest",
        "label_batches",
        "last_alert",
        "reports",
    ),
    "features": (
        "find_definition",
        "get_definition",
        "get_definition_by_id",
        "last_materialization",
        "latest_definitions",
        "materializations",
        "pushes",
        "versions",
    ),
    "pipelines": (
        "decisions",
        "find_cached",
        "find_cached_many",
        "firings",
        "get_run",
        "runs",
        "steps",
    ),
    "gc": (),
}

_WRITE: dict[str, tuple[str, ...]] = {
    # ensure_project creates the project's one ledger record: a writer's first call.
    "projects": ("ensure_experiment", "ensure_project"),
    "runs": (
        "create_run",
        "delete_run",
        "finish",
        "log_metrics",
        "log_params",
        "restore_run",
        "set_environment",
        "set_source",
        "set_status",
        "set_tags",
    ),
    "search": (),
    "artifacts": ("record", "record_many"),
    "environments": ("put",),
    "lineage": ("add", "add_many"),
    "datasets": ("add_version", "ensure", "set_profile", "set_status", "set_tag"),
    "deployments": ("record_batch", "save", "set_batch_profile"),
    "validation": ("record_result", "save_suite"),
    "models": ("delete_alias", "ensure", "register", "rollback", "set_alias", "set_aliases"),
    "monitoring": (
        "delete_label_batch",
        "record_alert",
        "record_labels",
        "record_report",
    ),
    "features": ("record_materialization", "record_push", "save_definition"),
    "pipelines": (
        "attach_firing",
        "claim_firing",
        "end_step",
        "finish_run",
        "finish_step",
        "record_cached",
        "record_decision",
        "record_step",
        "start_run",
    ),
    "gc": (),
}

_ADMIN: dict[str, tuple[str, ...]] = {
    # Erasure rewrites a dataset's history; gc deletes blobs and reads what it may delete.
    "datasets": ("record_erasure",),
    "gc": ("list_events", "record", "referenced_digests"),
}


def _table() -> dict[tuple[str, str], Role]:
    table: dict[tuple[str, str], Role] = {}
    for role, rows in (("read", _READ), ("write", _WRITE), ("admin", _ADMIN)):
        for store, methods in rows.items():
            for method in methods:
                if (store, method) in table:
                    raise RuntimeError(f"{store}.{method} has two roles in the policy table")
                table[(store, method)] = role  # type: ignore[assignment]
    return table


#: ``(store, method) -> least role`` for every method the ledger RPC serves.
POLICY: Mapping[tuple[str, str], Role] = _table()

#: Alias-moving methods and how to find the aliases in their decoded arguments.
ALIAS_METHODS: frozenset[str] = frozenset({"delete_alias", "rollback", "set_alias", "set_aliases"})


def role_of(store: str, method: str) -> Role | None:
    """The least role ``store.method`` needs; None when the RPC does not serve it."""
    return POLICY.get((store, method))


def touched_aliases(store: str, method: str, args: Mapping[str, Any]) -> list[str]:
    """The aliases a decoded models call moves, deletes or rolls back (none for others)."""
    if store != "models" or method not in ALIAS_METHODS:
        return []
    if method == "set_aliases":
        moves: Iterable[Any] = args.get("moves") or ()
        return [str(move[0]) for move in moves if move]
    alias = args.get("alias")
    return [alias] if isinstance(alias, str) else []


def check_protected_aliases(
    principal: Principal, project: str, aliases: Iterable[str], protected: Iterable[str]
) -> None:
    """:class:`ForbiddenError` when ``aliases`` hold a protected one and the caller is
    neither a project admin nor a gate's token."""
    hit = sorted(set(aliases) & set(protected))
    if not hit:
        return
    if role_at_least(principal.role_in(project), "admin") or GATE_SCOPE in principal.scopes:
        return
    raise ForbiddenError(
        f"alias {hit[0]!r} is protected in project {project!r}: only a project admin or a "
        "gate's service token may move it",
        hint="promote through the gate (a token with scope 'gate'), or ask a project admin",
        field="alias",
    )
