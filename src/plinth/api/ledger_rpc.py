"""The generic ledger RPC: every public store method at ``POST .../ledger/{store}/{method}``.

One route per method of the role table (:mod:`plinth.api.policy`), so the route inventory
names each one and the app checks its role before the handler runs. The body is
``{"args": {name: wire value}}``, the answer ``{"result": wire value}``, both in the
type-directed codec of :mod:`plinth.ledger.wire`. The ledger is the project's own, opened
with the authenticated user's name: ``created_by`` is never what the client claims. Every
write is audited with the method and its target (the first id or name argument), never the
argument values, which may hold anything.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plinth.api.policy import POLICY, check_protected_aliases, touched_aliases
from plinth.api.routes import Call, Endpoint, plain_response
from plinth.entities import RecordRef
from plinth.ledger.surface import MethodSpec, decode_args, method_spec
from plinth.ledger.wire import encode

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS", "LEDGER_PREFIX", "handle_info"]

LEDGER_PREFIX = "/api/v1/projects/{project}/ledger"
#: Bodies of the calls that carry metric points: a whole journal batch fits.
_POINTS_BODY = 64 << 20
_WRITE_BODY = 16 << 20
_READ_BODY = 1 << 20
_POINT_METHODS = frozenset({("runs", "log_metrics"), ("runs", "finish")})


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
    return plain_response(body, status_code=status, media_type="application/json")


def _target(spec: MethodSpec, args: dict[str, Any]) -> str:
    """The first argument naming a record: an id, a name, a ref or an entity's id."""
    for name in spec.signature.parameters:
        value = args.get(name)
        if isinstance(value, RecordRef):
            return str(value)
        if isinstance(value, str) and (name.endswith("_id") or name in ("name", "alias")):
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            ident = getattr(value, "id", None)
            if isinstance(ident, str):
                return f"{type(value).__name__.lower()}:{ident}"
    return f"{spec.store}.{spec.name}"


def _handler(store: str, method: str) -> Callable[[Call], Response]:
    spec = method_spec(store, method)
    role = POLICY[(store, method)]

    def handle(call: Call) -> Response:
        args = decode_args(spec, call.json().get("args", {}))
        assert call.principal is not None  # a project route: authenticated
        assert call.project is not None
        aliases = touched_aliases(store, method, args)
        if aliases:
            check_protected_aliases(
                call.principal, call.project, aliases, call.config.protected_aliases
            )
        result = getattr(getattr(call.ledger(), store), method)(**args)
        if role != "read":
            detail: dict[str, object] = {"method": f"{store}.{method}"}
            if aliases:
                detail["aliases"] = aliases
            call.audit(f"ledger.{store}.{method}", _target(spec, args), detail)
        return _json({"result": encode(result, spec.returns, "result")})

    handle.__name__ = f"ledger_{store}_{method}"
    handle.__doc__ = f"ledger.{store}.{method}"
    return handle


def handle_info(call: Call) -> Response:
    """The project ledger's schema revision and the user it records."""
    ledger = call.ledger()
    return _json(
        {"schema_revision": ledger.schema_revision(), "user": ledger.user, "project": call.project}
    )


def _body_limit(store: str, method: str) -> int:
    if (store, method) in _POINT_METHODS:
        return _POINTS_BODY
    return _READ_BODY if POLICY[(store, method)] == "read" else _WRITE_BODY


def _endpoints() -> list[Endpoint]:
    out = [
        Endpoint(
            "GET",
            LEDGER_PREFIX,
            handle_info,
            "The project ledger's schema revision and recorded user.",
            access="project",
            role="read",
        )
    ]
    for (store, method), role in sorted(POLICY.items()):
        out.append(
            Endpoint(
                "POST",
                f"{LEDGER_PREFIX}/{store}/{method}",
                _handler(store, method),
                f"Ledger call {store}.{method} (body {{'args': {{...}}}}).",
                access="project",
                role=role,
                max_body=_body_limit(store, method),
            )
        )
    return out


#: One route per ledger method the role table serves, plus the ledger's info.
ENDPOINTS: list[Endpoint] = _endpoints()
