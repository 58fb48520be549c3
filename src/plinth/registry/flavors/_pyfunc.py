"""Arbitrary Python objects and callables, pickled: loading always needs explicit trust."""

from __future__ import annotations

import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

from plinth.errors import UntrustedModelError, UsageError
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

FILE = "model.pkl"


def save(model: Any, folder: Path) -> FlavorInfo:
    if not (callable(model) or hasattr(model, "predict")):
        raise UsageError(
            f"a python_function model must be callable or have predict(), "
            f"got {type(model).__name__}",
            field="model",
        )
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"cannot pickle the {type(model).__name__} model: {exc}",
            hint="define the function or class at module level (lambdas and local "
            "functions cannot be pickled)",
            field="model",
        ) from None
    (folder / FILE).write_bytes(data)
    return FlavorInfo(
        "python_function",
        (FILE,),
        needs_pickle=True,
        loader="pickle.load",
        extra={"class": f"{type(model).__module__}.{type(model).__qualname__}"},
    )


def load(
    folder: Path, info: FlavorInfo, *, trusted: bool, trusted_digests: Collection[str] = ()
) -> PlinthModel:
    """Unpickle the model: only with ``trusted`` and only bytes whose digest was recorded
    when the model was logged. The bytes are read once, hashed, then unpickled, so a file
    swapped between the check and the load is never run."""
    from blake3 import blake3

    if not trusted:
        raise UntrustedModelError(
            "the python_function model is pickled: loading it runs code from its files",
            hint="pass trusted=True only if you trust whoever logged it",
        )
    data = (folder / FILE).read_bytes()
    digest = blake3(data).hexdigest()
    if digest not in set(trusted_digests):
        raise UntrustedModelError(
            f"model file {FILE} (digest {digest}) is not one the model was logged with; "
            "refusing to unpickle it even with trusted=True",
            hint="load the model through the registry, which records the digests of pickled "
            "files when it is logged",
        )
    model = pickle.loads(data)  # noqa: S301 - trusted and digest-checked just above
    return PlinthModel("python_function", model)
