"""Deployment specs: the YAML that says what ``plinth serve`` serves, parsed strictly.

::

    name: delays
    model: delays@champion
    canary: {model: delays@challenger, traffic: 0.1}   # optional
    shadow: delays@candidate                           # optional
    logging: {sample: 1.0}
    limits: {max_rows: 10000, max_body_bytes: 10485760}
    passthrough: [order_id]                            # optional; typed: see docs/serving.md
    validate: {suite: serving.yaml, mode: reject}      # optional; mode reject or warn
    features: {service: delays_features}               # optional; requests send entity keys

Every problem is a :class:`~plinth.errors.UsageError` naming the key (``field=``) and,
for an unknown key, the closest known one. ``digest`` is the BLAKE3 of the text: the same
text is the same deployment version in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.specfile import (
    check_mapping,
    check_number,
    no_unknown,
    parse_yaml,
    read_yaml,
    short_repr,
)

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ROWS",
    "Canary",
    "DeploymentSpec",
    "FeaturesSpec",
    "Passthrough",
    "deployment_store",
    "save_deployment",
]

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_HINT = (
    "a deployment is 'name: NAME' and 'model: MODEL@ALIAS', with optional canary, shadow, "
    "logging, limits, passthrough, validate and features; see docs/serving.md"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TOP = (
    "name",
    "model",
    "canary",
    "shadow",
    "logging",
    "limits",
    "passthrough",
    "validate",
    "features",
)
#: Types a pass-through field may declare (``any``: any JSON scalar or null).
PASSTHROUGH_TYPES = ("any", "string", "integer", "number", "boolean")
#: Columns the prediction log writes itself; a pass-through field cannot take their names.
_LOG_COLUMNS = ("request_id", "ts", "model_version", "prediction", "input_check_failures")
_MODES = ("reject", "warn")


@dataclass(frozen=True)
class Passthrough:
    """A request field that is not a model input: checked, logged and echoed on request."""

    name: str
    type: str = "any"
    required: bool = False


@dataclass(frozen=True)
class FeaturesSpec:
    """Online features: the feature service (``NAME`` or ``NAME@N``) whose features the
    server looks up for each request's entity keys; ``trust_code`` lets a recorded
    on-demand function run (see docs/serving.md#online-features)."""

    service: str
    trust_code: bool = False


@dataclass(frozen=True)
class Canary:
    """A second model that answers ``traffic`` (a fraction in (0, 1)) of the requests."""

    model: str
    traffic: float


@dataclass(frozen=True)
class DeploymentSpec:
    """A parsed deployment file; ``text`` is what was parsed (stored in the ledger)."""

    name: str
    model: str
    canary: Canary | None = None
    shadow: str | None = None
    sample: float = 1.0
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    text: str = ""
    passthrough: tuple[Passthrough, ...] = ()
    #: ``validate.suite`` as written (relative to ``base_dir``) and ``validate.mode``.
    suite: str | None = None
    mode: str = "reject"
    features: FeaturesSpec | None = None
    #: The deployment file's folder: ``validate.suite`` resolves inside it.
    base_dir: Path | None = field(default=None, compare=False)

    @property
    def digest(self) -> str:
        """BLAKE3 of the spec's text (of its canonical dict when it was built in code)."""
        from blake3 import blake3

        return blake3(self.yaml_text.encode("utf-8")).hexdigest()

    @property
    def yaml_text(self) -> str:
        """The text that was parsed, or the spec dumped as YAML when it was built in code."""
        if self.text:
            return self.text
        import yaml

        dumped: str = yaml.safe_dump(self.to_dict(), sort_keys=False)
        return dumped

    @property
    def passthrough_fields(self) -> list[tuple[str, str, bool]]:
        """``(name, type, required)`` of each pass-through field, as decoders take them."""
        return [(p.name, p.type, p.required) for p in self.passthrough]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "model": self.model}
        if self.canary is not None:
            doc["canary"] = {"model": self.canary.model, "traffic": self.canary.traffic}
        if self.shadow is not None:
            doc["shadow"] = self.shadow
        doc["logging"] = {"sample": self.sample}
        doc["limits"] = {"max_rows": self.max_rows, "max_body_bytes": self.max_body_bytes}
        if self.passthrough:
            doc["passthrough"] = {
                p.name: {"type": p.type, "required": p.required} for p in self.passthrough
            }
        if self.suite is not None:
            doc["validate"] = {"suite": self.suite, "mode": self.mode}
        if self.features is not None:
            doc["features"] = {
                "service": self.features.service,
                "trust_code": self.features.trust_code,
            }
        return doc

    @classmethod
    def load(cls, path: str | Path) -> DeploymentSpec:
        """Read and parse a deployment file."""
        data, text = read_yaml(path, what="deployment", hint=_HINT)
        spec = cls.from_dict(data, where=str(path), text=text)
        return replace(spec, base_dir=Path(path).resolve().parent)

    @classmethod
    def from_yaml(cls, text: str, where: str = "<deployment>") -> DeploymentSpec:
        """Parse deployment YAML; a malformed file names the line and column."""
        data = parse_yaml(text, where=where, what="deployment", hint=_HINT)
        return cls.from_dict(data, where=where, text=text)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "<deployment>", text: str = "") -> DeploymentSpec:
        """A spec from a parsed mapping, checked like YAML."""
        if not isinstance(data, Mapping):
            raise UsageError(
                f"{where}: a deployment is a mapping, not {short_repr(data)}",
                hint=_HINT,
                field="deployment",
            )
        no_unknown(data, _TOP, where, "")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(
                f"{where}: 'name' must be a name like 'delays' (letters, digits, _ . -), "
                f"got {short_repr(name)}",
                hint=_HINT,
                field="name",
            )
        model = _model_ref(data.get("model"), where, "model", required=True)
        assert model is not None
        canary = None
        if data.get("canary") is not None:
            raw = _mapping(data["canary"], where, "canary")
            no_unknown(raw, ("model", "traffic"), where, "canary.")
            canary_model = _model_ref(raw.get("model"), where, "canary.model", required=True)
            assert canary_model is not None
            traffic = check_number(raw.get("traffic"), where, "canary.traffic")
            if not 0 < traffic < 1:
                raise UsageError(
                    f"{where}: 'canary.traffic' is the fraction of requests the canary "
                    f"answers, strictly between 0 and 1; got {traffic}",
                    hint="e.g. traffic: 0.1 sends one request in ten to the canary",
                    field="canary.traffic",
                )
            canary = Canary(canary_model, traffic)
        shadow = _model_ref(data.get("shadow"), where, "shadow", required=False)
        sample = 1.0
        if data.get("logging") is not None:
            raw = _mapping(data["logging"], where, "logging")
            no_unknown(raw, ("sample",), where, "logging.")
            if raw.get("sample") is not None:
                sample = check_number(raw["sample"], where, "logging.sample")
                if not 0 <= sample <= 1:
                    raise UsageError(
                        f"{where}: 'logging.sample' is the fraction of requests logged, "
                        f"between 0 and 1; got {sample}",
                        hint="1.0 logs every request, 0 none",
                        field="logging.sample",
                    )
        max_rows, max_body = DEFAULT_MAX_ROWS, DEFAULT_MAX_BODY_BYTES
        if data.get("limits") is not None:
            raw = _mapping(data["limits"], where, "limits")
            no_unknown(raw, ("max_rows", "max_body_bytes"), where, "limits.")
            if raw.get("max_rows") is not None:
                max_rows = _positive_int(raw["max_rows"], where, "limits.max_rows")
            if raw.get("max_body_bytes") is not None:
                max_body = _positive_int(raw["max_body_bytes"], where, "limits.max_body_bytes")
        suite, mode = _validate(data.get("validate"), where)
        return cls(
            name=name,
            model=model,
            canary=canary,
            shadow=shadow,
            sample=sample,
            max_rows=max_rows,
            max_body_bytes=max_body,
            text=text,
            passthrough=_passthrough(data.get("passthrough"), where),
            suite=suite,
            mode=mode,
            features=_features(data.get("features"), where),
        )

    def suite_path(self) -> Path:
        """Where ``validate.suite`` is: inside the deployment file's folder (safe-joined)."""
        from plinth.guards.paths import safe_join

        assert self.suite is not None
        base = self.base_dir if self.base_dir is not None else Path.cwd()
        try:
            return safe_join(base, self.suite)
        except Exception as exc:
            raise UsageError(
                f"'validate.suite' {short_repr(self.suite, 80)} is not a file inside {base}: {exc}",
                hint="name the suite relative to the deployment file's folder, "
                "e.g. suite: serving_suite.yaml",
                field="validate.suite",
            ) from None


