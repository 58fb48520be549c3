"""Model pages: the registered models of a project, and one model's versions, aliases, alias
audit and model card, with the form that moves an alias.

::

    /projects/P/models                     every model, its versions and aliases
    /projects/P/models/NAME?version=N      versions, aliases, alias history, card of N
    POST /projects/P/models/NAME/aliases   move an alias (role write; protected: admin)

The form is shown only to writers, and protected aliases (``champion`` by default) are
offered only to project admins; the POST checks both again (the page is only a hint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.api.policy import GATE_SCOPE, check_protected_aliases
from plinth.api.routes import Call, Endpoint, redirect_response, role_at_least
from plinth.entities import ModelVersion, RecordRef
from plinth.errors import RequestError
from plinth.registry.cards import gather_card
from plinth.ui._records import HELPERS, lineage_url, page, project_id, require_project_id
from plinth.ui.render import form, render

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS"]

#: Versions listed on a model's page, newest first; alias moves shown.
VERSIONS_SHOWN = 200
MOVES_SHOWN = 200
#: Validation results shown per training dataset version on a model card.
CHECKS_SHOWN = 5


def models_page(call: Call) -> Response:
    """Every registered model with its number of versions and its aliases."""
    pid = project_id(call)
    rows: list[tuple[Any, dict[str, int]]] = []
    if pid is not None:
        store = call.ledger().models
        rows = [(m, store.aliases(m)) for m in store.list(pid)]
    return render(call, "models.html", rows=rows, **HELPERS)


def _may_move_protected(call: Call) -> bool:
    """The rule of :func:`plinth.api.policy.check_protected_aliases`, to hide what the POST
    would refuse."""
    principal = call.principal
    assert principal is not None
    assert call.project is not None
    admin = role_at_least(principal.role_in(call.project), "admin")
    return admin or GATE_SCOPE in principal.scopes


def model_page(call: Call) -> Response:
    """One model: versions, aliases, alias audit, and the card of ``?version=N`` (default:
    the latest)."""
    ledger = call.ledger()
    store = ledger.models
    model = store.get(require_project_id(call, "models"), call.request.path_params["name"])
    versions = store.list_versions(model, limit=VERSIONS_SHOWN)
    wanted = call.request.query_params.get("version")
    shown = store.resolve(model, wanted) if wanted else (versions[0] if versions else None)
    aliases = store.aliases(model)
    return render(
        call,
        "model.html",
        model=model,
        versions=versions,
        aliases=aliases,
        moves=store.alias_history(model)[:MOVES_SHOWN],
        shown=shown,
        card=None if shown is None else gather_card(ledger, shown, validations=CHECKS_SHOWN),
        lineage=None if shown is None else lineage_url(str(call.project), _ref(shown)),
        protected=list(call.config.protected_aliases),
        may_protected=_may_move_protected(call),
        **HELPERS,
    )


def _ref(version: ModelVersion) -> RecordRef:
    return RecordRef("model_version", version.id)


def set_alias(call: Call) -> Response:
    """Move an alias to a version (the form of the model page); protected aliases need a
    project admin."""
    fields = form(call)
    name = call.request.path_params["name"]
    alias = fields.get("alias", "").strip()
    version = fields.get("version", "").strip()
    reason = fields.get("reason", "").strip() or None
    problems = [(f, "is required") for f, v in (("alias", alias), ("version", version)) if not v]
    if problems:
        raise RequestError.naming(problems)
    assert call.principal is not None
    assert call.project is not None
    check_protected_aliases(call.principal, call.project, [alias], call.config.protected_aliases)
    store = call.ledger().models
    model = store.get(require_project_id(call, "models"), name)
    number: int | str = int(version) if version.isdigit() else version
    move = store.set_alias(model, alias, number, reason=reason)
    call.audit(
        "model.alias.set",
        f"{model.name}@{alias}",
        {"from": move.from_number, "to": move.to_number, "reason": reason},
    )
    return redirect_response(page(call.project, "models", model.name), status_code=303)


_BASE = "/projects/{project}/models"
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", _BASE, models_page, "Models page", access="project", html=True),
    Endpoint("GET", _BASE + "/{name}", model_page, "A model's page", "project", html=True),
    Endpoint(
        "POST",
        _BASE + "/{name}/aliases",
        set_alias,
        "Move a model alias (the model page's form)",
        access="project",
        role="write",
        html=True,
        max_body=16 << 10,
    ),
]
