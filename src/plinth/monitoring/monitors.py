"""Monitors: evaluate a monitor file once, record the report, send the alerts.

::

    from plinth.monitoring import MonitorSpec, run_monitor
    outcome = run_monitor(MonitorSpec.load("monitor.yaml"))
    outcome.status, [c["check"] for c in outcome.checks], outcome.deliveries

A deployment monitor compares the window's merged batch profiles with the reference
profile (feature drift), the window's predictions with the first window's (prediction
drift), the served feature values with the model's training set (feature skew), runs a
validation suite on the window's rows, scores the window's predictions that have labels,
and reads latency and errors off the server's ``/metrics``. A dataset monitor
compares the latest version's stored profile with the previous one's (or a named one) and
validates it. Each check ends ``ok``, ``alert``, ``skipped`` (nothing to check yet) or
``error`` (it could not be evaluated: the others still run). One report is recorded per
evaluation, with the drift HTML as a blob; every ``alert`` (and ``error``) check raises an
alert, de-duplicated and cooled down per route by :func:`~plinth.monitoring.alerts.deliver`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import PlinthError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import MonitorReport, PredictionBatch
    from plinth.monitoring.alerts import Delivery
    from plinth.monitoring.drift import DriftReport
    from plinth.monitoring.spec import MonitorSpec
    from plinth.profiles import TableProfile

__all__ = ["MonitorOutcome", "run_monitor", "watch"]

log = logging.getLogger("plinth.monitoring")

CheckOutcome = dict[str, Any]


@dataclass(frozen=True)
class MonitorOutcome:
    """One evaluation: the recorded report, each check's result and the alert deliveries."""

    report: MonitorReport
    checks: list[CheckOutcome]
    deliveries: list[Delivery] = field(default_factory=list)
    drift: DriftReport | None = None

    @property
    def status(self) -> str:
        return self.report.status

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "report_id": r.id,
            "monitor": r.monitor,
            "status": r.status,
            "reference": r.reference,
            "window": {"start_ms": r.window_start_ms, "end_ms": r.window_end_ms, "rows": r.rows},
            "drifted": r.drifted,
            "drift_share": r.drift_share,
            "checks": self.checks,
            "alerts": [
                {"route": d.route, "status": d.status, "attempts": d.attempts, "error": d.error}
                for d in self.deliveries
            ],
        }


@dataclass
class _Window:
    """What one evaluation reads, loaded once and shared by the checks."""

    ctx: Context
    spec: MonitorSpec
    now_ms: int
    batches: list[PredictionBatch] = field(default_factory=list)
    profile: TableProfile | None = None
    reference: str | None = None
    reference_profile: TableProfile | None = None
    reference_error: PlinthError | None = None
    rows: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    deployment_id: str | None = None
    drift: DriftReport | None = None
    table: Any = None

    def rows_table(self) -> Any:
        """The window's rows (read only when a check needs them)."""
        if self.table is None:
            from plinth.monitoring.window import LOG_COLUMNS, read_batches

            if self.spec.dataset is not None:
                from plinth.datasets import load

                self.table = load(
                    self.spec.dataset, to="arrow", allow_quarantined=True, ctx=self.ctx
                )
            else:
                table = read_batches(self.ctx, self.batches)
                self.table = table.drop_columns([c for c in LOG_COLUMNS if c in table.column_names])
        return self.table


def _features(profile: TableProfile) -> list[str]:
    return [c for c in profile.columns if c != "prediction"]


