"""What the record pages share: the project's id, readable times and sizes, and page URLs
built from record values.

Page handlers read only the project's ledger (``call.ledger()``) and blobs
(``call.blobs()``). Every value shown comes from a record any project writer can set, so
it reaches the page only through the autoescaped templates, and a path segment built
from it is percent-encoded here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from plinth.entities import RecordRef
from plinth.errors import NotFoundError

if TYPE_CHECKING:
    from plinth.api.routes import Call

__all__ = [
    "HELPERS",
    "LINEAGE_KINDS",
    "human_size",
    "lineage_url",
    "page",
    "project_id",
    "require_project_id",
    "segment",
    "when",
]

#: The record kinds the lineage page knows, with a label. ``prediction_batch`` and
#: ``request`` have no lineage edges of their own: their page starts from the deployment
#: and model versions the batch records.
LINEAGE_KINDS: dict[str, str] = {
    "request": "prediction request",
    "prediction_batch": "prediction batch",
    "deployment": "deployment version",
    "model_version": "model version",
    "run": "run",
    "dataset_version": "dataset version",
    "validation_result": "validation result",
    "feature_definition": "feature definition",
    "pipeline_run": "pipeline run",
    "step_run": "step run",
}


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` for None."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def human_size(size: int | None) -> str:
    """Bytes as ``12.3 MB`` (powers of 1000); ``-`` for None."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def segment(value: object) -> str:
    """``value`` as one URL path segment (``/`` and every reserved character encoded)."""
    return quote(str(value), safe="")


def page(project: str, *parts: object) -> str:
    """The URL of a page of ``project``: ``/projects/P/part/part``, each part encoded."""
    return "/".join(["", "projects", segment(project), *(segment(p) for p in parts)])


def lineage_url(project: str, ref: RecordRef) -> str:
    """The lineage page of ``ref``."""
    return page(project, "lineage", ref.type, ref.id)


#: Passed to every template of these pages (Jinja calls them: ``{{ when(v.created_at) }}``).
HELPERS: dict[str, Any] = {"when": when, "human_size": human_size, "page": page}


def project_id(call: Call) -> str | None:
    """The id of the call's project record in its ledger; None before anything was recorded
    (the project record is made by the first write)."""
    assert call.project is not None  # project routes only
    try:
        return call.ledger().projects.get_project(call.project).id
    except NotFoundError:
        return None


def require_project_id(call: Call, what: str) -> str:
    """:func:`project_id`, for a page of one record: a project that recorded nothing yet has
    no ``what`` (e.g. "datasets") to show, so the page is not found."""
    pid = project_id(call)
    if pid is None:
        raise NotFoundError(f"project {call.project!r} has no {what} yet")
    return pid
