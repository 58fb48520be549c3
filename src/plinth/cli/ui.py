"""``plinth ui``: the web pages over the local embedded project, for one person.

It binds 127.0.0.1 only and prints a one-time login link: opening it sets the session
cookie; the link does not work a second time. Nobody else on the machine can log in
without it (there is no password), and nothing is reachable from other machines.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from plinth.settings import Settings


def local_app(settings: Settings) -> tuple[Starlette, str]:
    """The app over the project of ``settings`` and its one-time login path
    (``/login/local?token=...``)."""
    import secrets

    from plinth.api.app import server_state
    from plinth.api.bootstrap import local_config
    from plinth.cli.server import build_app

    config, user = local_config(settings)
    app = build_app(config)
    token = secrets.token_urlsafe(32)
    server_state(app).set_local_login(token, user)
    return app, f"/login/local?token={token}"


@click.command(epilog="Example: plinth ui            (then open the printed link)")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8760,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
def ui(port: int) -> None:
    """Browse this project's runs, data, models and monitors in a web browser."""
    import uvicorn

    from plinth.api.app import log_config
    from plinth.settings import load_settings

    app, login_path = local_app(load_settings())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]
    click.echo(f"plinth ui on http://127.0.0.1:{bound}/ — open this link once to log in:\n")
    click.echo(f"  http://127.0.0.1:{bound}{login_path}\n")
    click.echo("Press Ctrl-C to stop.")
    config = uvicorn.Config(app, log_config=log_config(), server_header=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
