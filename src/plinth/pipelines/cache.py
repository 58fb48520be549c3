"""Cache keys by content.

A step's key is BLAKE3 over canonical JSON of:

- its **code digest**: the step function's source, plus the code digests of the plinth steps
  it calls (names in its code object, and in nested functions' code, that resolve to
  :class:`~plinth.pipelines.steps.Step` objects in its globals or closure);
- its **arguments**: JSON values as themselves (mapping keys sorted); ``pathlib.Path`` values
  by the *content* of the file or folder they name (so moving a file does not miss, editing
  it does); dataset and model versions by their manifest digest; upstream outputs by the
  content digest they were stored under; tables and arrays by the digest of their stored
  form.

An argument that none of these cover (an object passed in memory) makes the key ``None``:
the step is never cached. Plain ``str`` paths are strings, not contents: pass a ``Path``.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import json
import os
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blake3 import blake3

if TYPE_CHECKING:
    from plinth.pipelines.steps import Step

__all__ = ["Uncacheable", "cache_key", "canonical", "code_digest", "path_digest"]

#: Bump to invalidate every cache key (a change in what a key covers).
KEY_VERSION = 1


class Uncacheable(Exception):
    """An argument has no content digest; the step runs without a cache key."""


def code_digest(step: Step, _seen: set[int] | None = None) -> str:
    """BLAKE3 of the step's source and of the steps it calls (recursively, once each)."""
    from plinth.pipelines.steps import Step

    seen = _seen if _seen is not None else set()
    seen.add(id(step))
    fn = inspect.unwrap(step.fn)
    hasher = blake3()
    hasher.update(_source(fn).encode("utf-8"))
    for called in _called_steps(fn):
        if isinstance(called, Step) and id(called) not in seen:
            hasher.update(b"\0calls\0" + str(called.name).encode() + b"\0")
            hasher.update(code_digest(called, seen).encode())
    return hasher.hexdigest()


def _source(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return repr(fn)
        return repr((code.co_code, code.co_consts, code.co_names))


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _called_steps(fn: Callable[..., Any]) -> list[Any]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found: list[Any] = []
    scope = getattr(fn, "__globals__", {})
    for name in sorted(_names(code)):
        if name in scope:
            found.append(scope[name])
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return found


def path_digest(path: Path) -> str:
    """The content digest of a file, or of a folder (relative names + file contents)."""
    from plinth.storage.content import hash_file

    if path.is_file():
        return hash_file(path).digest
    if path.is_dir():
        hasher = blake3(b"folder\0")
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                hasher.update(f"{rel}\0{hash_file(full).digest}\0".encode())
        return hasher.hexdigest()
    raise Uncacheable(f"{path} does not exist")


def canonical(value: Any, digests: Callable[[Any], str | None] | None = None) -> Any:
    """A JSON-ready form of ``value`` that changes exactly when its content does.

    ``digests`` is asked first (the runner answers for upstream outputs); Uncacheable
    when no rule covers ``value``.
    """
    if digests is not None:
        known = digests(value)
        if known is not None:
            return {"$digest": known}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else {"$float": repr(value)}
    if isinstance(value, Path):
        return {"$path": path_digest(value)}
    if isinstance(value, list):
        return [canonical(v, digests) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [canonical(v, digests) for v in value]}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise Uncacheable("mapping with non-string keys")
        return {"$map": {k: canonical(value[k], digests) for k in sorted(value)}}
    if isinstance(value, set | frozenset):
        items = [canonical(v, digests) for v in value]
        return {"$set": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, enum.Enum):
        return {"$enum": [type(value).__qualname__, canonical(value.value, digests)]}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"$time": value.isoformat()}
    from plinth.entities import DatasetVersion, ModelVersion

    if isinstance(value, DatasetVersion | ModelVersion):
        return {"$manifest": value.manifest_digest}
    from plinth.pipelines.outputs import encode

    encoded = encode(value)
    if encoded is None:
        raise Uncacheable(f"no content digest for a {type(value).__name__}")
    return {"$blob": blake3(encoded[0]).hexdigest()}


def cache_key(
    step: Step, args: Mapping[str, Any], digests: Callable[[Any], str | None] | None = None
) -> str | None:
    """The step's cache key for ``args`` (see the module docstring); None if uncacheable."""
    try:
        body = {
            "v": KEY_VERSION,
            "code": step.code_digest,
            "args": {k: canonical(args[k], digests) for k in sorted(args)},
        }
    except Uncacheable:
        return None
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return blake3(text.encode("utf-8")).hexdigest()
