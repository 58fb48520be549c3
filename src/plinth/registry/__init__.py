"""The model registry: models, numbered versions, aliases moved by compare-and-swap, audit.

Owns :mod:`plinth.registry.api` (``plinth.models``, the registry's one public surface: read
versions, move aliases, load, model cards), :mod:`plinth.registry.cards` (a card's
ledger records, which ``plinth.models.card`` and the web UI's model page both show),
:mod:`plinth.registry.model_files`
(``run.log_model``, ``load_model``) and :mod:`plinth.registry.flavors` (saving and loading
each framework's models). It may import the core (:mod:`plinth.ledger` through a context,
:mod:`plinth.storage`, :mod:`plinth.entities`, :mod:`plinth.errors`, :mod:`plinth.refs`),
no other pillar: tracking (``run.log_model``), monitoring and serving import it, never the
reverse (``log_model`` takes any run shaped like ``RunHandle``).
"""

from typing import Any

# The one public surface is ``plinth.models`` (:mod:`plinth.registry.api`); the names this
# package exported before keep working for one release, with a DeprecationWarning.
_DEPRECATED = {
    "card": ("plinth.registry.api", "card", "plinth.models.card"),
    "get": ("plinth.registry.api", "get", "plinth.models.get"),
    "history": ("plinth.registry.api", "history", "plinth.models.history"),
    "list_models": ("plinth.registry.api", "list_models", "plinth.models.list_models"),
    "load_model": ("plinth.registry.api", "load", "plinth.models.load"),
    "log_model": ("plinth.registry.model_files", "log_model", "run.log_model(model, name)"),
    "rollback": ("plinth.registry.api", "rollback", "plinth.models.rollback"),
    "set_alias": ("plinth.registry.api", "set_alias", "plinth.models.set_alias"),
    "versions": ("plinth.registry.api", "versions", "plinth.models.versions"),
}

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        import importlib

        from plinth._deprecation import alias

        module, attr, new = _DEPRECATED[name]
        return alias(getattr(importlib.import_module(module), attr), f"plinth.registry.{name}", new)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_DEPRECATED))
