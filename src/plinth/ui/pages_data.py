"""Dataset pages: the datasets of a project, one dataset's versions, one version (schema,
profile, validation reports) and the diff of two versions.

::

    /projects/P/datasets                      every dataset with its latest version
    /projects/P/datasets/NAME                 versions: rows, size, message, tags, status
    /projects/P/datasets/NAME/diff?a=1&b=2    files, rows and columns from a to b
    /projects/P/datasets/NAME/VERSION         schema, profile summary, validation reports
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth.api.routes import Call, Endpoint
from plinth.datasets.diffing import diff_versions
from plinth.entities import DatasetVersion, RecordRef
from plinth.errors import PlinthError, RequestError
from plinth.ui._records import HELPERS, lineage_url, project_id, require_project_id
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.storage import ContentStore

__all__ = ["ENDPOINTS"]

#: Versions listed on a dataset's page (newest first).
VERSIONS_SHOWN = 500
#: Columns of a profile summarised on a version's page; files listed in a diff.
COLUMNS_SHOWN = 300
FILES_SHOWN = 500


def datasets_page(call: Call) -> Response:
    """Every dataset with its latest version."""
    pid = project_id(call)
    rows: list[tuple[Any, DatasetVersion | None]] = []
    if pid is not None:
        store = call.ledger().datasets
        latest = store.latest_versions(pid)
        rows = [(d, latest.get(d.name)) for d in store.list(pid)]
    return render(call, "datasets.html", rows=rows, **HELPERS)


def dataset_page(call: Call) -> Response:
    """One dataset: its versions (newest first) and tags."""
    store = call.ledger().datasets
    dataset = store.get(require_project_id(call, "datasets"), call.request.path_params["name"])
    versions = store.list_versions(dataset, limit=VERSIONS_SHOWN)
    return render(
        call,
        "dataset.html",
        dataset=dataset,
        versions=versions,
        tags=store.tags(dataset),
        erasures=store.erasures(dataset),
        **HELPERS,
    )


def _profile(blobs: ContentStore, version: DatasetVersion) -> tuple[list[Any], str | None]:
    """The version's column profiles (at most COLUMNS_SHOWN), or why there are none."""
    if version.profile_digest is None:
        return [], "no profile computed yet (plinth data profile)"
    from plinth.profiles import TableProfile

    try:
        data = blobs.read_bytes(version.profile_digest)
        profile = TableProfile.from_bytes(data, where=f"the profile of {version.ref}")
    except PlinthError as error:
        return [], f"the profile cannot be read: {error.one_line()}"
    return list(profile.columns.values())[:COLUMNS_SHOWN], None


def version_page(call: Call) -> Response:
    """One version: facts, schema, profile summary, validation reports, lineage."""
    ledger = call.ledger()
    params = call.request.path_params
    dataset = ledger.datasets.get(require_project_id(call, "datasets"), params["name"])
    version = ledger.datasets.resolve(dataset, params["version"])
    columns, profile_note = _profile(call.blobs(), version)
    ref = RecordRef("dataset_version", version.id)
    return render(
        call,
        "dataset_version.html",
        dataset=dataset,
        v=version,
        columns=columns,
        profile_note=profile_note,
        validations=ledger.validation.results(dataset_version_id=version.id, limit=50),
        lineage=lineage_url(str(call.project), ref),
        **HELPERS,
    )


def diff_page(call: Call) -> Response:
    """What changed from version ``a`` to version ``b`` (numbers or tags)."""
    store = call.ledger().datasets
    dataset = store.get(require_project_id(call, "datasets"), call.request.path_params["name"])
    query = call.request.query_params
    a, b = query.get("a", "").strip(), query.get("b", "").strip()
    if not a or not b:
        raise RequestError(
            "a diff needs two versions: ?a=OLD&b=NEW",
            field="a" if not a else "b",
            hint="pick two versions on the dataset's page",
        )
    old, new = store.resolve(dataset, a), store.resolve(dataset, b)
    found = diff_versions(call.blobs(), old, new)
    return render(
        call, "dataset_diff.html", dataset=dataset, d=found, files_shown=FILES_SHOWN, **HELPERS
    )


_BASE = "/projects/{project}/datasets"
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", _BASE, datasets_page, "Datasets page", access="project", html=True),
    Endpoint("GET", _BASE + "/{name}", dataset_page, "A dataset's page", "project", html=True),
    # Before the version route: "diff" is not a version.
    Endpoint("GET", _BASE + "/{name}/diff", diff_page, "Two versions' diff", "project", html=True),
    Endpoint(
        "GET", _BASE + "/{name}/{version}", version_page, "A dataset version", "project", html=True
    ),
]
