"""The public Python API, held by a snapshot: every public package's ``__all__`` and the
signature of each public callable (and of each public method of a public class).

Any change of the public surface fails here until it is reviewed: look at the diff, update
docs/api.md and the CHANGELOG, then regenerate with::

    PLINTH_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_api_snapshot.py
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("api_snapshot.txt")
# Read at import: the autouse fixture of conftest.py removes PLINTH_* variables.
UPDATE = os.environ.get("PLINTH_UPDATE_SNAPSHOT") == "1"

#: The public packages: ``plinth`` and what its ``__all__`` names, plus the ones users import.
PACKAGES = [
    "plinth",
    "plinth.context",
    "plinth.datasets",
    "plinth.errors",
    "plinth.features",
    "plinth.models",
    "plinth.monitoring",
    "plinth.pipelines",
    "plinth.profiles",
    "plinth.progress",
    "plinth.registry",
    "plinth.settings",
    "plinth.tracking",
    "plinth.validation",
    "plinth.versioning",
]

#: Public functions whose ``ctx`` is their subject, not the context rule's last keyword.
CTX_SUBJECT = {"plinth.context.resolve_context"}


def _package(name: str) -> types.ModuleType:
    if name == "plinth.models":  # an attribute of plinth, not an importable module name
        import plinth

        return plinth.models
    return importlib.import_module(name)


def _signature(func: Callable[..., Any]) -> str:
    try:
        text = str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(...)"
    return re.sub(r" at 0x[0-9a-f]+", "", text)  # default values that are functions


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    for name, value in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            yield name, value.__func__
        elif isinstance(value, property):
            yield name, None
        elif inspect.isfunction(value):
            yield name, value


def surface() -> str:
    """The text of the snapshot."""
    lines: list[str] = []
    for package in PACKAGES:
        module = _package(package)
        names = list(module.__all__)
        lines.append(f"{package}")
        lines.append(f"  __all__ = {names}")
        for name in names:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                lines.append(f"  {name}: module")
            elif inspect.isclass(value):
                bases = ", ".join(b.__name__ for b in value.__bases__ if b is not object)
                lines.append(f"  class {name}" + (f"({bases})" if bases else ""))
                lines.append(f"    __init__{_signature(value)}")
                for member, func in _members(value):
                    shown = ": property" if func is None else _signature(func)
                    lines.append(f"    .{member}{shown}")
            elif callable(value):
                lines.append(f"  def {name}{_signature(value)}")
            else:
                lines.append(f"  {name}: {type(value).__name__}")
        lines.append("")
    return "\n".join(lines)


def public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function and public method, by dotted name."""
    for package in PACKAGES:
        module = _package(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            if inspect.isclass(value):
                for member, func in _members(value):
                    if func is not None:
                        yield f"{package}.{name}.{member}", func
            elif callable(value):
                yield f"{package}.{name}", value


def test_public_api_matches_the_reviewed_snapshot() -> None:
    text = surface()
    if UPDATE:
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == text, (
        "the public API changed: review the diff, update docs/api.md and CHANGELOG.md, "
        "then rerun with PLINTH_UPDATE_SNAPSHOT=1"
    )


def test_every_public_function_takes_ctx_keyword_only_last_and_optional() -> None:
    wrong = []
    for name, func in public_callables():
        params = list(inspect.signature(func).parameters.values())
        for p in params:
            if p.name not in ("ctx", "context") or name in CTX_SUBJECT:
                continue
            if p.name != "ctx" or p.kind is not p.KEYWORD_ONLY or p.default is not None:
                wrong.append(f"{name}: {p.name} must be keyword-only `ctx=None`")
            elif p is not params[-1]:
                wrong.append(f"{name}: ctx must be the last parameter")
    assert wrong == []


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_every_public_package_has_a_sorted_all() -> None:
    for package in PACKAGES:
        names = list(_package(package).__all__)
        assert names in (sorted(names), sorted(names, key=_isort_key)), package
