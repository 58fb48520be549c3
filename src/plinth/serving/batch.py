"""Batch scoring: a registered model over a Parquet file, streamed in chunks.

The input is read one record batch at a time (bounded memory), each chunk is predicted
and appended to the output Parquet file, which appears under its name only when complete::

    result = predict_file("delays@champion", "flights.parquet", "preds.parquet")
    result.rows, result.model_version          # 1_000_000, "delays@4"

The output holds every input column plus ``prediction`` (and ``score``, the probability
of the positive class, for a binary classifier with ``predict_proba``). The input is
checked against the model's signature first: a missing or mistyped column stops before
anything is predicted; columns the model does not take are carried to the output, not
given to the model. With ``suite=`` each chunk's rows are checked by the suite's row-level
checks (as at the serving edge): failures are counted per check and written to an
``input_check_failures`` column; with ``reject=True`` rows failing an error-level check are
not scored but written, with that column, to ``rejects_path`` (default
``OUTPUT.rejects.parquet``). Lineage: inside an active run, ``run —used→ model_version``; with
``dataset=NAME`` the output becomes a version of that dataset and
``model_version —produced→ dataset_version``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.context import resolve_context, run_scope
from plinth.entities import RecordRef
from plinth.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import ModelVersion
    from plinth.progress import Progress
    from plinth.registry.flavors import PlinthModel

__all__ = ["OUTPUT_COLUMNS", "BatchResult", "predict_file"]

#: Columns batch scoring adds to the input's.
OUTPUT_COLUMNS = ("prediction", "score")
#: The column a suite's failures are written to (``check(column); ...``; null: passed).
FAILURES = "input_check_failures"


@dataclass(frozen=True)
class BatchResult:
    """What a batch scoring wrote: ``rows`` predictions of ``model_version`` (``NAME@N``)
    in ``output_path``; ``dataset_version`` (``NAME@N``) when it was added as one."""

    rows: int
    model_version: str
    output_path: Path
    chunks: int = 0
    dataset_version: str | None = None
    #: With a suite: rows failing each check (``between(size)``), rows not scored, where.
    check_failures: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejects_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "model_version": self.model_version,
            "output": str(self.output_path),
            "chunks": self.chunks,
            "dataset_version": self.dataset_version,
            "check_failures": self.check_failures,
            "rejected": self.rejected,
            "rejects": None if self.rejects_path is None else str(self.rejects_path),
        }


def _open_input(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UsageError(
            f"input file {path} does not exist", hint="pass a Parquet file", field="input"
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"{path} is not a readable Parquet file: {exc}",
            hint="batch scoring reads Parquet; convert CSV with pandas or DuckDB first",
            field="input",
        ) from None


def _features(version: ModelVersion, schema: pa.Schema, where: Path) -> list[str] | None:
    """The input columns the model takes, in its signature's order (None: all of them,
    the signature is a tensor or unknown); UsageError naming every problem."""
    from plinth.registry.flavors.signature import Signature

    if version.signature is None:
        return None
    signature = Signature.from_dict(version.signature)
    problems = [p for p in signature.check(schema.empty_table()) if p.kind != "extra"]
    if problems:
        raise UsageError(
            f"{where} does not fit the signature of {version.ref}: "
            + "; ".join(p.message for p in problems),
            hint=f"see the expected columns with: plinth models show {version.ref} --json",
            field=problems[0].field or "input",
        )
    if signature.is_tensor:
        return None
    return [spec.name for spec in signature.inputs]


def _binary_scores(model: PlinthModel, features: Any) -> Any:
    """The positive-class probabilities, or None when the model is no binary classifier."""
    import numpy as np

    try:
        proba = model.predict_proba
    except AttributeError:
        return None
    scores = np.asarray(proba(features))
    if scores.ndim != 2 or scores.shape[1] != 2:
        return None
    return scores[:, 1]


def _column(values: Any) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    if hasattr(values, "to_numpy"):  # pandas Series or DataFrame
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim > 1:
        if array.shape[1] == 1:
            return pa.array(array[:, 0])
        return pa.array(list(array))
    return pa.array(array)


def predict_file(
    ref: str | ModelVersion,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_rows: int = 50_000,
    trusted: bool = False,
    dataset: str | None = None,
    suite: Any = None,
    reject: bool = False,
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    ctx: Context | None = None,
) -> BatchResult:
    """Predict every row of the Parquet file ``input_path`` with model ``ref`` into
    ``output_path``, ``chunk_rows`` rows at a time; see the module docstring. ``progress``
    (:mod:`plinth.progress`) hears of the rows of each chunk as it is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from plinth.progress import reporter
    from plinth.registry import api

    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise UsageError(
            f"chunk_rows must be an integer >= 1, got {chunk_rows!r}", field="chunk_rows"
        )
    context = resolve_context(ctx)
    source, target = Path(input_path), Path(output_path)
    version = ref if not isinstance(ref, str) else api.get(ref, ctx=context)
    parquet = _open_input(source)
    schema = parquet.schema_arrow
    written = OUTPUT_COLUMNS if suite is None else (*OUTPUT_COLUMNS, FAILURES)
    taken = [name for name in written if name in schema.names]
    if taken:
        raise UsageError(
            f"{source} already has a column named {taken[0]!r}, which batch scoring writes",
            hint="rename or drop that column first",
            field="input",
        )
    features = _features(version, schema, source)
    gate = None if suite is None else _Gate(suite, features or schema.names, reject)
    model = api.load(version, trusted=trusted, ctx=context)
    total = parquet.metadata.num_rows
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    writer: pq.ParquetWriter | None = None
    rows = chunks = 0
    done = reporter(progress)
    done.start(total, "rows", label=f"scoring with {version.ref}")
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            if gate is not None:
                table = gate.check(table)
                if table.num_rows == 0:
                    chunks += 1
                    done.advance(batch.num_rows)
                    continue
            frame = (table.drop_columns([FAILURES]) if gate is not None else table).to_pandas()
            inputs = frame if features is None else frame[features]
            table = table.append_column("prediction", _column(model.predict(inputs)))
            scores = _binary_scores(model, inputs)
            if scores is not None:
                table = table.append_column("score", _column(scores))
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
            elif table.schema != writer.schema:
                table = table.cast(writer.schema)
            writer.write_table(table)
            rows += table.num_rows
            chunks += 1
            done.advance(batch.num_rows)
        if writer is None:  # nothing scored: an empty output with the input's columns
            empty = schema.empty_table()
            if gate is not None:
                empty = empty.append_column(FAILURES, pa.array([], pa.string()))
            empty = empty.append_column("prediction", pa.array([], pa.float64()))
            pq.write_table(empty, partial, compression="zstd")
        else:
            writer.close()
            writer = None
        os.replace(partial, target)
        rejects = None
        if gate is not None and gate.rejected:
            rejects = Path(rejects_path) if rejects_path else target.with_suffix(".rejects.parquet")
            from plinth.tables import write_parquet

            write_parquet(pa.concat_tables(gate.rejected), rejects)
    finally:
        if writer is not None:
            writer.close()
        done.finish()
        partial.unlink(missing_ok=True)
    made = _record_lineage(context, version, target, dataset, source)
    if gate is None:
        return BatchResult(rows, version.ref, target, chunks, made)
    rejected = sum(t.num_rows for t in gate.rejected)
    return BatchResult(
        rows, version.ref, target, chunks, made, dict(gate.counts), rejected, rejects
    )


