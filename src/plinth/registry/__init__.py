"""The model registry: models, numbered versions, aliases moved by compare-and-swap, audit.

Owns :mod:`plinth.registry.api` (``plinth.models``: read versions, move aliases, model
cards), :mod:`plinth.registry.model_files` (``run.log_model``, ``load_model``) and
:mod:`plinth.registry.flavors` (saving and loading each framework's models). It may import
the core (:mod:`plinth.ledger` through a context, :mod:`plinth.storage`,
:mod:`plinth.entities`, :mod:`plinth.errors`) and :mod:`plinth.tracking`'s readers; the
pillars above it (serving, pipelines) import it, never the reverse. Names load on first
access, so that importing this package stays cheap.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.registry.api import (
        card,
        get,
        history,
        list_models,
        rollback,
        set_alias,
        versions,
    )
    from plinth.registry.model_files import load_model, log_model

_LAZY = {
    "card": "plinth.registry.api",
    "get": "plinth.registry.api",
    "history": "plinth.registry.api",
    "list_models": "plinth.registry.api",
    "load_model": "plinth.registry.model_files",
    "log_model": "plinth.registry.model_files",
    "rollback": "plinth.registry.api",
    "set_alias": "plinth.registry.api",
    "versions": "plinth.registry.api",
}

__all__ = [
    "card",
    "get",
    "history",
    "list_models",
    "load_model",
    "log_model",
    "rollback",
    "set_alias",
    "versions",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