def _passthrough(value: Any, where: str) -> tuple[Passthrough, ...]:
    if value is None:
        return ()
    hint = (
        "passthrough is a list of field names ([order_id]) or a mapping "
        "{order_id: {type: string, required: true}}; types: " + ", ".join(PASSTHROUGH_TYPES)
    )
    if isinstance(value, list):
        items: list[tuple[Any, Any]] = [(name, None) for name in value]
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        raise UsageError(
            f"{where}: 'passthrough' must be a list or a mapping, got {short_repr(value)}",
            hint=hint,
            field="passthrough",
        )
    out: list[Passthrough] = []
    for name, decl in items:
        key = f"passthrough.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _LOG_COLUMNS:
            raise UsageError(
                f"{where}: {short_repr(name)} cannot be a pass-through field "
                f"(a name of letters, digits, _ . -, not one of {', '.join(_LOG_COLUMNS)})",
                hint=hint,
                field="passthrough",
            )
        if any(p.name == name for p in out):
            raise UsageError(f"{where}: {key} is listed twice", hint=hint, field=key)
        kind, required = "any", False
        if isinstance(decl, str):
            kind = decl
        elif decl is not None:
            raw = check_mapping(decl, where, key, hint)
            no_unknown(raw, ("type", "required"), where, f"{key}.")
            kind = raw.get("type", "any")
            required = raw.get("required", False)
            if not isinstance(required, bool):
                raise UsageError(
                    f"{where}: '{key}.required' must be true or false, got {short_repr(required)}",
                    hint=hint,
                    field=f"{key}.required",
                )
        if kind not in PASSTHROUGH_TYPES:
            raise UsageError(
                f"{where}: '{key}' has type {short_repr(kind)}; a pass-through field is one of "
                + ", ".join(PASSTHROUGH_TYPES),
                hint=hint,
                field=f"{key}.type",
            )
        out.append(Passthrough(name, kind, required))
    return tuple(out)


