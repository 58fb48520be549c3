"""What the model store checks and how its rows become records, without SQLAlchemy."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from plinth.entities.models import UNCHECKED, AliasMove, Model, ModelVersion, Unchecked
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.refs import check_label, check_name, parse_spec

__all__ = [
    "alias_conflict",
    "check_alias",
    "check_expected",
    "check_model_name",
    "check_new_model_version",
    "conflict_error",
    "metrics_from_db",
    "metrics_to_db",
    "missing_model_version",
    "model_of",
    "model_version_of",
    "move_of",
    "parse_model_spec",
    "unknown_model",
]

_FLAVOR = re.compile(r"[a-z][a-z0-9_.\-]*")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9_.\-]+")


def check_model_name(name: object) -> str:
    """``name`` if it can name a model: the name rule of :mod:`plinth.refs`."""
    return check_name(name, what="model", field="name")


def check_alias(alias: object, *, existing: bool = False) -> str:
    """``alias`` if a new alias may be called so: the label rule of :mod:`plinth.refs`
    (``existing``: if a reference can name it, so that an old alias can still go)."""
    return check_label(alias, what="alias", field="alias", existing=existing)


def _check_number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be a version number (an integer >= 1), got {value!r}")
    if value < 1:
        raise UsageError(f"model versions start at 1, got {what} {value}", field="version")
    return value


def check_expected(expected: object) -> int | Unchecked | None:
    """``expected`` if it is UNCHECKED, None (the alias must be unset) or a version number."""
    if expected is UNCHECKED or expected is None:
        return expected
    return _check_number(expected, "the expected version")


def parse_model_spec(spec: str | int | None) -> int | str | None:
    """A version spec as a number, an alias, or None for the latest version."""
    return parse_spec(spec, what="model", field="version")


def _json_ready(value: object, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what} must be JSON-serialisable: {exc}", field=what) from None


def metrics_to_db(metrics: Mapping[str, object] | None) -> dict[str, float | str] | None:
    """Metrics as JSON: NaN and infinities, which JSON cannot hold, as their names."""
    if metrics is None:
        return None
    if not isinstance(metrics, Mapping):
        raise UsageError(f"metrics must be a mapping of name to number, got {metrics!r}")
    out: dict[str, float | str] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"metric names must be non-empty strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"metric {key!r} must be a number, got {value!r}", field="metrics")
        number = float(value)
        out[key] = number if math.isfinite(number) else str(number)
    return out


def metrics_from_db(stored: Any) -> dict[str, float] | None:
    if isinstance(stored, str):  # some drivers hand JSON columns back as text
        stored = json.loads(stored)
    if stored is None:
        return None
    return {str(k): float(v) for k, v in stored.items()}


def check_new_model_version(
    *,
    flavor: object,
    manifest_digest: object,
    run_id: object,
    environment_id: object,
    signature: object,
    trusted_digests: Iterable[object],
    description: object,
) -> tuple[Any, list[str]]:
    """Raise :class:`UsageError` for a malformed version; the signature as JSON and the
    sorted trusted digests."""
    if not isinstance(flavor, str) or not _FLAVOR.fullmatch(flavor) or len(flavor) > 32:
        raise UsageError(
            f"invalid model flavor {flavor!r}",
            hint="a flavor is a lowercase name of at most 32 characters, e.g. sklearn",
            field="flavor",
        )
    if not isinstance(manifest_digest, str) or not _DIGEST.fullmatch(manifest_digest):
        raise UsageError(
            f"manifest digest must be 64 lowercase hex characters, got {manifest_digest!r}",
            field="manifest_digest",
        )
    for what, value in (("run id", run_id), ("environment id", environment_id)):
        if value is not None and (
            not isinstance(value, str) or not _ID.fullmatch(value) or len(value) > 36
        ):
            raise UsageError(f"invalid {what} {value!r}", field=what.replace(" ", "_"))
    if description is not None and not isinstance(description, str):
        raise UsageError(f"description must be a string, got {description!r}")
    if signature is not None and not isinstance(signature, Mapping):
        raise UsageError(f"signature must be a mapping, got {signature!r}", field="signature")
    if isinstance(trusted_digests, str):
        raise UsageError("trusted digests must be a list of digests, not one string")
    digests = sorted({str(d) for d in trusted_digests})
    for digest in digests:
        if not _DIGEST.fullmatch(digest):
            raise UsageError(
                f"a trusted digest must be 64 lowercase hex characters, got {digest!r}",
                field="trusted_digests",
            )
    return (None if signature is None else _json_ready(signature, "signature")), digests


def unknown_model(name: str, known: list[str]) -> NotFoundError:
    """The error for a model name the project does not have, listing those it has."""
    listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
    return NotFoundError(
        f"no model named {name!r} in this project",
        hint=f"models: {listed}" if known else "log one with run.log_model(model, name=...)",
        field="name",
    )


def missing_model_version(model: Model, spec: int | str | None) -> NotFoundError:
    """The error for a version or alias a model does not have."""
    if spec is None:
        return NotFoundError(
            f"model {model.name!r} has no versions yet",
            hint="log one with run.log_model(model, name=...)",
            field="version",
        )
    if isinstance(spec, int):
        known = f"versions 1 to {model.versions}" if model.versions else "no versions yet"
        return NotFoundError(
            f"model {model.name!r} has no version {spec} ({known})",
            hint=f"list them with: plinth models show {model.name}",
            field="version",
        )
    return NotFoundError(
        f"model {model.name!r} has no alias {spec!r}",
        hint=f"set it with: plinth models alias {model.name} {spec} VERSION",
        field="alias",
    )


def alias_conflict(model: Model, alias: str, current: int | None, expected: int | None) -> str:
    """One line saying where ``alias`` points and where the caller expected it."""
    now = "is not set" if current is None else f"points at version {current}"
    wanted = "to be unset" if expected is None else f"at version {expected}"
    return f"alias {alias!r} of model {model.name!r} {now}; expected it {wanted}"


def conflict_error(lines: list[str], model: Model) -> ConflictError:
    return ConflictError(
        "; ".join(lines) + " (nothing was moved)",
        hint=f"see where it points with: plinth models show {model.name} and retry with "
        "--expect set to that version",
        field="expected",
    )


def model_of(m: Mapping[Any, Any]) -> Model:
    return Model(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        versions=m["versions"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        description=m["description"],
    )


def model_version_of(
    m: Mapping[Any, Any], model: str, aliases: tuple[str, ...] = ()
) -> ModelVersion:
    signature = m["signature"]
    if isinstance(signature, str):
        signature = json.loads(signature)
    trusted = m["trusted_digests"]
    if isinstance(trusted, str):
        trusted = json.loads(trusted)
    return ModelVersion(
        id=m["id"],
        model_id=m["model_id"],
        model=model,
        number=m["number"],
        flavor=m["flavor"],
        manifest_digest=m["manifest_digest"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        run_id=m["run_id"],
        signature=signature,
        environment_id=m["environment_id"],
        metrics=metrics_from_db(m["metrics"]),
        trusted_digests=tuple(trusted or ()),
        description=m["description"],
        aliases=aliases,
    )


def move_of(m: Mapping[Any, Any], model: str) -> AliasMove:
    return AliasMove(
        id=m["id"],
        model_id=m["model_id"],
        model=model,
        alias=m["alias"],
        from_number=m["from_number"],
        to_number=m["to_number"],
        reason=m["reason"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )
