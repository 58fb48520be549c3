"""Lineage pages: any record's lineage, walkable both ways.

::

    /projects/P/lineage                     pick a record (kind and id)
    /projects/P/lineage/KIND/ID             the record, its direct parents and children,
                                            and every edge upstream and downstream

Each record on the page links to its own lineage page and to its own page, so a user walks
from a logged request to its batch, the model version that served it, the run that trained
it and the dataset versions that run used, and back. Kinds: :data:`LINEAGE_KINDS`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from plinth.api.routes import Call, Endpoint, redirect_response
from plinth.entities import RecordRef
from plinth.errors import NotFoundError, PlinthError
from plinth.ui._records import HELPERS, LINEAGE_KINDS, lineage_url, project_id
from plinth.ui.lineage_graph import lineage_graph
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.ledger import Ledger
    from plinth.storage import ContentStore

__all__ = ["ENDPOINTS"]

#: Logged rows of one request shown (a request may carry several rows).
REQUEST_ROWS = 50


def lineage_index(call: Call) -> Response:
    """A form to open any record's lineage; ``?kind=K&id=I`` goes straight to it."""
    query = call.request.query_params
    kind, rid = query.get("kind", "").strip(), query.get("id", "").strip()
    if kind in LINEAGE_KINDS and rid:
        return redirect_response(lineage_url(str(call.project), RecordRef(kind, rid)), 303)
    return render(call, "lineage_index.html", kinds=LINEAGE_KINDS, kind=kind, rid=rid, **HELPERS)


def _request_rows(ledger: Ledger, blobs: ContentStore, request_id: str) -> list[dict[str, Any]]:
    """The logged rows of ``request_id`` (inputs and prediction), as text."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from plinth.serving.lookup import RESERVED

    batch = ledger.deployments.find_batch(request_id)
    if batch is None:
        return []
    try:
        table = pq.read_table(io.BytesIO(blobs.read_bytes(batch.digest)))
        table = table.filter(pc.equal(table.column("request_id"), request_id))
    except (PlinthError, KeyError, ValueError, OSError):  # a missing or malformed batch blob
        return []
    rows = []
    for row in table.slice(0, REQUEST_ROWS).to_pylist():
        inputs = {str(k): str(v) for k, v in row.items() if k not in RESERVED}
        rows.append({"inputs": inputs, "prediction": str(row.get("prediction"))})
    return rows


def lineage_page(call: Call) -> Response:
    """The lineage of the record ``KIND/ID``."""
    params = call.request.path_params
    kind, rid = params["kind"], params["id"]
    if kind not in LINEAGE_KINDS:
        raise NotFoundError(
            f"no record kind {kind!r} has a lineage page",
            hint=f"kinds: {', '.join(LINEAGE_KINDS)}",
            field="kind",
        )
    ledger = call.ledger()
    ref = RecordRef(kind, rid)
    graph = lineage_graph(ledger, str(call.project), project_id(call), ref)
    rows = _request_rows(ledger, call.blobs(), rid) if kind == "request" else []
    return render(
        call,
        "lineage.html",
        graph=graph,
        kind_label=LINEAGE_KINDS[kind],
        request_rows=rows,
        **HELPERS,
    )


_P = "/projects/{project}/lineage"
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", _P, lineage_index, "Open a record's lineage", "project", html=True),
    Endpoint("GET", _P + "/{kind}/{id}", lineage_page, "A record's lineage", "project", html=True),
]
