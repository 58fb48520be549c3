"""The demo's monitoring story: later months replayed through the server, watched.

September to December 2013 go through the served champion as single-row requests, one
month at a time, in scheduled order, the online store kept as fresh as a feature pipeline
would keep it: every view materialized as of the month's first day, the weather again every
12 hours. The delay views read the flights dataset, which ends in August: from October on
they serve the last values they have (no TTL: see ``features.yaml``). After each month the
prediction log is flushed, the true arrival delays
arrive as labels (``plinth monitor labels``), and ``monitor.yaml`` is evaluated: feature
drift against the training version's stored profile (found through lineage), prediction
drift against September, ROC AUC on the labelled window. The alert route is a log file;
the worst month's drift report is written as HTML; a drift alert starts the loop's
retraining (:mod:`plinth.demo.loop`). ``plinth monitor run monitor.yaml`` evaluates the same
file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from plinth.context import Context

__all__ = ["MONITOR", "MonitorStory", "replay_months"]

MONITOR = """\
# Evaluated by plinth demo after each month; run it yourself with: plinth monitor run monitor.yaml
deployment: flight-delays
window: {{rows: {rows}}}           # the newest {rows} logged predictions
checks:
  drift: {{share: 0.3}}            # alert when 30% of the features drift from the training data
  prediction_drift: {{}}           # the predictions against the first window's (September)
  performance: {{min: {{roc_auc: 0.65}}, max: {{brier: 0.25}}}}
alerts:
  cooldown: 1h
  routes:
    - {{name: ops-log, type: log, path: alerts.log}}
