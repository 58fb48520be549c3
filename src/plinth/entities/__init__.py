"""Plain typed records, no I/O. Every ledger function takes and returns these.

Timestamps are integers: milliseconds since the Unix epoch (see :func:`plinth.ids.now_ms`).
"""

from plinth.entities.datasets import DATASET_KINDS, Dataset, DatasetKind, DatasetVersion
from plinth.entities.records import (
    RUN_STATUSES,
    Artifact,
    Environment,
    Experiment,
    GcEvent,
    LineageEdge,
    MetricPoint,
    Project,
    RecordRef,
    Run,
)
from plinth.entities.search import MetricSummary, RunRow

__all__ = [
    "DATASET_KINDS",
    "RUN_STATUSES",
    "Artifact",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "Environment",
    "Experiment",
    "GcEvent",
    "LineageEdge",
    "MetricPoint",
    "MetricSummary",
    "Project",
    "RecordRef",
    "Run",
    "RunRow",
]
