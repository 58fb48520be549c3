"""The team server's configuration: ``<root>/server.yaml``, overridden by ``PLINTH_SERVER_*``.

``plinth server init`` writes the file (never a secret: database passwords and S3 keys come
from the environment, e.g. ``PGPASSWORD`` or a password inside ``PLINTH_SERVER_METADATA``,
and ``AWS_*``); ``plinth server start`` loads it. Layout of the data it names:

- accounts (users, tokens, sessions, projects, memberships, audit): SQLite
  ``<root>/server.db``, or schema ``<schema_prefix>server`` of the PostgreSQL ``metadata``;
- each project's ledger: ``<root>/projects/<name>/plinth.db``, or schema
  ``<schema_prefix><name>``;
- each project's blobs: ``<root>/projects/<name>/artifacts/``, or ``<artifacts>/<name>/``
  (an ``s3://bucket/prefix`` or an absolute folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from plinth.errors import ConfigError
from plinth.settings import redact

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "PROJECT_NAME",
    "EmbeddedProject",
    "ServerConfig",
    "check_project_name",
    "config_from",
    "load_config",
    "parse_duration",
    "with_embedded",
]

CONFIG_FILE = "server.yaml"
ENV_PREFIX = "PLINTH_SERVER_"
#: Project names: they become folder names and PostgreSQL schema names.
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SCHEMA_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,30}")
_POSTGRES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def check_project_name(name: str) -> str:
    """``name`` if it is a valid project name, else ConfigError saying the rule."""
    if not isinstance(name, str) or not PROJECT_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid project name {str(name)[:80]!r}",
            hint="use 1-63 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit",
            field="project",
        )
    return name


@dataclass(frozen=True)
class EmbeddedProject:
    """The one local project ``plinth ui`` serves: its own ledger and artifacts."""

    name: str
    metadata: str
    artifacts: str
    root: Path
    s3_endpoint: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``plinth server start`` needs; built by :func:`load_config`."""

    root: Path
    #: None: SQLite files under ``root``; else a PostgreSQL URL (a schema per project).
    metadata: str | None = None
    #: None: folders under ``root/projects``; else ``s3://bucket/prefix`` or an absolute folder.
    artifacts: str | None = None
    s3_endpoint: str | None = None
    #: Prefix of the PostgreSQL schemas (accounts: ``<prefix>server``).
    schema_prefix: str = "plinth_"
    #: Served over TLS (directly or behind a proxy): cookies get ``Secure``, responses HSTS.
    tls: bool = False
    #: Aliases only project admins or a token with scope ``gate`` may move.
    protected_aliases: tuple[str, ...] = ("champion",)
    session_ttl_s: int = 12 * 3600
    #: Lifetime of a token created without ``--expires``.
    token_ttl_s: int = 90 * 86400
    login_limit: int = 10
    login_window_s: int = 300
    token_limit: int = 20
    token_window_s: int = 3600
    #: Set by ``plinth ui`` only: serve this one local project (not read from server.yaml).
    embedded: EmbeddedProject | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def accounts_url(self) -> str:
        """The accounts database URL (users, tokens, sessions, memberships, audit)."""
        if self.embedded is not None:
            # One person's: sessions live beside the local ledger, in a file of their own.
            return f"sqlite:///{self.embedded.root / '.plinth' / 'ui.db'}"
        if self.metadata is None:
            return f"sqlite:///{self.root / 'server.db'}"
        return _with_schema(self.metadata, f"{self.schema_prefix}server")

    def project_metadata(self, project: str) -> str:
        """The ledger URL of ``project`` (its own SQLite file or PostgreSQL schema)."""
        check_project_name(project)
        if self.embedded is not None:
            return self.embedded.metadata
        if self.metadata is None:
            return f"sqlite:///{self.root / 'projects' / project / 'plinth.db'}"
        return _with_schema(self.metadata, self.project_schema(project))

    def project_schema(self, project: str) -> str:
        """The PostgreSQL schema of ``project`` (PostgreSQL only)."""
        return self.schema_prefix + check_project_name(project).replace("-", "_")

    def project_artifacts(self, project: str) -> str:
        """The blob store URI of ``project``."""
        check_project_name(project)
        if self.embedded is not None:
            return self.embedded.artifacts
        if self.artifacts is None:
            return str(self.root / "projects" / project / "artifacts")
        return f"{self.artifacts.rstrip('/')}/{project}"

    def to_file(self) -> dict[str, Any]:
        """The settings ``server.yaml`` holds (no secrets: a URL password is refused)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("root", "embedded"):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def _validate(config: ServerConfig) -> None:
    if not config.root.is_absolute():
        raise ConfigError(f"the server root {config.root} is not absolute", field="root")
    if config.metadata is not None and not config.metadata.startswith(_POSTGRES):
        raise ConfigError(
            f"setting 'metadata' of the server is {redact(config.metadata)!r}; the team server "
            "takes a PostgreSQL URL, or nothing for SQLite files under its root",
            hint="e.g. postgresql+psycopg://plinth@db:5432/plinth (password in PGPASSWORD)",
            field="metadata",
        )
    if config.metadata is not None and "?" in config.metadata:
        raise ConfigError(
            "setting 'metadata' of the server has a query string; the server adds the "
            "search_path of each project itself",
            hint="drop everything after '?' (put options in the environment, e.g. PGOPTIONS)",
            field="metadata",
        )
    if config.artifacts is not None and not (
        config.artifacts.startswith("s3://") or Path(config.artifacts).is_absolute()
    ):
        raise ConfigError(
            f"setting 'artifacts' of the server is {config.artifacts!r}",
            hint="use s3://BUCKET/PREFIX or an absolute folder",
            field="artifacts",
        )
    if not _SCHEMA_PREFIX.fullmatch(config.schema_prefix):
        raise ConfigError(
            f"setting 'schema_prefix' is {config.schema_prefix!r}",
            hint="use lower-case letters, digits and '_' (at most 31), e.g. plinth_",
            field="schema_prefix",
        )
    for name in (
        "session_ttl_s",
        "token_ttl_s",
        "login_limit",
        "login_window_s",
        "token_limit",
        "token_window_s",
    ):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(
                f"setting '{name}' of the server is {value!r}; it must be a positive integer",
                field=name,
            )
    for alias in config.protected_aliases:
        if not isinstance(alias, str) or not alias:
            raise ConfigError(
                f"setting 'protected_aliases' holds {alias!r}",
                hint="list alias names",
                field="protected_aliases",
            )


_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _coerce(name: str, value: object, source: str) -> object:
    """A raw value (YAML or an environment string) as the type the field needs."""
    default = getattr(ServerConfig, name, None)
    if name in ("metadata", "artifacts", "s3_endpoint"):
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"setting '{name}' in {source} is not a string", field=name)
        return value
    if name == "protected_aliases":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"setting '{name}' in {source} is not a list", field=name)
        return tuple(str(a).strip() for a in items if str(a).strip())
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in _BOOL:
            return _BOOL[str(value).lower()]
        raise ConfigError(f"setting '{name}' in {source} is not true or false", field=name)
    if isinstance(default, int):
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(
                f"setting '{name}' in {source} is {value!r}, not an integer", field=name
            ) from None
    if isinstance(value, str):
        return value
    raise ConfigError(f"setting '{name}' in {source} has the wrong type", field=name)


_NAMES = frozenset(f.name for f in fields(ServerConfig)) - {"root", "embedded"}


def config_from(
    root: Path,
    values: Mapping[str, object],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "arguments",
) -> ServerConfig:
    """A config from ``values`` (e.g. server.yaml) with ``PLINTH_SERVER_*`` variables on top."""
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _NAMES:
            raise ConfigError(
                f"unknown setting '{key}' in {source}",
                hint=f"known settings: {', '.join(sorted(_NAMES))}",
                field=str(key),
            )
        kwargs[key] = _coerce(key, value, source)
    for name, value in (os.environ if env is None else env).items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key == "root":  # PLINTH_SERVER_ROOT is the CLI's --root, not a setting
            continue
        if key not in _NAMES:
            raise ConfigError(
                f"unknown setting in environment variable {name}",
                hint=f"known settings: {', '.join(sorted(_NAMES))}",
                field=key,
            )
        kwargs[key] = _coerce(key, value, f"environment variable {name}")
    return ServerConfig(root=root.resolve(), **kwargs)


def load_config(root: Path | str, *, env: Mapping[str, str] | None = None) -> ServerConfig:
    """The configuration of the server initialised in ``root`` (``plinth server init``)."""
    import yaml

    folder = Path(root).resolve()
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {CONFIG_FILE} in {folder}: the server is not initialised there",
            hint=f"run: plinth server init --root {folder} --admin NAME",
            field="root",
        )
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", field="root") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} is not a mapping of settings", field="root")
    return config_from(folder, values, env=env, source=str(path))


def with_embedded(config: ServerConfig, project: EmbeddedProject) -> ServerConfig:
    """``config`` serving only ``project`` (what ``plinth ui`` runs)."""
    return replace(config, embedded=project)


_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, field: str = "expires") -> int:
    """Seconds in a duration like ``30d``, ``12h``, ``90m`` or ``3600s``."""
    match = _DURATION.fullmatch(str(text).strip())
    if match is None or int(match[1]) == 0:
        raise ConfigError(
            f"invalid duration {str(text)[:40]!r}",
            hint="use a positive number and a unit: 30d, 12h, 90m or 3600s",
            field=field,
        )
    return int(match[1]) * _UNIT_S[match[2]]
