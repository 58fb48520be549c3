"""Monitoring: is the data a model sees still the data it was trained on?

Owns::

    drift.py     drift(): one vectorised test per column (KS, Wasserstein, PSI,
                 chi-squared, Jensen-Shannon, unseen categories), Benjamini-Hochberg
                 across columns, DriftReport and ColumnDrift
    _stats.py    the statistics as pure functions over sorted samples and counts
    _sides.py    a table or a stored profile read column by column for them
    report.py    the self-contained HTML report (inline SVG, no rows)
    spec.py      MonitorSpec: monitor YAML (deployment or dataset, window, checks, alerts)
    window.py    the window's batches, their profiles (computed once), the lineage reference
    monitors.py  run_monitor() / watch(): every check, one ledger report, the alerts
    skew.py      feature_skew(): the features a deployment served against the training
                 set its model was trained on, found through lineage (check feature_skew)
    server.py    latency and error rate read off a server's /metrics
    performance.py / metrics.py
                 labels joined to the prediction log, metrics per window, record_labels()
    labels.py    label batches: latest label per key wins; list, show, delete (audited)
    alerts.py    AlertMessage, deliver(): de-duplication, cool-down, retries, records
    notifiers.py / routes.py
                 log file, webhook, Slack, e-mail; routes from YAML; the SSRF guard
    gauges.py    the Prometheus gauges the server and ``plinth monitor export`` expose

::

    report = plinth.monitoring.drift(train_df, current_df)   # or a stored TableProfile
    report.drifted, report.share, report.columns[0]          # ranked, drifted first
    report.to_html("drift-report.html")
    outcome = plinth.monitoring.run_monitor(plinth.monitoring.MonitorSpec.load("monitor.yaml"))
    plinth.monitoring.record_labels(ctx, "delays", "labels.parquet", window="1d")

May import the plinth core (``plinth.tables`` included), ``plinth.profiles`` (stored
references are profiles), and the public functions of ``plinth.datasets`` (dataset versions,
their profiles, suites run with their references), ``plinth.registry`` (a deployment's
model version) and ``plinth.validation``; never tracking or serving. Nothing is
imported until a name is used: numpy, pyarrow and scipy load with the first comparison.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

# ``drift`` names both a module and its function. Bound here, on import (drift.py imports
# nothing heavy at top level), so that a later ``import plinth.monitoring.drift`` cannot
# leave the module where the function should be. Reach the module's other names with
# ``from plinth.monitoring.drift import ...`` (``import ... as`` would get the function).
from plinth.monitoring.drift import ColumnDrift, DriftReport, drift

if _typing.TYPE_CHECKING:
    from plinth.monitoring.alerts import AlertMessage, deliver
    from plinth.monitoring.labels import (
        LabelBatchDetails,
        delete_label_batch,
        list_label_batches,
        show_label_batch,
    )
    from plinth.monitoring.monitors import MonitorOutcome, run_monitor, watch
    from plinth.monitoring.performance import PerformanceResult, join_labels, record_labels
    from plinth.monitoring.spec import MonitorSpec

# Further public names, loaded on first use: name -> defining module.
_LAZY: dict[str, str] = {
    "AlertMessage": "plinth.monitoring.alerts",
    "LabelBatchDetails": "plinth.monitoring.labels",
    "delete_label_batch": "plinth.monitoring.labels",
    "list_label_batches": "plinth.monitoring.labels",
    "show_label_batch": "plinth.monitoring.labels",
    "MonitorOutcome": "plinth.monitoring.monitors",
    "MonitorSpec": "plinth.monitoring.spec",
    "PerformanceResult": "plinth.monitoring.performance",
    "deliver": "plinth.monitoring.alerts",
    "join_labels": "plinth.monitoring.performance",
    "record_labels": "plinth.monitoring.performance",
    "run_monitor": "plinth.monitoring.monitors",
    "watch": "plinth.monitoring.monitors",
}

__all__ = [
    "AlertMessage",
    "ColumnDrift",
    "DriftReport",
    "LabelBatchDetails",
    "MonitorOutcome",
    "MonitorSpec",
    "PerformanceResult",
    "delete_label_batch",
    "deliver",
    "drift",
    "join_labels",
    "list_label_batches",
    "record_labels",
    "run_monitor",
    "show_label_batch",
    "watch",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
