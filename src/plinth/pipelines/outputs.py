"""Step outputs: stored as content-addressed blobs (recorded as artifacts of the step run by
the runner), or by reference for records the ledger already holds.

What a step returns decides how it is kept (the ``kind`` of its output entry):

- ``table``: a pandas or polars DataFrame or a pyarrow Table, as zstd Parquet (loaded back
  as the same library's type);
- ``array``: a numpy array, with ``np.save(allow_pickle=False)`` (object arrays are refused);
- ``json``: a value that survives a JSON round trip unchanged (dicts, lists, str, numbers);
- ``file``: a ``pathlib.Path`` to a file, its content (loaded back as a path to a copy);
- ``dataset_version``, ``model_version``, ``run``: by ledger id;
- ``none``: ``None``;
- ``memory``: anything else — passed to downstream steps in memory by the in-process
  executor, never stored, never cached. Nothing is ever pickled.

A tuple return value is stored element by element (outputs named ``0``, ``1``, ...).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.storage import ContentStore

__all__ = ["MEMORY", "encode", "load_outputs", "store_outputs"]

#: The marker kind of an output that lives only in memory.
MEMORY = "memory"
_REFERENCE_KINDS = ("dataset_version", "model_version", "run")


def _table_library(value: Any) -> str | None:
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and type(value).__name__ == "DataFrame":
        return "pandas"
    if module == "polars" and type(value).__name__ == "DataFrame":
        return "polars"
    if module == "pyarrow" and type(value).__name__ == "Table":
        return "arrow"
    return None


def encode(value: Any) -> tuple[bytes, str, str, str] | None:
    """``(bytes, kind, format, file suffix)`` for a value stored as a blob, else None."""
    library = _table_library(value)
    if library is not None:
        import pyarrow as pa

        from plinth.tables import to_arrow, write_parquet

        table = pa.Table.from_pandas(value) if library == "pandas" else to_arrow(value)
        buffer = io.BytesIO()
        write_parquet(table, buffer)
        return buffer.getvalue(), "table", library, ".parquet"
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            return None
        buffer = io.BytesIO()
        numpy.save(buffer, value, allow_pickle=False)
        return buffer.getvalue(), "array", "numpy", ".npy"
    if isinstance(value, dict | list | str | int | float | bool) and value is not None:
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError):
            return None
        if json.loads(text) != value or (isinstance(value, float) and value != value):
            return None
        return text.encode("utf-8"), "json", "json", ".json"
    return None


def _reference(value: Any) -> tuple[str, str] | None:
    from plinth.entities import DatasetVersion, ModelVersion, Run

    if isinstance(value, DatasetVersion):
        return "dataset_version", value.id
    if isinstance(value, ModelVersion):
        return "model_version", value.id
    if isinstance(value, Run):
        return "run", value.id
    # A tracking run handle (RunInfo, ActiveRun), recognised without importing tracking.
    cls = type(value)
    owner = tuple(cls.__module__.split(".")[:2])
    if owner == ("plinth", "tracking") and cls.__name__ in ("RunInfo", "ActiveRun"):
        return "run", str(getattr(value, "id", ""))
    return None


def _one(name: str, value: Any, blobs: ContentStore) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": "none", "digest": None, "path": None}
    entry.update(ref=None, size=0, format=None)
    if value is None:
        return entry
    ref = _reference(value)
    if ref is not None:
        kind, record_id = ref
        # Versions are keyed downstream by their manifest (content), runs by their id.
        entry.update(kind=kind, ref=record_id, manifest=getattr(value, "manifest_digest", None))
        return entry
    if isinstance(value, Path):
        if not value.is_file():
            raise UsageError(
                f"step output {name!r} is a path to {value}, which is not a file",
                hint="return a Path to a file (write folders as a dataset version)",
            )
        blob = blobs.put_file(value)
        entry.update(
            kind="file",
            digest=blob.digest,
            size=blob.size,
            path=f"outputs/{name}/{value.name}",
            format=str(value),
        )
        return entry
    encoded = encode(value)
    if encoded is None:
        entry.update(kind=MEMORY, format=type(value).__qualname__)
        return entry
    data, kind, fmt, suffix = encoded
    blob = blobs.put_bytes(data)
    entry.update(
        kind=kind, digest=blob.digest, size=blob.size, format=fmt, path=f"outputs/{name}{suffix}"
    )
    return entry


def store_outputs(value: Any, blobs: ContentStore) -> list[dict[str, Any]]:
    """The output entries of a step's return value, its blobs written to ``blobs``."""
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        entries = [_one(str(i), v, blobs) for i, v in enumerate(value)]
        for entry in entries:
            entry["tuple"] = len(value)
        return entries or [{"name": "return", "kind": "none", "digest": None, "tuple": 0}]
    return [_one("return", value, blobs)]


def _decode(entry: dict[str, Any], ctx: Context) -> Any:
    kind = entry.get("kind")
    if kind == "none":
        return None
    if kind == "dataset_version":
        return ctx.ledger.datasets.get_version_by_id(entry["ref"])
    if kind == "model_version":
        return ctx.ledger.models.get_version_by_id(entry["ref"])
    if kind == "run":
        return ctx.ledger.runs.get_run(entry["ref"])
    if kind == MEMORY:
        raise UsageError(
            f"output {entry.get('name')!r} ({entry.get('format')}) was kept in memory only",
            hint="return a table, an array, a JSON value, a Path or a record to store it",
        )
    data = ctx.blobs.read_bytes(entry["digest"], size=entry.get("size"))
    if kind == "json":
        return json.loads(data)
    if kind == "table":
        from plinth.tables import convert, read_bytes

        table = read_bytes(data, "output.parquet")
        if entry.get("format") == "pandas":
            return table.to_pandas()
        return convert(table, entry.get("format") or "arrow")
    if kind == "array":
        import numpy

        return numpy.load(io.BytesIO(data), allow_pickle=False)
    if kind == "file":
        original = Path(entry.get("format") or "")
        if original.is_file():
            from plinth.storage.content import hash_file

            if hash_file(original).digest == entry["digest"]:
                return original
        where = ctx.settings.resolve_path(".plinth/outputs") / entry["digest"]
        where.mkdir(parents=True, exist_ok=True)
        target = where / Path(entry["path"]).name
        if not target.is_file():
            ctx.blobs.copy_to(entry["digest"], target)
        return target
    raise UsageError(f"unknown step output kind {kind!r}")


def load_outputs(entries: list[dict[str, Any]], ctx: Context) -> Any:
    """The value a step returned, rebuilt from its output entries."""
    if entries and "tuple" in entries[0]:
        return tuple(_decode(e, ctx) for e in entries if e.get("tuple", 0))
    if not entries:
        return None
    return _decode(entries[0], ctx)


def is_stored(entries: list[dict[str, Any]]) -> bool:
    """Whether every output can be loaded again (nothing lived only in memory)."""
    return all(e.get("kind") != MEMORY for e in entries)


def output_digest(entry: dict[str, Any]) -> str | None:
    """What downstream cache keys see of an output: its content digest, or the record id."""
    if entry.get("kind") in _REFERENCE_KINDS:
        return f"{entry['kind']}:{entry.get('manifest') or entry['ref']}"
    if entry.get("kind") == "none":
        return "none"
    return entry.get("digest")
