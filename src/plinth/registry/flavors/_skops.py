"""``skops.io`` imported without importing all of scikit-learn, with skops' trust unchanged.

When it is imported, skops builds its default allow-list (every public scikit-learn
estimator, from ``sklearn.utils.all_estimators``) by importing every scikit-learn module,
pytest included: about 0.4 s of CPU and tens of MB in a server that needs one estimator. Here
skops is imported with that list left empty; the list fills itself on first use (the same
names, the same trust as before) for anyone who uses skops directly. Inside
:func:`own_checks` plinth's own audit sees it empty and decides those types one at a time
with :func:`is_default_trusted`: skops' rule for one class, looked up in the public
scikit-learn module that exports it, and the full list only when that look-up cannot tell.
Its lists of trusted ufuncs (a scan of every loaded module for each numpy and scipy ufunc,
another 0.3 s) are likewise computed on first use, by skops' own helper, for everyone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from plinth._extras import require

__all__ = ["is_default_trusted", "own_checks", "skops_io"]

_local = threading.local()
_fill_lock = threading.Lock()
_FEATURE = "saving and loading scikit-learn models"


@contextlib.contextmanager
def own_checks() -> Iterator[None]:
    """Within this block (this thread), skops' default estimator list reads as empty: plinth
    passes every estimator type it admitted (by :func:`is_default_trusted`) explicitly."""
    before = getattr(_local, "own", False)
    _local.own = True
    try:
        yield
    finally:
        _local.own = before


class _LazyNames(list[str]):
    """One of skops' default lists of trusted type names, computed on first use (every read
    skops makes of it goes through one of these methods). ``own_sees_empty``: inside
    :func:`own_checks` it reads as empty (plinth decides those types itself)."""

    def __init__(self, compute: Callable[[], Iterable[str]], *, own_sees_empty: bool) -> None:
        super().__init__()
        self._compute = compute
        self._own_sees_empty = own_sees_empty
        self.filled = False

    def _fill(self) -> None:
        if self.filled or (self._own_sees_empty and getattr(_local, "own", False)):
            return
        with _fill_lock:
            if not self.filled:
                list.extend(self, self._compute())
                self.filled = True

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return list.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __contains__(self, name: object) -> bool:
        self._fill()
        return list.__contains__(self, name)

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return list.__getitem__(self, index)

    def __add__(self, other: Any) -> Any:
        self._fill()
        if isinstance(other, _LazyNames):  # list's own + reads the other's storage directly
            other._fill()
        return list.__add__(self, other)

    def __radd__(self, other: Any) -> Any:  # a plain list + this one
        self._fill()
        return [*other, *list.__iter__(self)]

    def __eq__(self, other: object) -> bool:
        self._fill()
        if isinstance(other, _LazyNames):
            other._fill()
        return list.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        self._fill()
        return list.__repr__(self)

    def copy(self) -> list[str]:
        self._fill()
        return list(list.__iter__(self))


@functools.cache
def _all_estimator_names() -> tuple[str, ...]:
    """skops' default list as skops computes it (imports every scikit-learn module)."""
    discovery = importlib.import_module("sklearn.utils.discovery")
    names = (f"{cls.__module__}.{cls.__name__}" for _, cls in discovery.all_estimators())
    return tuple(name for name in names if name.startswith("sklearn."))


@functools.cache
def _estimator_name_set() -> frozenset[str]:
    return frozenset(_all_estimator_names())


