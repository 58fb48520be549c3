"""``plinth monitor run|watch|reports|export``: evaluate monitor files, list their reports,
serve their results as Prometheus gauges. A thin layer over :mod:`plinth.monitoring`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option, parse_duration

if TYPE_CHECKING:
    from plinth.monitoring.monitors import MonitorOutcome

_MARK = {"ok": "ok", "alert": "ALERT", "skipped": "skipped", "error": "ERROR"}


def _print(outcome: MonitorOutcome, html: str | None) -> None:
    r = outcome.report
    click.echo(
        f"Monitor {r.monitor}: {r.status.upper()} — {r.rows} rows"
        + (f" against {r.reference}" if r.reference else "")
        + f" (report {r.id})"
    )
    for check in outcome.checks:
        click.echo(
            f"  {_MARK.get(check['status'], check['status']):>7}  {check['check']}: "
            f"{check['summary']}"
        )
    for d in outcome.deliveries:
        extra = f" after {d.attempts} attempts: {d.error}" if d.status == "failed" else ""
        click.echo(f"  alert -> {d.route}: {d.status}{extra}")
    if html:
        click.echo(f"  drift report: {html}")


def _write_html(outcome: MonitorOutcome, path: str | None) -> str | None:
    if outcome.drift is None or path is None:
        return None
    outcome.drift.to_html(path)
    return path


@click.command(
    "run",
    epilog="Example: plinth monitor run monitor.yaml --html drift.html",
)
@click.argument("monitor_file", type=click.Path(dir_okay=False))
@click.option("--html", type=click.Path(dir_okay=False), help="Also write the drift report here.")
@click.option("--no-alerts", is_flag=True, help="Record the report but send no alert.")
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 when a check fails (for CI and cron).")
@json_option
@click.pass_context
def run(
    click_ctx: click.Context,
    monitor_file: str,
    html: str | None,
    no_alerts: bool,
    fail_on_alert: bool,
    as_json: bool,
) -> None:
    """Evaluate MONITOR_FILE once: run its checks, record a report, send its alerts.

    Exits 0 whatever the checks found, unless --fail-on-alert (then 1 when a check
    alerted or could not be evaluated)."""
    from plinth.context import Context
    from plinth.monitoring.monitors import run_monitor
    from plinth.monitoring.spec import MonitorSpec

    spec = MonitorSpec.load(monitor_file)
    with Context.open() as ctx:
        outcome = run_monitor(spec, ctx=ctx, deliver_alerts=not no_alerts)
    written = _write_html(outcome, html)
    if as_json:
        echo_json(outcome.to_dict())
    else:
        _print(outcome, written)
    if fail_on_alert and outcome.status != "ok":
        click_ctx.exit(1)


@click.command(
    "watch",
    epilog="Example: plinth monitor watch monitor.yaml --every 15m",
)
@click.argument("monitor_file", type=click.Path(dir_okay=False))
@click.option("--every", default="15m", show_default=True, help="Time between evaluations.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many evaluations.")
@json_option
def watch(monitor_file: str, every: str, count: int | None, as_json: bool) -> None:
    """Evaluate MONITOR_FILE every --every, until interrupted (Ctrl-C)."""
    import json

    from plinth.context import Context
    from plinth.monitoring.monitors import watch as watch_loop
    from plinth.monitoring.spec import MonitorSpec

    seconds = parse_duration(every, option="--every")
    spec = MonitorSpec.load(monitor_file)

    def show(outcome: MonitorOutcome) -> None:
        if as_json:
            click.echo(json.dumps(outcome.to_dict(), default=str))
        else:
            _print(outcome, None)

    with Context.open() as ctx:
        try:
            watch_loop(spec, every_seconds=seconds, ctx=ctx, max_runs=count, on_outcome=show)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


@click.command(
    "reports",
    epilog="Example: plinth monitor reports --monitor flight-delays --limit 5",
)
@click.option("--monitor", "monitor_name", help="Only this monitor's reports.")
@click.option(
    "--kind", type=click.Choice(["monitor", "drift", "performance"]), help="Only this kind."
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--html", type=click.Path(dir_okay=False), help="Write the newest one's HTML here.")
@json_option
def reports(
    monitor_name: str | None, kind: str | None, limit: int, html: str | None, as_json: bool
) -> None:
    """List recorded monitor, drift and performance reports, newest first."""
    from pathlib import Path

    from plinth.context import Context
    from plinth.errors import NotFoundError

    with Context.open() as ctx:
        found = ctx.reads.monitoring.reports(
            ctx.project.id, monitor=monitor_name, kind=kind, limit=limit
        )
        if html is not None:
            with_html = next((r for r in found if r.report_digest), None)
            if with_html is None or with_html.report_digest is None:
                raise NotFoundError("none of these reports has an HTML drift report", field="html")
            Path(html).write_bytes(ctx.blobs.read_bytes(with_html.report_digest))
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "kind": r.kind,
            "monitor": r.monitor,
            "status": r.status,
            "rows": r.rows,
            "reference": r.reference,
            "drift_share": r.drift_share,
            "created_at": r.created_at,
            "checks": [
                f"{c.get('check')}={c.get('status')}"
                for c in (r.results.get("checks", []) if isinstance(r.results, dict) else [])
            ],
        }
        for r in found
    ]
    if as_json:
        echo_json(rows)
        return
    _print_reports(rows)


_SHORT = {"ok": "ok", "alert": "ALERT", "skipped": "-", "error": "ERR"}


def _print_reports(rows: list[dict[str, Any]]) -> None:
    import datetime as dt

    from plinth.cli import _runs_view as view

    # Plain text (no Rich import or layout): a listing must start fast. Alerts are in
    # capitals, as in the checks column and in 'plinth monitor run'.
    ids = view.short_ids(row["id"] for row in rows)
    cells = []
    for row in rows:
        when = dt.datetime.fromtimestamp(row["created_at"] / 1000, dt.UTC)
        checks = " ".join(
            f"{name}:{_SHORT.get(status, status)}"
            for name, _, status in (c.partition("=") for c in row["checks"])
        )
        cells.append(
            [
                ids[row["id"]],
                when.strftime("%Y-%m-%d %H:%M:%S"),
                row["monitor"],
                row["kind"],
                "ALERT" if row["status"] == "alert" else row["status"],
                f"{row['rows']:,}",
                row["reference"] or "-",
                checks or "-",
            ]
        )
    headers = ["id", "created (UTC)", "monitor", "kind", "status", "rows", "reference", "checks"]
    if cells:
        click.echo("\n".join(view.plain_table(headers, cells, right=[5])))
    click.echo(f"{len(rows)} report(s); plinth monitor reports --json for every field")


@click.command(
    "export",
    epilog="Example: plinth monitor export --port 9108   # then scrape http://HOST:9108/metrics",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9108, show_default=True)
@click.option("--every", default="30s", show_default=True, help="How often to re-read reports.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many refreshes.")
def export(host: str, port: int, every: str, count: int | None) -> None:
    """Serve the newest result of every monitor as Prometheus gauges (for batch use)."""
    import time

    from prometheus_client import CollectorRegistry, start_http_server

    from plinth.context import Context
    from plinth.monitoring.gauges import MonitorGauges, latest_reports

    seconds = parse_duration(every, option="--every")
    registry = CollectorRegistry(auto_describe=True)
    gauges = MonitorGauges(registry)
    with Context.open() as ctx:
        gauges.update(latest_reports(ctx))
        server, thread = start_http_server(port, addr=host, registry=registry)
        click.echo(f"serving monitor gauges on http://{host}:{server.server_port}/metrics")
        refreshes = 1
        try:
            while count is None or refreshes < count:
                time.sleep(seconds)
                gauges.update(latest_reports(ctx))
                refreshes += 1
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            server.shutdown()
            server.server_close()  # shutdown() stops serving; this closes the listening socket
            thread.join(timeout=5)
