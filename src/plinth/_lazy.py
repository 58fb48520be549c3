"""Package attributes loaded from their modules on first access (PEP 562).

A package that must stay cheap to import maps each public name to the module defining it::

    __getattr__, __dir__ = lazy_attributes(__name__, {"validate": "plinth.validation.runner"},
                                           globals())

The first access imports the module and caches the value in the package's namespace, so
later accesses cost nothing; ``dir()`` lists the names before they are loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``names`` (name -> defining module)."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(names))

    return getattr_, dir_
