"""On-demand feature views: where their function lives, loading it, and running it.

``describe_function(fn, root=...)`` names a callable for the ledger (``"path.py:qualname"``
when its file is in the project) and digests its source. ``load_function(view, ctx=...,
trust_code=...)`` returns the callable to run: one given in-process as is; one recorded as
``"path.py:name"`` only when the caller opts in (``trust_code=True``, ``--trust-code``),
from a file inside the project root, and only while its source still has the digest
recorded at apply. ``compute(view, frame, fn)`` calls the function once per batch with a
pandas DataFrame and checks and casts what it returns to the declared feature types.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.features.definitions import FeatureSelection, FeatureView, OnDemandFeatureView

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context

__all__ = [
    "arrow_type",
    "compute",
    "describe_function",
    "digest_ref",
    "input_names",
    "load_function",
]

_TRUST_HINT = (
    "run it only if you trust whoever applied the definition: pass trust_code=True (API) "
    "or --trust-code (CLI), or pass the function itself"
)


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a feature type (:data:`~plinth.features.definitions.FEATURE_TYPES`);
    timestamps are microseconds in UTC."""
    import pyarrow as pa

    types = {
        "float64": pa.float64(),
        "int64": pa.int64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return types[name]


def _source_digest(fn: Callable[..., Any], what: str) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        raise UsageError(
            f"function: the source of {what} cannot be read",
            hint="define the on-demand function with def in a Python file (not a builtin, "
            "a C extension or typed at a prompt)",
            field="function",
        ) from None
    return _digest(source)


def _def_source(path: Path, qualname: str) -> str | None:
    """The source lines of the ``def`` (decorators included) that ``qualname`` names in
    the file at ``path``, found by parsing (nothing in the file runs); None if absent."""
    import ast

    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in qualname.split("."):
        found = [
            n
            for n in body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and n.name == part
        ]
        if not found:
            return None
        node = found[-1]  # the last definition of a name is the one bound
        body = node.body
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
        return None
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    lines = text.splitlines(keepends=True)
    return "".join(lines[start - 1 : node.end_lineno])


def _digest(text: str) -> str:
    from blake3 import blake3

    return blake3(text.encode()).hexdigest()


def describe_function(fn: Callable[..., Any], *, root: Path) -> tuple[str | None, str]:
    """``("relative/path.py:qualname", digest)`` of ``fn``; the reference is None when
    its file is not in the project under ``root`` or the name cannot be looked up again
    (a lambda, a function defined inside another). The digest is BLAKE3 of the function's
    source (its ``def``, decorators included)."""
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn)))
    digest = _source_digest(fn, f"{qualname!r}")
    try:
        file = inspect.getsourcefile(fn)
    except TypeError:
        file = None
    if file is None or "<" in qualname:
        return None, digest
    try:
        relative = Path(file).resolve().relative_to(root.resolve())
    except ValueError:
        return None, digest
    source = _def_source(Path(file), qualname)
    if relative.suffix != ".py" or source is None:
        return None, digest
    return f"{relative.as_posix()}:{qualname}", _digest(source)


def load_function(
    view: OnDemandFeatureView, *, ctx: Context, trust_code: bool = False
) -> Callable[..., Any]:
    """The function of ``view``: the callable it holds, or its recorded ``"path.py:name"``
    imported from the project (see the module docstring). Refusals are UsageErrors whose
    ``field`` is ``function``."""
    if callable(view.function):
        return view.function
    ref = view.function_ref or view.function
    if not trust_code:
        raise UsageError(
            f"on-demand view {view.name!r}: its function {ref!r} comes from a recorded "
            "definition and was not run",
            hint=_TRUST_HINT,
            field="function",
        )

    if view.code_digest is None:
        raise UsageError(
            f"on-demand view {view.name!r} was recorded without a digest of its function",
            hint="apply the definition again (plinth features apply FILE)",
            field="function",
        )
    # Checked by parsing, before the file runs: changed code is never executed.
    if digest_ref(ref, root=ctx.settings.root, view=view.name) != view.code_digest:
        raise UsageError(
            f"on-demand view {view.name!r}: the code of {ref!r} changed since it was applied",
            hint="review the change, then apply the definition again (plinth features apply "
            "FILE) to record the new version",
            field="function",
        )
    path_text, _, attr = ref.rpartition(":")
    return _import(_path(path_text, root=ctx.settings.root, view=view.name), attr, view.name)


def _path(path_text: str, *, root: Path, view: str) -> Path:
    from plinth.guards.paths import safe_join

    path = safe_join(root, path_text)
    if not path.is_file():
        raise UsageError(
            f"on-demand view {view!r}: no file {path_text!r} in the project",
            hint="the function's file is relative to the project root (the folder of plinth.yaml)",
            field="function",
        )
    return path


