"""What a monitor looks at: the window of logged predictions, its merged batch profiles,
and the reference profile found through lineage.

A prediction-log batch is profiled the first time a monitor reads it; the profile goes to
the blob store and its digest onto the batch's ledger row (set once), so later windows
only merge stored profiles. The reference of a deployment is the stored profile of the
dataset version its model was trained on: deployment -> model version -> run -> dataset
versions the run used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import PredictionBatch
    from plinth.monitoring.spec import Window
    from plinth.profiles import TableProfile

__all__ = [
    "LOG_COLUMNS",
    "baseline_batches",
    "batch_profile",
    "lineage_reference",
    "merged_profile",
    "read_batches",
    "version_reference",
    "window_batches",
]

#: Columns of a prediction-log batch that are bookkeeping, not model inputs or outputs.
LOG_COLUMNS = ("request_id", "ts", "model_version")


def window_batches(
    ctx: Context, deployment: str, window: Window, now_ms: int
) -> list[PredictionBatch]:
    """The batches of the window ending at ``now_ms``: newest whole batches until they hold
    ``window.rows`` rows, or every batch that ends within the last ``window.seconds``."""
    store = ctx.ledger.deployments
    if window.seconds is not None:
        since = now_ms - int(window.seconds * 1000)
        return store.batches_of(ctx.project.id, deployment, since_ms=since, until_ms=now_ms)
    batches = store.batches_of(ctx.project.id, deployment, until_ms=now_ms)
    picked: list[PredictionBatch] = []
    rows = 0
    for batch in reversed(batches):
        if window.rows is not None and rows >= window.rows:
            break
        picked.append(batch)
        rows += batch.rows
    return picked[::-1]


def baseline_batches(ctx: Context, deployment: str, window: Window) -> list[PredictionBatch]:
    """The deployment's first window of logged predictions: the baseline of prediction drift."""
    batches = ctx.ledger.deployments.batches_of(ctx.project.id, deployment)
    if not batches:
        return []
    if window.seconds is not None:
        until = batches[0].start_ms + int(window.seconds * 1000)
        return [b for b in batches if b.end_ms <= until] or batches[:1]
    picked: list[PredictionBatch] = []
    rows = 0
    for batch in batches:
        if window.rows is not None and rows >= window.rows:
            break
        picked.append(batch)
        rows += batch.rows
    return picked


def _batch_table(ctx: Context, batch: PredictionBatch, columns: Sequence[str] | None) -> pa.Table:
    import pyarrow.parquet as pq

    data = ctx.blobs.read_bytes(batch.digest)
    if columns is None:
        return pq.read_table(io.BytesIO(data))
    present = pq.read_schema(io.BytesIO(data)).names
    return pq.read_table(io.BytesIO(data), columns=[c for c in columns if c in present])


def batch_profile(ctx: Context, batch: PredictionBatch) -> TableProfile:
    """The profile of a batch's inputs and predictions: stored, or computed and stored."""
    from plinth.profiles import TableProfile, profile_table

    if batch.profile_digest is not None:
        return TableProfile.from_bytes(
            ctx.blobs.read_bytes(batch.profile_digest), where=f"the profile of batch {batch.id}"
        )
    table = _batch_table(ctx, batch, None)
    table = table.drop_columns([c for c in LOG_COLUMNS if c in table.column_names])
    profile = profile_table(table)
    ref = ctx.blobs.put_bytes(profile.to_bytes())
    ctx.ledger.deployments.set_batch_profile(batch.id, ref.digest)
    return profile


def merged_profile(ctx: Context, batches: Sequence[PredictionBatch]) -> TableProfile | None:
    """The profile of the union of ``batches`` (None for no batch). Batches whose columns
    differ (a changed signature) are merged over the columns they share."""
    merged: TableProfile | None = None
    for batch in batches:
        profile = batch_profile(ctx, batch)
        if merged is None:
            merged = profile
            continue
        if list(merged.columns) != list(profile.columns):
            shared = [c for c in merged.columns if c in profile.columns]
            merged, profile = _only(merged, shared), _only(profile, shared)
        merged = merged.merge(profile)
    return merged


def _only(profile: TableProfile, names: Sequence[str]) -> TableProfile:
    from dataclasses import replace

    return replace(
        profile,
        columns={n: profile.columns[n] for n in names},
        schema=[s for s in profile.schema if s["name"] in names],
    )


def read_batches(
    ctx: Context, batches: Sequence[PredictionBatch], columns: Sequence[str] | None = None
) -> pa.Table:
    """The rows of ``batches`` as one table (only ``columns`` when given)."""
    import pyarrow as pa

    tables = [_batch_table(ctx, b, columns) for b in batches]
    if not tables:
        raise UsageError("no logged predictions in the window", field="window")
    return pa.concat_tables(tables, promote_options="permissive")


def version_reference(ctx: Context, ref: str) -> tuple[str, TableProfile]:
    """The stored profile of dataset version ``ref`` (e.g. flights@9)."""
    from plinth import datasets

    version = datasets.get(ref, ctx=ctx)
    return version.ref, datasets.profile(version, ctx=ctx)


def lineage_reference(
    ctx: Context, deployment: str, features: Sequence[str] = ()
) -> tuple[str, TableProfile]:
    """The reference of a deployment: the stored profile of the dataset version its model
    was trained on. With several, the one sharing most of ``features``."""
    from plinth import datasets
    from plinth.registry import api

    spec = ctx.ledger.deployments.get(ctx.project.id, deployment).spec
    model_ref = str(spec.get("model"))
    card = api.card(model_ref, ctx=ctx)
    used = [d for d in card["data"] if d.get("ref") and not d.get("missing")]
    hint = (
        "train the model in a run that loads its data with plinth.datasets.load, or give "
        "the monitor an explicit 'reference: NAME@VERSION'"
    )
    if not used:
        raise NotFoundError(
            f"{card['ref']} (served by {deployment}) has no training data in its lineage",
            hint=hint,
            field="reference",
        )
    best: tuple[int, str, Any] | None = None
    for data in used:
        version = ctx.ledger.datasets.get_version_by_id(data["id"])
        if version.kind != "table" or version.status == "erased":
            continue
        profile = datasets.profile(version, ctx=ctx)
        shared = len(set(features) & set(profile.columns))
        if best is None or shared > best[0]:
            best = (shared, version.ref, profile)
    if best is None:
        raise NotFoundError(
            f"the data {card['ref']} was trained on holds no profiled table",
            hint=hint,
            field="reference",
        )
    return best[1], best[2]
