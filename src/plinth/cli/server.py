"""``plinth server``: initialise, start and manage the team server (users, tokens, projects,
audit) and export it for Kubernetes.

Management commands work on the server's databases directly (run them where the server's
``--root`` and environment are), so they also work while the server is down.
"""

from __future__ import annotations

import dataclasses
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plinth.cli._common import echo_json, json_option

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from plinth.api.config import ServerConfig
    from plinth.api.routes import Endpoint
    from plinth.ledger.accounts import AccountStore

_ROOT_HELP = "The server's folder (server.yaml, SQLite files). Env: PLINTH_SERVER_ROOT."
root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    envvar="PLINTH_SERVER_ROOT",
    show_default=True,
    help=_ROOT_HELP,
)


def _by() -> str:
    """Who the audit log names for a command run on the server machine."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


class _Opened:
    """The config and accounts store of ``--root``, closed when the command ends."""

    def __init__(self, root: Path) -> None:
        from plinth.api.bootstrap import open_accounts
        from plinth.api.config import load_config

        self.config: ServerConfig = load_config(root)
        self.accounts: AccountStore = open_accounts(self.config)

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.accounts.close()


def server_endpoints() -> list[Endpoint]:
    """Every route of the team server: the REST API and the web pages."""
    from plinth.api.app import api_endpoints
    from plinth.ui.pages import ENDPOINTS as PAGES

    return [*api_endpoints(), *PAGES]


def build_app(config: ServerConfig) -> Starlette:
    """The whole server's app for ``config``: the API (plinth.api) with the web pages
    (plinth.ui), which the API layer itself never imports."""
    from plinth.api.app import create_app
    from plinth.ui.pages import ENDPOINTS as PAGES

    return create_app(config, pages=PAGES)


def app_from_env() -> Starlette:
    """The app of the server whose root is ``$PLINTH_SERVER_ROOT`` (uvicorn's factory for
    ``--workers N``: each worker process builds its own)."""
    import os

    from plinth.api.config import load_config

    return build_app(load_config(os.environ.get("PLINTH_SERVER_ROOT", ".")))


def _read_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    value = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(value)


@click.group(epilog="Example: plinth server init --root /srv/plinth --admin ada")
def server() -> None:
    """The team server: init, start, users, tokens, projects, audit, export."""


@server.command(
    epilog="\b\nExamples:\n  plinth server init --root /srv/plinth --admin ada\n"
    "  plinth server init --admin ada --metadata postgresql+psycopg://plinth@db/plinth "
    "--artifacts s3://bucket/plinth"
)
@root_option
@click.option("--admin", required=True, help="Name of the first server admin.")
@click.option("--metadata", help="PostgreSQL URL (no password). Default: SQLite files in --root.")
@click.option("--artifacts", help="s3://BUCKET/PREFIX or an absolute folder. Default: in --root.")
@click.option("--s3-endpoint", help="S3-compatible endpoint URL (MinIO, moto...).")
@click.option("--tls", is_flag=True, help="Served over HTTPS (directly or behind a proxy).")
@json_option
def init(
    root: Path,
    admin: str,
    metadata: str | None,
    artifacts: str | None,
    s3_endpoint: str | None,
    tls: bool,
    as_json: bool,
) -> None:
    """Create server.yaml, the accounts database and the first admin; print its token once."""
    from plinth.api.bootstrap import init_server

    settings: dict[str, object] = {"tls": tls}
    for key, value in (
        ("metadata", metadata),
        ("artifacts", artifacts),
        ("s3_endpoint", s3_endpoint),
    ):
        if value is not None:
            settings[key] = value
    config, token = init_server(root, admin=admin, settings=settings)
    if as_json:
        echo_json({"root": str(config.root), "admin": admin, "token": token})
        return
    click.echo(f"Initialised the plinth server in {config.root}.")
    click.echo(f"Token of server admin '{admin}' (shown once; store it now):\n\n  {token}\n")
    click.echo(f"Next: plinth server start --root {config.root}")


@server.command(epilog="Example: plinth server start --root /srv/plinth --port 8750")
@root_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8750, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (each serves requests; state lives in the databases).",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="Proxies whose X-Forwarded-For is trusted (the client address).",
)
def start(root: Path, host: str, port: int, workers: int, forwarded_allow_ips: str) -> None:
    """Serve the API and web pages until stopped (Ctrl-C)."""
    import os

    import uvicorn

    from plinth.api.app import log_config
    from plinth.api.config import load_config

    config = load_config(root)  # errors now, not in a worker
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(),
        "server_header": False,
        "forwarded_allow_ips": forwarded_allow_ips,
        "lifespan": "on",
    }
    if workers == 1:
        uvicorn.run(build_app(config), **options)
        return
    os.environ["PLINTH_SERVER_ROOT"] = str(config.root)
    uvicorn.run("plinth.cli.server:app_from_env", factory=True, workers=workers, **options)


# -- users ---------------------------------------------------------------------------------


@server.group()
def users() -> None:
    """Server users: add, list, disable, passwd."""


@users.command("add", epilog='Example: echo "$PW" | plinth server users add bob --password-stdin')
@root_option
@click.argument("name")
@click.option("--admin", "server_admin", is_flag=True, help="Make them a server admin.")
@click.option("--password-stdin", is_flag=True, help="Read a password for browser login.")
@json_option
def users_add(
    root: Path, name: str, server_admin: bool, password_stdin: bool, as_json: bool
) -> None:
    """Add a user (tokens for scripts; a password for the web pages)."""
    password = _read_password(True) if password_stdin else None
    with _Opened(root) as opened:
        user = opened.accounts.add_user(
            name, by=_by(), password=password, server_admin=server_admin
        )
        opened.accounts.audit(
            user=_by(),
            project=None,
            action="user.add",
            target=name,
            detail={"server_admin": server_admin},
        )
    _done(as_json, dataclasses.asdict(user), f"Added user '{name}'.")


@users.command("list", epilog="Example: plinth server users list --json")
@root_option
@json_option
def users_list(root: Path, as_json: bool) -> None:
    """Every user."""
    with _Opened(root) as opened:
        found = opened.accounts.list_users()
    rows = [dataclasses.asdict(u) for u in found]
    if as_json:
        echo_json(rows)
        return
    for u in found:
        flags = [
            f
            for f, on in (
                ("admin", u.server_admin),
                ("disabled", u.disabled),
                ("password", u.has_password),
            )
            if on
        ]
        click.echo(f"{u.name}  {' '.join(flags)}".rstrip())


@users.command("disable", epilog="Example: plinth server users disable bob")
@root_option
@click.argument("name")
@click.option("--enable", is_flag=True, help="Re-enable instead.")
@json_option
def users_disable(root: Path, name: str, enable: bool, as_json: bool) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    with _Opened(root) as opened:
        opened.accounts.set_disabled(name, not enable)
        action = "user.enable" if enable else "user.disable"
        opened.accounts.audit(user=_by(), project=None, action=action, target=name)
    _done(
        as_json,
        {"user": name, "disabled": not enable},
        f"{'Enabled' if enable else 'Disabled'} user '{name}'.",
    )


@users.command("passwd", epilog="Example: plinth server users passwd ada")
@root_option
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@json_option
def users_passwd(root: Path, name: str, password_stdin: bool, as_json: bool) -> None:
    """Set a user's password for browser login (their sessions end)."""
    with _Opened(root) as opened:
        opened.accounts.get_user(name)
        opened.accounts.set_password(name, _read_password(password_stdin))
        opened.accounts.audit(user=_by(), project=None, action="user.passwd", target=name)
    _done(as_json, {"user": name}, f"Set the password of '{name}'.")


