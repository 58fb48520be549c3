"""The layers of docs/architecture.md, checked on the source next to ``lint-imports`` (which
holds the layer order and the absence of cycles, ``[tool.importlinter]`` in pyproject.toml).

Checked here, with :mod:`ast`, because import-linter cannot: no module imports another
package's private modules or private names; no module imports another package by a string
(``importlib.import_module("plinth.x")``), which no import graph sees; every package is placed
in the layers contract and drawn in docs/architecture.md. Imports inside functions count.
Each check has a test showing it catches the code it exists to catch.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import plinth

PACKAGE = Path(plinth.__file__).parent
ROOT = PACKAGE.parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: (module, module named by a string) -> why it may import another package by name.
BY_NAME_EXEMPT = {
    ("plinth.profiles", "plinth.datasets.profiles"): "the deprecated profile_version shim, "
    "removed with it",
    ("plinth.validation.sources", "plinth.datasets.validation"): "the deprecated "
    "deprecated_datasets fallback, removed with it",
}
#: The façade above every layer: its lazy map names each pillar by string on purpose.
FACADE = "plinth"
#: The interfaces, above the pillars, may use the façade (``import plinth``) like a user.
INTERFACES = ("cli", "demo", "__main__")


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _package(module: str) -> str:
    """``plinth.datasets.api`` -> ``datasets``; ``plinth.tables`` -> ``tables``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[tuple[str, bool, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield _module_name(path), path.name == "__init__.py", path.read_text(encoding="utf-8")


def _imported(module: str, is_package: bool, tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for every module or name imported, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{prefix}.{alias.name}"


def private_reaches(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """Imports of a private module or name (``_x``) of another plinth package. The root's own
    private helpers (``plinth._lazy``, ``plinth._deprecation``...) are shared by every layer."""
    found = []
    for line, target in _imported(module, is_package, ast.parse(source)):
        parts = target.split(".")
        if parts[0] != "plinth" or len(parts) < 3 or _is_private(parts[1]):
            continue
        if parts[1] != _package(module) and any(_is_private(part) for part in parts[2:]):
            found.append(f"{module}:{line} imports {target}")
    return found


def by_name_imports(module: str, source: str, modules: set[str]) -> list[str]:
    """String constants naming a module of another plinth package: an import no graph sees."""
    if module == FACADE:
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        target = node.value
        if target not in modules or _package(target) in ("", _package(module)):
            continue
        if (module, target) not in BY_NAME_EXEMPT:
            found.append(f"{module}:{node.lineno} names {target}")
    return found


def facade_imports(module: str, source: str, modules: set[str]) -> list[str]:
    """Below the interfaces, ``import plinth`` or ``from plinth import NAME`` (not a
    submodule) reaches every pillar through the façade's lazy map, unseen by lint-imports."""
    if module == FACADE or _package(module) in INTERFACES:
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            bare = [alias.name for alias in node.names if alias.name == FACADE]
            found += [f"{module}:{node.lineno} imports {name}" for name in bare]
        elif isinstance(node, ast.ImportFrom) and node.module == FACADE and not node.level:
            names = [a.name for a in node.names if f"{FACADE}.{a.name}" not in modules]
            found += [f"{module}:{node.lineno} imports plinth.{name}" for name in names]
    return found


def _all_modules() -> set[str]:
    return {module for module, _, _ in _sources()}


def _layer_names() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [
        name.strip().strip("()")
        for layer in contract["layers"]
        for name in layer.replace(":", "|").split("|")
    ]


def _top_level() -> list[str]:
    """Every package and module directly under src/plinth, but the façade and ``-m`` entry."""
    names = []
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            names.append(path.name)
        elif path.suffix == ".py" and path.stem not in ("__init__", "__main__"):
            names.append(path.stem)
    return names


def test_no_module_imports_another_packages_private_modules() -> None:
    found = [
        reach
        for module, is_package, source in _sources()
        for reach in private_reaches(module, source, is_package=is_package)
    ]
    assert not found, (
        "a private module or name is imported from another package; expose a public name "
        "in the owning package instead:\n" + "\n".join(found)
    )


def test_no_module_imports_another_package_by_name() -> None:
    modules = _all_modules()
    found = [
        hit for module, _, source in _sources() for hit in by_name_imports(module, source, modules)
    ]
    assert not found, (
        "a module names another package's module in a string (importlib, sys.modules); "
        "lint-imports cannot see that import, so import it plainly:\n" + "\n".join(found)
    )


def test_no_module_below_the_interfaces_imports_the_facade() -> None:
    modules = _all_modules()
    found = [
        hit for module, _, source in _sources() for hit in facade_imports(module, source, modules)
    ]
    assert not found, (
        "the package plinth re-exports every pillar: import the module that defines the "
        "name instead:\n" + "\n".join(found)
    )


def test_every_package_is_in_the_layers_contract_and_the_architecture_page() -> None:
    layers = set(_layer_names())
    page = ARCHITECTURE.read_text(encoding="utf-8")
    missing_layer = [name for name in _top_level() if name not in layers]
    assert not missing_layer, f"not placed in [tool.importlinter] layers: {missing_layer}"
    missing_page = [
        name
        for name in _top_level()
        if f"{name}/" not in page and f"{name}.py" not in page and f"{name} " not in page
    ]
    assert not missing_page, f"not drawn in docs/architecture.md: {missing_page}"


def test_the_private_check_catches_reaches_into_another_package() -> None:
    reaching = """
from plinth.profiles._compute import profile_table
from plinth.profiles import _merge
import plinth.monitoring._stats

def later():
    from plinth.tracking.runs import _journal_dir
"""
    assert len(private_reaches("plinth.datasets.api", reaching)) == 4
    allowed = """
from plinth.datasets._local import helper
from plinth._lazy import lazy_attributes
from plinth.profiles import profile_table
from .. import _version
"""
    assert private_reaches("plinth.datasets.api", allowed) == []
    relative = "from ..profiles import _compute\n"
    assert private_reaches("plinth.datasets.api", relative) == [
        "plinth.datasets.api:1 imports plinth.profiles._compute"
    ]


def test_the_by_name_check_catches_an_import_hidden_in_a_string() -> None:
    modules = {"plinth.datasets", "plinth.datasets.api", "plinth.validation.runner"}
    hidden = 'importlib.import_module("plinth.datasets.api")\nsys.modules.get("plinth.datasets")\n'
    assert len(by_name_imports("plinth.validation.runner", hidden, modules)) == 2
    own = 'importlib.import_module("plinth.validation.runner")\nlog = "plinth.datasets.x"\n'
    assert by_name_imports("plinth.validation.runner", own, modules) == []


def test_the_facade_check_catches_a_pillar_reached_through_plinth() -> None:
    modules = {"plinth.datasets", "plinth.profiles"}
    through = "import plinth\n\ndef f():\n    from plinth import start_run\n"
    assert len(facade_imports("plinth.profiles.store", through, modules)) == 2
    submodule = "from plinth import datasets\n"
    assert facade_imports("plinth.monitoring.window", submodule, modules) == []
    assert facade_imports("plinth.demo.train", through, modules) == []