def digest_ref(ref: str, *, root: Path, view: str) -> str:
    """The digest of the function ``"path.py:name"`` names, read from its file under
    ``root`` by parsing it (nothing runs); UsageError when the file or the def is missing."""
    path_text, _, attr = ref.rpartition(":")
    source = _def_source(_path(path_text, root=root, view=view), attr)
    if source is None:
        raise UsageError(
            f"on-demand view {view!r}: {path_text} defines no function {attr!r}",
            hint="name a function defined with def at the top of the file (or Class.method)",
            field="function",
        )
    return _digest(source)


def _import(path: Path, attr: str, view: str) -> Callable[..., Any]:
    module_name = f"_plinth_on_demand_{_digest(str(path))[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise UsageError(f"on-demand view {view!r}: cannot import {path}", field="function")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(module_name, None)
        raise
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise UsageError(
                f"on-demand view {view!r}: {path.name} has no {attr!r}",
                hint="the function was renamed or removed; apply the definition again",
                field="function",
            )
    if not callable(target):
        raise UsageError(f"on-demand view {view!r}: {attr!r} is not callable", field="function")
    return target  # type: ignore[no-any-return]


def input_names(
    view: OnDemandFeatureView, views: Mapping[str, FeatureView] | None = None
) -> tuple[str, ...] | None:
    """The features ``view`` reads from other views, then its request fields; None when a
    source is named without a selection and ``views`` does not say its features."""
    names: list[str] = []
    known = dict(views or {})
    for src in view.sources:
        feats: tuple[str, ...] | None
        if isinstance(src, FeatureSelection):
            feats = src.features
            if feats is None:
                target = src.view if not isinstance(src.view, str) else known.get(src.view)
                feats = None if target is None else tuple(target.features)
        elif isinstance(src, FeatureView):
            feats = tuple(src.features)
        else:
            target = known.get(src)
            feats = None if target is None else tuple(target.features)
        if feats is None:
            return None
        names.extend(f for f in feats if f not in names)
    names.extend(r for r in view.request if r not in names)
    return tuple(names)


def compute(
    view: OnDemandFeatureView,
    frame: pa.Table,
    fn: Callable[..., Any],
    *,
    views: Mapping[str, FeatureView] | None = None,
) -> pa.Table:
    """The declared features of ``view`` for every row of ``frame``: ``fn`` is called once
    with a pandas DataFrame of the view's inputs (its source features and request fields;
    every column of ``frame`` when they are not known), and its result is checked (every
    feature present, one row per input row) and cast to the declared types."""
    import pandas as pd
    import pyarrow as pa

    wanted = input_names(view, views)
    if wanted is None:
        columns = list(frame.column_names)
    else:
        missing = [c for c in wanted if c not in frame.column_names]
        if missing:
            field = f"request.{missing[0]}" if missing[0] in view.request else "sources"
            raise UsageError(
                f"on-demand view {view.name!r} needs {missing[0]!r}, which the input lacks",
                hint="send the request fields the view names (request=...) and read the "
                "features of its source views",
                field=field,
            )
        columns = list(wanted)
    df = frame.select(columns).to_pandas()
    out = fn(df)
    if isinstance(out, Mapping):
        out = pd.DataFrame(dict(out))
    if not isinstance(out, pd.DataFrame):
        raise UsageError(
            f"on-demand view {view.name!r}: the function returned {type(out).__name__}, "
            "not a pandas DataFrame",
            hint="return a DataFrame with one column per feature and one row per input row",
            field="function",
        )
    if len(out) != frame.num_rows:
        raise UsageError(
            f"on-demand view {view.name!r}: the function returned {len(out)} rows for "
            f"{frame.num_rows}",
            hint="return one row per input row, in the same order",
            field="function",
        )
    arrays = []
    for name, kind in view.features.items():
        if name not in out.columns:
            raise UsageError(
                f"on-demand view {view.name!r}: the function returned no column {name!r}",
                hint=f"it returned: {', '.join(map(str, out.columns)) or 'no columns'}",
                field=f"features.{name}",
            )
        arrays.append(_cast(out[name], kind, view.name, name))
    return pa.table(arrays, names=list(view.features))


def _cast(series: Any, kind: str, view: str, name: str) -> pa.Array:
    import pyarrow as pa

    target = arrow_type(kind)
    try:
        values = pa.Array.from_pandas(series.reset_index(drop=True))
        if kind == "timestamp" and pa.types.is_timestamp(values.type) and values.type.tz is None:
            values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))
        if kind == "string" and not (
            pa.types.is_string(values.type)
            or pa.types.is_large_string(values.type)
            or pa.types.is_null(values.type)
        ):
            raise pa.ArrowInvalid(f"{values.type} is not text")
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise UsageError(
            f"on-demand view {view!r}: feature {name!r} is not {kind}: {exc}",
            hint=f"return {kind} values for {name!r} (it is declared {kind})",
            field=f"features.{name}",
        ) from None