def _load_deployment(w: _Window) -> None:
    from plinth.monitoring.window import lineage_reference, merged_profile, version_reference
    from plinth.monitoring.window import window_batches as pick

    ctx, spec = w.ctx, w.spec
    assert spec.deployment is not None
    w.deployment_id = ctx.ledger.deployments.get(ctx.project.id, spec.deployment).id
    w.batches = pick(ctx, spec.deployment, spec.window, w.now_ms)
    w.profile = merged_profile(ctx, w.batches)
    w.rows = sum(b.rows for b in w.batches)
    if w.batches:
        w.start_ms, w.end_ms = w.batches[0].start_ms, max(b.end_ms for b in w.batches)
    if "drift" not in spec.checks:
        return  # only feature drift needs the reference: the other checks run without it
    features = _features(w.profile) if w.profile is not None else []
    try:
        if spec.reference == "lineage":
            w.reference, w.reference_profile = lineage_reference(ctx, spec.deployment, features)
        else:
            w.reference, w.reference_profile = version_reference(ctx, spec.reference)
    except PlinthError as exc:
        w.reference_error = exc


def _load_dataset(w: _Window) -> None:
    from plinth.datasets.catalog import open_catalog
    from plinth.monitoring.window import version_reference

    ctx, spec = w.ctx, w.spec
    assert spec.dataset is not None
    current_ref, w.profile = version_reference(ctx, spec.dataset)
    w.rows = w.profile.row_count
    if spec.reference == "previous":
        with open_catalog(ctx) as catalog:
            current = catalog.resolve(current_ref)
        if current.number <= 1:
            return
        w.reference, w.reference_profile = version_reference(
            ctx, f"{spec.dataset}@{current.number - 1}"
        )
    else:
        w.reference, w.reference_profile = version_reference(ctx, spec.reference)


