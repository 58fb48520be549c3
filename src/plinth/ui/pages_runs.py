"""Run pages: the runs table, one run, and several runs compared.

::

    /projects/P/runs?filter=&order=&columns=&page=&limit=   filter, sort, page in SQL
    /projects/P/runs/ID                 params, metrics + charts, tags, system metrics,
                                        artifacts, source and diff, environment
    POST /projects/P/runs/ID/tags       set a tag (role write; the form is shown to writers)
    /projects/P/runs/ID/artifact?path=  download an artifact the ledger records for the run
    /projects/P/runs/ID/notebook        the run's notebook, rendered without any script
    /projects/P/compare?runs=A,B,C      params and metrics side by side, charts overlaid

An artifact is found by its path in the ledger and streamed from the blob store by digest:
no path from the request reaches a filesystem. Downloads are attachments of type
``application/octet-stream`` under a sandboxing CSP, so an HTML artifact never runs here.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from plinth.api.routes import (
    Call,
    Endpoint,
    Role,
    html_response,
    redirect_response,
    stream_response,
)
from plinth.api.runs import SYSTEM_PREFIXES, RunsQuery, cell, runs_table
from plinth.entities import Artifact, MetricBucket, MetricSummary, RecordRef, Run
from plinth.errors import NotFoundError, RequestError
from plinth.guards.html import csp_policy
from plinth.ui.charts import line_chart, series_of
from plinth.ui.render import form, render

if TYPE_CHECKING:
    from markupsafe import Markup
    from starlette.responses import Response

    from plinth.ledger import Ledger

__all__ = ["ENDPOINTS", "MAX_CHARTS", "MAX_COMPARE"]

#: Charts drawn per page (user metrics; system metrics have as many again).
MAX_CHARTS = 24
#: Runs one comparison shows.
MAX_COMPARE = 10
#: Points per chart line: buckets of the metric's steps.
CHART_POINTS = 500
#: The largest source diff shown inline, and the largest notebook rendered, in bytes.
MAX_DIFF = 1 << 20
MAX_NOTEBOOK = 32 << 20
_CHUNK = 1 << 20
# The artifact paths plinth's own run capture writes (plinth.versioning).
_DIFF_PATH = "source/diff.patch"
_NOTEBOOK_PATH = "source/notebook.ipynb"
_ATTACHMENT_CSP = "default-src 'none'; sandbox"
#: The run attributes every runs table shows: (header, search-language name).
_ATTRIBUTE_HEADERS = (
    ("Run", "name"),
    ("Status", "status"),
    ("Experiment", "experiment"),
    ("User", "user"),
    ("Started", "start_time"),
)


def _run_url(call: Call, run_id: str, tail: str = "") -> str:
    return f"/projects/{call.project}/runs/{quote(run_id, safe='')}{tail}"


def _label(run: Run) -> str:
    return f"{run.name} ({run.id[:8]})" if run.name else run.id[:8]


def runs_page(call: Call) -> Response:
    """The runs table: the search language's filter, sort and columns; pages cut in SQL."""
    query = RunsQuery.of(call.request.query_params)
    table = runs_table(call.ledger(), query)
    here = f"/projects/{call.project}/runs"
    # newest first when no order is chosen (the search's own default)
    current = " ".join((query.order or "start_time DESC").lower().split())
    sort: dict[str, tuple[str, str]] = {}
    for name in [key for _, key in _ATTRIBUTE_HEADERS] + [c.name for c in table.columns]:
        low = name.lower()
        if current == f"{low} desc":
            sort[name] = (f"{name} ASC", "\u2193")
        elif current in (low, f"{low} asc"):
            sort[name] = (f"{name} DESC", "\u2191")
        else:
            sort[name] = (f"{name} DESC", "")
    return render(
        call,
        "runs.html",
        query=query,
        table=table,
        cell=cell,
        here=here,
        params=query.params(),
        headers=_ATTRIBUTE_HEADERS,
        sort=sort,
        first_row=(query.page - 1) * query.limit + 1,
    )


def _artifact_rows(call: Call, run: Run, artifacts: list[Artifact]) -> list[dict[str, Any]]:
    return [
        {
            "path": a.path,
            "size": a.size,
            "media_type": a.media_type,
            "url": _run_url(call, run.id, f"/artifact?path={quote(a.path, safe='')}"),
        }
        for a in artifacts
    ]