class _DeferTypeLists(importlib.abc.MetaPathFinder):
    """Installed while ``skops.io`` is imported: just before ``skops.io._trusted_types`` runs,
    skops' helper that lists a module's public ufuncs (a scan of every loaded module for
    each ufunc) is made to answer lazy lists, computed by the same helper on first use."""

    def __init__(self) -> None:
        self.utils: Any = None
        self.original: Any = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        utils: Any = sys.modules.get("skops.io._utils")
        if fullname != "skops.io._trusted_types" or self.original is not None or utils is None:
            return
        original = getattr(utils, "get_public_type_names", None)
        if original is None:
            return

        def later(module: ModuleType, oftype: type) -> _LazyNames:
            def compute() -> list[str]:
                with warnings.catch_warnings():  # as skops does: numpy.core's deprecation
                    warnings.simplefilter("ignore", DeprecationWarning)
                    names: list[str] = original(module=module, oftype=oftype)
                    return names

            return _LazyNames(compute, own_sees_empty=False)

        self.utils, self.original = utils, original
        utils.get_public_type_names = later
        # None: the module itself is found and run as usual

    def restore(self) -> None:
        if self.original is not None:
            self.utils.get_public_type_names = self.original
            trusted_types: Any = sys.modules.get("skops.io._trusted_types")
            if trusted_types is not None:
                trusted_types.get_public_type_names = self.original


def skops_io() -> ModuleType:
    """``skops.io``, imported without its crawl of scikit-learn and its scan for ufuncs when
    plinth imports it first; skops' default trust is unchanged (see the module docstring)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    utils: Any = require("sklearn.utils", feature=_FEATURE)
    real = utils.all_estimators
    me = threading.get_ident()

    def listed_later(type_filter: Any = None) -> Any:
        # only skops' own call at its import, in this thread, is answered empty
        if threading.get_ident() != me or type_filter is not None:
            return real(type_filter)
        return []

    hook = _DeferTypeLists()
    utils.all_estimators = listed_later
    sys.meta_path.insert(0, hook)
    try:
        sio = require("skops.io", feature=_FEATURE)
    finally:
        sys.meta_path.remove(hook)
        hook.restore()
        utils.all_estimators = real
    trusted_types = sys.modules.get("skops.io._trusted_types")
    names = getattr(trusted_types, "SKLEARN_ESTIMATOR_TYPE_NAMES", None)
    if names == [] and type(names) is list:  # our empty answer: make it fill on first use
        lazy = _LazyNames(_all_estimator_names, own_sees_empty=True)
        for module in [m for k, m in sys.modules.items() if k.startswith("skops.")]:
            if getattr(module, "SKLEARN_ESTIMATOR_TYPE_NAMES", None) is names:
                module.SKLEARN_ESTIMATOR_TYPE_NAMES = lazy  # type: ignore[attr-defined]
    return sio


def is_default_trusted(name: str) -> bool:
    """Whether skops trusts the type ``name`` by default: a public, concrete scikit-learn
    estimator. Exact: when the one-class look-up cannot say yes, the full list decides."""
    if not name.startswith("sklearn."):
        return False
    return _exported_estimator(name) or name in _estimator_name_set()


def _exported_estimator(name: str) -> bool:
    """A sufficient test for ``name`` being in skops' list: a public scikit-learn module that
    ``all_estimators`` walks exports, under its own name, a concrete estimator class whose
    module-qualified name is ``name``. Imports only that module (scikit-learn's own code)."""
    module_name, _, cls_name = name.rpartition(".")
    if cls_name.startswith("_") or cls_name == "BaseEstimator":
        return False
    discovery = importlib.import_module("sklearn.utils.discovery")
    ignored = getattr(discovery, "_MODULE_TO_IGNORE", None)
    if not isinstance(ignored, (set, frozenset)):
        return False  # a scikit-learn that walks differently: leave it to the full list
    parts = module_name.split(".")
    public = parts[: next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))]
    if len(public) < 2 or any(p in ignored for p in public):
        return False
    try:
        module = importlib.import_module(".".join(public))
    except (ImportError, ValueError):  # no such module, or not a module name at all
        return False
    cls = getattr(module, cls_name, None)
    base = importlib.import_module("sklearn.base").BaseEstimator
    return (
        isinstance(cls, type)
        and issubclass(cls, base)
        and not getattr(cls, "__abstractmethods__", None)
        and f"{cls.__module__}.{cls.__name__}" == name
    )
