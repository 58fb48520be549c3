"""Label batches: reading a labels file, the one rule for repeated keys, and the batches
recorded for a deployment (list, show, delete)::

    list_label_batches("web")                       # live batches, oldest first
    show_label_batch(batch_id).in_use               # its labels that still count
    delete_label_batch(batch_id, reason="wrong export")

A batch is identified by the digest of its stored Parquet: recording the same labels
twice is a no-op. When a key is labelled more than once, the latest label wins: the
latest batch by record time and, inside a batch, the last row. Superseded labels are
counted, never an error. A deleted batch stays as a tombstone (who, when, why) and no
longer counts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plinth.context import resolve_context
from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import LabelBatch

__all__ = [
    "CurrentLabels",
    "LabelBatchDetails",
    "current_labels",
    "delete_label_batch",
    "latest_labels",
    "list_label_batches",
    "show_label_batch",
]

#: Columns of the prediction log a key cannot be.
NOT_KEYS = ("ts", "model_version", "prediction", "label")
_BATCH = "__plinth_batch"
_SEQ = "__plinth_seq"


def read_labels(labels: Any) -> tuple[pa.Table, str]:
    """The labels as an Arrow table, and how to name them in messages."""
    from plinth.tables import read_file, table_format, to_arrow

    if isinstance(labels, str | Path):
        path = Path(labels)
        if table_format(path) is None:
            raise UsageError(f"labels file {path} is not .parquet or .csv", field="labels")
        if not path.is_file():
            raise UsageError(f"no labels file {path}", field="labels")
        return read_file(path, field="labels"), str(path)
    table = to_arrow(
        labels,
        refuse="labels must be a .parquet/.csv path, an Arrow table or a DataFrame, not {type}",
        field="labels",
    )
    return table, "the labels table" if table is labels else "the labels frame"


def label_column_of(table: pa.Table, key: str, label_column: str | None, source: str) -> str:
    """The column of ``table`` holding the labels; UsageError naming ``source`` if unclear."""
    names = table.column_names
    listed = ", ".join(names)
    if key in NOT_KEYS:
        raise UsageError(
            f"{key!r} cannot be a join key",
            hint="join on request_id or on an input column both the log and the labels hold",
            field="key",
        )
    if key not in names:
        raise UsageError(
            f"{source} has no key column {key!r}; its columns: {listed}",
            hint="pass --key with the column that names each prediction",
            field="key",
        )
    if label_column is None:
        others = [name for name in names if name != key]
        if len(others) == 1:
            label_column = others[0]
        elif "label" in others:
            label_column = "label"
        else:
            raise UsageError(
                f"which column of {source} holds the labels? its columns: {listed}",
                hint="pass --label-column",
                field="label_column",
            )
    if label_column not in names:
        raise UsageError(
            f"{source} has no label column {label_column!r}; its columns: {listed}",
            field="label_column",
        )
    if label_column == key:
        raise UsageError(f"the label column {key!r} is also the key", field="label_column")
    return label_column


def numeric(column: pa.ChunkedArray, what: str) -> pa.ChunkedArray:
    """``column`` as float64; UsageError (naming ``what``) unless numbers or booleans."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        raise UsageError(
            f"{what} holds a list per row (multi-output): not supported",
            hint="performance is computed for one number per row",
        )
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise UsageError(
            f"{what} must hold numbers or booleans, not {kind}",
            hint="encode classes as 0/1 (or the numbers the model predicts)",
        )
    return column.cast(pa.float64())


def truth_of(table: pa.Table, key: str, label_column: str, source: str) -> pa.Table:
    """Columns ``KEY`` and ``label`` (float64) of the rows with a finite label."""
    import pyarrow.compute as pc

    truth = table.select([key, label_column]).rename_columns([key, "label"])
    label = numeric(truth.column("label"), f"label column {label_column!r} of {source}")
    truth = truth.set_column(1, "label", label)
    return truth.filter(pc.is_finite(truth.column("label")))


def latest_labels(truth: pa.Table, key: str) -> tuple[pa.Table, int]:
    """The last row of ``truth`` for each key, in their order, and how many rows they
    superseded. Rows are in record order, so the last one is the latest label."""
    import pyarrow as pa

    n = truth.num_rows
    if n == 0:
        return truth, 0
    numbered = truth.append_column(_SEQ, pa.array(np.arange(n, dtype=np.int64)))
    last = numbered.group_by(key, use_threads=False).aggregate([(_SEQ, "max")])
    if last.num_rows == n:
        return truth, 0
    keep = np.sort(last.column(f"{_SEQ}_max").to_numpy())
    return truth.take(pa.array(keep)), n - last.num_rows