class _Gate:
    """A suite's row checks over each chunk: counts failures, splits off rejected rows."""

    def __init__(self, suite: Any, fields: list[str], reject: bool) -> None:
        from plinth.serving.edge import EdgeSuite
        from plinth.validation import Suite

        loaded = suite if isinstance(suite, Suite) else Suite.load(suite)
        self.edge = EdgeSuite(loaded, fields)
        self.reject = reject
        self.counts: dict[str, int] = {}
        self.rejected: list[pa.Table] = []

    def check(self, table: pa.Table) -> pa.Table:
        """``table`` with an ``input_check_failures`` column, less the rejected rows."""
        import numpy as np
        import pyarrow as pa

        n = table.num_rows
        failures = self.edge.failures({name: table.column(name) for name in table.column_names}, n)
        for f in failures:
            label = f.check if f.column is None else f"{f.check}({f.column})"
            self.counts[label] = self.counts.get(label, 0) + 1
        table = table.append_column(FAILURES, pa.array(self.edge.per_row(failures, n), pa.string()))
        if not self.reject or not failures:
            return table
        bad = np.zeros(n, dtype=bool)
        bad[[f.row for f in failures if f.severity == "error"]] = True
        if bad.any():
            self.rejected.append(table.filter(pa.array(bad)))
        return table.filter(pa.array(~bad))


def _record_lineage(
    ctx: Context, version: ModelVersion, target: Path, dataset: str | None, source: Path
) -> str | None:
    model_ref = RecordRef("model_version", version.id)
    scope = run_scope()
    if scope is not None and scope.ctx is ctx:
        ctx.ledger.lineage.add(RecordRef("run", scope.run_id), model_ref, "used")
    if dataset is None:
        return None
    from plinth import datasets

    added = datasets.add(
        target, dataset, message=f"predictions of {version.ref} on {source.name}", ctx=ctx
    )
    ctx.ledger.lineage.add(model_ref, RecordRef("dataset_version", added.version.id), "produced")
    return added.version.ref
