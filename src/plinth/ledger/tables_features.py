"""The feature store's tables (migration 0009): definition versions, materializations and
pushed batches. Registered on :data:`plinth.ledger.tables.metadata`, which imports this
module, so ``from plinth.ledger.tables import feature_definitions`` keeps working."""

from __future__ import annotations

import sqlalchemy as sa

from plinth.ledger.columns import ID, MS, NAME, metadata
from plinth.ledger.columns import created_columns as _created

__all__ = ["feature_definitions", "feature_materializations", "feature_pushes"]

#: One version of a feature-store definition (0009): an entity, a feature view, an on-demand
#: view or a feature service, numbered per (kind, name) and keyed by the digest of its
#: canonical spec (applying the same definition again is the same version).
feature_definitions = sa.Table(
    "feature_definitions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    # Which version is current: the one applied last (a revert to an earlier spec makes that
    # earlier version current again). Taken as max + 1 per (kind, name) when applied.
    sa.Column("applied_seq", sa.Integer, nullable=False),
    *_created(),
    sa.UniqueConstraint("project_id", "kind", "name", "number"),
    sa.UniqueConstraint("project_id", "kind", "name", "digest"),
)

#: One materialization of one feature-view version into the online store (0009): the
#: event-time window written, the rows written and where (the store, without secrets).
feature_materializations = sa.Table(
    "feature_materializations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("view", NAME, nullable=False),
    sa.Column("definition_id", ID, sa.ForeignKey("feature_definitions.id"), nullable=False),
    sa.Column("start_ms", MS, nullable=True),
    sa.Column("end_ms", MS, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("store", sa.Text, nullable=False),
    # What the rows were read from (dataset version ids, Parquet file stamps): a window is
    # only incremental over the same sources; new ones are materialized from the start.
    sa.Column("sources", sa.JSON, nullable=True),
    *_created(),
    sa.Index(None, "project_id", "view"),
)

#: Rows pushed to a view (0009): a Parquet blob appended to the view's offline log, so
#: training sets see what the online store was given.
feature_pushes = sa.Table(
    "feature_pushes",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("view", NAME, nullable=False),
    sa.Column("definition_id", ID, sa.ForeignKey("feature_definitions.id"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    *_created(),
    sa.Index(None, "project_id", "view"),
)