# -- checks --------------------------------------------------------------------------------
def _check_drift(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    from plinth.monitoring.drift import drift

    if w.reference_error is not None:
        raise w.reference_error
    if w.profile is None:
        return {"status": "skipped", "summary": "no logged predictions in the window yet"}
    if w.reference_profile is None:
        return {"status": "skipped", "summary": "no earlier version to compare with"}
    wanted = opts.get("columns")
    exclude = dict.fromkeys(opts.get("exclude") or (), "excluded by the monitor")
    if not wanted and w.spec.deployment is not None:
        from plinth.monitoring.model_inputs import model_columns

        # only the model's inputs: its target, ids and pass-through fields listed as skipped
        spec = w.ctx.ledger.deployments.get(w.ctx.project.id, w.spec.deployment).spec
        model = model_columns(str(spec.get("model")), w.profile.columns, ctx=w.ctx)
        names = [*w.reference_profile.columns, *w.profile.columns]
        through = spec.get("passthrough") or ()
        exclude = {**model.exclusions(names, [str(n) for n in through]), **exclude}
        if model.inputs is None:  # no signature: the features both sides share
            wanted = [c for c in _features(w.profile) if c in w.reference_profile.columns]
            wanted = [c for c in wanted if c not in exclude]
    report = drift(
        w.reference_profile,
        w.profile,
        columns=wanted,
        exclude=exclude,
        methods=opts.get("methods"),
        thresholds=opts.get("thresholds"),
        share_threshold=float(opts.get("share", 0.5)),
        unseen_min_count=int(opts.get("unseen_min_count", 3)),
        null_share_change=float(opts.get("null_share_change", 0.01)),
    )
    w.drift = report
    drifted = report.drifted_columns
    summary = (
        f"{len(drifted)} of {len(report.columns)} columns drifted "
        f"(share {report.share:.2f}, threshold {report.share_threshold:.2f})"
        + (f": {', '.join(drifted)}" if drifted else "")
    )
    found = report.to_dict()
    for column, values in report.new_categories.items():
        summary += f"; new categories in {column}: " + ", ".join(
            f"{v} ({n})" for v, n in values.items()
        )
    if report.null_changes:
        summary += f"; missing share changed: {', '.join(report.null_changes)}"
    # new categories and missing shares are their own results, and alert on their own
    quiet = not (report.drifted or report.new_categories or report.null_changes)
    return {
        "status": "ok" if quiet else "alert",
        "summary": summary,
        "share": report.share,
        "share_threshold": report.share_threshold,
        "drifted_columns": drifted,
        "columns": [c.to_dict() for c in report.columns],
        "new_categories": found["new_categories"],
        "null_shares": found["null_shares"],
        "skipped": report.skipped,
    }


def _check_prediction_drift(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    from plinth.monitoring.drift import drift
    from plinth.monitoring.window import baseline_batches, merged_profile

    assert w.spec.deployment is not None
    baseline = baseline_batches(w.ctx, w.spec.deployment, w.spec.window)
    window_ids = {b.id for b in w.batches}
    if w.profile is None or not baseline or {b.id for b in baseline} & window_ids:
        return {
            "status": "skipped",
            "summary": "the baseline is the first window: no later one yet",
        }
    base = merged_profile(w.ctx, baseline)
    if base is None or "prediction" not in base.columns or "prediction" not in w.profile.columns:
        return {"status": "skipped", "summary": "no prediction column to compare"}
    methods = {"prediction": opts["method"]} if opts.get("method") else None
    thresholds = None
    if "threshold" in opts:
        value = float(opts["threshold"])
        thresholds = {m: value for m in (opts.get("method"),) if m} or {
            "wasserstein": value,
            "jensenshannon": value,
            "psi": value,
        }
    report = drift(
        base,
        w.profile,
        columns=["prediction"],
        methods=methods,
        thresholds=thresholds,
        share_threshold=1.0,
    )
    if not report.columns:
        reason = report.skipped.get("prediction", "not comparable")
        return {"status": "skipped", "summary": f"predictions not compared: {reason}"}
    c = report.columns[0]
    return {
        "status": "alert" if c.drifted else "ok",
        "summary": f"predictions {c.method} {c.statistic:.3f} (threshold {c.threshold:g}) "
        f"against the first {sum(b.rows for b in baseline)} logged",
        "column": c.to_dict(),
    }


def _check_feature_skew(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    from plinth.monitoring.skew import skew_check

    assert w.spec.deployment is not None
    return skew_check(w.ctx, w.spec.deployment, w.batches, opts)


def _check_validation(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    from plinth.datasets import validate
    from plinth.validation import Suite

    if w.spec.deployment is not None and not w.batches:
        return {"status": "skipped", "summary": "no logged predictions in the window yet"}
    suite = Suite.load(w.spec.base_dir / opts["suite"])
    # Through the datasets pillar: the suite's in_dataset checks may name dataset versions.
    result = validate(w.rows_table(), suite, ctx=w.ctx)
    failed = [r.to_dict() for r in result.failures][:20]
    return {
        "status": "ok" if result.success else "alert",
        "summary": f"{len(result.errors)} errors, {len(result.warnings)} warnings "
        f"of {len(result.results)} checks ({suite.name})",
        "failures": failed,
    }


def _check_performance(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    import pyarrow as pa

    from plinth.monitoring.labels import current_labels
    from plinth.monitoring.performance import join_labels, performance_windows

    ctx, spec = w.ctx, w.spec
    assert spec.deployment is not None
    key = opts.get("key", "request_id")
    # One label per key, the latest (deleted batches left out): a key labelled twice is
    # counted, never an error that would fail every later run.
    labels = current_labels(
        spec.deployment, key=key, label_column=opts.get("label_column"), ctx=ctx
    )
    if not labels.batches or w.start_ms is None:
        return {"status": "skipped", "summary": "no labels joined to this deployment yet"}
    joined = join_labels(
        spec.deployment,
        labels.table,
        key=key,
        label_column="label",
        since_ms=w.start_ms,
        until_ms=w.end_ms,
        ctx=ctx,
    )
    if w.start_ms is not None and joined.num_rows:
        ts = joined.column("ts").cast(pa.int64())
        import pyarrow.compute as pc

        inside = pc.and_(pc.greater_equal(ts, w.start_ms), pc.less_equal(ts, w.end_ms))
        joined = joined.filter(inside)
    if joined.num_rows == 0:
        return {"status": "skipped", "summary": "no labelled predictions in the window yet"}
    windows = performance_windows(
        joined, window="all", task=opts.get("task"), threshold=float(opts.get("threshold", 0.5))
    )
    metrics = windows[0]["metrics"]
    breaches = []
    for bound, sign in (("min", 1), ("max", -1)):
        for metric, limit in (opts.get(bound) or {}).items():
            value = metrics.get(metric)
            if value is None:
                breaches.append(f"{metric} is not computed for this task")
            elif sign * (value - float(limit)) < 0:
                breaches.append(f"{metric} {value:.4f} {'<' if sign > 0 else '>'} {limit}")
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    return {
        "status": "alert" if breaches else "ok",
        "summary": (f"{'; '.join(breaches)} — " if breaches else "")
        + f"{joined.num_rows} labelled rows: {shown}"
        + (f" ({labels.superseded} superseded labels: latest wins)" if labels.superseded else ""),
        "rows": joined.num_rows,
        "metrics": metrics,
        "breaches": breaches,
        "label_batches": labels.batches,
        "labels_superseded": labels.superseded,
    }


def _check_server(w: _Window, opts: dict[str, Any]) -> CheckOutcome:
    from plinth.monitoring.server import scrape, window_stats

    counters = scrape(
        str(opts["url"]), timeout=float(opts.get("timeout", 5.0)), settings=w.ctx.settings
    )
    previous = None
    for report in w.ctx.ledger.monitoring.reports(
        w.ctx.project.id, monitor=w.spec.name, kind="monitor", limit=1
    ):
        for check in report.results.get("checks", []):
            if check.get("check") == "server":
                previous = check.get("counters")
    stats = window_stats(counters, previous)
    problems = []
    p95 = stats.get("p95_ms")
    if "p95_ms" in opts and p95 is not None and p95 > float(opts["p95_ms"]):
        problems.append(f"p95 latency {p95:.1f} ms > {opts['p95_ms']} ms")
    rate = stats.get("error_rate")
    if "error_rate" in opts and rate is not None and rate > float(opts["error_rate"]):
        problems.append(f"error rate {rate:.4f} > {opts['error_rate']}")
    shown = (
        "no requests since the last check"
        if not stats.get("requests")
        else (f"{stats['requests']} requests, p95 {p95:.1f} ms, error rate {rate:.4f}")
    )
    return {
        "status": "alert" if problems else "ok",
        "summary": (f"{'; '.join(problems)} — " if problems else "") + shown,
        "counters": counters,
        **stats,
    }


_CHECKS: dict[str, Callable[[_Window, dict[str, Any]], CheckOutcome]] = {
    "drift": _check_drift,
    "prediction_drift": _check_prediction_drift,
    "feature_skew": _check_feature_skew,
    "validation": _check_validation,
    "performance": _check_performance,
    "server": _check_server,
}


def _run_check(w: _Window, name: str, opts: dict[str, Any]) -> CheckOutcome:
    try:
        result = _CHECKS[name](w, opts)
    except PlinthError as exc:
        result = {"status": "error", "summary": exc.one_line()}
    except Exception as exc:  # a broken check must not stop the others or the report
        log.exception("plinth: monitor %s: check %s failed", w.spec.name, name)
        result = {"status": "error", "summary": f"{type(exc).__name__}: {exc}"}
    return {"check": name, **result}


# -- one evaluation ------------------------------------------------------------------------
def _alerts(spec: MonitorSpec, checks: list[CheckOutcome], report_id: str) -> list[Any]:
    from plinth.monitoring.alerts import AlertMessage, Severity

    out = []
    for check in checks:
        if check["status"] not in ("alert", "error"):
            continue
        name = check["check"]
        severity: Severity = "critical" if name in ("performance", "server") else "warning"
        # the fingerprint names the problem, not its numbers: a drift alert stays one
        # alert (cooled down) while the set of drifted columns wanders from run to run
        key: Any = check["status"]
        if name == "performance" and check["status"] == "alert":
            key = sorted(b.split(" ")[0] for b in check.get("breaches", []))
        out.append(
            AlertMessage.create(
                spec.name,
                name,
                severity=severity if check["status"] == "alert" else "warning",
                title=f"{spec.name}: {name} {'failed' if check['status'] == 'alert' else 'error'}",
                message=str(check["summary"]),
                details={k: v for k, v in check.items() if k in ("share", "drifted_columns")},
                key=key,
                report_id=report_id,
            )
        )
    return out


def run_monitor(
    spec: MonitorSpec,
    *,
    now_ms: int | None = None,
    deliver_alerts: bool = True,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    ctx: Context | None = None,
) -> MonitorOutcome:
    """Evaluate ``spec`` once: run its checks, record the report, deliver its alerts."""
    from plinth.context import resolve_context
    from plinth.ids import now_ms as clock

    context = resolve_context(ctx)
    w = _Window(context, spec, clock() if now_ms is None else now_ms)
    checks: list[CheckOutcome] = []
    try:
        if spec.deployment is not None:
            _load_deployment(w)
        else:
            _load_dataset(w)
    except PlinthError as exc:
        checks.append({"check": "reference", "status": "error", "summary": exc.one_line()})
    if not checks:
        checks = [_run_check(w, name, opts) for name, opts in spec.checks.items()]
    statuses = {c["status"] for c in checks}
    status = "alert" if "alert" in statuses else "error" if "error" in statuses else "ok"
    digest = None
    if w.drift is not None:
        digest = context.blobs.put_bytes(w.drift.to_html().encode("utf-8")).digest
    report = context.ledger.monitoring.record_report(
        context.project.id,
        kind="monitor",
        monitor=spec.name,
        status=status,
        rows=w.rows,
        results={"checks": checks},
        deployment_id=w.deployment_id,
        dataset=spec.dataset,
        reference=w.reference,
        window_start_ms=w.start_ms,
        window_end_ms=w.end_ms,
        drifted=None if w.drift is None else w.drift.drifted,
        drift_share=None if w.drift is None else w.drift.share,
        report_digest=digest,
        spec=spec.to_dict(),
    )
    deliveries: list[Delivery] = []
    alerts = _alerts(spec, checks, report.id)
    if deliver_alerts and alerts and spec.routes:
        from plinth.monitoring.alerts import deliver
        from plinth.monitoring.routes import notifiers_from_spec

        routes = notifiers_from_spec(
            spec.routes, root=context.settings.root, base=spec.base_dir, settings=context.settings
        )
        deliveries = deliver(
            context.project.id,
            alerts,
            routes,
            cooldown_seconds=spec.cooldown_seconds,
            retries=retries,
            backoff_seconds=backoff_seconds,
            ctx=context,
        )
    return MonitorOutcome(report, checks, deliveries, w.drift)


def watch(
    spec: MonitorSpec,
    *,
    every_seconds: float,
    max_runs: int | None = None,
    on_outcome: Callable[[MonitorOutcome], Any] = lambda _: None,
    sleep: Callable[[float], Any] = time.sleep,
    ctx: Context | None = None,
) -> int:
    """Run ``spec`` every ``every_seconds`` (``max_runs`` times, or until interrupted);
    returns the number of evaluations. A failing evaluation is logged and retried next time."""
    runs = 0
    while max_runs is None or runs < max_runs:
        started = time.monotonic()
        try:
            on_outcome(run_monitor(spec, ctx=ctx))
        except PlinthError as exc:
            log.error("plinth: monitor %s: %s", spec.name, exc.one_line())
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        sleep(max(0.0, every_seconds - (time.monotonic() - started)))
    return runs
