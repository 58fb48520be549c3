"""Cell-level diffs of two notebooks (files, or the notebooks runs recorded), with nbdime.

nbdime matches the cells of the two notebooks (a cell edited a little is *modified*, not
removed and added); this module turns its diff into one entry per changed cell, with a
unified diff of the source and of the outputs as text::

    diff = diff_notebooks(load_notebook("a.ipynb"), load_notebook("0190c2a1"))
    for cell in diff.cells:
        print(cell.change, cell.a, cell.b, cell.source_diff, cell.output_diff)

Cell ids and execution counts change on every run and are left out of the comparison.
A notebook named by a run id is the one the run recorded: the executed ``notebook.ipynb`` of
a notebook step, else the ``source/notebook.ipynb`` of a run started inside Jupyter.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from plinth.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["CellDiff", "LoadedNotebook", "NotebookDiff", "diff_notebooks", "load_notebook"]

#: The artifacts a notebook is looked for under, for a run or step run id, in this order.
RECORDED_NOTEBOOKS = ("notebook.ipynb", "source/notebook.ipynb")
_FEATURE = "plinth nb diff"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class LoadedNotebook:
    """A notebook (nbformat v4 dict) and where it came from, for headers."""

    notebook: dict[str, Any]
    label: str


@dataclass(frozen=True)
class CellDiff:
    """One changed cell: ``change`` is added, removed or modified; ``a``/``b`` the cell's
    index in each notebook (None where it is absent); diffs are unified-diff lines."""

    change: str
    cell_type: str
    a: int | None
    b: int | None
    source_diff: list[str] = field(default_factory=list)
    output_diff: list[str] = field(default_factory=list)
    metadata_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "cell_type": self.cell_type,
            "a": self.a,
            "b": self.b,
            "source_diff": self.source_diff,
            "output_diff": self.output_diff,
            "metadata_changed": self.metadata_changed,
        }


@dataclass(frozen=True)
class NotebookDiff:
    """The cell-level diff of ``a`` and ``b``; ``raw`` is nbdime's structured diff (JSON)."""

    a: str
    b: str
    cells: list[CellDiff]
    metadata_changed: list[str]
    raw: list[dict[str, Any]]

    @property
    def identical(self) -> bool:
        return not self.cells and not self.metadata_changed

    def counts(self) -> dict[str, int]:
        found = {"added": 0, "removed": 0, "modified": 0}
        for cell in self.cells:
            found[cell.change] += 1
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "counts": self.counts(),
            "cells": [c.to_dict() for c in self.cells],
            "metadata_changed": self.metadata_changed,
            "nbdime": self.raw,
        }


def load_notebook(ref: str | Path, *, ctx: Context | None = None) -> LoadedNotebook:
    """The notebook in file ``ref``, else the one recorded by run (or step run) ``ref``."""
    path = Path(ref)
    if path.suffix == ".ipynb" or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read notebook {path}: {exc}", field="notebook") from None
        return LoadedNotebook(_parse(text, str(path)), str(path))
    return _recorded(str(ref), ctx)


def _recorded(ref: str, ctx: Context | None) -> LoadedNotebook:
    from plinth.context import resolve_context
    from plinth.entities import RecordRef

    ctx = resolve_context(ctx)
    owners: list[RecordRef] = []
    with contextlib.suppress(NotFoundError):  # not a run: maybe a step run
        owners.append(RecordRef("run", ctx.ledger.search.resolve_run_id(ref)))
    owners.append(RecordRef("step_run", ref))
    for owner in owners:
        for artifact_path in RECORDED_NOTEBOOKS:
            try:
                artifact = ctx.ledger.artifacts.get(owner, artifact_path)
            except NotFoundError:
                continue
            data = ctx.blobs.read_bytes(artifact.digest, size=artifact.size)
            label = f"{owner.type} {owner.id}:{artifact_path}"
            return LoadedNotebook(_parse(data.decode("utf-8", "replace"), label), label)
    raise NotFoundError(
        f"{ref!r} is neither a notebook file nor a run that recorded a notebook",
        hint="give an .ipynb path, or the id of a run started in Jupyter or of a notebook step",
        field="notebook",
    )


