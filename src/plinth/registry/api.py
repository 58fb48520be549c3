"""``plinth.models``: read registered versions, move aliases (compare-and-swap), model cards.

A reference names a version: ``NAME`` (the latest), ``NAME@3`` or ``NAME@v3`` (a number),
``NAME@champion`` (an alias), in the one grammar of :mod:`plinth.refs`::

    mv = plinth.models.get("delays@champion")
    plinth.models.set_alias("delays", "champion", 4, expected=mv.number, reason="better rmse")
    plinth.models.rollback("delays", "champion", reason="p99 latency regression")
    plinth.models.card("delays@4")["data"]      # the dataset versions it was trained on

Every function takes ``ctx`` (default: :func:`plinth.context.resolve_context`: the active
run's context, else the process default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plinth import refs
from plinth.context import Context, resolve_context
from plinth.entities.models import UNCHECKED, AliasMove, Model, ModelVersion, Unchecked
from plinth.registry.cards import ModelCard, TrainingData, gather_card

if TYPE_CHECKING:
    from plinth.ledger.models import ModelStore

__all__ = [
    "UNCHECKED",
    "aliases",
    "card",
    "delete_alias",
    "get",
    "history",
    "list_models",
    "load",
    "parse_ref",
    "rollback",
    "set_alias",
    "version_dict",
    "versions",
]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Deprecated: :func:`plinth.refs.parse_ref` gives a :class:`plinth.refs.Ref`."""
    from plinth._deprecation import warn

    warn("plinth.registry.api.parse_ref", "plinth.refs.parse_ref (it returns a Ref)")
    parsed = refs.parse_ref(ref, what="model")
    return parsed.name, None if parsed.spec is None else str(parsed.spec)


def _open(name: str, ctx: Context | None) -> tuple[ModelStore, Model]:
    context = resolve_context(ctx)
    store = context.ledger.models
    return store, store.get(context.project.id, name)


def _read(name: str, ctx: Context | None) -> tuple[ModelStore, Model]:
    # ctx.reads: on an embedded ledger these reads skip SQLAlchemy's import (a model
    # server resolves its NAME@ALIAS through here before its first answer).
    context = resolve_context(ctx)
    store = context.reads.models
    return store, store.get(context.project.id, name)


def get(ref: str, *, ctx: Context | None = None) -> ModelVersion:
    """The version ``ref`` names: ``NAME``, ``NAME@3`` or ``NAME@champion``."""
    parsed = refs.parse_ref(ref, what="model")
    store, model = _read(parsed.name, ctx)
    return store.resolve(model, parsed.spec)


def list_models(*, ctx: Context | None = None) -> list[Model]:
    """The models of the project, by name."""
    context = resolve_context(ctx)
    return context.ledger.models.list(context.project.id)


def versions(
    name: str, *, limit: int | None = None, ctx: Context | None = None
) -> list[ModelVersion]:
    """The versions of model ``name``, newest first, each with its aliases."""
    store, model = _open(name, ctx)
    return store.list_versions(model, limit=limit)


def aliases(name: str, *, ctx: Context | None = None) -> dict[str, int]:
    """Every alias of model ``name`` and the version it points at."""
    store, model = _read(name, ctx)
    return store.aliases(model)


def set_alias(
    name: str,
    alias: str,
    version: int | str,
    *,
    expected: int | Unchecked | None = UNCHECKED,
    reason: str | None = None,
    ctx: Context | None = None,
) -> AliasMove:
    """Point ``alias`` of model ``name`` at ``version`` (a number, "latest" or an alias).

    Pass ``expected`` (the version it points at now, or None for "not set") to move it
    only if nobody moved it since you looked: otherwise ConflictError, and nothing moves.
    """
    store, model = _open(name, ctx)
    return store.set_alias(model, alias, version, expected=expected, reason=reason)


