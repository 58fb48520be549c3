"""The ledger's RPC surface: every public method of every store, with its annotations.

The team server exposes exactly these methods (``POST .../ledger/{store}/{method}``) and
:class:`plinth.ledger.remote.RemoteLedger` proxies exactly these, both encoding arguments
and results with :mod:`plinth.ledger.wire` from the annotations found here.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from plinth.errors import RequestError, UsageError
from plinth.ledger.wire import decode, encode

__all__ = [
    "STORES",
    "MethodSpec",
    "decode_args",
    "encode_args",
    "method_spec",
    "store_class",
    "store_methods",
]

#: The stores of :class:`plinth.ledger.Ledger`, by attribute name: the RPC surface.
STORES: tuple[str, ...] = (
    "projects",
    "runs",
    "search",
    "artifacts",
    "environments",
    "lineage",
    "datasets",
    "deployments",
    "validation",
    "models",
    "monitoring",
    "features",
    "pipelines",
    "gc",
)


# -- methods -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One public store method: its signature (without ``self``) and resolved annotations."""

    store: str
    name: str
    signature: inspect.Signature
    hints: Mapping[str, Any]

    @property
    def returns(self) -> Any:
        return self.hints.get("return", Any)


@cache
def _classes() -> dict[str, type]:
    """The store classes, imported on first use (they pull in SQLAlchemy)."""
    from plinth.ledger import (
        artifacts,
        datasets,
        deployments,
        environments,
        features,
        gc,
        lineage,
        models,
        monitoring,
        pipelines,
        projects,
        runs,
        search,
        validation,
    )

    return {
        "projects": projects.ProjectStore,
        "runs": runs.RunStore,
        "search": search.SearchStore,
        "artifacts": artifacts.ArtifactStore,
        "environments": environments.EnvironmentStore,
        "lineage": lineage.LineageStore,
        "datasets": datasets.DatasetStore,
        "deployments": deployments.DeploymentStore,
        "validation": validation.ValidationStore,
        "models": models.ModelStore,
        "monitoring": monitoring.MonitoringStore,
        "features": features.FeatureStore,
        "pipelines": pipelines.PipelineStore,
        "gc": gc.GcStore,
    }


def store_class(store: str) -> type:
    """The class of the ledger store ``store`` (an attribute name of ``Ledger``)."""
    classes = _classes()
    if store not in classes:
        raise UsageError(f"the ledger has no store {store!r:.60}", hint=f"stores: {STORES}")
    return classes[store]


@cache
def store_methods(store: str) -> tuple[str, ...]:
    """The public method names of a store, sorted."""
    cls = store_class(store)
    return tuple(
        sorted(
            name
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        )
    )


@cache
def method_spec(store: str, name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``store.name``; :class:`UsageError` if it is not public."""
    if name not in store_methods(store):
        raise UsageError(f"the ledger store {store!r} has no method {name!r:.60}")
    function = getattr(store_class(store), name)
    signature = inspect.signature(function)
    params = list(signature.parameters.values())[1:]  # without self
    return MethodSpec(
        store, name, signature.replace(parameters=params), typing.get_type_hints(function)
    )


def encode_args(
    spec: MethodSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """A call's arguments, bound to the method's signature, as ``{name: wire value}``."""
    try:
        bound = spec.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise UsageError(f"{spec.store}.{spec.name}(): {exc}") from None
    return {
        name: encode(value, spec.hints.get(name, Any), name)
        for name, value in bound.arguments.items()
    }


def decode_args(spec: MethodSpec, data: Any) -> dict[str, Any]:
    """The keyword arguments of a call from ``{name: wire value}``; unknown names refused."""
    if not isinstance(data, dict):
        raise _bad("args", f"expected an object of arguments, got {_jkind(data)}")
    params = spec.signature.parameters
    unknown = sorted(set(data) - set(params))
    if unknown:
        raise _bad(
            f"args.{unknown[0]}", f"{spec.store}.{spec.name} takes no argument {unknown[0]!r:.60}"
        )
    values = {
        name: decode(value, spec.hints.get(name, Any), f"args.{name}")
        for name, value in data.items()
    }
    try:
        spec.signature.bind(**values)
    except TypeError as exc:
        raise _bad("args", f"{spec.store}.{spec.name}: {exc}") from None
    return values


def _bad(field: str, message: str) -> RequestError:
    return RequestError.naming([(field, message)])


def _jkind(data: Any) -> str:
    return "a list" if isinstance(data, list) else type(data).__name__
