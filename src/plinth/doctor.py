"""``plinth doctor``: is every configured backend reachable, writable and migrated?

Doctor never migrates or writes records; it reports. Each check is independent, so one
unreachable backend does not hide the state of the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plinth.context import resolve_metadata_url
from plinth.errors import ConfigError, MissingExtraError, PlinthError
from plinth.settings import Settings, redact

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    target: str
    detail: str
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _config(settings: Settings) -> Check:
    if settings.config_file:
        return Check("config", True, str(settings.config_file), "found")
    return Check(
        "config",
        True,
        str(settings.root),
        "no plinth.yaml here or above; using the embedded defaults",
        "run 'plinth init' to pin the project's settings",
    )


def _metadata(settings: Settings) -> Check:
    from plinth.ledger import Ledger, head_revision

    url = resolve_metadata_url(settings)
    target = redact(settings.metadata)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return Check(
            "metadata", False, target, "database file does not exist yet", "run 'plinth init'"
        )
    ledger = Ledger.open(
        url, user=settings.user_name, connect_timeout=settings.connect_timeout, migrate=False
    )
    try:
        revision = ledger.schema_revision()
    finally:
        ledger.close()
    head = head_revision()
    if revision == head:
        return Check("metadata", True, target, f"reachable, schema at {head}")
    return Check(
        "metadata",
        False,
        target,
        f"reachable, schema at {revision or 'nothing'} but this plinth needs {head}",
        "run 'plinth init' (or any command that writes) to migrate",
    )


def _artifacts(settings: Settings) -> Check:
    from plinth.storage import open_blob_store

    store = open_blob_store(
        settings.artifacts,
        root=settings.root,
        endpoint_url=settings.s3_endpoint_url,
        connect_timeout=settings.connect_timeout,
    )
    try:
        store.check()
        return Check("artifacts", True, store.describe(), "reachable and writable")
    finally:
        store.close()


def _online_store(settings: Settings) -> Check:
    uri = settings.online_store
    target = redact(uri)
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        path = path if path.is_absolute() else settings.resolve_path(str(path))
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if os.access(folder, os.W_OK):
            return Check("online_store", True, target, "SQLite file can be created here")
        return Check("online_store", False, target, f"{folder} is not writable")
    if uri.startswith(("redis://", "rediss://")):
        try:
            import redis
        except ImportError:
            raise MissingExtraError(
                f"online_store={target}", "redis", field="online_store"
            ) from None
        client = redis.Redis.from_url(uri, socket_connect_timeout=settings.connect_timeout)
        try:
            client.ping()
        except redis.RedisError as exc:
            return Check(
                "online_store",
                False,
                target,
                f"unreachable: {type(exc).__name__}",
                "check the 'online_store' setting and that Redis is running",
            )
        finally:
            client.close()
        return Check("online_store", True, target, "Redis answers PING")
    return Check(
        "online_store",
        False,
        target,
        "unsupported scheme",
        "use sqlite:///PATH or redis://HOST:PORT/DB",
    )


def _executor(settings: Settings) -> Check:
    value = settings.executor
    if value == "local":
        return Check("executor", True, value, "steps run in-process")
    if value == "ray" or value.startswith("ray://"):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise MissingExtraError(f"executor={value}", "ray", field="executor")
        return Check("executor", True, value, "ray is installed")
    return Check("executor", False, value, "unknown executor", "use local, ray or ray://HOST:PORT")


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    _config,
    _metadata,
    _artifacts,
    _online_store,
    _executor,
)


def run_checks(settings: Settings) -> list[Check]:
    """Run every check; a backend error becomes a failed row, not an exception.

    Configuration errors (bad URI scheme, missing extra) are raised: they are usage errors
    (exit code 2), not a failed check.
    """
    results = []
    for check in CHECKS:
        name = check.__name__.lstrip("_")
        try:
            results.append(check(settings))
        except ConfigError:
            raise
        except PlinthError as error:
            target = getattr(settings, name, "")
            results.append(Check(name, False, redact(str(target)), error.message, error.hint or ""))
    return results
