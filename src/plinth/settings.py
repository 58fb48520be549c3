"""Settings: declared once as data, read with one precedence.

Precedence: ``PLINTH_<NAME>`` environment variable > ``plinth.yaml`` (found by walking up
from the working directory) > default. Each field of :class:`Settings` *is* the declaration:
its type, default and help text (``docs/settings.md`` must document every one; a test checks).

Secrets (database passwords, S3 keys) are never settings of their own: they come from the
environment (``AWS_ACCESS_KEY_ID``, ``PGPASSWORD``, ...) or inside a URI, and every place
that shows a URI passes it through :func:`redact`.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "SETTINGS",
    "TOKEN_ENV",
    "Setting",
    "Settings",
    "find_config",
    "load_settings",
    "redact",
]

CONFIG_FILE = "plinth.yaml"
ENV_PREFIX = "PLINTH_"
#: The team server token: from this environment variable only, never from plinth.yaml.
TOKEN_ENV = "PLINTH_TOKEN"  # noqa: S105 - a variable name, not a secret
TOKEN_KEY = "token"  # noqa: S105 - a key name, not a secret
#: ``PLINTH_SERVER_*`` variables configure ``plinth server`` itself (plinth.api.config).
_SERVER_CONFIG = "server_"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one project. Build with :func:`load_settings`."""

    project: str | None = _setting(
        None, "Project name recorded on every experiment. Default: the project folder's name."
    )
    metadata: str = _setting(
        "sqlite:///.plinth/plinth.db",
        "Ledger database URI: sqlite:///PATH (relative to the project root) or "
        "postgresql+psycopg://USER@HOST:PORT/DB (needs the 'postgres' extra).",
    )
    artifacts: str = _setting(
        ".plinth/artifacts",
        "Blob store: a folder (relative to the project root), file:///PATH, "
        "s3://BUCKET/PREFIX (needs the 's3' extra) or memory:// (tests only).",
    )
    blob_fsync: bool = _setting(
        False,
        "Make artifacts durable before they are recorded: one syncfs of the artifact "
        "folder's file system per log_artifact(s) call. Off, blobs reach the disk with the "
        "OS's writeback, as cp's copies do; a blob torn by an OS crash fails verification "
        "when read and is rewritten by the next put of the same content.",
    )
    data_link: str = _setting(
        "copy",
        "How plinth data add puts files into a local artifact folder: copy (the default), "
        "reflink (copy-on-write clones: Btrfs, XFS), hardlink (the file itself, made "
        "read-only; same file system only) or auto (reflink, else hardlink, else copy). "
        "See docs/data.md; --link overrides it.",
    )
    online_store: str = _setting(
        "sqlite:///.plinth/online.db",
        "Online feature store URI: sqlite:///PATH (relative to the project) or "
        "redis://HOST:PORT/DB (the 'redis' extra; ?prefix=KEYS: to share a database). "
        "Materialization and push write it; online lookup and serving read it.",
    )
    executor: str = _setting(
        "local",
        "Where pipeline steps run: local (in-process, the default), process (a local "
        "process pool for independent branches) or ray (a local cluster) / ray://HOST:PORT. "
        "plinth pipeline run --executor overrides it.",
    )
    features_engine: str = _setting(
        "duckdb",
        "Engine of the feature store's point-in-time join: duckdb (in-process, the default) "
        "or ray (sharded by entity key over Ray tasks; needs the 'ray' extra).",
    )
    ray_address: str | None = _setting(
        None,
        "Ray cluster the ray features engine and the ray pipeline executor use: auto, "
        "ray://HOST:PORT, or unset for a local cluster started in-process on first use.",
    )
    features_shards: int = _setting(
        0,
        "Shards of the ray features engine's join (entity rows hashed by join key); "
        "0: the number of CPUs of the Ray cluster.",
    )
    s3_endpoint_url: str | None = _setting(
        None,
        "Endpoint of an S3-compatible server (MinIO, Ceph, moto), e.g. http://127.0.0.1:9000. "
        "Credentials come from the usual AWS_* variables, never from plinth.yaml.",
    )
    user: str | None = _setting(
        None, "Name recorded as the creator of every record. Default: the login name."
    )
    server: str | None = _setting(
        None,
        "URL of a team server (plinth server), e.g. https://plinth.example.com: the ledger "
        "and the artifacts of the project named by 'project' live there, and "
        "'metadata'/'artifacts' are not used. The token comes from PLINTH_TOKEN only.",
    )
    connect_timeout: float = _setting(
        5.0, "Seconds to wait when connecting to PostgreSQL, S3 or Redis before failing."
    )
    outbound_allow_loopback: bool | None = _setting(
        None,
        "Let webhooks, e-mail and server checks connect to loopback addresses (127.0.0.0/8, "
        "::1). Default: allowed with the embedded SQLite ledger, refused with any other "
        "(a team setup). Metadata and link-local addresses are refused whatever it says.",
    )
    outbound_allow_private: bool = _setting(
        False,
        "Let webhooks, e-mail and server checks connect to private addresses (10/8, "
        "172.16/12, 192.168/16, 100.64/10, fc00::/7).",
    )
    system_metrics: bool = _setting(
        True, "Sample CPU, memory, disk, network and GPU metrics under system/ during runs."
    )
    system_metrics_interval: float = _setting(10.0, "Seconds between two system metric samples.")
    git_cache_seconds: float = _setting(
        2.0,
        "Seconds a run may reuse this process's last git status of its repository while "
        "nothing git reads has changed (see docs/tracking.md); 0 runs git for every run.",
    )
    flush_timeout: float = _setting(
        30.0,
        "Seconds closing a run waits for its metric journal to reach the ledger; what is "
        "left stays in the journal and is ingested by the next plinth call.",
    )
    serve_alias_poll_seconds: float = _setting(
        5.0,
        "Seconds between two reads of a served model's alias; when it moved, the server "
        "loads the new version in the background and swaps it in.",
    )
    serve_batch_wait_ms: float = _setting(
        2.0,
        "Milliseconds a prediction may wait for concurrent requests still being read to "
        "join its model call (never when it is alone); 0 turns the wait off.",
    )
    prediction_log_flush_seconds: float = _setting(
        5.0,
        "Seconds between two writes of a deployment's prediction log (one Parquet batch "
        "each); it is also written on shutdown.",
    )
    prediction_log_max_bytes: int = _setting(
        64 * 1024 * 1024,
        "Bytes of request bodies a deployment's prediction log may hold in memory between "
        "two writes; past it the log is written early and requests that do not fit are "
        "dropped and counted (plinth_prediction_log_dropped_total), never waited for.",
    )
    pii: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata={
            "help": "Columns holding personal data, by dataset: {DATASET: [COLUMN, ...]}. "
            "Loading such a dataset inside a run fails while one of them is still in plain "
            "form (drop it, or hash it with plinth.datasets.mask). In the environment: JSON.",
        },
    )
    # Where the project lives; not a setting a user writes.
    root: Path = field(default=Path("."), metadata={"internal": True})
    config_file: Path | None = field(default=None, metadata={"internal": True})
    #: For each setting, where its value came from: "default", a file path, or "env".
    sources: Mapping[str, str] = field(default_factory=dict, metadata={"internal": True})

    @property
    def project_name(self) -> str:
        return self.project or self.root.resolve().name or "default"

    @property
    def user_name(self) -> str:
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except Exception:  # no login name in some containers
            return "unknown"

    @property
    def data_dir(self) -> Path:
        """The project's ``.plinth`` folder (journals, caches, locks)."""
        return self.root / ".plinth"

    def resolve_path(self, value: str) -> Path:
        """A path from a setting, relative paths taken from the project root."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path


@dataclass(frozen=True)
class Setting:
    """One declared setting, as documented in docs/settings.md."""

    name: str
    type: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _declared() -> tuple[Setting, ...]:
    out = []
    for f in dataclasses.fields(Settings):
        if f.metadata.get("internal"):
            continue
        type_name = str(f.type).replace(" | None", "")
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out.append(Setting(f.name, type_name, default, f.metadata["help"]))
    return tuple(out)


SETTINGS: tuple[Setting, ...] = _declared()
_BY_NAME = {s.name: s for s in SETTINGS}


def find_config(start: Path) -> Path | None:
    """The nearest plinth.yaml in ``start`` or a folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known settings: " + ", ".join(sorted(_BY_NAME))


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    if value is None:
        return None
    kind = setting.type
    if kind.startswith("Mapping["):
        return _coerce_columns(setting, value, where)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            result = float(value)
            if not math.isfinite(result) or result < 0:  # .nan/.inf: a hang or a crash later
                raise ValueError(value)
            return result
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return str(value)
    except ValueError:
        raise ConfigError(
            f"setting '{setting.name}' in {where} has value {redact(str(value))!r}, "
            f"which is not a valid {kind}",
            hint=f"{setting.help}",
            field=setting.name,
        ) from None