def _diff_lines(call: Call, artifacts: list[Artifact]) -> list[tuple[str, str]] | None:
    """The run's source diff as (css class, line), or None when it has none (or too big)."""
    found = next((a for a in artifacts if a.path == _DIFF_PATH), None)
    if found is None or found.size > MAX_DIFF:
        return None
    try:
        data = call.blobs().read_bytes(found.digest)
    except NotFoundError:  # collected from the store: the run page still shows the rest
        return None
    text = data.decode("utf-8", errors="replace")
    lines: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---", "diff ", "index ")):
            css = "meta"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = "ctx"
        lines.append((css, line))
    return lines


def _summary(key: str, buckets: list[MetricBucket]) -> MetricSummary:
    """A metric's summary from its buckets: they already hold min, max, count and the last."""
    lows = [b.min for b in buckets if not math.isnan(b.min)]
    highs = [b.max for b in buckets if not math.isnan(b.max)]
    return MetricSummary(
        key=key,
        last=buckets[-1].last,
        last_step=buckets[-1].step,
        min=min(lows) if lows else math.nan,
        max=max(highs) if highs else math.nan,
        count=sum(b.count for b in buckets),
    )


def _metrics(ledger: Ledger, run: Run) -> tuple[list[MetricSummary], list[Markup], list[Markup]]:
    """Each metric's summary, then the charts of the run's own and of its system metrics.

    One downsampled read per metric gives both its chart and its summary, so a metric of
    a million points is read once, through the covering index.
    """
    label = _label(run)
    summaries: list[MetricSummary] = []
    charts: list[Markup] = []
    system: list[Markup] = []
    for key in sorted(ledger.runs.latest_metrics(run.id)):
        buckets = ledger.search.metric_series([run.id], key, CHART_POINTS)[run.id]
        if not buckets:
            continue
        summaries.append(_summary(key, buckets))
        shown = system if key.startswith(SYSTEM_PREFIXES) else charts
        if len(shown) < MAX_CHARTS:
            shown.append(line_chart(key, [series_of(label, buckets)]))
    return summaries, charts, system


def _facts(source: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (key, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        for key, value in sorted(source.items())
    ]


def run_page(call: Call) -> Response:
    """One run: what it was given, what it measured, what it left and where it came from."""
    ledger = call.ledger()
    run = ledger.runs.get_run(call.request.path_params["run_id"])
    summaries, charts, system_charts = _metrics(ledger, run)
    artifacts = ledger.artifacts.list(RecordRef("run", run.id))
    environment = None
    if run.environment_id is not None:
        with contextlib.suppress(NotFoundError):
            environment = ledger.environments.get(run.environment_id)
    return render(
        call,
        "run.html",
        run=run,
        label=_label(run),
        experiment=ledger.projects.get_experiment(run.experiment_id).name,
        params=sorted(ledger.runs.get_params(run.id).items()),
        tags=sorted(ledger.runs.get_tags(run.id).items()),
        summaries=summaries,
        charts=charts,
        system_charts=system_charts,
        artifacts=_artifact_rows(call, run, artifacts),
        source=_facts(run.source),
        diff=_diff_lines(call, artifacts),
        environment=environment,
        notebook_url=(
            _run_url(call, run.id, "/notebook")
            if any(a.path == _NOTEBOOK_PATH for a in artifacts)
            else None
        ),
        tag_action=_run_url(call, run.id, "/tags"),
        parent_url=_run_url(call, run.parent_run_id) if run.parent_run_id else None,
        lineage_url=f"/projects/{call.project}/lineage/run/{quote(run.id, safe='')}",
    )


def add_tag(call: Call) -> Response:
    """Set one tag of a run from the run page's form, then show the run again."""
    fields = form(call)
    key, value = fields.get("key", "").strip(), fields.get("value", "")
    if not key:
        raise RequestError("the tag needs a key", field="key")
    ledger = call.ledger()
    run = ledger.runs.get_run(call.request.path_params["run_id"])
    ledger.runs.set_tags(run.id, {key: value})
    call.audit("run.set_tag", f"run:{run.id}", {"key": key})
    return redirect_response(_run_url(call, run.id) + "#tags", status_code=303)


def _artifact(call: Call) -> tuple[Artifact, Run]:
    ledger = call.ledger()
    run = ledger.runs.get_run(call.request.path_params["run_id"])
    path = call.request.query_params.get("path", "")
    if not path:
        raise RequestError("name the artifact with ?path=", field="path")
    return ledger.artifacts.get(RecordRef("run", run.id), path), run


def artifact_download(call: Call) -> Response:
    """An artifact of a run, streamed from the blob store as an attachment."""
    artifact, _ = _artifact(call)
    blob = call.blobs().open(artifact.digest)

    def chunks() -> Iterator[bytes]:
        with blob:
            while chunk := blob.read(_CHUNK):
                yield chunk

    name = artifact.path.rsplit("/", 1)[-1]
    return stream_response(
        chunks(),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "Content-Length": str(artifact.size),
            "Content-Security-Policy": _ATTACHMENT_CSP,
        },
    )


