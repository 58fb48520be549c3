"""Plain typed records, no I/O. Every ledger function takes and returns these.

Timestamps are integers: milliseconds since the Unix epoch (see :func:`plinth.ids.now_ms`).
"""

from plinth.entities.datasets import (
    DATASET_KINDS,
    VERSION_STATUSES,
    Dataset,
    DatasetKind,
    DatasetVersion,
    Erasure,
)
from plinth.entities.features import (
    DEFINITION_KINDS,
    FeatureDefinition,
    FeaturePush,
    Materialization,
)
from plinth.entities.models import AliasMove, Model, ModelVersion
from plinth.entities.monitoring import (
    ALERT_STATUSES,
    REPORT_KINDS,
    REPORT_STATUSES,
    Alert,
    LabelBatch,
    MonitorReport,
)
from plinth.entities.pipelines import (
    DECISION_KINDS,
    PIPELINE_STATUSES,
    STEP_STATUSES,
    Decision,
    PipelineRun,
    StepRun,
    TriggerFiring,
)
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
from plinth.entities.search import MetricBucket, MetricSummary, RunRow
from plinth.entities.serving import DeploymentVersion, PredictionBatch
from plinth.entities.validation import SuiteVersion, ValidationRecord

__all__ = [
    "ALERT_STATUSES",
    "DATASET_KINDS",
    "DECISION_KINDS",
    "DEFINITION_KINDS",
    "PIPELINE_STATUSES",
    "REPORT_KINDS",
    "REPORT_STATUSES",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "VERSION_STATUSES",
    "Alert",
    "AliasMove",
    "Artifact",
    "Dataset",
    "DatasetKind",
    "DatasetVersion",
    "Decision",
    "DeploymentVersion",
    "Environment",
    "Erasure",
    "Experiment",
    "FeatureDefinition",
    "FeaturePush",
    "GcEvent",
    "LabelBatch",
    "LineageEdge",
    "Materialization",
    "MetricBucket",
    "MetricPoint",
    "MetricSummary",
    "Model",
    "ModelVersion",
    "MonitorReport",
    "PipelineRun",
    "PredictionBatch",
    "Project",
    "RecordRef",
    "Run",
    "RunRow",
    "StepRun",
    "SuiteVersion",
    "TriggerFiring",
    "ValidationRecord",
]
