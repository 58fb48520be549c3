"""Experiment tracking: runs, params, journaled metrics, artifacts, system metrics.

Owns ``plinth.start_run``, reading runs back and searching them. May import plinth core
(context, ledger, storage, entities, errors, ids, guards) and the public functions of
``plinth.versioning`` (code and environment capture) and ``plinth.registry``
(``run.log_model``); see docs/architecture.md.
"""

from plinth.tracking.comparison import RunComparison, compare_runs
from plinth.tracking.reading import (
    MetricHistory,
    RunInfo,
    RunRow,
    get_run,
    metric_history,
    search_runs,
)
from plinth.tracking.runs import ActiveRun, active_run, start_run
from plinth.tracking.seeding import seed_everything

__all__ = [
    "ActiveRun",
    "MetricHistory",
    "RunComparison",
    "RunInfo",
    "RunRow",
    "active_run",
    "compare_runs",
    "get_run",
    "metric_history",
    "search_runs",
    "seed_everything",
    "start_run",
]
