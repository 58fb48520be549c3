"""What both ``plinth server ...`` commands and the admin API do: initialise a server and
create projects. The CLI calls these directly on the server's databases; the HTTP routes in
:mod:`plinth.api.admin` call them for a server admin.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plinth.api.config import CONFIG_FILE, ServerConfig, check_project_name, config_from
from plinth.errors import ConfigError, ConflictError

if TYPE_CHECKING:
    from plinth.api.spaces import Spaces
    from plinth.ledger.accounts import AccountStore
    from plinth.settings import Settings

__all__ = ["create_project", "init_server", "local_config", "open_accounts"]

_PASSWORD = re.compile(r"://[^/@]*:[^/@]*@")


def open_accounts(config: ServerConfig) -> AccountStore:
    """The accounts store of ``config`` (tables created if missing)."""
    from plinth.ledger.accounts import AccountStore

    schema = None
    if config.metadata is not None and config.embedded is None:
        schema = f"{config.schema_prefix}server"
    return AccountStore.open(config.accounts_url, schema=schema)


def init_server(
    root: Path | str,
    *,
    admin: str,
    settings: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[ServerConfig, str]:
    """Write ``<root>/server.yaml``, create the accounts tables and the first admin;
    returns the config and the admin's token (shown once: only its hash is kept).

    ConflictError when ``root`` already holds an initialised server.
    """
    import yaml

    folder = Path(root).resolve()
    path = folder / CONFIG_FILE
    if path.exists():
        raise ConflictError(
            f"{path} exists: the server in {folder} is already initialised",
            hint="manage it with 'plinth server users|tokens|projects'; to start over, "
            "use another --root",
            field="root",
        )
    values = dict(settings or {})
    metadata = values.get("metadata")
    if isinstance(metadata, str) and _PASSWORD.search(metadata):
        raise ConfigError(
            "the --metadata URL holds a password, and server.yaml never stores secrets",
            hint="drop it from the URL and set PGPASSWORD (or PLINTH_SERVER_METADATA with "
            "the full URL) in the server's environment",
            field="metadata",
        )
    config = config_from(folder, values, env=env)
    from plinth.ledger.accounts import check_user_name

    check_user_name(admin)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    accounts = open_accounts(config)
    try:
        if accounts.has_admin():
            raise ConflictError(
                f"the accounts database of {folder} already has a server admin",
                hint="it was initialised from another root; use that root",
                field="root",
            )
        accounts.add_user(admin, by=admin, server_admin=True)
        token, info = accounts.create_token(
            admin, by=admin, expires_in_s=config.token_ttl_s, note="created by server init"
        )
        accounts.audit(
            user=admin,
            project=None,
            action="server.init",
            target=str(folder),
            detail={"token_id": info.id},
        )
    finally:
        accounts.close()
    # The file holds what was asked for, not what PLINTH_SERVER_* variables said this time.
    text = yaml.safe_dump(config_from(folder, values, env={}).to_file(), sort_keys=True)
    partial = path.with_name(CONFIG_FILE + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# plinth team server; secrets come from the environment, never here\n")
        handle.write(text)
    partial.replace(path)
    return config, token


def create_project(accounts: AccountStore, spaces: Spaces, name: str, *, by: str) -> None:
    """Record project ``name`` and create its ledger and blob store.

    ConflictError when it exists, or (PostgreSQL) when another project maps to the same
    schema (``a-b`` and ``a_b``).
    """
    check_project_name(name)
    config = spaces.config
    if config.metadata is not None:
        schema = config.project_schema(name)
        for other in accounts.list_projects():
            if other != name and config.project_schema(other) == schema:
                raise ConflictError(
                    f"project {name!r} would share PostgreSQL schema {schema!r} with {other!r}",
                    hint="choose a name that differs in more than '-' versus '_'",
                    field="project",
                )
    # Storage first: a project recorded without its ledger would answer 500s.
    spaces.create(name)
    accounts.add_project(name, by=by)


def _slug(name: str) -> str:
    """``name`` as a valid server project name (URLs of ``plinth ui``)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:63]
    return slug or "local"


def local_config(settings: Settings, *, secure: bool = False) -> tuple[ServerConfig, str]:
    """``plinth ui``'s config over the local embedded project, and its one user.

    The local user (the ``user`` setting) is the only user, admin of the only project; the
    accounts live in ``.plinth/ui.db`` beside the local ledger.
    """
    from plinth.api.config import EmbeddedProject
    from plinth.context import resolve_metadata_url
    from plinth.errors import UsageError
    from plinth.ledger.accounts import check_user_name

    if getattr(settings, "server", None):
        raise UsageError(
            f"this project lives on the team server {settings.server}; plinth ui serves "
            "local embedded projects only",
            hint=f"open {settings.server} in a browser instead",
        )
    project = EmbeddedProject(
        name=_slug(settings.project_name),
        metadata=resolve_metadata_url(settings),
        artifacts=settings.artifacts,
        root=settings.root,
        s3_endpoint=settings.s3_endpoint_url,
    )
    config = ServerConfig(root=settings.root.resolve(), tls=secure, embedded=project)
    user = check_user_name(settings.user_name)
    accounts = open_accounts(config)
    try:
        if user not in {u.name for u in accounts.list_users()}:
            accounts.add_user(user, by=user, server_admin=True)
        if not accounts.project_exists(project.name):
            accounts.add_project(project.name, by=user)
    finally:
        accounts.close()
    return config, user
