"""The ledger's tables as SQLAlchemy Core objects; migrations create them, stores query them.

IDs are ``String(36)`` UUIDv7 strings (:func:`plinth.ids.new_id`); every timestamp is a
``BigInteger`` of epoch milliseconds (:func:`plinth.ids.now_ms`). A change here needs a new
revision in ``migrations/versions``: these objects describe the schema, they never create it.
"""

from __future__ import annotations

import sqlalchemy as sa

from plinth.ledger.columns import ID, MS, NAME, REF_ID, USER, metadata
from plinth.ledger.columns import created_columns as _created

# The feature store's and the pipelines' tables live in their own modules (one concept
# each), registered on the same ``metadata``; re-exported here.
from plinth.ledger.tables_features import (
    feature_definitions,
    feature_materializations,
    feature_pushes,
)
from plinth.ledger.tables_pipelines import (
    pipeline_decisions,
    pipeline_runs,
    step_runs,
    trigger_firings,
)

__all__ = [
    "BLOB_REFERENCES",
    "alerts",
    "artifacts",
    "dataset_blobs",
    "dataset_erasures",
    "dataset_tags",
    "dataset_versions",
    "datasets",
    "deployments",
    "environments",
    "experiments",
    "feature_definitions",
    "feature_materializations",
    "feature_pushes",
    "gc_events",
    "label_batches",
    "latest_metrics",
    "lineage_edges",
    "metadata",
    "metrics",
    "model_aliases",
    "model_versions",
    "models",
    "monitor_reports",
    "params",
    "pipeline_decisions",
    "pipeline_runs",
    "prediction_batches",
    "projects",
    "registry_events",
    "runs",
    "schema_log",
    "step_runs",
    "tags",
    "trigger_firings",
    "validation_results",
    "validation_suites",
]

