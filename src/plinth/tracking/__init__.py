"""Experiment tracking: runs, params, journaled metrics, artifacts, system metrics.

Owns ``plinth.start_run`` and reading runs back. May import plinth core (context, ledger,
storage, entities, errors, ids) and the public functions of ``plinth.versioning`` (code and
environment capture).
"""

from plinth.tracking.reading import MetricHistory, RunInfo, get_run, metric_history
from plinth.tracking.runs import ActiveRun, active_run, start_run
from plinth.tracking.seeding import seed_everything

__all__ = [
    "ActiveRun",
    "MetricHistory",
    "RunInfo",
    "active_run",
    "get_run",
    "metric_history",
    "seed_everything",
    "start_run",
]