def _parse(text: str, label: str) -> dict[str, Any]:
    from plinth._extras import require

    nbformat = require("nbformat", feature=_FEATURE, extra="notebooks")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # JSON and format-version errors alike
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{label} is not a notebook: {first}", field="notebook") from None
    plain: dict[str, Any] = json.loads(json.dumps(nb))
    return plain


def _comparable(nb: dict[str, Any]) -> dict[str, Any]:
    """``nb`` without what changes on every run: cell ids and execution counts."""
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        cell.pop("id", None)
        if "execution_count" in cell:
            cell["execution_count"] = None
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = None
    return nb


def diff_notebooks(a: LoadedNotebook, b: LoadedNotebook) -> NotebookDiff:
    """The cell-level diff of two loaded notebooks (see the module docstring)."""
    from plinth._extras import require

    nbdime = require("nbdime", feature=_FEATURE, extra="notebooks")
    nbformat = require("nbformat", feature=_FEATURE, extra="notebooks")
    left, right = _comparable(a.notebook), _comparable(b.notebook)
    # nbdime reads attributes (cell.source): it wants NotebookNodes, not plain dicts.
    found = nbdime.diff_notebooks(nbformat.from_dict(left), nbformat.from_dict(right))
    raw = json.loads(json.dumps(found))
    cells: list[CellDiff] = []
    metadata: list[str] = []
    for entry in raw:
        if entry.get("key") == "cells":
            cells = _cells(entry, left["cells"], right["cells"])
        elif entry.get("key") == "metadata":
            metadata = sorted(str(e.get("key")) for e in entry.get("diff", []))
        elif entry.get("key") is not None:
            metadata.append(str(entry["key"]))
    return NotebookDiff(a.label, b.label, cells, metadata, raw)


def _cells(entry: dict[str, Any], left: list[Any], right: list[Any]) -> list[CellDiff]:
    """nbdime's list ops on the cells (sorted by index in ``left``; at one index an
    addrange comes before a removerange) as one :class:`CellDiff` per cell."""
    found: list[CellDiff] = []
    offset = 0  # index in right = index in left + offset
    for op in entry.get("diff", []):
        key = int(op["key"])
        if op["op"] == "addrange":
            for j, _ in enumerate(op["valuelist"]):
                cell = right[key + offset + j]
                found.append(
                    CellDiff(
                        "added",
                        cell.get("cell_type", "?"),
                        None,
                        key + offset + j,
                        _unified([], _source(cell)),
                        _unified([], _outputs(cell)),
                    )
                )
            offset += len(op["valuelist"])
        elif op["op"] == "removerange":
            for j in range(int(op["length"])):
                cell = left[key + j]
                found.append(
                    CellDiff(
                        "removed",
                        cell.get("cell_type", "?"),
                        key + j,
                        None,
                        _unified(_source(cell), []),
                        _unified(_outputs(cell), []),
                    )
                )
            offset -= int(op["length"])
        elif op["op"] == "patch":
            old, new = left[key], right[key + offset]
            changed = {str(e.get("key")) for e in op.get("diff", [])}
            found.append(
                CellDiff(
                    "modified",
                    new.get("cell_type", "?"),
                    key,
                    key + offset,
                    _unified(_source(old), _source(new)) if "source" in changed else [],
                    _unified(_outputs(old), _outputs(new)) if "outputs" in changed else [],
                    metadata_changed="metadata" in changed,
                )
            )
    return found


def _text(value: Any) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _source(cell: dict[str, Any]) -> list[str]:
    return _text(cell.get("source")).splitlines()


def _outputs(cell: dict[str, Any]) -> list[str]:
    """A cell's outputs as text lines: streams, plain-text results, errors, other media
    by type and size."""
    lines: list[str] = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            lines += _ANSI.sub("", _text(out.get("text"))).splitlines()
        elif kind == "error":
            lines.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/plain" in data:
                lines += _ANSI.sub("", _text(data["text/plain"])).splitlines()
            for media in sorted(k for k in data if k != "text/plain"):
                content = json.dumps(data[media], sort_keys=True).encode("utf-8")
                lines.append(f"<{media} {blake3(content).hexdigest()[:12]}>")
    return lines


def _unified(old: list[str], new: list[str]) -> list[str]:
    if old == new:
        return []
    body = list(difflib.unified_diff(old, new, lineterm="", n=2))
    return body[2:]  # without the ---/+++ header: the cell header says which cell