# -- tokens --------------------------------------------------------------------------------


@server.group()
def tokens() -> None:
    """API tokens: create (shown once), list, revoke."""


@tokens.command(
    "create",
    epilog="Example: plinth server tokens create --user ci --project "
    "flights --expires 30d --scope gate",
)
@root_option
@click.option("--user", required=True, help="Whose token it is.")
@click.option("--project", "projects", multiple=True, help="Limit it to this project (repeat).")
@click.option("--expires", help="Lifetime like 30d, 12h or 90m. Default: the server's.")
@click.option("--scope", "scopes", multiple=True, help="Extra power, e.g. gate (repeat).")
@click.option("--note", default="", help="What it is for.")
@json_option
def tokens_create(
    root: Path,
    user: str,
    projects: tuple[str, ...],
    expires: str | None,
    scopes: tuple[str, ...],
    note: str,
    as_json: bool,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from plinth.api.config import parse_duration

    with _Opened(root) as opened:
        lifetime = parse_duration(expires) if expires else opened.config.token_ttl_s
        token, info = opened.accounts.create_token(
            user,
            by=_by(),
            projects=list(projects) or None,
            scopes=scopes,
            expires_in_s=lifetime,
            note=note,
        )
        opened.accounts.audit(
            user=_by(),
            project=None,
            action="token.create",
            target=info.id,
            detail={"user": user, "projects": list(projects), "scopes": list(scopes)},
        )
    if as_json:
        echo_json({"token": token, **dataclasses.asdict(info)})
        return
    click.echo(f"Token {info.id} of '{user}' (shown once; store it now):\n\n  {token}\n")


@tokens.command("list", epilog="Example: plinth server tokens list --user ci")
@root_option
@click.option("--user", help="Only this user's tokens.")
@json_option
def tokens_list(root: Path, user: str | None, as_json: bool) -> None:
    """Tokens (ids and metadata; never the secrets)."""
    with _Opened(root) as opened:
        found = opened.accounts.list_tokens(user)
    if as_json:
        echo_json([dataclasses.asdict(t) for t in found])
        return
    for t in found:
        state = "revoked" if t.revoked_at else "active"
        reach = ",".join(t.projects) if t.projects is not None else "*"
        _line(f"{t.id}  {t.user}  {state}  projects={reach}  {t.note}")


@tokens.command("revoke", epilog="Example: plinth server tokens revoke 0123456789abcdef")
@root_option
@click.argument("token_id")
@json_option
def tokens_revoke(root: Path, token_id: str, as_json: bool) -> None:
    """Revoke a token: it stops working at once."""
    with _Opened(root) as opened:
        opened.accounts.revoke_token(token_id)
        opened.accounts.audit(user=_by(), project=None, action="token.revoke", target=token_id)
    _done(as_json, {"token": token_id, "revoked": True}, f"Revoked token {token_id}.")


# -- projects ------------------------------------------------------------------------------


@server.group()
def projects() -> None:
    """Projects and who may use them: create, list, grant, revoke."""


@projects.command("create", epilog="Example: plinth server projects create flights")
@root_option
@click.argument("name")
@json_option
def projects_create(root: Path, name: str, as_json: bool) -> None:
    """Create a project with its own ledger and blob store."""
    from plinth.api.bootstrap import create_project
    from plinth.api.spaces import Spaces

    with _Opened(root) as opened:
        spaces = Spaces(opened.config)
        try:
            create_project(opened.accounts, spaces, name, by=_by())
        finally:
            spaces.close()
        opened.accounts.audit(user=_by(), project=name, action="project.create", target=name)
    _done(as_json, {"project": name}, f"Created project '{name}'.")


@projects.command("list", epilog="Example: plinth server projects list")
@root_option
@json_option
def projects_list(root: Path, as_json: bool) -> None:
    """Projects and their members."""
    with _Opened(root) as opened:
        names = opened.accounts.list_projects()
        members = opened.accounts.members()
    rows = {n: {m.user: m.role for m in members if m.project == n} for n in names}
    if as_json:
        echo_json([{"name": n, "members": people} for n, people in rows.items()])
        return
    for name, people in rows.items():
        text = ", ".join(f"{u}:{r}" for u, r in people.items())
        click.echo(f"{name}  {text}".rstrip())


@projects.command("grant", epilog="Example: plinth server projects grant flights bob write")
@root_option
@click.argument("project")
@click.argument("user")
@click.argument("role", type=click.Choice(["read", "write", "admin"]))
@json_option
def projects_grant(root: Path, project: str, user: str, role: str, as_json: bool) -> None:
    """Give USER ROLE in PROJECT (replacing their previous role)."""
    with _Opened(root) as opened:
        opened.accounts.grant(user, project, role, by=_by())
        opened.accounts.audit(
            user=_by(), project=project, action="member.grant", target=user, detail={"role": role}
        )
    _done(
        as_json,
        {"project": project, "user": user, "role": role},
        f"'{user}' is now {role} in '{project}'.",
    )


@projects.command("revoke", epilog="Example: plinth server projects revoke flights bob")
@root_option
@click.argument("project")
@click.argument("user")
@json_option
def projects_revoke(root: Path, project: str, user: str, as_json: bool) -> None:
    """Remove USER from PROJECT."""
    with _Opened(root) as opened:
        opened.accounts.revoke(user, project)
        opened.accounts.audit(user=_by(), project=project, action="member.revoke", target=user)
    _done(as_json, {"project": project, "user": user}, f"Removed '{user}' from '{project}'.")


# -- audit and export ----------------------------------------------------------------------


@server.command(epilog="Example: plinth server audit --project flights --limit 20")
@root_option
@click.option("--project", help="Only this project's entries.")
@click.option("--user", help="Only this user's entries.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def audit(root: Path, project: str | None, user: str | None, limit: int, as_json: bool) -> None:
    """The audit log, newest first: who changed what, and whether it was allowed."""
    import datetime as dt

    with _Opened(root) as opened:
        entries = opened.accounts.audit_log(project=project, user=user, limit=limit)
    if as_json:
        echo_json([dataclasses.asdict(e) for e in entries])
        return
    for e in entries:
        at = dt.datetime.fromtimestamp(e.at / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        _line(f"{at}  {e.user or '-'}  {e.project or '-'}  {e.action}  {e.target}  {e.status}")


@server.command(
    epilog="Example: plinth server export --target kubernetes --out deploy-server "
    "--registry ghcr.io/acme"
)
@root_option
@click.option("--target", type=click.Choice(["kubernetes"]), required=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the manifests to.",
)
@click.option("--image", help="Image to run. Default: plinth:<version>.")
@click.option("--registry", help="Registry prefix for the image, e.g. ghcr.io/acme.")
@click.option("--replicas", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--secret",
    default="plinth-server",
    show_default=True,
    help="Name of the Kubernetes Secret with the database URL and S3 keys.",
)
@json_option
def export(
    root: Path,
    target: str,
    out: Path,
    image: str | None,
    registry: str | None,
    replicas: int,
    secret: str,
    as_json: bool,
) -> None:
    """Write manifests that run several replicas over PostgreSQL and S3."""
    from plinth.api.config import load_config
    from plinth.api.kubernetes import export_kubernetes

    written = export_kubernetes(
        load_config(root), out, image=image, registry=registry, replicas=replicas, secret=secret
    )
    _done(
        as_json,
        {"target": target, "files": [str(p) for p in written]},
        "\n".join(f"wrote {p}" for p in written),
    )


def _line(text: str) -> None:
    """Print a line built from stored values (an audit target is whatever a client sent as
    a user name): anything that could steer the terminal is shown escaped."""
    from plinth.guards.terminal import printable

    click.echo(printable(text.rstrip()))


def _done(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo(text)
