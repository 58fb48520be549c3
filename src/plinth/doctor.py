"""``plinth doctor``: is every configured backend reachable, writable and migrated?

Doctor never migrates or writes records; it reports. Each check is independent, so one
unreachable backend does not hide the state of the others. Settings of features that are not
built yet (none at present: see ``NOT_USED_YET``) are shown as "not used yet" and not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plinth.context import resolve_metadata_url
from plinth.errors import ConfigError, PlinthError
from plinth.settings import Settings, redact

__all__ = ["NOT_USED_YET", "DoctorCheck", "run_checks"]

#: Settings that nothing reads yet, and the feature that will read them.
NOT_USED_YET: dict[str, str] = {}


@dataclass(frozen=True)
class DoctorCheck:
    """One row of the report; ``ok`` is None for a setting nothing uses yet."""

    name: str
    ok: bool | None
    target: str
    detail: str
    hint: str = ""

    @property
    def status(self) -> str:
        """``ok``, ``fail`` or ``not used yet``."""
        return "not used yet" if self.ok is None else "ok" if self.ok else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _config(settings: Settings) -> DoctorCheck:
    if settings.config_file:
        return DoctorCheck("config", True, str(settings.config_file), "found")
    return DoctorCheck(
        "config",
        True,
        str(settings.root),
        "no plinth.yaml here or above; using the embedded defaults",
        "run 'plinth init' to pin the project's settings",
    )


def _server_ledger(settings: Settings) -> DoctorCheck:
    """With a team server, the ledger is its project's: reachable, with the token's user?"""
    import os

    from plinth.ledger import head_revision
    from plinth.ledger.remote import RemoteLedger
    from plinth.settings import TOKEN_ENV

    assert settings.server is not None
    ledger = RemoteLedger(
        settings.server,
        project=settings.project_name,
        token=os.environ.get(TOKEN_ENV),
        timeout=settings.connect_timeout,
    )
    try:
        revision, user, target = ledger.schema_revision(), ledger.user, ledger.url
    finally:
        ledger.close()
    head = head_revision()
    if revision == head:
        return DoctorCheck("metadata", True, target, f"team server, as {user}, schema at {head}")
    return DoctorCheck(
        "metadata",
        False,
        target,
        f"team server, as {user}, schema at {revision or 'nothing'}; this plinth has {head}",
        "install the plinth version the server runs",
    )


def _metadata(settings: Settings) -> DoctorCheck:
    from plinth.ledger import Ledger, head_revision

    if settings.server:
        return _server_ledger(settings)
    url = resolve_metadata_url(settings)
    target = redact(settings.metadata)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return DoctorCheck(
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
        return DoctorCheck("metadata", True, target, f"reachable, schema at {head}")
    return DoctorCheck(
        "metadata",
        False,
        target,
        f"reachable, schema at {revision or 'nothing'} but this plinth needs {head}",
        "run 'plinth init' (or any command that writes) to migrate",
    )


def _artifacts(settings: Settings) -> DoctorCheck:
    from plinth.storage import BlobStore, open_blob_store

    store: BlobStore
    if settings.server:
        import os

        from plinth.errors import BlobStoreError
        from plinth.guards.team_client import TeamClient
        from plinth.settings import TOKEN_ENV
        from plinth.storage.http_blobs import HttpBlobStore

        client = TeamClient(
            settings.server,
            token=os.environ.get(TOKEN_ENV),
            timeout=settings.connect_timeout,
            unavailable=BlobStoreError,
        )
        store = HttpBlobStore(client, settings.project_name)
    else:
        store = open_blob_store(
            settings.artifacts,
            root=settings.root,
            endpoint_url=settings.s3_endpoint_url,
            connect_timeout=settings.connect_timeout,
        )
    try:
        store.check()
        return DoctorCheck("artifacts", True, store.describe(), "reachable and writable")
    finally:
        store.close()


def _online_store(settings: Settings) -> DoctorCheck:
    from plinth.storage.online import open_online_store

    uri = settings.online_store
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :]).expanduser()
        path = path if path.is_absolute() else settings.root / path
        if not path.exists():  # doctor creates nothing: the first write makes the file
            detail = "no file yet; the first materialize or push creates it"
            return DoctorCheck("online_store", True, f"sqlite://{path}", detail)
    store = open_online_store(
        settings.online_store, root=settings.root, connect_timeout=settings.connect_timeout
    )
    try:
        store.check()
        return DoctorCheck("online_store", True, store.describe(), "reachable and writable")
    finally:
        store.close()


def _executor(settings: Settings) -> DoctorCheck:
    import importlib.util
    import os

    name = settings.executor
    if name == "local":
        return DoctorCheck("executor", True, name, "pipeline steps run in-process")
    if name == "process":
        workers = max(1, min(os.cpu_count() or 1, 8))
        return DoctorCheck("executor", True, name, f"a local pool of {workers} processes")
    if name != "ray" and not name.startswith("ray://"):
        raise ConfigError(
            f"setting 'executor' is {name!r}",
            hint="use local, process, ray or ray://HOST:PORT",
            field="executor",
        )
    # Ray: doctor starts and contacts nothing; it only checks that Ray can be imported.
    if importlib.util.find_spec("ray") is None:
        return DoctorCheck(
            "executor", False, redact(name), "ray is not installed", "pip install 'plinth[ray]'"
        )
    return DoctorCheck("executor", True, redact(name), "ray installed; cluster not contacted")


CHECKS: tuple[Callable[[Settings], DoctorCheck], ...] = (
    _config,
    _metadata,
    _artifacts,
    _online_store,
    _executor,
)


def run_checks(settings: Settings) -> list[DoctorCheck]:
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
            results.append(
                DoctorCheck(name, False, redact(str(target)), error.message, error.hint or "")
            )
    for name, feature in NOT_USED_YET.items():
        # Nothing reads these yet: a pass or a failure would say nothing about what runs.
        target = redact(str(getattr(settings, name)))
        detail = f"read by {feature} (coming); not checked"
        results.append(DoctorCheck(name, None, target, detail))
    return results


def __getattr__(name: str) -> Any:
    if name == "Check":  # renamed: validation had a Check too
        from plinth._deprecation import warn

        warn("plinth.doctor.Check", "plinth.doctor.DoctorCheck")
        return DoctorCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