def _coerce_columns(setting: Setting, value: Any, where: str) -> dict[str, tuple[str, ...]]:
    """A mapping of names to lists of column names (YAML, or JSON in the environment)."""
    parsed = value
    if isinstance(value, str):
        import json

        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            parsed = None
    if isinstance(parsed, Mapping) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(c, str) for c in v)
        for k, v in parsed.items()
    ):
        return {k: tuple(v) for k, v in parsed.items()}
    raise ConfigError(
        f"setting '{setting.name}' in {where} must map dataset names to lists of column "
        f"names, got {redact(str(value))!r}",
        hint=f"e.g. '{setting.name}: {{users: [email, phone]}}' in plinth.yaml, or "
        f'PLINTH_{setting.name.upper()}=\'{{"users": ["email"]}}\'',
        field=setting.name,
    )


def _read_file(path: Path) -> dict[str, Any]:
    import yaml  # PyYAML; only needed when a file exists

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(
            f"{where} is not valid YAML: {exc.problem}",
            hint="fix the YAML syntax (settings are 'name: value' lines)",
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # an int of 4,300+ digits; nesting too deep
        # (the same words as plinth.specfile.yaml_limit: settings sits beside specfile, so
        # neither imports the other)
        limit = (
            "nested too deeply"
            if isinstance(exc, RecursionError)
            else "a number with more than 4,300 digits"
        )
        raise ConfigError(
            f"{path} is not usable YAML: {limit}",
            hint="settings are 'name: value' lines with plain values",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must be a mapping of settings, found a {type(data).__name__}",
            hint="write one 'name: value' per line, e.g. 'metadata: sqlite:///.plinth/plinth.db'",
        )
    return data


def load_settings(
    start: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    discover: bool = True,
) -> Settings:
    """Resolve settings for the project around ``start`` (default: the working directory).

    ``overrides`` (from Python callers) win over everything else. With ``discover=False``
    no plinth.yaml is read and ``start`` is the project root (what ``plinth init`` needs).
    """
    start_path = Path(start) if start is not None else Path.cwd()
    environ = os.environ if env is None else env
    config_file = find_config(start_path) if discover else None
    root = config_file.parent if config_file else start_path.resolve()

    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}

    if config_file:
        for key, value in _read_file(config_file).items():
            if key == TOKEN_KEY:
                raise ConfigError(
                    f"{config_file} holds a 'token': a team server token is a secret and "
                    "never belongs in plinth.yaml",
                    hint=f"remove it from the file and set the environment variable {TOKEN_ENV}",
                    field=TOKEN_KEY,
                )
            if key not in _BY_NAME:
                raise ConfigError(
                    f"unknown setting '{key}' in {config_file}",
                    hint=f"{_suggest(str(key))} (see docs/settings.md)",
                    field=str(key),
                )
            values[key] = _coerce(_BY_NAME[key], value, str(config_file))
            sources[key] = str(config_file)

    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key == TOKEN_KEY or key.startswith(_SERVER_CONFIG):
            continue  # the token (read where it is used) and the server's own settings
        if key not in _BY_NAME:
            raise ConfigError(
                f"unknown setting in environment variable {name}",
                hint=f"{_suggest(key)} (settings are PLINTH_ plus the upper-case name)",
                field=key,
            )
        values[key] = _coerce(_BY_NAME[key], value, f"environment variable {name}")
        sources[key] = "env"

    for key, value in (overrides or {}).items():
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting '{key}'", hint=_suggest(key), field=key)
        values[key] = _coerce(_BY_NAME[key], value, "arguments")
        sources[key] = "argument"

    for name in ("metadata", "artifacts", "online_store", "executor"):
        if not values[name]:
            raise ConfigError(f"setting '{name}' is empty", hint=_BY_NAME[name].help, field=name)
    if values["features_engine"] not in ("duckdb", "ray"):
        raise ConfigError(
            f"setting 'features_engine' is {values['features_engine']!r}: use duckdb or ray",
            hint=_BY_NAME["features_engine"].help,
            field="features_engine",
        )
    if values["data_link"] not in ("copy", "reflink", "hardlink", "auto"):
        raise ConfigError(
            f"setting 'data_link' is {values['data_link']!r}: use copy, reflink, hardlink or auto",
            hint=_BY_NAME["data_link"].help,
            field="data_link",
        )
    if values["features_shards"] < 0:
        raise ConfigError(
            "setting 'features_shards' is negative",
            hint=_BY_NAME["features_shards"].help,
            field="features_shards",
        )

    return Settings(**values, root=root, config_file=config_file, sources=sources)


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@]*)(:[^@/]*)?@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|secret|token|access_key|secret_key|aws_secret_access_key)=)[^&]*"
)


def redact(uri: str) -> str:
    """``uri`` with any password or secret replaced by ``***``; safe for logs and errors."""
    text = _CREDENTIALS.sub(
        lambda m: f"{m['scheme']}{m['user']}{':***' if m.group(3) else ''}@", uri
    )
    return _SECRET_QUERY.sub(r"\1***", text)
