"""Experiment tracking: runs, params, journaled metrics, artifacts, system metrics.

Owns ``plinth.start_run``, reading runs back and searching them. May import plinth core
(context, ledger, storage, entities, errors, ids, guards) and the public functions of
``plinth.versioning`` (code and environment capture) and ``plinth.registry``
(``run.log_model``); see docs/architecture.md.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
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

# Loaded on first access, so that a command importing one submodule (``runs list`` needs
# only the journal recovery and the search) does not import every other one.
_LAZY = {
    "ActiveRun": "plinth.tracking.runs",
    "MetricHistory": "plinth.tracking.reading",
    "RunComparison": "plinth.tracking.comparison",
    "RunInfo": "plinth.tracking.reading",
    "RunRow": "plinth.tracking.reading",
    "active_run": "plinth.tracking.runs",
    "compare_runs": "plinth.tracking.comparison",
    "get_run": "plinth.tracking.reading",
    "metric_history": "plinth.tracking.reading",
    "search_runs": "plinth.tracking.reading",
    "seed_everything": "plinth.tracking.seeding",
    "start_run": "plinth.tracking.runs",
}

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
