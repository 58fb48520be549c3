"""Model flavors: how each kind of model is saved to files and loaded back, safely.

A flavor is picked from the model's type (the top-level package of any class in its MRO:
``sklearn``, ``lightgbm``, ``xgboost``, ``onnx``, ``torch``), else ``python_function`` for
any other callable or object with ``predict``. Nothing heavy is imported until a flavor is
used. Loading never unpickles by default: a flavor whose files need pickle loads only with
``trusted=True`` *and* when every such file hashes to a digest recorded at logging time::

    info = save_model(model, folder)              # FlavorInfo(flavor='sklearn', files=...)
    loaded = load_model(folder, info)             # PlinthModel: .predict(df), .model

This package may import plinth.errors, plinth.guards, plinth.storage and the flavor
libraries, lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from plinth.errors import IntegrityError, UntrustedModelError, UsageError
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

__all__ = ["FLAVORS", "FlavorInfo", "PlinthModel", "flavor_of", "load_model", "save_model"]

#: flavor name -> (module under this package, save function, load function), by name so
#: that nothing is imported until the flavor is used.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "sklearn": ("_sklearn", "save", "load"),
    "lightgbm": ("_boosters", "save_lightgbm", "load_lightgbm"),
    "xgboost": ("_boosters", "save_xgboost", "load_xgboost"),
    "onnx": ("_onnx", "save", "load"),
    "torch": ("_torch", "save", "load"),
    "python_function": ("_pyfunc", "save", "load"),
}

#: Every flavor name, in the order a model's type is probed.
FLAVORS: tuple[str, ...] = tuple(_REGISTRY)

#: Top-level package of a model's class -> flavor.
_BY_PACKAGE = {
    "sklearn": "sklearn",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "onnx": "onnx",
    "torch": "torch",
}


def _function(flavor: str, which: int) -> Callable[..., Any]:
    try:
        entry = _REGISTRY[flavor]
    except KeyError:
        raise UsageError(
            f"unknown model flavor {flavor!r}",
            hint=f"use one of: {', '.join(FLAVORS)}",
            field="flavor",
        ) from None
    module = importlib.import_module(f"{__name__}.{entry[0]}")
    function: Callable[..., Any] = getattr(module, entry[which])
    return function


def flavor_of(model: Any) -> str:
    """The flavor a model is saved with, from the packages of the classes in its MRO.

    xgboost's and LightGBM's scikit-learn wrappers get their native flavor (their own
    package comes first in the MRO).
    """
    for cls in type(model).__mro__:
        package = cls.__module__.partition(".")[0]
        if package in _BY_PACKAGE:
            return _BY_PACKAGE[package]
    if isinstance(model, Mapping) and any(
        type(v).__module__.partition(".")[0] == "torch" for v in model.values()
    ):
        return "torch"  # a state dict
    if callable(model) or hasattr(model, "predict"):
        return "python_function"
    raise UsageError(
        f"plinth does not know how to save a {type(model).__name__}",
        hint="pass a scikit-learn, LightGBM, XGBoost, ONNX or PyTorch model, or an object "
        "with predict() (flavor='python_function')",
        field="model",
    )


def save_model(model: Any, folder: Path | str, *, flavor: str | None = None) -> FlavorInfo:
    """Write ``model``'s files into ``folder`` (created) and describe how to load them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = flavor or flavor_of(model)
    info: FlavorInfo = _function(name, 1)(model, folder)
    return info


def load_model(
    folder: Path | str,
    info: FlavorInfo,
    *,
    trusted: bool = False,
    trusted_digests: Collection[str] = (),
    digests: Mapping[str, str] | None = None,
) -> PlinthModel:
    """Load a model saved by :func:`save_model`; never unpickles unless told to.

    ``digests`` (file -> digest, as recorded) makes every file be hashed and compared first.
    A flavor that needs pickle loads only with ``trusted=True`` and when each of its files
    hashes to one of ``trusted_digests`` (the digests recorded when the model was logged).
    """
    from plinth.guards.paths import safe_join
    from plinth.storage.content import hash_file

    folder = Path(folder)
    actual: dict[str, str] = {}
    if digests is not None or info.needs_pickle:
        # info.files comes from a stored manifest: joined safely, never read from outside.
        actual = {path: hash_file(safe_join(folder, path)).digest for path in info.files}
    if digests is not None:
        for path, digest in actual.items():
            if digests.get(path) != digest:
                raise IntegrityError(
                    f"model file {path} hashes to {digest}, not to the recorded "
                    f"{digests.get(path)}",
                    hint="the file changed after it was logged; fetch it again from the store",
                )
    if info.needs_pickle:
        if not trusted:
            raise UntrustedModelError(
                f"the {info.flavor} model is pickled: loading it runs code from its files",
                hint="pass trusted=True only if you trust whoever logged it",
            )
        allowed = set(trusted_digests)
        for path, digest in actual.items():
            if digest not in allowed:
                raise UntrustedModelError(
                    f"model file {path} (digest {digest}) is not one the model was logged "
                    "with; refusing to unpickle it even with trusted=True",
                    hint="load the model through the registry, which records the digests "
                    "of pickled files when it is logged",
                )
    loader = _function(info.flavor, 2)
    if info.needs_pickle:  # the loader re-checks the digest of the very bytes it unpickles
        loaded: PlinthModel = loader(folder, info, trusted=trusted, trusted_digests=allowed)
    else:
        loaded = loader(folder, info, trusted=trusted)
    return loaded