"""
MONTHS = (9, 10, 11, 12)
#: How often the replay refreshes the weather in the online store (a pandas frequency).
WEATHER_EVERY = "12h"
NAMES = {9: "Sep", 10: "Oct", 11: "Nov", 12: "Dec"}


@dataclass(frozen=True)
class MonthRow:
    month: int
    rows: int
    share: float
    drifted: list[str]
    prediction: str
    roc_auc: float | None
    #: Mean squared error of the predicted probability against the outcome (lower is better).
    brier: float | None
    status: str
    alerts: list[str]
    report_id: str


@dataclass
class MonitorStory:
    months: list[MonthRow] = field(default_factory=list)
    worst_report: Path | None = None
    alerts_log: Path | None = None
    #: Whether September's labels, sent a second time, were recognised as already recorded.
    labels_twice: bool = False


def replay_months(
    ctx: Context,
    directory: Path,
    data: pd.DataFrame,
    post: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]],
    flush: Callable[[], Any],
    echo: Callable[[str], None] = print,
    *,
    rows: int = 1000,
    after_month: Callable[[MonthRow], Any] | None = None,
) -> MonitorStory:
    """Send ``rows`` flights of each later month through ``post``, then label and monitor;
    ``after_month(row)`` runs after each month's evaluation (the loop's agent pass)."""
    import pandas as pd

    from plinth.demo.data import TARGET
    from plinth.demo.features import materialize_until
    from plinth.demo.serving import requests_of
    from plinth.monitoring.monitors import run_monitor
    from plinth.monitoring.performance import record_labels
    from plinth.monitoring.spec import MonitorSpec

    spec_path = directory / "monitor.yaml"
    spec_path.write_text(MONITOR.format(rows=rows), encoding="utf-8")
    spec = MonitorSpec.load(spec_path)
    echo("")
    echo(
        f"Monitoring: {rows:,} flights of each later month through the server, then "
        f"{spec_path.name}"
    )
    echo(
        f"  {'month':<7}{'drift share':>12}  {'prediction drift':<20}{'ROC AUC':>8}"
        f"{'Brier':>7}  {'status':<7} most drifted features (score)"
    )
    started = time.perf_counter()
    story = MonitorStory(alerts_log=directory / "alerts.log")
    worst: tuple[float, str] | None = None
    for month in MONTHS:
        materialize_until(ctx, datetime(2013, month, 1, tzinfo=UTC))
        frame = data[data["month"] == month].sample(n=rows, random_state=month)
        frame = frame.sort_values(["sched_dep", "id"])
        answers: list[tuple[int, dict[str, Any]]] = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for start, block in frame.groupby(frame["time_hour"].dt.floor(WEATHER_EVERY)):
                materialize_until(ctx, start.to_pydatetime(), views=["origin_weather"])
                answers.extend(pool.map(lambda r: post({"records": [r]}), requests_of(block)))
        flush()
        ids = [body.get("request_id") for status, body in answers]
        ok = [
            (rid, late)
            for (status, _), rid, late in zip(answers, ids, frame[TARGET].tolist(), strict=True)
            if status == 200 and rid
        ]
        labels = pd.DataFrame({"request_id": [r for r, _ in ok], "late": [y for _, y in ok]})
        recorded = record_labels("flight-delays", labels, window="all", ctx=ctx)
        if month == MONTHS[0]:
            # A client that retries its upload: the same labels again are a no-op, never a
            # duplicate that poisons later evaluations.
            again = record_labels("flight-delays", labels, window="all", ctx=ctx)
            story.labels_twice = bool(again.already_recorded) and not recorded.already_recorded
            verdict = "was recognised as already recorded" if story.labels_twice else "was not"
            echo(f"  (September's labels sent twice: the second upload {verdict})")
        outcome = run_monitor(spec, ctx=ctx)
        checks = {c["check"]: c for c in outcome.checks}
        drift = checks["drift"]
        pred = checks.get("prediction_drift", {})
        perf = checks.get("performance", {})
        pred_text = (
            f"{pred['column']['statistic']:.3f} ({pred['column']['method']})"
            if pred.get("column")
            else "baseline"
        )
        auc = (perf.get("metrics") or {}).get("roc_auc")
        brier = (perf.get("metrics") or {}).get("brier")
        row = MonthRow(
            month,
            len(ok),
            float(drift.get("share", 0.0)),
            list(drift.get("drifted_columns", [])),
            pred_text,
            auc,
            brier,
            outcome.status,
            [f"{d.route}: {d.status}" for d in outcome.deliveries],
            outcome.report.id,
        )
        story.months.append(row)
        top = [c for c in drift.get("columns", []) if c.get("drifted")][:3]
        shown = ", ".join(f"{c['column']} {_score(c)}" for c in top) or "-"
        auc_text = f"{auc:.4f}" if auc is not None else "-"
        brier_text = f"{brier:.3f}" if brier is not None else "-"
        alerts = f"   alert -> {'; '.join(row.alerts)}" if row.alerts else ""
        echo(
            f"  {NAMES[month]:<7}{row.share:>12.2f}  {pred_text:<20}{auc_text:>8}"
            f"{brier_text:>7}  {row.status:<7} {shown}{alerts}"
        )
        if after_month is not None:
            after_month(row)
        # the worst month: the largest drift summed over features (each score relative to
        # its threshold), not only the share that crossed
        magnitude = sum(min(c.score, 10.0) for c in outcome.drift.columns) if outcome.drift else 0
        if outcome.drift is not None and (worst is None or magnitude > worst[0]):
            worst = (magnitude, NAMES[month])
            story.worst_report = directory / "drift-report.html"
            outcome.drift.to_html(story.worst_report)
    if story.worst_report is not None and worst is not None:
        size = story.worst_report.stat().st_size
        echo(
            f"  drift report of the worst month ({worst[1]}): {story.worst_report.name} "
            f"({size / 1024:.0f} KiB, no rows in it)"
        )
    echo(
        f"  ({len(MONTHS) * rows:,} requests and {len(MONTHS)} evaluations in "
        f"{time.perf_counter() - started:.0f} s)"
    )
    log = story.alerts_log
    if log is not None and log.exists():
        lines = log.read_text(encoding="utf-8").splitlines()
        echo(
            f"  {log.name}: {len(lines)} alert(s) in all (the monitor's: the first of each "
            "check, later ones held back by the 1 h cool-down; the pipeline's: failed gates, "
            "promotions, rollbacks)"
        )
    return story


def _score(column: dict[str, Any]) -> str:
    """A drifted column's normalised score (>= 1: drifted); a p-value based one far past
    any threshold reads ``>99``."""
    score = float(column.get("score", column["statistic"]))
    return f"{score:.2f}" if score < 99 else ">99"