# -- the batches of a deployment -----------------------------------------------------------
@dataclass(frozen=True)
class CurrentLabels:
    """The labels that count for a deployment: one per key, the latest."""

    table: pa.Table  # columns KEY and label
    batches: int
    rows: int  # label rows read, before the latest-wins rule
    superseded: int  # rows replaced by a later label for the same key


def _resolved(
    ctx: Context, batches: list[LabelBatch], key: str, label_column: str | None
) -> tuple[pa.Table, int, int]:
    """Every batch's labels in record order with the batch's position, deduplicated:
    (table with KEY, label and the position, rows read, rows superseded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for position, batch in enumerate(batches):
        table = pq.read_table(pa.BufferReader(ctx.blobs.read_bytes(batch.digest)))
        source = f"label batch {batch.id}"
        column = label_column_of(table, key, batch.label_column or label_column, source)
        truth = truth_of(table, key, column, source)
        where = pa.array(np.full(truth.num_rows, position, dtype=np.int32))
        parts.append(truth.append_column(_BATCH, where))
    if not parts:
        empty = pa.table({key: pa.array([], pa.string()), "label": pa.array([], pa.float64())})
        return empty.append_column(_BATCH, pa.array([], pa.int32())), 0, 0
    everything = pa.concat_tables(parts, promote_options="permissive")
    latest, superseded = latest_labels(everything, key)
    return latest, everything.num_rows, superseded


def current_labels(
    deployment: str,
    *,
    key: str = "request_id",
    label_column: str | None = None,
    ctx: Context | None = None,
) -> CurrentLabels:
    """The live label batches of ``deployment`` joined on ``key``, one label per key (the
    latest). ``label_column`` is used for batches recorded before their column was."""
    ctx = resolve_context(ctx)
    batches = [
        b for b in ctx.ledger.monitoring.label_batches(ctx.project.id, deployment) if b.key == key
    ]
    table, rows, superseded = _resolved(ctx, batches, key, label_column)
    return CurrentLabels(table.drop_columns([_BATCH]), len(batches), rows, superseded)


def batch_dict(batch: LabelBatch) -> dict[str, Any]:
    """A batch as JSON-ready data."""
    return {**dataclasses.asdict(batch), "deleted": batch.deleted}


def list_label_batches(
    deployment: str | None = None,
    *,
    include_deleted: bool = False,
    ctx: Context | None = None,
) -> list[LabelBatch]:
    """Label batches of the project (of one deployment), oldest first."""
    ctx = resolve_context(ctx)
    if deployment is not None:
        ctx.ledger.deployments.get(ctx.project.id, deployment)  # NotFoundError names it
    return ctx.ledger.monitoring.label_batches(
        ctx.project.id, deployment, include_deleted=include_deleted
    )


@dataclass(frozen=True)
class LabelBatchDetails:
    """A batch with how many of its labels count now under the latest-wins rule."""

    batch: LabelBatch
    labelled: int  # rows with a label value
    keys: int  # distinct keys among them
    in_use: int  # its labels that count now (0 once deleted)

    @property
    def duplicates(self) -> int:
        """Rows replaced by a later row of the same batch."""
        return self.labelled - self.keys

    @property
    def superseded_by_later(self) -> int:
        """Keys a later batch labels again (not counted once deleted)."""
        return 0 if self.batch.deleted else self.keys - self.in_use

    def to_dict(self) -> dict[str, Any]:
        return {
            **batch_dict(self.batch),
            "labelled": self.labelled,
            "keys": self.keys,
            "duplicates": self.duplicates,
            "superseded_by_later": self.superseded_by_later,
            "in_use": self.in_use,
        }


def show_label_batch(batch_id: str, *, ctx: Context | None = None) -> LabelBatchDetails:
    """One batch (deleted or not) and how many of its labels count now."""
    import pyarrow.compute as pc

    ctx = resolve_context(ctx)
    batch = ctx.ledger.monitoring.get_label_batch(ctx.project.id, batch_id)
    _, labelled, duplicates = _resolved(ctx, [batch], batch.key, None)
    in_use = 0
    if not batch.deleted:
        live = [
            b
            for b in ctx.ledger.monitoring.label_batches(ctx.project.id, batch.deployment)
            if b.key == batch.key
        ]
        latest, _, _ = _resolved(ctx, live, batch.key, None)
        position = [b.id for b in live].index(batch.id)
        in_use = int(pc.sum(pc.equal(latest.column(_BATCH), position)).as_py() or 0)
    return LabelBatchDetails(batch, labelled, labelled - duplicates, in_use)


def delete_label_batch(batch_id: str, *, reason: str, ctx: Context | None = None) -> LabelBatch:
    """Delete a label batch: recorded with who, when and ``reason``; performance checks
    no longer read it. Its row and blob stay, for the audit."""
    ctx = resolve_context(ctx)
    return ctx.ledger.monitoring.delete_label_batch(ctx.project.id, batch_id, reason=reason)
