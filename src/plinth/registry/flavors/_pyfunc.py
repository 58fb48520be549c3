"""Arbitrary Python objects and callables, pickled: loading always needs explicit trust."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from plinth.errors import UsageError
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


def load(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    # The caller has checked trust and the file's digest before we get here.
    with open(folder / FILE, "rb") as source:
        model = pickle.load(source)  # noqa: S301
    return PlinthModel("python_function", model)
