"""The feature store page: entities, feature views (with their versions and
materializations), on-demand views and feature services of a project.

::

    /projects/P/features      every definition's current version, by kind

A definition's spec is shown as its canonical JSON text (escaped like any text), so a spec
of any shape displays without the page trusting its fields.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plinth.api.routes import Call, Endpoint
from plinth.entities import DEFINITION_KINDS, FeatureDefinition, RecordRef
from plinth.ui._records import HELPERS, lineage_url, project_id
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.ledger import Ledger

__all__ = ["ENDPOINTS"]

#: Section titles, in the order the page shows the kinds.
TITLES = {
    "entity": "Entities",
    "feature_view": "Feature views",
    "on_demand_view": "On-demand views",
    "feature_service": "Feature services",
}
#: Materializations listed per feature view.
MATERIALIZATIONS_SHOWN = 10


def _feature_names(spec: dict[str, Any]) -> list[str]:
    """The feature names a spec lists (views: a mapping; services: selections)."""
    features = spec.get("features")
    if isinstance(features, dict):
        return [str(k) for k in features]
    names: list[str] = []
    for item in features if isinstance(features, list) else []:
        if isinstance(item, dict):
            view, picked = item.get("view"), item.get("features")
            shown = ", ".join(str(f) for f in picked) if isinstance(picked, list) else "*"
            names.append(f"{view}[{shown}]")
    return names


def _row(ledger: Ledger, pid: str, d: FeatureDefinition, project: str) -> dict[str, Any]:
    versions = ledger.features.versions(pid, d.kind, d.name)
    row: dict[str, Any] = {
        "d": d,
        "versions": versions,
        "features": _feature_names(d.spec),
        "spec_text": json.dumps(d.spec, indent=2, sort_keys=True, default=str),
        "lineage": lineage_url(project, RecordRef("feature_definition", d.id)),
        "materializations": [],
    }
    if d.kind == "feature_view":
        row["materializations"] = ledger.features.materializations(
            pid, d.name, limit=MATERIALIZATIONS_SHOWN
        )
    return row


def features_page(call: Call) -> Response:
    """Every entity, view and service at its current version."""
    pid = project_id(call)
    sections: list[tuple[str, list[dict[str, Any]]]] = []
    if pid is not None:
        ledger = call.ledger()
        current = ledger.features.latest_definitions(pid)
        project = str(call.project)
        for kind in DEFINITION_KINDS:
            rows = [_row(ledger, pid, d, project) for d in current if d.kind == kind]
            sections.append((TITLES.get(kind, kind), rows))
    return render(call, "features.html", sections=sections, **HELPERS)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET", "/projects/{project}/features", features_page, "Features page", "project", html=True
    ),
]
