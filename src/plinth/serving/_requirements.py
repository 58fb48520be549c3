"""The ``requirements.txt`` of a served model: what serving it imports, pinned as recorded.

Not the whole recorded environment (test runners, linters and notebooks have no place in a
serving image): the packages of the model's flavor, plinth's own runtime dependencies with
its ``serve`` extra, and what those depend on, each pinned to the version the model's run
recorded. Every line is validated by :func:`plinth.guards.environments.requirement_line`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from plinth.guards.environments import comment_line, requirement_line

if TYPE_CHECKING:
    from plinth.entities import Environment

__all__ = ["FLAVOR_PACKAGES", "runtime_requirements"]

#: What loading and calling a model of each flavor imports (PyPI names); a DataFrame goes in
#: where the model takes one, hence pandas.
FLAVOR_PACKAGES: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn", "skops", "numpy", "scipy", "joblib", "threadpoolctl", "pandas"),
    "lightgbm": ("lightgbm", "numpy", "scipy", "pandas"),
    "xgboost": ("xgboost", "xgboost-cpu", "numpy", "scipy", "pandas"),
    "onnx": ("onnx", "onnxruntime", "numpy", "protobuf"),
    "torch": ("torch", "safetensors", "numpy"),
    "python_function": ("pandas",),
}


def runtime_requirements(env: Environment, flavors: Iterable[str]) -> str:
    """Pinned requirements for serving models of ``flavors`` recorded in ``env``."""
    from plinth.versioning.env import canonical_name

    where = f"environment {env.id!r:.40}"
    recorded = {canonical_name(n): (n, v) for n, v in env.packages.items()}
    editable = {canonical_name(str(n)) for n in env.extra.get("editable") or ()}
    flavor_list = sorted(set(flavors))
    roots = {canonical_name(p) for f in flavor_list for p in FLAVOR_PACKAGES.get(f, ())}
    wanted = _closure(roots | _plinth_dependencies())
    lines = [
        comment_line(f"plinth environment {env.digest}", where=where, field="digest"),
        "# Written by `plinth deploy export`: the packages serving needs (flavor "
        + ", ".join(flavor_list)
        + ", plinth[serve] and their dependencies), pinned as the model's run recorded them.",
    ]
    if "python_function" in flavor_list:
        lines.append("# A python_function model: add the packages its own code imports.")
    for key in sorted(wanted - {"plinth"}):
        if key not in recorded:
            continue  # not recorded: pip resolves it from the pins above it
        name, version = recorded[key]
        line = requirement_line(name, version, where=where)
        if key in editable:
            line += "  # installed from a local folder: this version may not be on an index"
        lines.append(line)
    lines.append(_plinth_line(recorded.get("plinth"), "plinth" in editable, where))
    return "\n".join(lines) + "\n"


def _plinth_line(recorded: tuple[str, str] | None, editable: bool, where: str) -> str:
    from packaging.version import InvalidVersion, Version

    if recorded is None:
        return "plinth[serve]  # the run recorded no plinth version"
    pinned = requirement_line(*recorded, where=where)  # validates the version first
    version = pinned.partition("==")[2]
    try:
        parsed = Version(version)
    except InvalidVersion:  # a legacy version string the guard let through
        parsed = None
    if editable or parsed is None or parsed.is_devrelease or parsed.local is not None:
        return (
            f"plinth[serve]  # the run recorded plinth {version}, a development version "
            "not on an index: install the same source in the image"
        )
    return f"plinth[serve]=={version}"


def _plinth_dependencies() -> set[str]:
    """plinth's core dependencies and its ``serve`` extra, from the installed metadata."""
    return _requires("plinth", extras=("serve",))


def _closure(roots: set[str]) -> set[str]:
    """``roots`` and everything they depend on (without extras), as installed here."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_requires(name) - seen)
    return seen


def _requires(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    import importlib.metadata

    from packaging.requirements import InvalidRequirement, Requirement

    from plinth.versioning.env import canonical_name

    try:
        lines = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    out: set[str] = set()
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
        ):
            out.add(canonical_name(req.name))
    return out
