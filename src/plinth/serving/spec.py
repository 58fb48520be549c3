"""Deployment specs: the YAML that says what ``plinth serve`` serves, parsed strictly.

::

    name: delays
    model: delays@champion
    canary: {model: delays@challenger, traffic: 0.1}   # optional
    shadow: delays@candidate                           # optional
    logging: {sample: 1.0}
    limits: {max_rows: 10000, max_body_bytes: 10485760}

Every problem is a :class:`~plinth.errors.UsageError` naming the key (``field=``) and,
for an unknown key, the closest known one. ``digest`` is the BLAKE3 of the text: the same
text is the same deployment version in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.specfile import check_mapping, check_number, no_unknown, parse_yaml, read_yaml

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ROWS",
    "Canary",
    "DeploymentSpec",
    "save_deployment",
]

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_HINT = (
    "a deployment is 'name: NAME' and 'model: MODEL@ALIAS', with optional canary, shadow, "
    "logging and limits; see docs/serving.md"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TOP = ("name", "model", "canary", "shadow", "logging", "limits")


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

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "model": self.model}
        if self.canary is not None:
            doc["canary"] = {"model": self.canary.model, "traffic": self.canary.traffic}
        if self.shadow is not None:
            doc["shadow"] = self.shadow
        doc["logging"] = {"sample": self.sample}
        doc["limits"] = {"max_rows": self.max_rows, "max_body_bytes": self.max_body_bytes}
        return doc

    @classmethod
    def load(cls, path: str | Path) -> DeploymentSpec:
        """Read and parse a deployment file."""
        data, text = read_yaml(path, what="deployment", hint=_HINT)
        return cls.from_dict(data, where=str(path), text=text)

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
                f"{where}: a deployment is a mapping, not {data!r:.40}",
                hint=_HINT,
                field="deployment",
            )
        no_unknown(data, _TOP, where, "")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(
                f"{where}: 'name' must be a name like 'delays' (letters, digits, _ . -), "
                f"got {name!r:.40}",
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
        return cls(
            name=name,
            model=model,
            canary=canary,
            shadow=shadow,
            sample=sample,
            max_rows=max_rows,
            max_body_bytes=max_body,
            text=text,
        )


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
            f"got {value!r:.60}",
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
            f"{where}: '{key}' must be a positive whole number, got {value!r:.40}",
            hint="limits cap each request; leave the key out for the default",
            field=key,
        )
    return value


def save_deployment(spec: DeploymentSpec, ctx: Context) -> Any:
    """Record ``spec`` as a version of its deployment (the same text: the same version).

    The YAML text goes to the blob store first; returns the ledger's DeploymentVersion.
    """
    ctx.blobs.put_bytes(spec.yaml_text.encode("utf-8"))
    return ctx.ledger.deployments.save(ctx.project.id, spec.name, spec.digest, spec.to_dict())
