"""Operations pages: deployments with their prediction batches and per-window monitoring,
monitors with their latest reports and drift per column, and alert deliveries.

::

    /projects/P/deployments           every deployment, its newest version and traffic
    /projects/P/deployments/NAME      versions, rows per window (SVG), per-window drift,
                                      latency and performance, recent batches
    /projects/P/monitors              every monitor and its latest report
    /projects/P/monitors/NAME         its reports; drift per column of one (?report=ID)
    /projects/P/alerts                alert deliveries, newest first

Monitoring records are written by anyone who may write the project, so every field read
from ``results`` is checked for its shape before it is shown (a bad one is left out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from plinth.api.routes import Call, Endpoint
from plinth.entities import DeploymentVersion, MonitorReport, PredictionBatch
from plinth.errors import NotFoundError
from plinth.ledger.tables import deployments as deployments_t
from plinth.ledger.tables import monitor_reports as reports_t
from plinth.ledger.tables import prediction_batches as batches_t
from plinth.ui._records import HELPERS, project_id, require_project_id
from plinth.ui.render import render

if TYPE_CHECKING:
    from starlette.responses import Response

    from plinth.ledger import Ledger

__all__ = ["ENDPOINTS", "check_rows", "window_bars"]

#: Versions, windows and batches a deployment's page shows; reports per monitor page.
VERSIONS_SHOWN = 50
WINDOWS_SHOWN = 200
BATCHES_SHOWN = 100
REPORTS_SHOWN = 100
ALERTS_SHOWN = 500
#: Days of traffic a deployment's page shows by default, and at most (``?days=``).
DAYS, MAX_DAYS = 7, 90
#: The width of a traffic window on a deployment's page (one hour).
WINDOW_MS = 3_600_000
#: The SVG chart's drawing area, in pixels.
CHART_W, CHART_H = 720, 140


def _deployment_names(ledger: Ledger, pid: str) -> list[dict[str, Any]]:
    """Each deployment's name, newest version number and last save (one grouped query:
    the deployment store reads one name at a time)."""
    query = (
        sa.select(
            deployments_t.c.name,
            sa.func.max(deployments_t.c.number).label("versions"),
            sa.func.max(deployments_t.c.created_at).label("updated"),
        )
        .where(deployments_t.c.project_id == pid)
        .group_by(deployments_t.c.name)
        .order_by(deployments_t.c.name)
    )
    with ledger.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def deployments_page(call: Call) -> Response:
    """Every deployment with the model its newest version serves."""
    pid = project_id(call)
    rows = []
    if pid is not None:
        ledger = call.ledger()
        for found in _deployment_names(ledger, pid):
            newest = ledger.deployments.get(pid, found["name"])
            rows.append({**found, "model": newest.spec.get("model")})
    return render(call, "deployments.html", rows=rows, **HELPERS)


def _checks(report: MonitorReport) -> list[dict[str, Any]]:
    results = report.results
    checks = results.get("checks") if isinstance(results, dict) else None
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None  # type: ignore[arg-type]


def check_rows(report: MonitorReport) -> dict[str, Any]:
    """What a window's report says, in fixed shapes: each check's status and summary, the
    drifted columns, p95 latency and error rate (server check) and performance metrics."""
    out: dict[str, Any] = {"checks": [], "drifted": [], "p95_ms": None, "error_rate": None}
    out["metrics"] = {}
    for check in _checks(report):
        name = str(check.get("check", ""))
        out["checks"].append((name, str(check.get("status", "")), str(check.get("summary", ""))))
        if name == "drift":
            out["drifted"] = [c["column"] for c in _column_rows(check) if c["drifted"]]
        if name == "server":
            out["p95_ms"] = _number(check.get("p95_ms"))
            out["error_rate"] = _number(check.get("error_rate"))
        metrics = check.get("metrics")
        if name == "performance" and isinstance(metrics, dict):
            out["metrics"] = {str(k): v for k, v in metrics.items() if _number(v) is not None}
    return out


def window_bars(batches: list[PredictionBatch]) -> dict[str, Any]:
    """Rows logged per hour window (the newest WINDOWS_SHOWN windows), as SVG bar geometry
    and as table rows: ``{"bars": [...], "windows": [...], "max": N}``."""
    windows: dict[int, dict[str, Any]] = {}
    for b in batches:
        start = b.start_ms // WINDOW_MS * WINDOW_MS
        w = windows.setdefault(
            start, {"start_ms": start, "rows": 0, "batches": 0, "dropped": 0, "models": set()}
        )
        w["rows"] += b.rows
        w["batches"] += 1
        w["dropped"] += b.dropped
        w["models"].update(b.model_versions)
    shown = [windows[k] for k in sorted(windows)][-WINDOWS_SHOWN:]
    top = max((w["rows"] for w in shown), default=0)
    width = CHART_W / max(len(shown), 1)
    bars = []
    for i, w in enumerate(shown):
        height = round(CHART_H * w["rows"] / top, 1) if top else 0
        bars.append(
            {
                "x": round(i * width, 1),
                "w": max(round(width - 1, 1), 1),
                "h": height,
                "y": CHART_H - height,
                "title": f"{w['rows']} rows",
                "start_ms": w["start_ms"],
            }
        )
    rows = [{**w, "models": sorted(w["models"])} for w in reversed(shown)]
    return {"bars": bars, "windows": rows, "max": top, "width": CHART_W, "height": CHART_H}


def deployment_page(call: Call) -> Response:
    """One deployment: versions, traffic per window, per-window monitoring, recent batches."""
    ledger = call.ledger()
    pid = require_project_id(call, "deployments")
    name = call.request.path_params["name"]
    newest = ledger.deployments.get(pid, name)
    versions: list[DeploymentVersion] = [newest]
    for number in range(newest.number - 1, max(newest.number - VERSIONS_SHOWN, 0), -1):
        versions.append(ledger.deployments.get(pid, name, number))
    ids = {v.id: v for v in versions}
    days = _days(call.request.query_params.get("days"))
    since = _latest_end(ledger, pid, name)
    batches = ledger.deployments.batches_of(
        pid, name, since_ms=None if since is None else since - days * 86_400_000
    )
    monitored = [
        (r, check_rows(r))
        for r in ledger.monitoring.reports(pid, kind="monitor", limit=10 * REPORTS_SHOWN)
        if r.deployment_id in ids
    ][:REPORTS_SHOWN]
    performance = ledger.monitoring.reports(pid, monitor=name, kind="performance", limit=20)
    return render(
        call,
        "deployment.html",
        name=name,
        versions=versions,
        version_of=ids,
        traffic=window_bars(batches),
        batches=list(reversed(batches[-BATCHES_SHOWN:])),
        total_rows=sum(b.rows for b in batches),
        days=days,
        monitored=monitored,
        performance=[(r, _windows(r)) for r in performance],
        **HELPERS,
    )


def _days(text: str | None) -> int:
    """The ``?days=`` of traffic shown (1 to MAX_DAYS; default DAYS)."""
    if text is None or not text.isdigit():
        return DAYS
    return min(max(int(text), 1), MAX_DAYS)


def _latest_end(ledger: Ledger, pid: str, name: str) -> int | None:
    """When the newest batch of deployment ``name`` ends (None: no batch yet); the traffic
    shown is the ``days`` before it, however long ago that was."""
    versions = sa.select(deployments_t.c.id).where(
        (deployments_t.c.project_id == pid) & (deployments_t.c.name == name)
    )
    query = sa.select(sa.func.max(batches_t.c.end_ms)).where(
        batches_t.c.deployment_id.in_(versions)
    )
    with ledger.engine.connect() as conn:
        found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def _windows(report: MonitorReport) -> list[dict[str, Any]]:
    """The per-window metrics of a performance report (only well-formed windows)."""
    results = report.results
    found = results.get("windows") if isinstance(results, dict) else None
    out = []
    for w in found if isinstance(found, list) else []:
        if isinstance(w, dict) and isinstance(w.get("metrics"), dict):
            metrics = {str(k): v for k, v in w["metrics"].items() if _number(v) is not None}
            out.append(
                {
                    "start_ms": _int(w.get("start_ms")),
                    "end_ms": _int(w.get("end_ms")),
                    "rows": _int(w.get("rows")),
                    "metrics": metrics,
                }
            )
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _monitor_names(ledger: Ledger, pid: str) -> list[dict[str, Any]]:
    query = (
        sa.select(
            reports_t.c.monitor,
            sa.func.count().label("reports"),
            sa.func.max(reports_t.c.created_at).label("last"),
        )
        .where((reports_t.c.project_id == pid) & (reports_t.c.kind != "performance"))
        .group_by(reports_t.c.monitor)
        .order_by(reports_t.c.monitor)
    )
    with ledger.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def monitors_page(call: Call) -> Response:
    """Every monitor (and ad-hoc drift check) with its latest report."""
    pid = project_id(call)
    rows = []
    if pid is not None:
        store = call.ledger().monitoring
        for found in _monitor_names(call.ledger(), pid):
            latest = store.reports(pid, monitor=found["monitor"], limit=1)
            report = latest[0] if latest else None
            rows.append({**found, "report": report, "view": report and check_rows(report)})
    return render(call, "monitors.html", rows=rows, **HELPERS)


def _column_rows(check: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-column results of one drift check, in fixed shapes (bad entries left out)."""
    columns = check.get("columns")
    out = []
    for c in columns if isinstance(columns, list) else []:
        if not isinstance(c, dict):
            continue
        found = c.get("null_share")
        nulls: dict[str, Any] = found if isinstance(found, dict) else {}
        out.append(
            {
                "column": str(c.get("column", "")),
                "kind": str(c.get("kind", "")),
                "method": str(c.get("method", "")),
                "statistic": _number(c.get("statistic")),
                "threshold": _number(c.get("threshold")),
                "p_value": _number(c.get("p_value")),
                "score": _number(c.get("score")),
                "drifted": c.get("drifted") is True,
                "null_before": _number(nulls.get("reference")),
                "null_after": _number(nulls.get("current")),
            }
        )
    return out


