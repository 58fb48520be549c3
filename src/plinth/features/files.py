"""Feature definitions read from a file: YAML (the second face of the Python objects) or a
Python module.

A YAML file has up to four sections, each a list of mappings with ``name`` and the
constructor's arguments::

    entities:
      - {name: plane, join_keys: [tailnum]}
    feature_views:
      - name: planes
        entities: [plane]
        source: planes@2                     # or {parquet: PATH} or {sql: ..., tables: {..}}
        timestamp: updated_at
        ttl: 365d
        features: {seats: int64, year: int64}
    on_demand_feature_views:
      - name: per_seat
        sources: ["planes[seats]"]
        request: {delay: float64}
        features: {delay_per_seat: float64}
        function: features/extra.py:per_seat # relative to the project root
    feature_services:
      - {name: delays, features: [planes, per_seat]}

An error names the file, the definition and its field (``features.yaml:
feature_views[1] (planes): ...``, ``field="feature_views[1].timestamp"``). A ``.py``
file is run (the user named it) and the definitions among its globals are collected, in
order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plinth.errors import UsageError
from plinth.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    definitions_in,
)
from plinth.specfile import no_unknown, read_yaml, short_repr

__all__ = ["SECTIONS", "load_definitions"]

#: YAML section -> (class, the keys a definition in it takes).
SECTIONS: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "entities": (Entity, ("name", "join_keys", "description")),
    "feature_views": (
        FeatureView,
        (
            "name",
            "entities",
            "source",
            "timestamp",
            "created_timestamp",
            "ttl",
            "features",
            "description",
        ),
    ),
    "on_demand_feature_views": (
        OnDemandFeatureView,
        ("name", "sources", "request", "features", "function", "description"),
    ),
    "feature_services": (FeatureService, ("name", "features", "description")),
}
_HINT = "see docs/features.md (Definitions) for the YAML layout"


def load_definitions(path: str | Path) -> list[Definition]:
    """The definitions in ``path``: a YAML file (``.yaml``/``.yml``) or a Python file
    (``.py``, run as a script)."""
    path = Path(path)
    if path.suffix == ".py":
        return _from_python(path)
    if path.suffix not in (".yaml", ".yml"):
        raise UsageError(
            f"{path}: feature definitions are a .yaml, .yml or .py file",
            hint=_HINT,
            field="file",
        )
    data, _ = read_yaml(path, what="file", hint=_HINT)
    return from_mapping(data, where=path.name)


def from_mapping(data: Any, *, where: str) -> list[Definition]:
    """The definitions of a parsed YAML document (``where`` names it in errors)."""
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise UsageError(
            f"{where}: expected a mapping with the sections {', '.join(SECTIONS)}; got "
            f"{short_repr(data)}",
            hint=_HINT,
            field="file",
        )
    no_unknown(data, list(SECTIONS), where, "")
    out: list[Definition] = []
    for section, (cls, keys) in SECTIONS.items():
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise UsageError(
                f"{where}: '{section}' must be a list of definitions, got {short_repr(items)}",
                hint=_HINT,
                field=section,
            )
        for i, item in enumerate(items):
            out.append(_build(cls, keys, item, where=where, at=f"{section}[{i}]"))
    return out


def _build(cls: type[Any], keys: tuple[str, ...], item: Any, *, where: str, at: str) -> Any:
    if not isinstance(item, Mapping):
        raise UsageError(
            f"{where}: {at} must be a mapping with a name, got {short_repr(item)}",
            hint=_HINT,
            field=at,
        )
    name = item.get("name")
    label = f"{where}: {at}" + (f" ({name})" if isinstance(name, str) else "")
    no_unknown(item, list(keys), label, f"{at}.")
    if "name" not in item:
        raise UsageError(f"{label}: give the definition a name", field=f"{at}.name")
    required = [k for k in _required(cls) if k not in item]
    if required:
        raise UsageError(
            f"{label}: '{required[0]}' is missing",
            hint=f"a {cls.__name__} takes: {', '.join(keys)}",
            field=f"{at}.{required[0]}",
        )
    args = {str(k): v for k, v in item.items()}
    try:
        return cls(**args)
    except UsageError as exc:
        message = exc.message
        inner = exc.field or ""
        if inner and message.startswith(f"{inner}: "):
            message = message[len(inner) + 2 :]
        raise UsageError(
            f"{label}: {inner + ': ' if inner else ''}{message}",
            hint=exc.hint or None,
            field=f"{at}.{inner}" if inner else at,
        ) from None


def _required(cls: type[Any]) -> list[str]:
    import dataclasses

    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def _from_python(path: Path) -> list[Definition]:
    import runpy

    if not path.is_file():
        raise UsageError(f"no definitions file {path}", hint=_HINT, field="file")
    try:
        # The user named this file on the command line: running it is what they asked for.
        values = runpy.run_path(str(path), run_name="__plinth_features__")
    except UsageError as exc:
        raise UsageError(f"{path.name}: {exc.message}", hint=exc.hint, field=exc.field) from None
    except SyntaxError as exc:
        raise UsageError(
            f"{path.name}, line {exc.lineno}: invalid Python: {exc.msg}", field="file"
        ) from None
    return definitions_in(values.values())