def delete_alias(
    name: str,
    alias: str,
    *,
    expected: int | Unchecked | None = UNCHECKED,
    reason: str | None = None,
    ctx: Context | None = None,
) -> AliasMove:
    """Remove ``alias`` of model ``name`` (audited like a move)."""
    store, model = _open(name, ctx)
    return store.delete_alias(model, alias, expected=expected, reason=reason)


def rollback(
    name: str, alias: str, *, reason: str | None = None, ctx: Context | None = None
) -> AliasMove:
    """Move ``alias`` back to the version it pointed at before its latest move."""
    store, model = _open(name, ctx)
    return store.rollback(model, alias, reason=reason)


def history(name: str, alias: str | None = None, *, ctx: Context | None = None) -> list[AliasMove]:
    """The alias moves of model ``name`` (or of one alias), newest first."""
    store, model = _open(name, ctx)
    return store.alias_history(model, alias)


def load(ref: str | ModelVersion, *, trusted: bool = False, ctx: Context | None = None) -> Any:
    """A registered version as a model with ``predict`` (``"NAME@champion"``, ``"NAME@3"``).

    Nothing is unpickled unless ``trusted=True``, and then only files whose digests were
    recorded when the model was logged; see :func:`plinth.registry.model_files.load_model`.
    """
    from plinth.registry.model_files import load_model

    return load_model(ref, trusted=trusted, ctx=ctx)


def version_dict(v: ModelVersion) -> dict[str, Any]:
    """A version's fields as JSON-ready data (what ``--json`` prints)."""
    return {
        "ref": v.ref,
        "id": v.id,
        "model": v.model,
        "version": v.number,
        "flavor": v.flavor,
        "aliases": list(v.aliases),
        "description": v.description,
        "run_id": v.run_id,
        "environment_id": v.environment_id,
        "metrics": v.metrics,
        "signature": v.signature,
        "manifest_digest": v.manifest_digest,
        "trusted_digests": list(v.trusted_digests),
        "created_at": v.created_at,
        "created_by": v.created_by,
    }


def card(ref: str, *, ctx: Context | None = None) -> dict[str, Any]:
    """What a reviewer needs to trust a version, as JSON-ready data.

    The version's fields, plus its run (params, final metrics, status, code commit), its
    environment, and the dataset versions the run used (``run —used→ dataset_version``)
    with each one's validation results. Parts the ledger no longer holds are None.
    """
    context = resolve_context(ctx)
    version = get(ref, ctx=context)
    # ctx.reads: the same records; on an embedded ledger without importing SQLAlchemy.
    found = gather_card(context.reads, version)
    out = version_dict(version)
    run_info: dict[str, Any] | None = None
    if found.run is not None:
        run = found.run
        source = dict(run.source)
        run_info = {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "params": found.params,
            "metrics": found.metrics,
            "commit": source.get("git_commit"),
            "source": source,
        }
    out["run"] = run_info
    out["code_commit"] = run_info["commit"] if run_info else None
    out["environment"] = _environment_json(found)
    out["data"] = [_data_json(used) for used in found.data]
    return out


def _environment_json(found: ModelCard) -> dict[str, Any] | None:
    if found.environment_id is None:
        return None
    env = found.environment
    if env is None:
        return {"id": found.environment_id, "missing": True}
    return {
        "id": env.id,
        "digest": env.digest,
        "python": env.python,
        "platform": env.platform,
        "packages": dict(env.packages),
    }


def _data_json(used: TrainingData) -> dict[str, Any]:
    dv = used.version
    if dv is None:
        return {"id": used.id, "ref": None, "missing": True, "validations": []}
    validations = [
        {
            "suite": r.suite,
            "suite_number": r.suite_number,
            "success": r.success,
            "error_count": r.error_count,
            "warning_count": r.warning_count,
            "created_at": r.created_at,
        }
        for r in used.validations
    ]
    return {
        "id": dv.id,
        "ref": dv.ref,
        "status": dv.status,
        "row_count": dv.row_count,
        "manifest_digest": dv.manifest_digest,
        "validations": validations,
    }