def _features(value: Any, where: str) -> FeaturesSpec | None:
    if value is None:
        return None
    hint = (
        "features is {service: NAME} (or NAME@N to pin a version), with trust_code: true "
        "to run a recorded on-demand function"
    )
    raw = check_mapping(value, where, "features", hint)
    no_unknown(raw, ("service", "trust_code"), where, "features.")
    service = raw.get("service")
    if not isinstance(service, str) or not service.strip():
        raise UsageError(
            f"{where}: 'features.service' must name a feature service, got {short_repr(service)}",
            hint=hint,
            field="features.service",
        )
    from plinth.refs import parse_ref

    try:
        ref = parse_ref(service, what="feature service", field="features.service")
    except UsageError as exc:
        raise UsageError(
            f"{where}: 'features.service': {exc.message}", hint=hint, field="features.service"
        ) from None
    if ref.label is not None:
        raise UsageError(
            f"{where}: 'features.service' is NAME or NAME@N (a version number), "
            f"not {short_repr(service)}",
            hint=hint,
            field="features.service",
        )
    trust = raw.get("trust_code", False)
    if not isinstance(trust, bool):
        raise UsageError(
            f"{where}: 'features.trust_code' must be true or false, got {short_repr(trust)}",
            hint="true runs the on-demand functions recorded with the service's views",
            field="features.trust_code",
        )
    return FeaturesSpec(service, trust)


def _validate(value: Any, where: str) -> tuple[str | None, str]:
    if value is None:
        return None, "reject"
    hint = "validate is {suite: FILE, mode: reject|warn}; FILE is relative to this file's folder"
    raw = check_mapping(value, where, "validate", hint)
    no_unknown(raw, ("suite", "mode"), where, "validate.")
    suite = raw.get("suite")
    if not isinstance(suite, str) or not suite.strip():
        raise UsageError(
            f"{where}: 'validate.suite' must name a suite file, got {short_repr(suite)}",
            hint=hint,
            field="validate.suite",
        )
    mode = raw.get("mode", "reject")
    if mode not in _MODES:
        raise UsageError(
            f"{where}: 'validate.mode' must be reject or warn, got {short_repr(mode)}",
            hint="reject answers 422 for failing rows; warn serves them and counts the failures",
            field="validate.mode",
        )
    return suite, str(mode)


def _mapping(value: Any, where: str, key: str) -> Mapping[Any, Any]:
    return check_mapping(value, where, key, _HINT)


def _model_ref(value: Any, where: str, key: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    from plinth.refs import parse_ref

    # A deployment pins what it serves: a bare NAME (a moving "latest") is not enough.
    if not isinstance(value, str) or "@" not in value:
        raise UsageError(
            f"{where}: '{key}' must name a model version as NAME@ALIAS (or NAME@3), "
            f"got {short_repr(value, 60)}",
            hint="e.g. model: delays@champion",
            field=key,
        )
    try:
        parse_ref(value, what="model", field=key)
    except UsageError as exc:
        raise UsageError(f"{where}: '{key}': {exc.message}", hint=exc.hint, field=key) from None
    return value


def _positive_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(
            f"{where}: '{key}' must be a positive whole number, got {short_repr(value)}",
            hint="limits cap each request; leave the key out for the default",
            field=key,
        )
    return value


@contextmanager
def deployment_store(ctx: Context) -> Iterator[Any]:
    """Where a server writes its deployment version and prediction batches: on an embedded
    ledger at the current schema, sqlite3 (:mod:`plinth.ledger.sqlite_deployments`, the
    same rows: a server never imports SQLAlchemy); otherwise ``ctx.ledger.deployments``."""
    from plinth.context import resolve_metadata_url
    from plinth.ledger.sqlite_deployments import open_sqlite_deployments

    # With a team server the local 'metadata' file is not the project's ledger.
    fast = (
        None
        if ctx.settings.server
        else open_sqlite_deployments(resolve_metadata_url(ctx.settings), user=ctx.user)
    )
    if fast is None:
        yield ctx.ledger.deployments
        return
    try:
        yield fast
    finally:
        fast.close()


def save_deployment(spec: DeploymentSpec, ctx: Context) -> Any:
    """Record ``spec`` as a version of its deployment (the same text: the same version).

    The YAML text goes to the blob store first; returns the ledger's DeploymentVersion
    (written through :func:`deployment_store`).
    """
    ctx.blobs.put_bytes(spec.yaml_text.encode("utf-8"))
    project_id = ctx.project.id
    with deployment_store(ctx) as store:
        return store.save(project_id, spec.name, spec.digest, spec.to_dict())