def notebook_page(call: Call) -> Response:
    """The run's notebook as a page: escaped cells, images inline, no script at all."""
    from plinth.pipelines.notebook_html import notebook_html

    ledger = call.ledger()
    run = ledger.runs.get_run(call.request.path_params["run_id"])
    found = ledger.artifacts.get(RecordRef("run", run.id), _NOTEBOOK_PATH)
    if found.size > MAX_NOTEBOOK:
        raise RequestError(f"the notebook is larger than {MAX_NOTEBOOK} bytes: download it")
    try:
        nb = json.loads(call.blobs().read_bytes(found.digest))
        html = notebook_html(nb, title=f"{_label(run)}: notebook")
    except (ValueError, AttributeError, TypeError) as error:
        raise RequestError(
            "the run's notebook is not a notebook plinth can render",
            hint="download it from the run's artifacts",
        ) from error
    policy = f"{csp_policy()}; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
    return html_response(html, headers={"Content-Security-Policy": policy})


def _compared_ids(call: Call) -> list[str]:
    ids = [
        part.strip()
        for value in call.request.query_params.getlist("runs")
        for part in value.split(",")
        if part.strip()
    ]
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise RequestError("choose runs to compare: ?runs=ID,ID", field="runs")
    if len(ids) > MAX_COMPARE:
        raise RequestError(f"compare at most {MAX_COMPARE} runs at a time", field="runs")
    return ids


def _side_by_side(values: list[dict[str, Any]]) -> list[tuple[str, list[Any], bool]]:
    """(key, value per run, whether they differ) for every key any run has."""
    keys = sorted({k for v in values for k in v})
    rows = []
    for key in keys:
        row = [v.get(key) for v in values]
        rows.append((key, row, len({json.dumps(x) for x in row}) > 1))
    return rows


def compare_page(call: Call) -> Response:
    """Runs side by side: params and latest metrics (differences marked), charts overlaid."""
    ledger = call.ledger()
    runs = [ledger.runs.get_run(run_id) for run_id in _compared_ids(call)]
    ids = [r.id for r in runs]
    latest = ledger.search.latest_metrics_of(ids)
    metric_rows = _side_by_side([latest[i] for i in ids])
    keys = [k for k, _, _ in metric_rows if not k.startswith(SYSTEM_PREFIXES)][:MAX_CHARTS]
    charts = []
    for key in keys:
        series = ledger.search.metric_series(ids, key, CHART_POINTS)
        charts.append(line_chart(key, [series_of(_label(r), series[r.id]) for r in runs]))
    return render(
        call,
        "compare.html",
        runs=[(r, _label(r), _run_url(call, r.id)) for r in runs],
        param_rows=_side_by_side([ledger.runs.get_params(i) for i in ids]),
        metric_rows=metric_rows,
        charts=charts,
    )


def _page(
    method: str,
    path: str,
    handler: Callable[[Call], Response],
    summary: str,
    role: Role = "read",
) -> Endpoint:
    return Endpoint(method, path, handler, summary, access="project", role=role, html=True)


_RUN = "/projects/{project}/runs/{run_id}"
ENDPOINTS = [
    _page("GET", "/projects/{project}/runs", runs_page, "The runs table"),
    _page("GET", _RUN, run_page, "One run"),
    _page("POST", f"{_RUN}/tags", add_tag, "Set a tag of a run", role="write"),
    _page("GET", f"{_RUN}/artifact", artifact_download, "Download an artifact of a run"),
    _page("GET", f"{_RUN}/notebook", notebook_page, "The notebook of a run"),
    _page("GET", "/projects/{project}/compare", compare_page, "Runs compared"),
]
