"""What a monitor report alerted on, in words: the reason a ``monitor:`` trigger fires
(:mod:`plinth.pipelines.triggers`) and what its firing records.

::

    alert_problems(report, on="drift")   # ["drift in temp, dewp"], [] when not a drift alert
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plinth.entities import MonitorReport

__all__ = ["DRIFT_CHECKS", "alert_problems"]

#: Monitor checks that report drifted columns (``on: drift`` fires on these).
DRIFT_CHECKS = ("drift", "prediction_drift", "feature_skew")


def alert_problems(report: MonitorReport, on: str = "any") -> list[str]:
    """What ``report`` alerted on, in words (``drift in temp, dewp``), limited to ``on``;
    empty when the report is not an alert of that kind."""
    if report.status != "alert":
        return []
    results = report.results if isinstance(report.results, Mapping) else {}
    if report.kind == "performance":
        if on == "drift":
            return []
        metrics = sorted({str(b.get("metric")) for b in results.get("breaches", []) if b})
        return [f"performance below bounds on {', '.join(metrics) or 'a metric'}"]
    out = []
    checks = results.get("checks", [])
    for check in checks if isinstance(checks, list) else []:
        if not isinstance(check, Mapping) or check.get("status") != "alert":
            continue
        name = str(check.get("check", "check"))
        drift = name in DRIFT_CHECKS
        if (on == "drift" and not drift) or (on == "performance" and name != "performance"):
            continue
        columns = check.get("drifted_columns")
        if drift and isinstance(columns, list) and columns:
            label = "drift" if name == "drift" else name.replace("_", " ")
            out.append(f"{label} in {', '.join(str(c) for c in columns)}")
        else:
            out.append(f"{name}: {check.get('summary', 'alert')}")
    return out