#: Every (table, column) holding a blob digest: ``plinth gc`` keeps each digest found there.
#: A table that references blobs appends itself here in the same change that creates it.
BLOB_REFERENCES: tuple[tuple[str, str], ...] = (
    ("artifacts", "digest"),
    ("dataset_versions", "manifest_digest"),
    ("dataset_blobs", "digest"),
    ("dataset_versions", "profile_digest"),
    ("validation_suites", "digest"),
    ("validation_results", "report_digest"),
    ("model_versions", "manifest_digest"),
    ("deployments", "digest"),
    ("prediction_batches", "digest"),
    ("prediction_batches", "profile_digest"),
    ("monitor_reports", "report_digest"),
    ("label_batches", "digest"),
    ("feature_pushes", "digest"),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    *_created(),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    *_created(),
    sa.UniqueConstraint("project_id", "name"),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("python", NAME, nullable=False),
    sa.Column("platform", NAME, nullable=False),
    sa.Column("packages", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    *_created(),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", ID, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", NAME, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", MS, nullable=False),
    sa.Column("end_time", MS, nullable=True),
    sa.Column("parent_run_id", ID, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("environment_id", ID, sa.ForeignKey("environments.id"), nullable=True),
    sa.Column("source", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("host", NAME, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    *_created(),
    #: Soft delete: set by ``plinth runs delete``; lists skip the run, gc frees its blobs.
    sa.Column("deleted_at", MS, nullable=True),
    sa.Index(None, "experiment_id", "deleted_at", "start_time"),
    sa.Index(None, "deleted_at", "start_time"),
    sa.Index(None, "status"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", NAME, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    *_created(),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", NAME, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    *_created(),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("key", NAME, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", MS, nullable=False),
    # NULL stands for NaN: SQLite cannot store NaN, so both backends store NULL.
    sa.Column("value", sa.Double, nullable=True),
    sa.Index(None, "run_id", "key", "step", "value"),
)

#: Per (run, key) the point with the highest (step, timestamp, seq): what run lists and
#: searches read instead of ``metrics``. ``RunStore.log_metrics`` keeps it current.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", NAME, primary_key=True),
    sa.Column("value", sa.Double, nullable=True),  # NULL stands for NaN, as in metrics
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", MS, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Index(None, "key", "value"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("owner_type", sa.String(64), primary_key=True),
    sa.Column("owner_id", REF_ID, primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", NAME, nullable=True),
    *_created(),
    sa.Index(None, "digest"),
)

lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("src_type", sa.String(64), nullable=False),
    sa.Column("src_id", REF_ID, nullable=False),
    sa.Column("dst_type", sa.String(64), nullable=False),
    sa.Column("dst_id", REF_ID, nullable=False),
    sa.Column("relation", sa.String(64), nullable=False),
    *_created(),
    sa.UniqueConstraint("src_type", "src_id", "dst_type", "dst_id", "relation"),
    sa.Index(None, "src_type", "src_id"),
    sa.Index(None, "dst_type", "dst_id"),
)

#: A named dataset of a project. ``versions`` counts its versions: a new version's number is
#: taken by incrementing it in the inserting transaction (a row lock on PostgreSQL, the
#: write lock on SQLite), so concurrent writers get distinct, consecutive numbers.
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("versions", sa.Integer, nullable=False),
    *_created(),
    sa.UniqueConstraint("project_id", "name"),
)

#: One immutable snapshot: its manifest (a blob listing path -> digest, size) and summary.
dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("parent_number", sa.Integer, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("manifest_digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.BigInteger, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=True),
    sa.Column("schema", sa.JSON, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    *_created(),
    # published | quarantined (failed its suite when added) | erased (by data forget)
    sa.Column("status", sa.String(16), nullable=False, server_default="published"),
    sa.Column("profile_digest", sa.String(64), nullable=True),
    sa.UniqueConstraint("dataset_id", "number"),
    sa.Index(None, "manifest_digest"),
)

#: ``NAME@TAG`` names a version: a tag points at one version of its dataset.
dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("tag", NAME, primary_key=True),
    sa.Column("number", sa.Integer, nullable=False),
    *_created(),
)

#: Every file blob some version of a dataset lists in its manifest, so that ``plinth gc``
#: keeps them (manifests are blobs; gc reads columns). A version records only the digests
#: its parent did not list.
dataset_blobs = sa.Table(
    "dataset_blobs",
    metadata,
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("created_at", MS, nullable=False),
    sa.Index(None, "digest"),
)

#: ``data forget``'s audit trail: the one sanctioned change to published versions.
dataset_erasures = sa.Table(
    "dataset_erasures",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("predicate", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("rows_removed", sa.BigInteger, nullable=False),
    sa.Column("new_number", sa.Integer, nullable=True),
    sa.Column("erased_numbers", sa.JSON, nullable=False),
    sa.Column("released_blobs", sa.JSON, nullable=False),
    *_created(),
    sa.Index(None, "dataset_id"),
)

#: A named suite's versions; ``digest`` is the blob of its YAML text.
validation_suites = sa.Table(
    "validation_suites",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    *_created(),
    sa.UniqueConstraint("project_id", "name", "number"),
    sa.UniqueConstraint("project_id", "name", "digest"),
)

#: One suite version run on one target (a dataset version, or a file outside the ledger).
validation_results = sa.Table(
    "validation_results",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("suite_id", ID, sa.ForeignKey("validation_suites.id"), nullable=False),
    sa.Column("dataset_version_id", ID, sa.ForeignKey("dataset_versions.id"), nullable=True),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("error_count", sa.Integer, nullable=False),
    sa.Column("warning_count", sa.Integer, nullable=False),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("report_digest", sa.String(64), nullable=True),
    *_created(),
    sa.Index(None, "suite_id"),
    sa.Index(None, "dataset_version_id"),
)

#: A named model of a project. ``versions`` counts its versions: a new version's number is
#: taken by incrementing it in the inserting transaction, as for ``datasets``.
models = sa.Table(
    "models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("versions", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    *_created(),
    sa.UniqueConstraint("project_id", "name"),
)

#: One registered model: its manifest (a blob listing path -> digest, size), the run that
#: made it, a snapshot of that run's final metrics and the digests of the files that need
#: pickle to load (recorded when the model was logged, checked when it is loaded).
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("run_id", ID, nullable=True),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("manifest_digest", sa.String(64), nullable=False),
    sa.Column("signature", sa.JSON, nullable=True),
    sa.Column("environment_id", ID, nullable=True),
    sa.Column("metrics", sa.JSON, nullable=True),
    sa.Column("trusted_digests", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    *_created(),
    sa.UniqueConstraint("model_id", "number"),
    sa.Index(None, "run_id"),
    sa.Index(None, "manifest_digest"),
)

#: ``NAME@ALIAS`` names a version; aliases move only by compare-and-swap, each move audited.
model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", NAME, primary_key=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("updated_by", USER, nullable=False),
)

#: The audit trail of alias moves: who moved which alias from where to where, and why.
#: ``to_number`` NULL records a deleted alias; ``from_number`` NULL a newly set one.
registry_events = sa.Table(
    "registry_events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", NAME, nullable=False),
    sa.Column("from_number", sa.Integer, nullable=True),
    sa.Column("to_number", sa.Integer, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    *_created(),
    sa.Index(None, "model_id"),
)

#: A deployment spec (YAML, a blob) by name; the same text again is the same version.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    *_created(),
    sa.UniqueConstraint("project_id", "name", "number"),
    sa.UniqueConstraint("project_id", "name", "digest"),
)

#: One Parquet blob of logged predictions: its time range and request-id range (UUIDv7,
#: time-sortable), so a request id finds its batch with one indexed read.
prediction_batches = sa.Table(
    "prediction_batches",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("deployment_id", ID, sa.ForeignKey("deployments.id"), nullable=False),
    sa.Column("start_ms", MS, nullable=False),
    sa.Column("end_ms", MS, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("model_versions", sa.JSON, nullable=False),
    sa.Column("first_request_id", ID, nullable=False),
    sa.Column("last_request_id", ID, nullable=False),
    sa.Column("dropped", sa.BigInteger, nullable=False),
    *_created(),
    #: The batch's profile, computed once when a monitor first reads the batch.
    sa.Column("profile_digest", sa.String(64), nullable=True),
    sa.Index(None, "deployment_id", "start_ms"),
    sa.Index(None, "first_request_id"),
)

#: One evaluation of a monitor (kind ``monitor``), an ad-hoc drift check (``drift``) or a
#: join of labels (``performance``); ``results`` holds every check's outcome.
monitor_reports = sa.Table(
    "monitor_reports",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("monitor", NAME, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("deployment_id", ID, sa.ForeignKey("deployments.id"), nullable=True),
    sa.Column("dataset", NAME, nullable=True),
    sa.Column("reference", NAME, nullable=True),
    sa.Column("window_start_ms", MS, nullable=True),
    sa.Column("window_end_ms", MS, nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=True),
    sa.Column("drift_share", sa.Float, nullable=True),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("report_digest", sa.String(64), nullable=True),
    sa.Column("spec", sa.JSON, nullable=True),
    *_created(),
    sa.Index(None, "project_id", "monitor", "created_at"),
)

#: One delivery decision per alert and route: sent, suppressed (cool-down) or failed.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("report_id", ID, sa.ForeignKey("monitor_reports.id"), nullable=True),
    sa.Column("monitor", NAME, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("route", NAME, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    *_created(),
    sa.Index(None, "project_id", "monitor", "fingerprint", "route", "created_at"),
)

#: Ground truth joined to logged predictions (``plinth monitor labels``): a Parquet blob.
label_batches = sa.Table(
    "label_batches",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("deployment", NAME, nullable=False),
    sa.Column("key", NAME, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("matched", sa.BigInteger, nullable=False),
    *_created(),
    # 0008: the label column joined, and a tombstone (who deleted it, when, why).
    sa.Column("label_column", NAME, nullable=True),
    sa.Column("deleted_at", MS, nullable=True),
    sa.Column("deleted_by", USER, nullable=True),
    sa.Column("delete_reason", sa.Text, nullable=True),
    sa.Index(None, "project_id", "deployment"),
    sa.Index(None, "project_id", "deployment", "digest"),
)

gc_events = sa.Table(
    "gc_events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("blobs_deleted", sa.BigInteger, nullable=False),
    sa.Column("bytes_deleted", sa.BigInteger, nullable=False),
    sa.Column("digests", sa.JSON, nullable=False),
    *_created(),
)

#: One row per revision each time the migrator applies it; proves "migrated exactly once".
schema_log = sa.Table(
    "schema_log",
    metadata,
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("applied_at", MS, nullable=False),
    sa.Column("applied_by_pid", sa.Integer, nullable=False),
    sa.Column("host", NAME, nullable=False),
)