def _drift_columns(report: MonitorReport) -> list[dict[str, Any]]:
    """The per-column drift results of a report's drift checks."""
    return [
        c for check in _checks(report) if check.get("check") == "drift" for c in _column_rows(check)
    ]


def monitor_page(call: Call) -> Response:
    """One monitor's reports; the drift per column of the chosen (default: latest) one."""
    ledger = call.ledger()
    pid = require_project_id(call, "monitors")
    name = call.request.path_params["name"]
    reports = ledger.monitoring.reports(pid, monitor=name, limit=REPORTS_SHOWN)
    if not reports:
        raise NotFoundError(f"no report of monitor {name!r}", hint="plinth monitor run FILE")
    wanted = call.request.query_params.get("report")
    chosen = next((r for r in reports if r.id == wanted), None) if wanted else reports[0]
    if chosen is None:
        chosen = ledger.monitoring.get_report(str(wanted))
        if chosen.monitor != name:
            raise NotFoundError(f"report {wanted!r} is not one of monitor {name!r}")
    return render(
        call,
        "monitor.html",
        name=name,
        reports=[(r, check_rows(r)) for r in reports],
        chosen=chosen,
        chosen_view=check_rows(chosen),
        columns=_drift_columns(chosen),
        **HELPERS,
    )


def alerts_page(call: Call) -> Response:
    """Alert deliveries (sent, suppressed, failed), newest first."""
    pid = project_id(call)
    alerts = [] if pid is None else call.ledger().monitoring.alerts(pid, limit=ALERTS_SHOWN)
    # Pipeline decisions alert too ("pipeline:NAME"): only a monitor with reports has a page.
    monitors = set() if pid is None else {m["monitor"] for m in _monitor_names(call.ledger(), pid)}
    return render(call, "alerts.html", alerts=alerts, monitors=monitors, **HELPERS)


_P = "/projects/{project}"
ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET", _P + "/deployments", deployments_page, "Deployments page", "project", html=True
    ),
    Endpoint(
        "GET", _P + "/deployments/{name}", deployment_page, "A deployment", "project", html=True
    ),
    Endpoint("GET", _P + "/monitors", monitors_page, "Monitors page", "project", html=True),
    Endpoint("GET", _P + "/monitors/{name}", monitor_page, "A monitor", "project", html=True),
    Endpoint("GET", _P + "/alerts", alerts_page, "Alerts page", "project", html=True),
]
